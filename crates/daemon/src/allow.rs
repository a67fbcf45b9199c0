//! Which scripts (and handler libraries) this daemon may load: defence in depth behind the
//! connection check, so that a request naming some other file in `SCRIPT_FILENAME` is refused
//! even if it did come from Apache.
//!
//! The supervisor lists what the group serves: the scripts it preloads (`--script`), other
//! scripts Apache may route to it (`--allow-script`: `WSGIScriptAlias` targets without
//! `process-group=`, which `WSGIProcessGroup` may send to any group), and directories whose
//! files it may serve (`--allow-dir`: a `<Directory>` whose `WSGIProcessGroup` is this group,
//! for `AddHandler`/`SetHandler wsgi-script`). A path is permitted when it is absolute, has no
//! `..` component, and is one of the files or lies inside one of the directories. The policy
//! also carries the group's `script-user`/`script-group` rule, which the loaders apply to the
//! file they open (`owner.rs`).

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use crate::owner::OwnerRule;

/// The scripts a group may load.
#[derive(Debug, Default, Clone)]
pub struct ScriptPolicy {
    files: HashSet<PathBuf>,
    dirs: Vec<PathBuf>,
    owner: Option<OwnerRule>,
}

/// Why a script was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPermitted {
    /// Not an absolute path, or one with `..` components.
    #[error("refusing to load {0}: not a plain absolute path")]
    NotPlain(String),
    /// Not one of the group's scripts.
    #[error("refusing to load {0}: it is not a script of this daemon group (only the WSGIScriptAlias, WSGIHandlerScript, WSGIImportScript and auth or dispatch scripts of the server's configuration files, not .htaccess, and files under a <Directory> assigned to the group may be loaded)")]
    NotListed(String),
}

fn plain(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

impl ScriptPolicy {
    /// The policy permitting exactly `files` and whatever lies under `dirs`.
    pub fn new(files: impl IntoIterator<Item = PathBuf>, dirs: Vec<PathBuf>) -> Self {
        ScriptPolicy {
            files: files.into_iter().collect(),
            dirs,
            owner: None,
        }
    }

    /// The policy with the group's `script-user`/`script-group` rule.
    pub fn with_owner(mut self, owner: Option<OwnerRule>) -> Self {
        self.owner = owner;
        self
    }

    /// The rule every script the group loads must pass, if any.
    pub fn owner(&self) -> Option<OwnerRule> {
        self.owner
    }

    /// Checks that `path` may be loaded.
    pub fn check(&self, path: &Path) -> Result<(), NotPermitted> {
        if !plain(path) {
            return Err(NotPermitted::NotPlain(path.display().to_string()));
        }
        let listed = self.files.contains(path)
            || self
                .dirs
                .iter()
                .any(|d| path != d.as_path() && path.starts_with(d));
        if listed {
            Ok(())
        } else {
            Err(NotPermitted::NotListed(path.display().to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScriptPolicy {
        ScriptPolicy::new(
            [PathBuf::from("/srv/app/wsgi.py")],
            vec![PathBuf::from("/srv/scripts")],
        )
    }

    #[test]
    fn listed_files_and_files_under_listed_dirs_are_permitted() {
        let p = policy();
        assert_eq!(p.check(Path::new("/srv/app/wsgi.py")), Ok(()));
        assert_eq!(p.check(Path::new("/srv/scripts/a.wsgi")), Ok(()));
        assert_eq!(p.check(Path::new("/srv/scripts/sub/b.wsgi")), Ok(()));
        // The same files spelled with `.` components or doubled slashes.
        assert_eq!(p.check(Path::new("/srv/scripts/./a.wsgi")), Ok(()));
        assert_eq!(p.check(Path::new("//srv//app/wsgi.py")), Ok(()));
    }

    #[test]
    fn everything_else_is_refused() {
        let p = policy();
        for bad in [
            "/etc/passwd",
            "/srv/app/other.py",
            "/srv/scripts",
            "/srv/scriptsX/a.py",
            "/srv/app/wsgi.py/x",
        ] {
            assert!(
                matches!(p.check(Path::new(bad)), Err(NotPermitted::NotListed(_))),
                "{bad}"
            );
        }
        for bad in [
            "/srv/scripts/../../etc/passwd",
            "/srv/scripts/../app/wsgi.py",
            "relative.py",
            "",
        ] {
            assert!(
                matches!(p.check(Path::new(bad)), Err(NotPermitted::NotPlain(_))),
                "{bad}"
            );
        }
    }
}
