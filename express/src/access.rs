//! Who the server runs as, and whether that user can reach the files it needs.
//!
//! Run as root, Apache's children and the daemons switch to `--user`; a script under
//! `/root` (mode 0700) then fails only at the first request. These checks walk the
//! path's ancestors with the user's uid, gid and supplementary groups and report the
//! first directory or file that stops them, in one line naming the path and the user.

use std::ffi::CString;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::unistd::{getgrouplist, Gid, Group, User};

/// A user as the kernel sees it after Apache's (and the daemon's) privilege drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Group name.
    pub group: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (`initgroups(user, gid)`), including `gid`.
    pub groups: Vec<u32>,
}

impl Identity {
    /// Looks up `user` and `group` (default: the user's primary group).
    pub fn lookup(user: &str, group: Option<&str>) -> Result<Identity> {
        let pw = match user.strip_prefix('#') {
            Some(num) => User::from_uid(num.parse::<u32>().context("--user #UID")?.into()),
            None => User::from_name(user),
        }
        .with_context(|| format!("looking up user {user}"))?;
        let Some(pw) = pw else {
            bail!("no such user: {user} (create it, or pass another --user)");
        };
        let gr = match group {
            Some(name) => match name.strip_prefix('#') {
                Some(num) => Group::from_gid(num.parse::<u32>().context("--group #GID")?.into()),
                None => Group::from_name(name),
            }
            .with_context(|| format!("looking up group {name}"))?
            .with_context(|| format!("no such group: {name}"))?,
            None => Group::from_gid(pw.gid)
                .ok()
                .flatten()
                .unwrap_or_else(|| Group {
                    name: format!("#{}", pw.gid),
                    passwd: CString::default(),
                    gid: pw.gid,
                    mem: Vec::new(),
                }),
        };
        let cname = CString::new(pw.name.clone()).context("user name contains NUL")?;
        let groups = getgrouplist(&cname, gr.gid)
            .with_context(|| format!("listing the groups of {user}"))?
            .into_iter()
            .map(Gid::as_raw)
            .collect();
        Ok(Identity {
            user: pw.name,
            group: gr.name,
            uid: pw.uid.as_raw(),
            gid: gr.gid.as_raw(),
            groups,
        })
    }
}

/// What a path must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read a file.
    Read,
    /// Execute a file (exec(2) of a binary).
    Execute,
    /// Enter a directory (search, `x`).
    Enter,
    /// List and enter a directory (`r` and `x`).
    List,
}

impl Need {
    fn bits(self) -> u32 {
        match self {
            Need::Read => 4,
            Need::Execute | Need::Enter => 1,
            Need::List => 5,
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Need::Read => "read",
            Need::Execute => "execute",
            Need::Enter => "enter",
            Need::List => "read",
        })
    }
}

/// Checks that `who` can reach `path` (every ancestor searchable) and do `need` on it.
/// `what` names the path in the error ("the WSGI script", "the python home" ...).
pub fn check_access(who: &Identity, path: &Path, need: Need, what: &str) -> Result<()> {
    let path = path
        .canonicalize()
        .with_context(|| format!("{what} {}", path.display()))?;
    let mut ancestors: Vec<PathBuf> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
    ancestors.reverse();
    for dir in &ancestors {
        if let Some(problem) = denied(who, dir, Need::Enter)? {
            bail!(
                "user {} cannot {need} {what} {}: directory {} ({problem}) is not searchable by {}",
                who.user,
                path.display(),
                dir.display(),
                who.user
            );
        }
    }
    if let Some(problem) = denied(who, &path, need)? {
        bail!(
            "user {} cannot {need} {what} {} ({problem})",
            who.user,
            path.display()
        );
    }
    Ok(())
}

/// `None` when `who` has `need` on `path` by its mode bits, else a description of them.
fn denied(who: &Identity, path: &Path, need: Need) -> Result<Option<String>> {
    let meta = path
        .metadata()
        .with_context(|| format!("stat {}", path.display()))?;
    let mode = meta.mode() & 0o7777;
    let bits = need.bits();
    let granted = if who.uid == 0 {
        // root passes every r/w/x check except executing a file with no x bit at all.
        need != Need::Execute || mode & 0o111 != 0
    } else if meta.uid() == who.uid {
        (mode >> 6) & bits == bits
    } else if meta.gid() == who.gid || who.groups.contains(&meta.gid()) {
        (mode >> 3) & bits == bits
    } else {
        mode & bits == bits
    };
    if granted {
        return Ok(None);
    }
    Ok(Some(format!(
        "owner {}:{}, mode {mode:04o}",
        user_name(meta.uid()),
        group_name(meta.gid())
    )))
}

fn user_name(uid: u32) -> String {
    match User::from_uid(uid.into()) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

fn group_name(gid: u32) -> String {
    match Group::from_gid(gid.into()) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn nobody() -> Identity {
        Identity {
            user: "nobody-test".into(),
            group: "nogroup-test".into(),
            uid: 65534,
            gid: 65534,
            groups: vec![65534],
        }
    }

    #[test]
    fn root_lookup() {
        let id = Identity::lookup("root", None).unwrap();
        assert_eq!((id.uid, id.gid), (0, 0));
        assert!(Identity::lookup("no-such-user-rswsgi", None).is_err());
    }

    #[test]
    fn mode_bits_decide() {
        let dir = std::env::temp_dir().join(format!("rswsgi-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.join("f.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_access(&nobody(), &file, Need::Read, "the script").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        if me != 65534 {
            let err = check_access(&nobody(), &file, Need::Read, "the script").unwrap_err();
            assert!(err.to_string().contains("nobody-test"), "{err}");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            let err = check_access(&nobody(), &file, Need::Read, "the script").unwrap_err();
            assert!(err.to_string().contains("not searchable"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
