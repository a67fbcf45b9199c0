//! The `WSGIDaemonProcess` options about the group's connections, its worker threads and
//! whose scripts it may load: `script-user`/`script-group`, `socket-user`,
//! `send-buffer-size`/`receive-buffer-size`, `stack-size`, `switch-interval`, `slow-requests` and
//! `response-socket-timeout` (the module's, `dispatch/exchange.rs`). Parsed here
//! with mod_wsgi's rules (`wsgi_daemon.c`); names are looked up (`crate::daemon_ids`) at
//! `check_config` and again when the group starts, and the daemon gets the numeric ids.

use super::daemon_group::Principal;

const DIRECTIVE: &str = "WSGIDaemonProcess";

/// mod_wsgi's smallest socket buffer size (0 keeps the system's default): the daemon's.
pub const MIN_SOCKET_BUFFER: u32 = rswsgi_protocol::daemon_spec::MIN_SOCKET_BUFFER;
/// The largest value mod_wsgi's `atoi` takes for a size: the daemon's.
const MAX_SIZE: u64 = rswsgi_protocol::daemon_spec::MAX_SIZE as u64;
/// The longest `switch-interval` accepted: CPython silently turns larger values into 0.
const MAX_SWITCH_INTERVAL: f64 = 1e9;

/// Whose scripts the group may load (`script-user=` or `script-group=`; mod_wsgi allows only
/// one of the two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOwner {
    /// `script-user=`: the script and its directory must belong to this user and be writable
    /// by nobody else.
    User(Principal),
    /// `script-group=`: the script and its directory must belong to this group and not be
    /// writable by others.
    Group(Principal),
}

/// The options of this file, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnOptions {
    /// `script-user=` / `script-group=`.
    pub script_owner: Option<ScriptOwner>,
    /// `socket-user=`: who the socket belongs to and connections must come from, instead of
    /// Apache's `User`.
    pub socket_user: Option<Principal>,
    /// `send-buffer-size=`: `SO_SNDBUF` of the daemon's connections (0 or absent: default).
    pub send_buffer_size: Option<u32>,
    /// `receive-buffer-size=`: `SO_RCVBUF` of the daemon's connections.
    pub receive_buffer_size: Option<u32>,
    /// `stack-size=`: bytes of stack for each worker thread.
    pub stack_size: Option<u64>,
    /// `switch-interval=`: seconds, as written (checked to be a positive number).
    pub switch_interval: Option<String>,
    /// `slow-requests=` (else `WSGISlowRequests`): log requests slower than this many
    /// seconds, as written (checked to be a positive number).
    pub slow_requests: Option<String>,
    /// `response-socket-timeout=`: seconds a write of the response to the client may take
    /// (absent or 0: `socket-timeout`, else Apache's `Timeout`).
    pub response_socket_timeout: Option<u64>,
}

fn size(option: &str, value: &str, min: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= min && n <= MAX_SIZE => Ok(n),
        _ => Err(format!(
            "{DIRECTIVE}: {option}={value} is not valid: expected a number of bytes from {min} \
             to {MAX_SIZE}"
        )),
    }
}

fn buffer_size(option: &str, value: &str) -> Result<Option<u32>, String> {
    match value.parse::<u32>() {
        Ok(0) => Ok(None),
        Ok(n) if n >= MIN_SOCKET_BUFFER && u64::from(n) <= MAX_SIZE => Ok(Some(n)),
        _ => Err(format!(
            "{DIRECTIVE}: {option}={value} is not valid: a socket buffer size must be at least \
             {MIN_SOCKET_BUFFER} bytes (and at most {MAX_SIZE}), or 0 for the system's default"
        )),
    }
}

fn switch_interval(option: &str, value: &str) -> Result<String, String> {
    check_switch_interval(value)
        .map_err(|why| format!("{DIRECTIVE}: {option}={value} is not valid: {why}"))
}

/// Checks a slow-request threshold (`slow-requests=`, `WSGISlowRequests`): a number of seconds
/// of at least 0 (mod_wsgi's rule; 0 logs every request), as written.
pub fn check_slow_requests(value: &str) -> Result<String, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if (0.0..=MAX_SWITCH_INTERVAL).contains(&s) => Ok(value.trim().to_string()),
        _ => Err(format!(
            "expected a number of seconds of at least 0 (such as 2.5), at most \
             {MAX_SWITCH_INTERVAL:e}"
        )),
    }
}

/// Checks a switch interval (`switch-interval=`, `WSGISwitchInterval`): a positive number of
/// seconds, as written.
pub fn check_switch_interval(value: &str) -> Result<String, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= MAX_SWITCH_INTERVAL => Ok(value.trim().to_string()),
        _ => Err(format!(
            "expected a positive number of seconds (such as 0.005), at most \
             {MAX_SWITCH_INTERVAL:e}"
        )),
    }
}

impl ConnOptions {
    /// Takes `option=value` when it is one of this file's options: `Ok(true)` when taken,
    /// `Ok(false)` when the option is another one.
    pub fn parse_option(&mut self, option: &str, value: &str) -> Result<bool, String> {
        match option {
            "script-user" | "script-group" => {
                let p = Principal::parse(option, value)?;
                let owner = if option == "script-user" {
                    ScriptOwner::User(p)
                } else {
                    ScriptOwner::Group(p)
                };
                if let Some(old) = &self.script_owner {
                    if std::mem::discriminant(old) != std::mem::discriminant(&owner) {
                        return Err(format!(
                            "{DIRECTIVE}: only one of script-user= and script-group= may be given"
                        ));
                    }
                }
                self.script_owner = Some(owner);
            }
            "socket-user" => {
                let p = Principal::parse(option, value)?;
                if matches!(p, Principal::Id(0)) || value == "root" {
                    return Err(format!(
                        "{DIRECTIVE}: {option}={value} is root: Apache's children never serve \
                         requests as root, so name the user they serve requests as"
                    ));
                }
                self.socket_user = Some(p);
            }
            "send-buffer-size" => self.send_buffer_size = buffer_size(option, value)?,
            "receive-buffer-size" => self.receive_buffer_size = buffer_size(option, value)?,
            "stack-size" => self.stack_size = Some(size(option, value, 1)?),
            "switch-interval" => self.switch_interval = Some(switch_interval(option, value)?),
            "slow-requests" => {
                self.slow_requests =
                    Some(check_slow_requests(value).map_err(|why| {
                        format!("{DIRECTIVE}: {option}={value} is not valid: {why}")
                    })?)
            }
            "response-socket-timeout" => {
                let secs = value.parse::<u64>().map_err(|_| {
                    format!(
                        "{DIRECTIVE}: {option}={value} is not valid: expected a whole number of \
                         seconds (0: socket-timeout)"
                    )
                })?;
                self.response_socket_timeout = (secs > 0).then_some(secs);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[(&str, &str)]) -> Result<ConnOptions, String> {
        let mut o = ConnOptions::default();
        for (k, v) in words {
            assert!(o.parse_option(k, v)?, "{k} is one of these options");
        }
        Ok(o)
    }

    #[test]
    fn values_and_minimums_as_mod_wsgi() {
        let o = parse(&[
            ("send-buffer-size", "512"),
            ("receive-buffer-size", "0"),
            ("stack-size", "524288"),
            ("switch-interval", "0.002"),
            ("slow-requests", "2.5"),
            ("response-socket-timeout", "7"),
            ("script-user", "#1000"),
            ("socket-user", "www-data"),
        ])
        .unwrap();
        assert_eq!(
            (o.send_buffer_size, o.receive_buffer_size),
            (Some(512), None)
        );
        assert_eq!(o.stack_size, Some(524_288));
        assert_eq!(o.switch_interval.as_deref(), Some("0.002"));
        assert_eq!(o.slow_requests.as_deref(), Some("2.5"));
        assert_eq!(
            parse(&[("slow-requests", "0")])
                .unwrap()
                .slow_requests
                .as_deref(),
            Some("0")
        );
        assert_eq!(o.response_socket_timeout, Some(7));
        assert_eq!(o.script_owner, Some(ScriptOwner::User(Principal::Id(1000))));
        assert_eq!(o.socket_user, Some(Principal::Name("www-data".into())));
        assert!(!ConnOptions::default().parse_option("threads", "3").unwrap());
        for (k, v) in [
            ("send-buffer-size", "511"),
            ("receive-buffer-size", "1"),
            ("send-buffer-size", "big"),
            ("receive-buffer-size", "4294967295"),
            ("stack-size", "0"),
            ("stack-size", "-1"),
            ("switch-interval", "0"),
            ("switch-interval", "-0.5"),
            ("switch-interval", "nan"),
            ("switch-interval", "inf"),
            ("switch-interval", "1e20"),
            ("slow-requests", "-1"),
            ("slow-requests", "soon"),
            ("response-socket-timeout", "soon"),
            ("response-socket-timeout", "-1"),
            ("script-user", ""),
            ("script-group", "#x"),
            ("socket-user", "root"),
            ("socket-user", "#0"),
        ] {
            let e = parse(&[(k, v)]).unwrap_err();
            assert!(e.contains(&format!("{k}={v}")), "{e}");
        }
        let e = parse(&[("send-buffer-size", "100")]).unwrap_err();
        assert!(e.contains("at least 512 bytes"), "{e}");
    }

    #[test]
    fn script_user_and_script_group_exclude_each_other() {
        let e = parse(&[("script-user", "a"), ("script-group", "b")]).unwrap_err();
        assert!(
            e.contains("only one of script-user= and script-group="),
            "{e}"
        );
        let o = parse(&[("script-group", "a"), ("script-group", "#5")]).unwrap();
        assert_eq!(o.script_owner, Some(ScriptOwner::Group(Principal::Id(5))));
    }
}
