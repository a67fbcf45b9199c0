//! Whether a `python-home` fits this daemon's Python, checked before Python starts.
//!
//! A virtualenv of another minor version (its `lib/python3.X/site-packages` is never looked
//! at) or a directory that is no Python installation at all (CPython dies with a page of
//! "Fatal Python error" at every restart) is refused in one line naming the path and, for a
//! mismatch, both versions. The daemon runs this check itself before initialising Python,
//! and `rswsgi-daemon --check-python-home DIR` runs only it, so that `express` and the
//! module's configuration check refuse such a home before anything starts: the daemon's
//! Python version has one source of truth, the libpython it is linked with.

use std::ffi::{CStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

/// A Python `major.minor` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// `3`.
    pub major: u32,
    /// `11`.
    pub minor: u32,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Version {
    /// The `major.minor` at the start of `3.11.2`, `3.11.2.final.0`, `3.11` or `3.13.0rc1`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(Version {
            major,
            minor: minor.parse().ok()?,
        })
    }
}

/// The Python this daemon runs: the version of the libpython it is linked with.
pub fn daemon_version() -> Version {
    // SAFETY: Py_GetVersion may be called before Python is initialised (it is one of the
    // "informative functions" CPython documents as safe then) and returns a static,
    // NUL-terminated string such as "3.11.2 (main, ...) [GCC 12.2.0]".
    let text = unsafe { CStr::from_ptr(pyo3::ffi::Py_GetVersion()) };
    let text = text.to_string_lossy();
    Version::parse(text.split_whitespace().next().unwrap_or_default())
        .expect("Py_GetVersion starts with major.minor")
}

/// What a good python-home is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// A virtualenv (has `pyvenv.cfg`) of the daemon's Python version.
    Virtualenv,
    /// A Python installation prefix with the daemon's version's standard library.
    Prefix,
}

/// Why a python-home does not fit. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// The directory (or its `pyvenv.cfg`) cannot be read.
    #[error("cannot read python-home {path} as user {user}: {source}")]
    Unreadable {
        /// What could not be read.
        path: PathBuf,
        /// The effective user.
        user: String,
        /// Why.
        source: std::io::Error,
    },
    /// A virtualenv of another Python version.
    #[error(
        "python-home {path} is a virtualenv of Python {found}, but rswsgi-daemon runs Python \
         {want}: recreate it with python{want} -m venv (or build rswsgi-daemon against Python {found})"
    )]
    VirtualenvVersion {
        /// The home.
        path: PathBuf,
        /// The virtualenv's version.
        found: Version,
        /// The daemon's.
        want: Version,
    },
    /// A Python prefix of another version.
    #[error(
        "python-home {path} is a Python {found} installation, but rswsgi-daemon runs Python \
         {want}: point python-home at a Python {want} virtualenv or prefix"
    )]
    PrefixVersion {
        /// The home.
        path: PathBuf,
        /// The prefix's version.
        found: Version,
        /// The daemon's.
        want: Version,
    },
    /// Neither a virtualenv nor a Python prefix.
    #[error(
        "python-home {path} is not a Python {want} virtualenv or installation: it has no \
         pyvenv.cfg and no lib/python{want}/os.py"
    )]
    NotAHome {
        /// The home.
        path: PathBuf,
        /// The daemon's version.
        want: Version,
    },
}

/// Checks that `home` is a virtualenv of, or a prefix for, Python `want`.
///
/// A virtualenv is a directory with `pyvenv.cfg`; its version is the file's `version_info`
/// (virtualenv, uv) or `version` (`python -m venv`), else the `lib/python3.X/` it holds. A
/// prefix has the standard library's landmark `lib/python3.X/os.py` (or under `lib64`).
pub fn check(home: &Path, want: Version) -> Result<Home, HomeError> {
    let unreadable = |path: &Path, source| HomeError::Unreadable {
        path: path.to_owned(),
        user: crate::log::effective_user(),
        source,
    };
    std::fs::read_dir(home).map_err(|e| unreadable(home, e))?;
    let cfg = home.join("pyvenv.cfg");
    if cfg.exists() {
        let text = std::fs::read_to_string(&cfg).map_err(|e| unreadable(&cfg, e))?;
        let found = venv_version(&text).or_else(|| {
            let dirs = lib_versions(home);
            (!dirs.contains(&want))
                .then(|| dirs.first().copied())
                .flatten()
        });
        return match found {
            Some(found) if found != want => Err(HomeError::VirtualenvVersion {
                path: home.to_owned(),
                found,
                want,
            }),
            _ => Ok(Home::Virtualenv),
        };
    }
    let has_stdlib = |v: Version| {
        ["lib", "lib64"]
            .iter()
            .any(|lib| home.join(lib).join(format!("python{v}/os.py")).is_file())
    };
    if has_stdlib(want) {
        return Ok(Home::Prefix);
    }
    match lib_versions(home).into_iter().find(|v| has_stdlib(*v)) {
        Some(found) => Err(HomeError::PrefixVersion {
            path: home.to_owned(),
            found,
            want,
        }),
        None => Err(HomeError::NotAHome {
            path: home.to_owned(),
            want,
        }),
    }
}

/// The version a `pyvenv.cfg` records: `version_info`, else `version`.
fn venv_version(cfg: &str) -> Option<Version> {
    let value = |key: &str| {
        cfg.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim().eq_ignore_ascii_case(key))
                .then(|| Version::parse(v))
                .flatten()
        })
    };
    value("version_info").or_else(|| value("version"))
}

/// The versions of the `lib/pythonX.Y` (and `lib64/…`) directories under `home`, sorted.
fn lib_versions(home: &Path) -> Vec<Version> {
    let mut found: Vec<Version> = ["lib", "lib64"]
        .iter()
        .filter_map(|lib| std::fs::read_dir(home.join(lib)).ok())
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            Version::parse(name.to_str()?.strip_prefix("python")?)
        })
        .collect();
    found.sort_by_key(|v| (v.major, v.minor));
    found.dedup();
    found
}

/// `rswsgi-daemon --check-python-home DIR`: when those are the whole command line, checks
/// `DIR` against [`daemon_version`] and returns the exit status (0, or 1 after printing the
/// reason in one line on standard error); `None` for any other command line.
pub fn check_command(args: &[OsString]) -> Option<i32> {
    let [_, flag, dir] = args else {
        return None;
    };
    if flag != "--check-python-home" {
        return None;
    }
    match check(Path::new(dir), daemon_version()) {
        Ok(_) => Some(0),
        Err(e) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{e}");
            Some(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY311: Version = Version {
        major: 3,
        minor: 11,
    };

    #[test]
    fn versions_parse() {
        assert_eq!(Version::parse("3.11.2"), Some(PY311));
        assert_eq!(Version::parse(" 3.11.2.final.0"), Some(PY311));
        assert_eq!(Version::parse("3.11"), Some(PY311));
        assert_eq!(Version::parse("3.13rc1").map(|v| v.minor), Some(13));
        assert_eq!(Version::parse("3"), None);
        assert_eq!(Version::parse("x.y"), None);
        assert_eq!(
            venv_version("home = /usr/bin\nversion = 3.9.2\n"),
            Version::parse("3.9")
        );
        assert_eq!(
            venv_version("version = 3.9.2\nversion_info = 3.12.1.final.0\n"),
            Version::parse("3.12")
        );
        assert_eq!(venv_version("home = /usr/bin\n"), None);
    }

    #[test]
    fn the_daemon_knows_its_python() {
        let v = daemon_version();
        assert_eq!(v.major, 3);
        assert!(v.minor >= 8, "{v}");
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rswsgi-pyhome-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn homes_are_told_apart() {
        let empty = temp("empty");
        let e = check(&empty, PY311).unwrap_err().to_string();
        assert!(e.contains("no pyvenv.cfg") && e.contains("3.11"), "{e}");

        let venv = temp("venv");
        std::fs::write(venv.join("pyvenv.cfg"), "version = 3.9.2\n").unwrap();
        let e = check(&venv, PY311).unwrap_err().to_string();
        assert!(e.contains("Python 3.9") && e.contains("Python 3.11"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        std::fs::write(venv.join("pyvenv.cfg"), "version = 3.11.4\n").unwrap();
        assert_eq!(check(&venv, PY311).unwrap(), Home::Virtualenv);
        // No version line: the lib/python3.X directory tells.
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::create_dir_all(venv.join("lib/python3.10/site-packages")).unwrap();
        assert!(check(&venv, PY311).is_err());

        let prefix = temp("prefix");
        std::fs::create_dir_all(prefix.join("lib/python3.12")).unwrap();
        std::fs::write(prefix.join("lib/python3.12/os.py"), "").unwrap();
        let e = check(&prefix, PY311).unwrap_err().to_string();
        assert!(e.contains("Python 3.12 installation"), "{e}");
        std::fs::create_dir_all(prefix.join("lib/python3.11")).unwrap();
        std::fs::write(prefix.join("lib/python3.11/os.py"), "").unwrap();
        assert_eq!(check(&prefix, PY311).unwrap(), Home::Prefix);

        let e = check(&empty.join("missing"), PY311)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read python-home"), "{e}");
        for dir in [empty, venv, prefix] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}
