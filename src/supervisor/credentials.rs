//! Who a daemon group runs as, resolved in httpd's parent before any fork.

use nix::unistd::{getgrouplist, Gid, Group, Uid, User};
use rswsgi_protocol::Code;
use tracing::warn;

use super::spawn::Credentials;
use crate::config::{DaemonGroupConfig, Principal};
use crate::ffi;

/// The uid and gid of Apache's children (`User`/`Group`).
pub fn apache_child_ids() -> (Uid, Gid) {
    // SAFETY: ap_unixd_config is written by mod_unixd while the configuration is read, before
    // post_config, and only read afterwards.
    let c = unsafe { &*std::ptr::addr_of!(ffi::ap_unixd_config) };
    (Uid::from_raw(c.user_id), Gid::from_raw(c.group_id))
}

/// Checks that the daemon user can reach and execute the daemon binary, so a bad install is
/// one clear log line instead of a daemon that dies at exec.
pub fn check_can_exec(exe: &str, c: &Credentials) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let who = crate::access::Who {
        name: c.user.clone(),
        uid: c.uid.as_raw(),
        gids: std::iter::once(c.gid.as_raw())
            .chain(c.groups.iter().map(|g| g.as_raw()))
            .collect(),
    };
    let path = std::path::Path::new(exe);
    if let Some(dir) = path.parent() {
        crate::access::check_searchable(dir, &who).map_err(|e| {
            format!(
                "user {} cannot reach the daemon binary {exe}: {e}",
                who.name
            )
        })?;
    }
    let m = std::fs::metadata(path)
        .map_err(|e| format!("cannot inspect the daemon binary {exe}: {e}"))?;
    if !crate::access::permits(&who, m.uid(), m.gid(), m.mode(), 1) {
        return Err(format!(
            "user {} may not execute the daemon binary {exe} (mode {:04o})",
            who.name,
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Apache's child user, with its groups, for access checks.
pub fn apache_child() -> crate::access::Who {
    let (uid, gid) = apache_child_ids();
    who(uid, gid)
}

/// The user `uid` (with `gid` and the user's supplementary groups), for access checks.
fn who(uid: Uid, gid: Gid) -> crate::access::Who {
    let user = User::from_uid(uid).ok().flatten();
    let name = user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| format!("#{uid}"));
    let mut gids = vec![gid.as_raw()];
    if let Some(u) = &user {
        if let Ok(c) = std::ffi::CString::new(u.name.as_str()) {
            if let Ok(groups) = getgrouplist(&c, gid) {
                gids.extend(groups.iter().map(|g| g.as_raw()));
            }
        }
    }
    crate::access::Who {
        name,
        uid: uid.as_raw(),
        gids,
    }
}

/// Who a group's socket belongs to and who may connect to it: its `socket-user` (with that
/// user's primary group for the access check), else Apache's `User`. The socket file's
/// group is Apache's `Group` either way.
pub fn socket_owner(g: &DaemonGroupConfig) -> Result<crate::access::Who, String> {
    match crate::daemon_ids::resolve(g)?.socket_uid {
        Some(uid) => {
            let uid = Uid::from_raw(uid);
            let gid = User::from_uid(uid)
                .ok()
                .flatten()
                .map_or(apache_child_ids().1, |u| u.gid);
            Ok(who(uid, gid))
        }
        None => Ok(apache_child()),
    }
}

fn lookup_user(p: &Principal) -> Result<(String, Uid, Option<User>), String> {
    let found = match p {
        Principal::Name(n) => User::from_name(n),
        Principal::Id(i) => User::from_uid(Uid::from_raw(*i)),
    }
    .map_err(|e| format!("cannot look up user {p}: {e}"))?;
    match (p, found) {
        (_, Some(u)) => Ok((u.name.clone(), u.uid, Some(u))),
        (Principal::Id(i), None) => Ok((format!("#{i}"), Uid::from_raw(*i), None)),
        (Principal::Name(n), None) => Err(format!("user '{n}' does not exist")),
    }
}

fn lookup_group(p: &Principal) -> Result<Gid, String> {
    match p {
        Principal::Id(i) => Ok(Gid::from_raw(*i)),
        Principal::Name(n) => Group::from_name(n)
            .map_err(|e| format!("cannot look up group {n}: {e}"))?
            .map(|g| g.gid)
            .ok_or_else(|| format!("group '{n}' does not exist")),
    }
}

/// The identity the group's daemons switch to, or `None` when httpd is not root (the daemons
/// then keep httpd's own identity).
pub fn resolve(g: &DaemonGroupConfig) -> Result<Option<Credentials>, String> {
    if !nix::unistd::geteuid().is_root() {
        if let Some(u) = &g.user {
            let me = User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name);
            if me.as_deref() != Some(&u.to_string()) {
                warn!(
                    "{}: WSGIDaemonProcess {}: user={u} ignored: httpd is not running as root",
                    Code::UserIgnored,
                    g.name
                );
            }
        }
        return Ok(None);
    }
    let (apache_uid, apache_gid) = apache_child_ids();
    let (name, uid, user) = match &g.user {
        Some(p) => lookup_user(p)?,
        None => lookup_user(&Principal::Id(apache_uid.as_raw()))?,
    };
    if uid.is_root() {
        return Err(format!(
            "user {name} is root (uid 0): daemon processes must not run as root"
        ));
    }
    let gid = match (&g.group, &g.user, &user) {
        (Some(p), _, _) => lookup_group(p)?,
        (None, Some(_), Some(u)) => u.gid,
        _ => apache_gid,
    };
    let mut groups = match &user {
        Some(u) => {
            let cname =
                std::ffi::CString::new(u.name.as_str()).map_err(|_| "bad user name".to_string())?;
            getgrouplist(&cname, gid)
                .map_err(|e| format!("cannot list the groups of {name}: {e}"))?
        }
        None => vec![gid],
    };
    // supplementary-groups=: added to the user's own (the root group is refused when parsed).
    for p in &g.supplementary_groups {
        let extra = lookup_group(p)?;
        if extra.as_raw() == 0 {
            return Err(format!(
                "supplementary-groups={p} is the root group: daemon processes must not have it"
            ));
        }
        if !groups.contains(&extra) {
            groups.push(extra);
        }
    }
    Ok(Some(Credentials {
        user: name,
        uid,
        gid,
        groups,
    }))
}

/// The daemon's environment: httpd's, with `HOME`, `USER` and `LOGNAME` of the daemon user.
pub fn daemon_env(creds: Option<&Credentials>) -> Vec<String> {
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    if let Some(c) = creds {
        let home = User::from_uid(c.uid)
            .ok()
            .flatten()
            .map(|u| u.dir.display().to_string())
            .unwrap_or_else(|| "/".into());
        env.retain(|(k, _)| !matches!(k.as_str(), "HOME" | "USER" | "LOGNAME"));
        env.extend([
            ("HOME".into(), home),
            ("USER".into(), c.user.clone()),
            ("LOGNAME".into(), c.user.clone()),
        ]);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}
