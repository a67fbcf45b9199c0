//! `--reload-on-changes`: the change monitor, mod_wsgi-express's reloader built into the
//! daemon. A thread (`reload-monitor`) looks, once every [`INTERVAL`], at the file of every
//! module the application has imported (the backend lists them, for Python under the GIL,
//! from `sys.modules`), the `--script`s and the `--reload-file`s, and `stat`s them without the
//! GIL. When one changes it begins a graceful recycle, as maximum-requests does: the process
//! takes no new connection, finishes the requests it has and exits, and the supervisor starts
//! a replacement, which imports the new code.
//!
//! A file counts as changed when its modification time, size or inode differ from when the
//! monitor first saw it (a time going backwards too: an older file restored), or when a file
//! it saw is gone. A path that is not a regular file when first seen (a module inside a zip
//! file, a built-in) is ignored, as mod_wsgi-express does.
//!
//! Polling, not inotify: the set of files grows as the application imports, every daemon of
//! every group would hold watches against the user's `max_user_watches`, and inotify misses
//! changes made from another host of a network file system or through another mount
//! namespace. Stat-ing a thousand files costs about a millisecond a second (docs/daemon.md has
//! the measured latency).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::backend::Backend;
use crate::lifecycle::Lifecycle;

/// How often the monitor looks (mod_wsgi-express's monitor's interval).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    modified: Option<SystemTime>,
    size: u64,
    inode: u64,
}

/// The version of the regular file at `path`; `None` when there is none.
fn version(path: &Path) -> Option<Version> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some(Version {
        modified: meta.modified().ok(),
        size: meta.len(),
        inode: meta.ino(),
    })
}

/// The files seen so far, each with the version first seen.
#[derive(Debug, Default)]
pub struct Watched {
    seen: HashMap<PathBuf, Version>,
}

impl Watched {
    /// Looks at `paths` (new ones are recorded as they are now) and returns the first one
    /// that changed since it was first seen, if any.
    pub fn changed<'a>(&mut self, paths: impl IntoIterator<Item = &'a Path>) -> Option<PathBuf> {
        for path in paths {
            let now = version(path);
            match (self.seen.get(path), now) {
                (Some(before), now) if now != Some(*before) => return Some(path.to_owned()),
                (None, Some(now)) => {
                    self.seen.insert(path.to_owned(), now);
                }
                _ => {}
            }
        }
        None
    }

    /// How many files are watched.
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// Starts the monitor over the backend's source files and `files` (the scripts and the
/// `--reload-file`s). It looks once at once, before the workers start, so a change right
/// after start-up counts.
pub fn spawn(
    life: Arc<Lifecycle>,
    backend: Arc<dyn Backend>,
    files: Vec<PathBuf>,
) -> std::io::Result<()> {
    let mut watched = Watched::default();
    let look = move |watched: &mut Watched| {
        let modules = backend.source_files();
        let all = files.iter().chain(&modules).map(PathBuf::as_path);
        watched.changed(all)
    };
    // Records every file as it is now (nothing was seen before, so nothing changed).
    look(&mut watched);
    tracing::info!(
        "reload-on-changes: watching {} file(s) every {}s",
        watched.len(),
        INTERVAL.as_secs_f64()
    );
    std::thread::Builder::new()
        .name("reload-monitor".into())
        .spawn(move || {
            while !life.stopping() {
                std::thread::sleep(INTERVAL);
                if let Some(path) = look(&mut watched) {
                    life.recycle("reload_on_changes", &changed_message(&path));
                    return;
                }
            }
        })
        .map(drop)
}

fn changed_message(path: &Path) -> String {
    format!("{} changed (reload-on-changes)", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_a_removal_and_a_replacement_count_and_new_files_do_not() {
        let dir = std::env::temp_dir().join(format!("rswsgi-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.py"), dir.join("b.py"));
        std::fs::write(&a, "x = 1\n").unwrap();
        let missing = dir.join("never.py");
        let mut w = Watched::default();
        assert_eq!(w.changed([a.as_path(), missing.as_path()]), None);
        assert_eq!(w.len(), 1, "a path that is no file is not watched");
        assert_eq!(w.changed([a.as_path()]), None);
        // A file first seen later is recorded, not a change.
        std::fs::write(&b, "y = 1\n").unwrap();
        assert_eq!(w.changed([a.as_path(), b.as_path()]), None);
        // The same size and time but another file (an editor's rename over it).
        let tmp = dir.join("b.tmp");
        std::fs::write(&tmp, "y = 2\n").unwrap();
        let when = std::fs::metadata(&b).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(when)
            .unwrap();
        std::fs::rename(&tmp, &b).unwrap();
        assert_eq!(w.changed([a.as_path(), b.as_path()]), Some(b.clone()));
        std::fs::write(&a, "x = 22\n").unwrap();
        assert_eq!(w.changed([a.as_path()]), Some(a.clone()));
        std::fs::remove_file(&a).unwrap();
        assert_eq!(w.changed([a.as_path()]), Some(a.clone()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
