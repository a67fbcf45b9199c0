//! The daemon groups' listening sockets, created by httpd's parent.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::credentials;
use super::socket_dir::prepare_dir;
use crate::access::Who;

/// What a socket file is (device, inode): tells the socket bound at a path from another
/// put there since.
pub type FileId = (u64, u64);

/// The identity of the socket file at `path`, if a socket is there.
pub fn file_id(path: &str) -> Option<FileId> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| (m.dev(), m.ino()))
}

/// Binds the group's socket, replacing a stale one, owned by `owner` (Apache's `User`, or
/// the group's `socket-user`) with mode 0600; creates the socket's own directory if need be
/// (see `socket_dir`).
pub fn bind_socket(path: &str, owner: &Who) -> Result<(OwnedFd, FileId), String> {
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent() {
        prepare_dir(dir)?;
        if nix::unistd::geteuid().is_root() {
            crate::access::check_searchable(dir, owner).map_err(|e| {
                format!(
                    "Apache's children (user {}) could not reach the daemon socket in {}: {e}; \
                     set WSGISocketPrefix to a directory they can reach",
                    owner.name,
                    dir.display()
                )
            })?;
        }
    }
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(p)
            .map_err(|e| format!("cannot remove stale socket {path}: {e}"))?,
        Ok(_) => {
            return Err(format!(
                "{path} exists and is not a socket; refusing to replace it"
            ))
        }
        Err(_) => {}
    }
    // Bound but not listening: connections are refused until a daemon of the group is ready
    // to serve and calls listen(), so a group that cannot start gives 503s, not hung requests.
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let listener = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("cannot create the daemon socket: {e}"))?;
    let addr = UnixAddr::new(p).map_err(|e| format!("bad daemon socket path {path}: {e}"))?;
    bind(listener.as_raw_fd(), &addr)
        .map_err(|e| format!("cannot bind daemon socket {path}: {e}"))?;
    reown(path, owner)?;
    let id = file_id(path).ok_or_else(|| format!("daemon socket {path} vanished after bind"))?;
    Ok((listener, id))
}

/// Gives a socket (also one carried over from the previous configuration) to `owner`, with
/// Apache's (possibly changed) `Group`, mode 0600.
pub fn reown(path: &str, owner: &Who) -> Result<(), String> {
    let p = std::path::Path::new(path);
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod daemon socket {path}: {e}"))?;
    if nix::unistd::geteuid().is_root() {
        let (_, gid) = credentials::apache_child_ids();
        let uid = nix::unistd::Uid::from_raw(owner.uid);
        nix::unistd::chown(p, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown daemon socket {path}: {e}"))?;
    }
    Ok(())
}
