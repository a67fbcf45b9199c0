//! The numeric ids the names of a daemon group's `script-user`, `script-group` and
//! `socket-user` options stand for, looked up at `check_config` (an unknown name stops httpd,
//! naming the option) and again when the group starts. Outside `config/`, which stays free
//! of system calls.

use crate::config::{DaemonGroupConfig, Principal, ScriptOwner};

const DIRECTIVE: &str = "WSGIDaemonProcess";

/// The uid `p` names, for the option `option` of group `group`: an unknown name is an error
/// naming the option. `#N` is taken as it is.
pub fn resolve_uid(group: &str, option: &str, p: &Principal) -> Result<u32, String> {
    match p {
        Principal::Id(i) => Ok(*i),
        Principal::Name(n) => match nix::unistd::User::from_name(n) {
            Ok(Some(u)) => Ok(u.uid.as_raw()),
            Ok(None) => Err(format!(
                "{DIRECTIVE} {group}: {option}={n}: there is no user named '{n}'"
            )),
            Err(e) => Err(format!(
                "{DIRECTIVE} {group}: {option}={n}: cannot look the user up: {e}"
            )),
        },
    }
}

/// The gid `p` names; see [`resolve_uid`].
pub fn resolve_gid(group: &str, option: &str, p: &Principal) -> Result<u32, String> {
    match p {
        Principal::Id(i) => Ok(*i),
        Principal::Name(n) => match nix::unistd::Group::from_name(n) {
            Ok(Some(g)) => Ok(g.gid.as_raw()),
            Ok(None) => Err(format!(
                "{DIRECTIVE} {group}: {option}={n}: there is no group named '{n}'"
            )),
            Err(e) => Err(format!(
                "{DIRECTIVE} {group}: {option}={n}: cannot look the group up: {e}"
            )),
        },
    }
}

/// The numeric ids of a group's `script-user`/`script-group` and `socket-user`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolvedIds {
    /// `script-user`'s uid.
    pub script_uid: Option<u32>,
    /// `script-group`'s gid.
    pub script_gid: Option<u32>,
    /// `socket-user`'s uid.
    pub socket_uid: Option<u32>,
}

/// Looks up the names of `g`'s options (see [`resolve_uid`]).
pub fn resolve(g: &DaemonGroupConfig) -> Result<ResolvedIds, String> {
    let (this, group) = (&g.conn, g.name.as_str());
    let mut ids = ResolvedIds::default();
    match &this.script_owner {
        Some(ScriptOwner::User(p)) => ids.script_uid = Some(resolve_uid(group, "script-user", p)?),
        Some(ScriptOwner::Group(p)) => {
            ids.script_gid = Some(resolve_gid(group, "script-group", p)?)
        }
        None => {}
    }
    if let Some(p) = &this.socket_user {
        let uid = resolve_uid(group, "socket-user", p)?;
        if uid == 0 {
            return Err(format!(
                "{DIRECTIVE} {group}: socket-user={p} is root (uid 0): Apache's children \
                 never serve requests as root"
            ));
        }
        ids.socket_uid = Some(uid);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::daemon_options::ConnOptions;

    fn group(conn: ConnOptions) -> DaemonGroupConfig {
        let mut g = DaemonGroupConfig::parse("g").unwrap();
        g.conn = conn;
        g
    }

    fn parse(words: &[(&str, &str)]) -> Result<ConnOptions, String> {
        let mut o = ConnOptions::default();
        for (k, v) in words {
            assert!(o.parse_option(k, v)?);
        }
        Ok(o)
    }

    #[test]
    fn names_resolve_and_unknown_names_name_the_option() {
        let o = parse(&[("script-group", "root"), ("socket-user", "#4242")]).unwrap();
        let ids = resolve(&group(o)).unwrap();
        assert_eq!((ids.script_gid, ids.socket_uid), (Some(0), Some(4242)));
        let o = parse(&[("script-user", "no-such-user-rswsgi")]).unwrap();
        let e = resolve(&group(o)).unwrap_err();
        assert!(e.contains("script-user=no-such-user-rswsgi"), "{e}");
        let o = parse(&[("socket-user", "no-such-user-rswsgi")]).unwrap();
        assert!(resolve(&group(o)).unwrap_err().contains("socket-user="));
        let o = parse(&[("script-group", "no-such-group-rswsgi")]).unwrap();
        assert!(resolve(&group(o)).unwrap_err().contains("script-group="));
    }
}
