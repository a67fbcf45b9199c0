//! The environ sent to the daemon: Apache's CGI variables with the WSGI mount applied,
//! mod_wsgi's extra keys added, trusted proxy headers applied (`WSGITrustedProxyHeaders`),
//! and repeated `Cookie` headers joined with `; `. Pure: the handler supplies the values.
//!
//! The keys of the request head's typed fields (`rswsgi_protocol::meta::KEYS`:
//! `SCRIPT_FILENAME`, `mod_wsgi.application_group`, `mod_wsgi.callable_object`,
//! `mod_wsgi.request_id`, `mod_wsgi.x-request_start_us`) are not in it: they travel as those
//! fields, and the daemon adds the keys.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::config::Subnet;

/// Request facts that are not in Apache's CGI table, or that the mount overrides.
#[derive(Default)]
pub struct RequestFacts<'a> {
    /// `SCRIPT_NAME`: the mount point, `""` at the root.
    pub script_name: &'a [u8],
    /// `PATH_INFO`: the rest of the decoded path.
    pub path_info: &'a [u8],
    /// `REQUEST_METHOD` (after `WSGIMapHEADToGET`).
    pub method: &'a [u8],
    /// `SERVER_PROTOCOL`.
    pub protocol: &'a [u8],
    /// `QUERY_STRING` (may be empty).
    pub query: &'a [u8],
    /// `REQUEST_URI`: the request target as sent.
    pub request_uri: &'a [u8],
    /// The request's own scheme (`https` on a TLS connection).
    pub scheme: &'a [u8],
    /// `mod_wsgi.process_group`.
    pub process_group: &'a [u8],
    /// `mod_wsgi.x-queue_start_us`: when this module began handing the request to the
    /// daemon group, in microseconds since the epoch (`mod_wsgi.queue_start`).
    pub queue_start: &'a [u8],
    /// `mod_wsgi.request_handler`: the request's Apache handler (`wsgi-script`).
    pub handler: &'a [u8],
    /// `mod_wsgi.listener_host`: the host name of the address the connection came in on, as
    /// Apache's `Listen` gave it (often empty).
    pub listener_host: &'a [u8],
    /// `mod_wsgi.listener_port`: that address's port.
    pub listener_port: &'a [u8],
    /// `mod_wsgi.server_pid`: the pid of the Apache child serving the request.
    pub server_pid: &'a [u8],
    /// `mod_wsgi.connection_id`: the connection's log id, when a module gave it one.
    pub connection_id: Option<&'a [u8]>,
    /// `mod_wsgi.pass_authorization`: `1` under `WSGIPassAuthorization On`, else `0`.
    pub pass_authorization: &'a [u8],
    /// `mod_wsgi.handler_script`: the `WSGIHandlerScript` serving the request (the daemon
    /// loads it instead of `SCRIPT_FILENAME`), or empty.
    pub handler_script: &'a [u8],
}

/// The `mod_wsgi.*` keys the module sets (besides `mod_wsgi.mount_point`, which trusted
/// proxy processing may add, and `mod_wsgi.connection_id`, present only when there is one;
/// the typed fields' keys are the daemon's to add). Keys whose second part starts with `x-`
/// carry values to the daemon, which turns them into the application's typed keys
/// (`mod_wsgi.queue_start`).
pub const MOD_WSGI_KEYS: [&str; 10] = [
    "mod_wsgi.process_group",
    "mod_wsgi.script_name",
    "mod_wsgi.path_info",
    "mod_wsgi.request_handler",
    "mod_wsgi.handler_script",
    "mod_wsgi.listener_host",
    "mod_wsgi.listener_port",
    "mod_wsgi.server_pid",
    "mod_wsgi.pass_authorization",
    rswsgi_protocol::carriers::QUEUE_START_US,
];

/// `WSGITrustedProxyHeaders` and `WSGITrustedProxies` as they apply to a request.
#[derive(Default, Clone, Copy)]
pub struct ProxyPolicy<'a> {
    /// The trusted proxy headers, as CGI names; `None`: no proxy processing at all.
    pub headers: Option<&'a [String]>,
    /// The peers trusted to send them; `None`: every peer.
    pub proxies: Option<&'a [Subnet]>,
}

/// Keys the module sets itself, or that travel as the request head's typed fields
/// (`SCRIPT_FILENAME`); same-named entries of Apache's table are dropped.
fn overridden(key: &[u8]) -> bool {
    matches!(
        key,
        b"SCRIPT_NAME" | b"PATH_INFO" | b"PATH_TRANSLATED" | b"QUERY_STRING" | b"REQUEST_URI"
    ) || key.starts_with(b"wsgi.")
        || key.starts_with(b"mod_wsgi.")
        || rswsgi_protocol::RequestMeta::is_key(key)
}

/// One environ entry: name and value, borrowed from Apache's table or owned.
type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// An environ under construction: ordered name/value byte strings.
#[derive(Debug, Default)]
pub struct Environ<'a> {
    pairs: Vec<Pair<'a>>,
}

impl<'a> Environ<'a> {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| k.as_ref() == key.as_bytes())
            .map(|(_, v)| v.as_ref())
    }

    /// Replaces `key`'s value (or appends it). Later entries of `key` go, so `key` appears
    /// once: the daemon's dict keeps the last of repeated keys, and a value the module sets
    /// must not be shadowed by a same-named one from Apache's table.
    pub fn set(&mut self, key: &'a str, value: impl Into<Cow<'a, [u8]>>) {
        let value = value.into();
        let key = key.as_bytes();
        match self.pairs.iter().position(|(k, _)| k.as_ref() == key) {
            Some(i) => {
                self.pairs[i].1 = value;
                if self.pairs[i + 1..].iter().any(|(k, _)| k.as_ref() == key) {
                    let mut at = 0;
                    self.pairs.retain(|(k, _)| {
                        at += 1;
                        at <= i + 1 || k.as_ref() != key
                    });
                }
            }
            None => self.pairs.push((Cow::Borrowed(key), value)),
        }
    }

    /// Removes `key`.
    pub fn unset(&mut self, key: &str) {
        self.pairs.retain(|(k, _)| k.as_ref() != key.as_bytes());
    }

    /// The entries, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

/// The full environ: `cgi` (Apache's table, in order) filtered, the facts, then trusted proxy
/// headers, `Cookie` joining and `wsgi.url_scheme`.
pub fn environ<'a>(
    cgi: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    f: &RequestFacts<'a>,
    proxy: ProxyPolicy<'_>,
) -> Environ<'a> {
    let mut env = Environ {
        pairs: cgi
            .filter(|(k, _)| !overridden(k))
            .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
            .collect(),
    };
    let cgi: [(&str, &'a [u8]); 7] = [
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        ("SERVER_PROTOCOL", f.protocol),
        ("REQUEST_METHOD", f.method),
        ("QUERY_STRING", f.query),
        ("REQUEST_URI", f.request_uri),
        ("SCRIPT_NAME", f.script_name),
        ("PATH_INFO", f.path_info),
    ];
    let mod_wsgi: [&'a [u8]; 10] = [
        f.process_group,
        f.script_name,
        f.path_info,
        f.handler,
        f.handler_script,
        f.listener_host,
        f.listener_port,
        f.server_pid,
        f.pass_authorization,
        f.queue_start,
    ];
    for (k, v) in cgi
        .into_iter()
        .chain(MOD_WSGI_KEYS.into_iter().zip(mod_wsgi))
    {
        env.set(k, v);
    }
    if let Some(id) = f.connection_id {
        env.set("mod_wsgi.connection_id", id);
    }
    apply_proxy_headers(&mut env, proxy);
    if let Some(cookie) = env.get("HTTP_COOKIE") {
        if let Some(joined) = join_cookies(cookie) {
            env.set("HTTP_COOKIE", joined);
        }
    }
    let https = f.scheme.eq_ignore_ascii_case(b"https")
        || env
            .get("HTTPS")
            .is_some_and(|v| truthy(v) || v.eq_ignore_ascii_case(b"on"));
    env.set(
        "wsgi.url_scheme",
        if https { &b"https"[..] } else { b"http" },
    );
    env
}

fn truthy(v: &[u8]) -> bool {
    [&b"on"[..], b"true", b"1", b"yes"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

fn falsy(v: &[u8]) -> bool {
    [&b"off"[..], b"false", b"0"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

const CLIENT: [&str; 3] = ["HTTP_X_FORWARDED_FOR", "HTTP_X_CLIENT_IP", "HTTP_X_REAL_IP"];
const HOST: [&str; 2] = ["HTTP_X_FORWARDED_HOST", "HTTP_X_HOST"];
const SCRIPT: [&str; 2] = ["HTTP_X_SCRIPT_NAME", "HTTP_X_FORWARDED_SCRIPT_NAME"];
const SCHEME_NAME: [&str; 3] = [
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_SCHEME",
    "HTTP_X_SCHEME",
];
const SCHEME_FLAG: [&str; 3] = [
    "HTTP_X_FORWARDED_HTTPS",
    "HTTP_X_FORWARDED_SSL",
    "HTTP_X_HTTPS",
];

/// mod_wsgi's trusted proxy processing. With no trusted headers configured nothing changes.
/// Otherwise, for each category (client address, host, scheme, script name) that some
/// trusted header belongs to: from a trusted peer the first trusted header present sets
/// `REMOTE_ADDR` / `HTTP_HOST` / `HTTPS` / `SCRIPT_NAME` (and `X-Forwarded-Server` and
/// `X-Forwarded-Port` set `SERVER_NAME` and `SERVER_PORT`); every other header of that
/// category is removed, so a client cannot slip a synonym past the proxy. From a peer that
/// is not trusted, every header of those categories is removed.
fn apply_proxy_headers(env: &mut Environ<'_>, policy: ProxyPolicy<'_>) {
    let Some(trusted) = policy.headers else {
        return;
    };
    let peer_trusted = match policy.proxies {
        None => true,
        Some(nets) => peer_ip(env).is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
    };
    let mut used: Vec<&str> = Vec::new();
    let mut categories: Vec<&[&str]> = Vec::new();
    for name in trusted {
        let category: Option<&[&str]> = [&CLIENT[..], &HOST, &SCRIPT, &SCHEME_NAME, &SCHEME_FLAG]
            .into_iter()
            .find(|c| c.contains(&name.as_str()));
        if let Some(c) = category {
            // The two scheme lists are one category.
            let c: &[&str] = if SCHEME_FLAG.contains(&c[0]) {
                &SCHEME_NAME
            } else {
                c
            };
            if !categories.contains(&c) {
                categories.push(c);
            }
        }
        if !peer_trusted {
            continue;
        }
        let Some(value) = env.get(name).map(<[u8]>::to_vec) else {
            continue;
        };
        let applies_to = |c: &[&str]| c.contains(&name.as_str());
        let first_of = |c: &[&str], used: &[&str]| !used.iter().any(|u| c.contains(u));
        match name.as_str() {
            "HTTP_X_FORWARDED_FOR" if first_of(&CLIENT, &used) => {
                forwarded_for(env, &value, policy.proxies);
                used.push("HTTP_X_FORWARDED_FOR");
            }
            n if applies_to(&CLIENT) && first_of(&CLIENT, &used) => {
                env.set("REMOTE_ADDR", value);
                used.push(CLIENT.iter().find(|c| **c == n).expect("in CLIENT"));
            }
            n if applies_to(&HOST) && first_of(&HOST, &used) => {
                env.set("HTTP_HOST", value);
                used.push(HOST.iter().find(|c| **c == n).expect("in HOST"));
            }
            n if applies_to(&SCRIPT) && first_of(&SCRIPT, &used) => {
                env.set("mod_wsgi.mount_point", value.clone());
                env.set("SCRIPT_NAME", value);
                used.push(SCRIPT.iter().find(|c| **c == n).expect("in SCRIPT"));
            }
            n if (applies_to(&SCHEME_NAME) || applies_to(&SCHEME_FLAG))
                && first_of(&SCHEME_NAME, &used)
                && first_of(&SCHEME_FLAG, &used) =>
            {
                let https = if applies_to(&SCHEME_NAME) {
                    if value.eq_ignore_ascii_case(b"https") {
                        Some(true)
                    } else if value.eq_ignore_ascii_case(b"http") {
                        Some(false)
                    } else {
                        None
                    }
                } else if truthy(&value) {
                    Some(true)
                } else if falsy(&value) {
                    Some(false)
                } else {
                    None
                };
                match https {
                    Some(true) => env.set("HTTPS", &b"1"[..]),
                    Some(false) => env.unset("HTTPS"),
                    None => {}
                }
                used.push(
                    SCHEME_NAME
                        .iter()
                        .chain(&SCHEME_FLAG)
                        .find(|c| **c == n)
                        .expect("a scheme header"),
                );
            }
            "HTTP_X_FORWARDED_SERVER" => env.set("SERVER_NAME", value),
            "HTTP_X_FORWARDED_PORT" => env.set("SERVER_PORT", value),
            _ => {}
        }
    }
    for category in categories {
        let all: Vec<&str> = if category == SCHEME_NAME {
            SCHEME_NAME.iter().chain(&SCHEME_FLAG).copied().collect()
        } else {
            category.to_vec()
        };
        for name in all {
            if !used.contains(&name) {
                env.unset(name);
            }
        }
    }
    if !peer_trusted {
        for name in ["HTTP_X_FORWARDED_SERVER", "HTTP_X_FORWARDED_PORT"] {
            if trusted.iter().any(|t| t == name) {
                env.unset(name);
            }
        }
    }
}

fn peer_ip(env: &Environ<'_>) -> Option<IpAddr> {
    std::str::from_utf8(env.get("REMOTE_ADDR")?)
        .ok()?
        .parse()
        .ok()
}

/// `X-Forwarded-For` from a trusted peer: without `WSGITrustedProxies` the first address is
/// the client. With it, the client is the address just before the run of trusted proxies at
/// the end of the list; the header keeps only the part from the client on.
fn forwarded_for(env: &mut Environ<'_>, value: &[u8], proxies: Option<&[Subnet]>) {
    let text = String::from_utf8_lossy(value);
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let Some(last) = items.last() else {
        return;
    };
    let Some(nets) = proxies else {
        env.set("REMOTE_ADDR", items[0].as_bytes().to_vec());
        return;
    };
    let mut first_trusted = None;
    for (i, item) in items.iter().enumerate().rev() {
        match item.parse::<IpAddr>() {
            Ok(ip) if nets.iter().any(|n| n.contains(ip)) => first_trusted = Some(i),
            _ => break,
        }
    }
    let (client, rest) = match first_trusted {
        Some(i) => {
            let c = i.saturating_sub(1);
            (c, items[c..].join(", "))
        }
        None => (items.len() - 1, last.to_string()),
    };
    env.set("REMOTE_ADDR", items[client].as_bytes().to_vec());
    env.set("HTTP_X_FORWARDED_FOR", rest.into_bytes());
}

/// Apache joins a repeated request header with `, `; for `Cookie` the separator must be `; `.
/// Rewrites each `, ` that is followed by a `name=` cookie pair (a comma cannot occur in a
/// cookie value, RFC 6265), leaving commas inside non-conforming values alone. `None` when
/// there is nothing to change.
pub fn join_cookies(value: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i + 1 < value.len() {
        if value[i] == b',' && value[i + 1] == b' ' {
            let rest = &value[i + 2..];
            let name = rest
                .iter()
                .take_while(|&&c| rswsgi_protocol::http::is_token_char(c))
                .count();
            if name > 0 && rest.get(name) == Some(&b'=') {
                let o = out.get_or_insert_with(|| value.to_vec());
                o[i] = b';';
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RequestFacts<'static> {
        RequestFacts {
            script_name: b"/sub",
            path_info: b"/a b",
            method: b"GET",
            protocol: b"HTTP/1.1",
            query: b"x=1",
            request_uri: b"/sub/a%20b?x=1",
            scheme: b"http",
            process_group: b"g",
            queue_start: b"1700000000000000",
            ..Default::default()
        }
    }

    fn build<'a>(cgi: &'a [(&'a [u8], &'a [u8])], proxy: ProxyPolicy<'_>) -> Environ<'a> {
        environ(cgi.iter().copied(), &facts(), proxy)
    }

    fn get(env: &Environ<'_>, k: &str) -> Option<String> {
        env.get(k).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn mount_overrides_cgi_values() {
        let cgi: Vec<(&[u8], &[u8])> = vec![
            (b"HTTP_HOST", b"h"),
            (b"SCRIPT_NAME", b"/wrong"),
            (b"PATH_INFO", b"/wrong"),
            (b"wsgi.input", b"spoof"),
            (b"SCRIPT_FILENAME", b"/srv/app.wsgi"),
            (b"mod_wsgi.request_id", b"spoof"),
        ];
        let env = build(&cgi, ProxyPolicy::default());
        assert_eq!(get(&env, "SCRIPT_NAME").as_deref(), Some("/sub"));
        assert_eq!(get(&env, "PATH_INFO").as_deref(), Some("/a b"));
        assert_eq!(get(&env, "HTTP_HOST").as_deref(), Some("h"));
        assert!(get(&env, "wsgi.input").is_none());
        // The typed fields' keys travel as those fields, never as pairs.
        for typed in rswsgi_protocol::meta::KEYS {
            assert!(get(&env, typed).is_none(), "{typed}");
        }
        assert_eq!(get(&env, "wsgi.url_scheme").as_deref(), Some("http"));
        assert_eq!(env.pairs().filter(|(k, _)| *k == b"SCRIPT_NAME").count(), 1);
    }

    #[test]
    fn cookies_are_joined_with_semicolons() {
        assert_eq!(join_cookies(b"a=1, b=2").as_deref(), Some(&b"a=1; b=2"[..]));
        assert_eq!(
            join_cookies(b"a=1; b=2, c=3").as_deref(),
            Some(&b"a=1; b=2; c=3"[..])
        );
        assert_eq!(join_cookies(b"a=1; b=2"), None);
        // Commas inside (non-conforming) values are left alone.
        assert_eq!(join_cookies(b"d=Wed, 09 Jun"), None);
        assert_eq!(join_cookies(br#"j={"x":1, "y":2}"#), None);
        let cgi: Vec<(&[u8], &[u8])> = vec![(b"HTTP_COOKIE", b"a=1, b=2")];
        let env = build(&cgi, ProxyPolicy::default());
        assert_eq!(get(&env, "HTTP_COOKIE").as_deref(), Some("a=1; b=2"));
    }

    const PROXIED: [(&[u8], &[u8]); 8] = [
        (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"HTTP_HOST", b"internal:8000"),
        (b"HTTP_X_FORWARDED_FOR", b"203.0.113.9, 10.0.0.2"),
        (b"HTTP_X_REAL_IP", b"198.51.100.1"),
        (b"HTTP_X_FORWARDED_HOST", b"www.example.com"),
        (b"HTTP_X_HOST", b"spoof.example.com"),
        (b"HTTP_X_FORWARDED_PROTO", b"https"),
        (b"HTTP_X_FORWARDED_SSL", b"off"),
    ];

    fn headers() -> Vec<String> {
        [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_FORWARDED_PROTO",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn trusted_peer_headers_apply_and_synonyms_go() {
        let h = headers();
        let env = build(
            &PROXIED,
            ProxyPolicy {
                headers: Some(&h),
                proxies: None,
            },
        );
        assert_eq!(get(&env, "REMOTE_ADDR").as_deref(), Some("203.0.113.9"));
        assert_eq!(get(&env, "HTTP_HOST").as_deref(), Some("www.example.com"));
        assert_eq!(get(&env, "wsgi.url_scheme").as_deref(), Some("https"));
        for gone in ["HTTP_X_REAL_IP", "HTTP_X_HOST", "HTTP_X_FORWARDED_SSL"] {
            assert_eq!(get(&env, gone), None, "{gone}");
        }
        assert!(get(&env, "HTTP_X_FORWARDED_FOR").is_some());
    }

    #[test]
    fn trusted_proxy_list_walks_forwarded_for_from_the_end() {
        let h = headers();
        let nets = [
            Subnet::parse("127.0.0.1").unwrap(),
            Subnet::parse("10.0.0.0/8").unwrap(),
        ];
        let env = build(
            &PROXIED,
            ProxyPolicy {
                headers: Some(&h),
                proxies: Some(&nets),
            },
        );
        assert_eq!(get(&env, "REMOTE_ADDR").as_deref(), Some("203.0.113.9"));
        assert_eq!(
            get(&env, "HTTP_X_FORWARDED_FOR").as_deref(),
            Some("203.0.113.9, 10.0.0.2")
        );
        let mut env = Environ::default();
        forwarded_for(&mut env, b"1.1.1.1, 2.2.2.2", Some(&nets));
        assert_eq!(get(&env, "REMOTE_ADDR").as_deref(), Some("2.2.2.2"));
    }

    #[test]
    fn untrusted_peer_headers_are_stripped() {
        let h = headers();
        let nets = [Subnet::parse("10.0.0.0/8").unwrap()];
        let env = build(
            &PROXIED,
            ProxyPolicy {
                headers: Some(&h),
                proxies: Some(&nets),
            },
        );
        assert_eq!(get(&env, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
        assert_eq!(get(&env, "HTTP_HOST").as_deref(), Some("internal:8000"));
        assert_eq!(get(&env, "wsgi.url_scheme").as_deref(), Some("http"));
        for gone in [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_REAL_IP",
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_HOST",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_SSL",
        ] {
            assert_eq!(get(&env, gone), None, "{gone}");
        }
    }

    #[test]
    fn no_policy_changes_nothing() {
        let env = build(&PROXIED, ProxyPolicy::default());
        assert_eq!(get(&env, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
        assert!(get(&env, "HTTP_X_REAL_IP").is_some());
        assert_eq!(get(&env, "wsgi.url_scheme").as_deref(), Some("http"));
    }

    #[test]
    fn what_the_module_sets_appears_once() {
        // Apache's table repeating a key the module sets must not leave the table's value
        // behind: the daemon's dict keeps the last of repeated keys (found by the environ
        // fuzz target).
        let cgi: Vec<(&[u8], &[u8])> = vec![
            (b"REQUEST_METHOD", b"HEAD"),
            (b"REQUEST_METHOD", b"HEAD"),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"HTTP_X_FORWARDED_FOR", b"203.0.113.9"),
        ];
        let h = headers();
        let env = build(
            &cgi,
            ProxyPolicy {
                headers: Some(&h),
                proxies: None,
            },
        );
        for (key, want) in [("REQUEST_METHOD", "GET"), ("REMOTE_ADDR", "203.0.113.9")] {
            let values: Vec<_> = env.pairs().filter(|(k, _)| *k == key.as_bytes()).collect();
            assert_eq!(values.len(), 1, "{key}: {values:?}");
            assert_eq!(get(&env, key).as_deref(), Some(want));
        }
    }
}
