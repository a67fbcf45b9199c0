//! `script-user` and `script-group`: whose scripts (and handler libraries) this group may
//! load, checked on the file as it is opened, as mod_wsgi checks them (`wsgi_remote.c`):
//!
//! - `script-user=U`: the file and its directory belong to U, and neither is writable by its
//!   group or by others;
//! - `script-group=G`: the file and its directory have the group G, and neither is writable
//!   by others.
//!
//! The directory is opened first and the file is opened relative to it (`openat`); both are
//! checked with `fstat` on those descriptors, and the code loaded is read from the same
//! descriptor (a handler library is `dlopen`ed through `/proc/self/fd`), so nothing can be
//! swapped in between the check and the load. A refusal is answered 403 (a `Forbidden` frame).

use std::fs::{File, Metadata};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

/// The owner a group's scripts must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRule {
    /// `script-user`: this uid.
    User(u32),
    /// `script-group`: this gid.
    Group(u32),
}

/// A script the group's rule refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to load {}: {reason}", path.display())]
pub struct Refused {
    /// The script.
    pub path: PathBuf,
    /// What is wrong, naming the owner found and the one required.
    pub reason: String,
}

/// Why a script could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The rule refuses it.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// It (or its directory) cannot be opened or inspected.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(u)) => format!("{} (uid {uid})", u.name),
        _ => format!("uid {uid}"),
    }
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(gid.into()) {
        Ok(Some(g)) => format!("{} (gid {gid})", g.name),
        _ => format!("gid {gid}"),
    }
}

impl OwnerRule {
    /// Why `meta` (of the script itself, or of `dir`, its directory) breaks the rule.
    fn check(self, meta: &Metadata, dir: Option<&Path>) -> Result<(), String> {
        let what = match dir {
            Some(d) => format!("its directory {}", d.display()),
            None => "it".to_owned(),
        };
        let mode = meta.mode() & 0o7777;
        match self {
            OwnerRule::User(uid) if meta.uid() != uid => Err(format!(
                "{what} is owned by {}, but script-user requires {}",
                user_name(meta.uid()),
                user_name(uid)
            )),
            OwnerRule::Group(gid) if meta.gid() != gid => Err(format!(
                "{what} has the group {}, but script-group requires {}",
                group_name(meta.gid()),
                group_name(gid)
            )),
            OwnerRule::User(_) if mode & 0o020 != 0 => Err(format!(
                "{what} is writable by its group (mode {mode:04o}); script-user requires that \
                 only its owner can write it"
            )),
            _ if mode & 0o002 != 0 => Err(format!(
                "{what} is writable by anyone (mode {mode:04o}); script-user and script-group \
                 refuse that"
            )),
            _ => Ok(()),
        }
    }
}

/// Opens the script at `path` for loading, with its metadata; under a rule, only when the
/// opened file and its directory pass it.
pub fn open(path: &Path, rule: Option<OwnerRule>) -> Result<(File, Metadata), OpenError> {
    let Some(rule) = rule else {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        return Ok((file, meta));
    };
    let refused = |reason| Refused {
        path: path.to_owned(),
        reason,
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(refused("it is not a file in a directory".into()).into());
    };
    let dir_file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)?;
    let fd = openat(
        &dir_file,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    rule.check(&meta, None).map_err(refused)?;
    rule.check(&dir_file.metadata()?, Some(dir))
        .map_err(refused)?;
    Ok((file, meta))
}

/// The path through which the loader reopens exactly the file `file` holds open.
pub fn fd_path(file: &File) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn stage() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "rswsgi-owner-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.join("app.wsgi");
        std::fs::write(&script, "x = 1\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        (dir, script)
    }

    #[test]
    fn the_owner_and_the_modes_decide() {
        let (dir, script) = stage();
        let me = nix::unistd::geteuid().as_raw();
        let my_group = nix::unistd::getegid().as_raw();
        assert!(open(&script, None).is_ok());
        assert!(open(&script, Some(OwnerRule::User(me))).is_ok());
        assert!(open(&script, Some(OwnerRule::Group(my_group))).is_ok());
        let other = me.wrapping_add(4242);
        match open(&script, Some(OwnerRule::User(other))) {
            Err(OpenError::Refused(r)) => {
                let text = r.to_string();
                assert!(text.contains("refusing to load"), "{text}");
                assert!(text.contains(&script.display().to_string()), "{text}");
                assert!(text.contains("it is owned by"), "{text}");
                assert!(text.contains(&format!("uid {other}")), "{text}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o664)).unwrap();
        let e = open(&script, Some(OwnerRule::User(me))).unwrap_err();
        assert!(e.to_string().contains("writable by its group"), "{e}");
        assert!(open(&script, Some(OwnerRule::Group(my_group))).is_ok());
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o646)).unwrap();
        let e = open(&script, Some(OwnerRule::Group(my_group))).unwrap_err();
        assert!(e.to_string().contains("writable by anyone"), "{e}");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = open(&script, Some(OwnerRule::User(me))).unwrap_err();
        let want = format!("its directory {} is writable by its group", dir.display());
        assert!(e.to_string().contains(&want), "{e}");
        let missing = dir.join("missing.wsgi");
        assert!(matches!(
            open(&missing, Some(OwnerRule::User(me))),
            Err(OpenError::Io(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_checked_is_the_file_read() {
        let (dir, script) = stage();
        let me = nix::unistd::geteuid().as_raw();
        let (file, meta) = open(&script, Some(OwnerRule::User(me))).unwrap();
        // Replaced after the check: what was checked and opened is still what is read.
        std::fs::write(dir.join("other"), "y = 2\n").unwrap();
        std::fs::rename(dir.join("other"), &script).unwrap();
        let read = std::fs::read_to_string(fd_path(&file)).unwrap();
        assert_eq!(read, "x = 1\n");
        assert_eq!(meta.ino(), file.metadata().unwrap().ino());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
