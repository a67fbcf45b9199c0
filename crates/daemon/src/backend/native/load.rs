//! Opening a handler library and checking the table it exports.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use rswsgi::abi::{HandlerTable, ABI_MAGIC, ABI_VERSION, ENTRY_SYMBOL};

use crate::owner::{OpenError, OwnerRule};

/// Why a handler library was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No library was given.
    #[error("no native handler library given")]
    NoHandler,
    /// The request names a library that is not one of the group's.
    #[error(transparent)]
    NotPermitted(#[from] crate::allow::NotPermitted),
    /// The group's `script-user`/`script-group` refuses the library (answered 403).
    #[error(transparent)]
    Refused(#[from] crate::owner::Refused),
    /// The library (or its directory) could not be opened for the `script-user` check.
    #[error("cannot open native handler {path} as user {user}: {source}")]
    Inspect {
        /// The library.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
        /// Who tried.
        user: String,
    },
    /// The dynamic loader failed (missing file, unreadable, wrong architecture, ...).
    #[error("cannot load native handler {path}: {source} (as user {user})")]
    Open {
        /// The library.
        path: PathBuf,
        /// The loader's error.
        source: libloading::Error,
        /// Who tried.
        user: String,
    },
    /// The library has no rswsgi entry point.
    #[error("{path} is not an rswsgi handler: it does not export `{ENTRY_SYMBOL}` (use rswsgi::export!)")]
    NoEntry {
        /// The library.
        path: PathBuf,
    },
    /// The table does not start with the rswsgi magic number.
    #[error("{path} is not an rswsgi handler: its handler table has the wrong magic number")]
    BadMagic {
        /// The library.
        path: PathBuf,
    },
    /// The library was built for another ABI version.
    #[error(
        "{path} was built with rswsgi handler ABI version {found}, but this rswsgi-daemon speaks version {ABI_VERSION}; rebuild it with `express build-handler`"
    )]
    WrongVersion {
        /// The library.
        path: PathBuf,
        /// The version it declares.
        found: u32,
    },
}

/// A loaded handler library. The library stays loaded as long as the handler exists.
pub struct Handler {
    table: &'static HandlerTable,
    sdk_version: String,
    _lib: libloading::Library,
}

impl Handler {
    /// Loads `path` and checks its table's magic number and ABI version before anything else.
    /// Under a `script-user`/`script-group` rule the library is opened and checked first, and
    /// the loader opens that same descriptor (`/proc/self/fd/N`), not the path again.
    pub fn load(path: &Path, owner: Option<OwnerRule>) -> Result<Self, LoadError> {
        let checked = match owner {
            Some(rule) => Some(crate::owner::open(path, Some(rule)).map_err(|e| match e {
                OpenError::Refused(r) => LoadError::Refused(r),
                OpenError::Io(source) => LoadError::Inspect {
                    path: path.into(),
                    source,
                    user: crate::log::effective_user(),
                },
            })?),
            None => None,
        };
        let target = checked
            .as_ref()
            .map_or_else(|| path.to_owned(), |(file, _)| crate::owner::fd_path(file));
        // SAFETY: loading a library runs its initialisers; handler libraries are built from the
        // rswsgi SDK, which has none beyond Rust's own.
        let lib =
            unsafe { libloading::Library::new(&target) }.map_err(|source| LoadError::Open {
                path: path.into(),
                source,
                user: crate::log::effective_user(),
            })?;
        type Entry = unsafe extern "C" fn() -> *const HandlerTable;
        // SAFETY: the symbol is declared by the SDK's export! macro with exactly this type.
        let entry = unsafe { lib.get::<Entry>(ENTRY_SYMBOL.as_bytes()) }
            .map_err(|_| LoadError::NoEntry { path: path.into() })?;
        // SAFETY: the entry takes no arguments and returns a pointer to a static table.
        let ptr = unsafe { entry() };
        // SAFETY: a non-NULL result points to the library's static table, which lives as long
        // as the library (kept in `_lib`); only the leading magic field is read before checking.
        let table =
            unsafe { ptr.as_ref() }.ok_or_else(|| LoadError::BadMagic { path: path.into() })?;
        if table.magic != ABI_MAGIC {
            return Err(LoadError::BadMagic { path: path.into() });
        }
        if table.abi_version != ABI_VERSION {
            return Err(LoadError::WrongVersion {
                path: path.into(),
                found: table.abi_version,
            });
        }
        let sdk_version = if table.sdk_version.is_null() {
            "unknown".to_string()
        } else {
            // SAFETY: the SDK stores a NUL-terminated static string here.
            unsafe { CStr::from_ptr(table.sdk_version.cast()) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: the table is static data of the library, which this Handler keeps loaded;
        // the 'static lifetime never outlives `_lib` because both live in the same struct.
        let table: &'static HandlerTable = unsafe { &*(table as *const HandlerTable) };
        Ok(Handler {
            table,
            sdk_version,
            _lib: lib,
        })
    }

    /// The SDK version the library was built with.
    pub fn sdk_version(&self) -> &str {
        &self.sdk_version
    }

    /// The library's table.
    pub fn table(&self) -> &HandlerTable {
        self.table
    }
}
