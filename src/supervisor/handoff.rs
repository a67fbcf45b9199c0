//! What one configuration generation hands to the next across a graceful restart.
//!
//! httpd unloads and reloads every DSO module when it restarts, so nothing of ours — statics,
//! callbacks, Rust values — survives from one generation to the next. The listening sockets
//! (kept open so nothing queued on them is lost) and the daemons still finishing their
//! requests are therefore passed as plain text in httpd's process pool, which does survive:
//! one `socket <fd> <path>` or `retiring <pid> <group>` line each, an `inode <fd> <dev> <ino>`
//! line naming the socket file a listening socket was bound to, and the connection secret as
//! `secret <hex>`, and the statistics memfds (`modstats <fd> area` for the module-wide area,
//! `stats <fd> <group>` for each group's, so counters survive the restart; `crate::metrics`)
//! (the secret lives for the whole life of httpd's parent, so that Apache children and
//! daemons of either generation keep recognising each other across a graceful restart; the
//! pool is in this process's memory only, like the secret itself).

use std::ffi::{c_void, CStr, CString};

use super::socket::FileId;
use crate::ffi;

const KEY: &CStr = c"mod_rswsgi:handoff";

/// The state carried across a restart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handoff {
    /// Listening sockets still open in this process: (fd, path, the socket file's identity).
    pub sockets: Vec<(i32, String, Option<FileId>)>,
    /// Daemons of earlier generations that have not exited yet: (pid, group).
    pub retiring: Vec<(i32, String)>,
    /// The connection secret drawn when httpd started.
    pub secret: Option<[u8; rswsgi_protocol::auth::SECRET_LEN]>,
    /// The module-wide statistics memfd (`modstats <fd> area`).
    pub stats_module: Option<i32>,
    /// Each group's statistics memfd: (fd, group) (`stats <fd> <group>`).
    pub stats_groups: Vec<(i32, String)>,
}

impl Handoff {
    /// The text form.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (fd, path, id) in &self.sockets {
            out.push_str(&format!("socket {fd} {path}\n"));
            if let Some((dev, ino)) = id {
                out.push_str(&format!("inode {fd} {dev} {ino}\n"));
            }
        }
        for (pid, group) in &self.retiring {
            out.push_str(&format!("retiring {pid} {group}\n"));
        }
        if let Some(fd) = self.stats_module {
            out.push_str(&format!("modstats {fd} area\n"));
        }
        for (fd, group) in &self.stats_groups {
            out.push_str(&format!("stats {fd} {group}\n"));
        }
        if let Some(secret) = &self.secret {
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            out.push_str(&format!("secret {hex}\n"));
        }
        out
    }

    /// Parses the text form; malformed lines are skipped.
    pub fn decode(text: &str) -> Handoff {
        let mut h = Handoff::default();
        let mut ids = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(hex) = line.strip_prefix("secret ") {
                h.secret = decode_hex(hex);
                continue;
            }
            let mut parts = line.splitn(3, ' ');
            let (Some(kind), Some(n), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(n) = n.parse::<i32>() else { continue };
            match kind {
                "socket" => h.sockets.push((n, rest.to_string(), None)),
                "inode" => {
                    if let Some((dev, ino)) = rest.split_once(' ') {
                        if let (Ok(dev), Ok(ino)) = (dev.parse(), ino.parse()) {
                            ids.insert(n, (dev, ino));
                        }
                    }
                }
                "retiring" => h.retiring.push((n, rest.to_string())),
                "modstats" => h.stats_module = Some(n),
                "stats" => h.stats_groups.push((n, rest.to_string())),
                _ => {}
            }
        }
        for (fd, _, id) in &mut h.sockets {
            *id = ids.get(fd).copied();
        }
        h
    }

    /// The secret, or a fresh one from the OS random source when none was handed over.
    pub fn secret_or_new(&self) -> Result<rswsgi_protocol::Secret, String> {
        let bytes = match self.secret {
            Some(b) => b,
            None => {
                let mut b = [0u8; rswsgi_protocol::auth::SECRET_LEN];
                getrandom::fill(&mut b)
                    .map_err(|e| format!("cannot draw the connection secret: {e}"))?;
                b
            }
        };
        Ok(rswsgi_protocol::Secret::from_bytes(bytes))
    }

    /// Stores the handoff in httpd's process pool for the next generation.
    pub fn store(&self, ppool: *mut ffi::apr_pool_t) {
        let Ok(text) = CString::new(self.encode()) else {
            return;
        };
        // SAFETY: ppool is httpd's live process pool; the copy lives in that pool, and the key
        // is a static string (APR keeps the pointer).
        unsafe {
            let copy = ffi::apr_pstrdup(ppool, text.as_ptr());
            ffi::apr_pool_userdata_set(copy as *const c_void, KEY.as_ptr(), None, ppool);
        }
    }

    /// Takes (and clears) what the previous generation stored.
    pub fn take(ppool: *mut ffi::apr_pool_t) -> Handoff {
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: ppool is httpd's live process pool; the value is NULL or a NUL-terminated
        // string stored by `store`.
        let text = unsafe {
            ffi::apr_pool_userdata_get(&mut data, KEY.as_ptr(), ppool);
            if data.is_null() {
                return Handoff::default();
            }
            let text = CStr::from_ptr(data as *const std::os::raw::c_char)
                .to_string_lossy()
                .into_owned();
            ffi::apr_pool_userdata_set(std::ptr::null(), KEY.as_ptr(), None, ppool);
            text
        };
        Handoff::decode(&text)
    }
}

fn decode_hex(hex: &str) -> Option<[u8; rswsgi_protocol::auth::SECRET_LEN]> {
    let mut out = [0u8; rswsgi_protocol::auth::SECRET_LEN];
    if hex.len() != out.len() * 2 || !hex.is_ascii() {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
