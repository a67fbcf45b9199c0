//! Whether a user may reach a path: the permission arithmetic, kept pure for unit tests, and
//! the walk over a path's ancestors.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The identity whose access is checked.
#[derive(Debug, Clone)]
pub struct Who {
    /// The user name, for messages.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary and supplementary gids.
    pub gids: Vec<u32>,
}

/// Whether `who` has permission `bit` (4 read, 2 write, 1 execute/search) on a file with this
/// owner, group and mode.
pub fn permits(who: &Who, owner: u32, group: u32, mode: u32, bit: u32) -> bool {
    if who.uid == 0 {
        return true;
    }
    let shift = if owner == who.uid {
        6
    } else if who.gids.contains(&group) {
        3
    } else {
        0
    };
    mode >> shift & bit != 0
}

/// Checks that `who` can search every directory from `/` down to `dir` (inclusive).
pub fn check_searchable(dir: &Path, who: &Who) -> Result<(), String> {
    let mut here = std::path::PathBuf::new();
    for part in dir.components() {
        here.push(part);
        let m = std::fs::metadata(&here)
            .map_err(|e| format!("cannot inspect {}: {e}", here.display()))?;
        if !permits(who, m.uid(), m.gid(), m.mode(), 1) {
            return Err(format!(
                "{} is not searchable by user {} (owner uid {}, group gid {}, mode {:04o})",
                here.display(),
                who.name,
                m.uid(),
                m.gid(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(uid: u32, gids: &[u32]) -> Who {
        Who {
            name: "u".into(),
            uid,
            gids: gids.to_vec(),
        }
    }

    #[test]
    fn owner_group_other() {
        assert!(permits(&who(33, &[33]), 33, 0, 0o700, 1));
        assert!(!permits(&who(33, &[33]), 0, 0, 0o700, 1));
        assert!(permits(&who(33, &[33, 4]), 0, 4, 0o710, 1));
        assert!(permits(&who(33, &[33]), 0, 0, 0o711, 1));
        assert!(
            !permits(&who(33, &[33]), 33, 0, 0o077, 1),
            "owner bits decide for the owner"
        );
        assert!(permits(&who(0, &[0]), 5, 5, 0o000, 1));
    }

    #[test]
    fn walks_ancestors() {
        assert!(check_searchable(Path::new("/"), &who(65534, &[65534])).is_ok());
        let tmp = std::env::temp_dir().join(format!("rswsgi-access-{}", std::process::id()));
        let inner = tmp.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
        let owner = std::fs::metadata(&tmp).unwrap().uid();
        let stranger = who(owner.wrapping_add(12345), &[4242]);
        let err = check_searchable(&inner, &stranger).unwrap_err();
        assert!(err.contains(&tmp.display().to_string()), "{err}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
