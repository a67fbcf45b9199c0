//! Which directory may hold the daemon sockets (the directory part of `WSGISocketPrefix`).
//!
//! Whoever can change that directory can unlink a daemon's socket and bind their own in its
//! place: every Apache child would then hand it its requests (and the connection secret), and
//! httpd's root parent, which `chmod`s and `chown`s the socket by path on each restart, could be
//! made to do so to a file of the attacker's choosing. So the directory must be owned by root
//! (or, when httpd does not run as root, by httpd's own user) and writable by no one else,
//! sticky bit or not: the sockets belong to Apache's `User`, and in a sticky directory their
//! owner may still rename them. Each of its parents must be owned by root (or httpd's user) too,
//! and writable by others only with the sticky bit (as `/tmp` is), so nobody can swap the
//! directory itself. httpd creates at most the socket directory itself (mode 0755), and only
//! inside a directory that exists. The rule is documented in `docs/security.md`.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// For `check_config`: the socket directory of `prefix` exists and passes the rule, or does
/// not exist yet and can be created in a parent that does.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let dir = Path::new(prefix).parent();
    if let Some(d) = dir {
        check_links(d)?;
    }
    match dir {
        Some(dir) if dir.exists() => check_dir(dir),
        Some(dir) => check_parent(dir),
        None => Ok(()),
    }
}

/// Creates the socket directory `dir` if it does not exist (only it, mode 0755), then checks it.
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        check_parent(dir)?;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| {
                format!(
                    "cannot create the daemon socket directory {}: {e}",
                    dir.display()
                )
            })?;
    }
    check_dir(dir)
}

/// The directory `dir` would be created in must exist and pass the rule for parents.
fn check_parent(dir: &Path) -> Result<(), String> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(format!(
            "the daemon socket directory {} cannot be created: {} does not exist (only the \
             socket's own directory is created); create it, or set WSGISocketPrefix elsewhere",
            dir.display(),
            parent.display()
        ));
    }
    check_parents(parent)
}

/// A symbolic link on the way to the socket directory must have a trusted owner too: in a
/// sticky directory its owner could point it elsewhere later.
fn check_links(dir: &Path) -> Result<(), String> {
    for a in dir.ancestors() {
        if let Ok(m) = std::fs::symlink_metadata(a) {
            if m.file_type().is_symlink() {
                trusted_owner(a, &m)?;
            }
        }
    }
    Ok(())
}

fn check_dir(dir: &Path) -> Result<(), String> {
    check_links(dir)?;
    let real = canonical(dir)?;
    let m = metadata(&real)?;
    if !m.is_dir() {
        return Err(format!(
            "the daemon socket directory {} is not a directory",
            dir.display()
        ));
    }
    trusted_owner(dir, &m)?;
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "the daemon socket directory {} is writable by group or others (mode {:04o}): \
             anyone who can write it can put their own socket in place of a daemon's; use a \
             directory only its owner can write (mode 0755), or set WSGISocketPrefix elsewhere",
            dir.display(),
            m.mode() & 0o7777
        ));
    }
    match real.parent() {
        Some(p) => check_parents(p),
        None => Ok(()),
    }
}

/// `dir` and everything above it: trusted owners, and no one else may write without the
/// sticky bit.
fn check_parents(dir: &Path) -> Result<(), String> {
    let real = canonical(dir)?;
    for a in real.ancestors() {
        let m = metadata(a)?;
        trusted_owner(a, &m)?;
        if m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0 {
            return Err(format!(
                "{}, above the daemon socket directory, is writable by group or others without \
                 the sticky bit (mode {:04o}): anyone who can write it can swap the socket \
                 directory; set WSGISocketPrefix elsewhere",
                a.display(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

fn trusted_owner(path: &Path, m: &std::fs::Metadata) -> Result<(), String> {
    let me = nix::unistd::geteuid();
    if m.uid() == 0 || (!me.is_root() && m.uid() == me.as_raw()) {
        return Ok(());
    }
    let owner = nix::unistd::User::from_uid(m.uid().into())
        .ok()
        .flatten()
        .map_or_else(
            || format!("uid {}", m.uid()),
            |u| format!("{} (uid {})", u.name, m.uid()),
        );
    let allowed = if me.is_root() {
        "root".to_string()
    } else {
        format!("root or httpd's user (uid {me})")
    };
    Err(format!(
        "{} is owned by {owner}, not {allowed}: its owner could put their own socket in place \
         of a daemon's; keep the daemon sockets in a directory owned by {allowed} (set \
         WSGISocketPrefix)",
        path.display()
    ))
}

fn canonical(p: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(p).map_err(|e| format!("cannot resolve {}: {e}", p.display()))
}

fn metadata(p: &Path) -> Result<std::fs::Metadata, String> {
    std::fs::metadata(p).map_err(|e| format!("cannot inspect {}: {e}", p.display()))
}
