//! The `environ` fuzz target's checks: `environ()` from arbitrary CGI names and values,
//! request facts and proxy policy.
//!
//! Input layout, read front to back by [`Input`]: a flags byte (bit 0: trusted proxy headers
//! configured, bit 1: trusted proxies configured, bit 2: the request came over TLS), the
//! eight request facts, the trusted header count and indexes, the trusted proxy count and
//! words, then CGI pairs to the end. A byte string is a length byte and that many bytes; a
//! CGI name byte below 0x80 picks a name with [`name`] instead.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::config::proxy::PROXY_HEADERS;
use crate::config::Subnet;
use crate::environ::{environ, join_cookies, ProxyPolicy, RequestFacts, MOD_WSGI_KEYS};

/// CGI names the builder treats specially, so the fuzzer meets them often; then come the
/// proxy headers ([`PROXY_HEADERS`]), see [`name`].
const NAMES: &[&str] = &[
    "REMOTE_ADDR",
    "HTTP_HOST",
    "HTTP_COOKIE",
    "HTTPS",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REQUEST_URI",
    "REQUEST_METHOD",
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "wsgi.url_scheme",
    "wsgi.input",
    "mod_wsgi.process_group",
    "mod_wsgi.mount_point",
    "SCRIPT_FILENAME",
    "mod_wsgi.request_id",
];

/// The `i`th (modulo their count) of [`NAMES`] followed by [`PROXY_HEADERS`].
fn name(i: usize) -> &'static [u8] {
    let i = i % (NAMES.len() + PROXY_HEADERS.len());
    NAMES
        .get(i)
        .unwrap_or_else(|| &PROXY_HEADERS[i - NAMES.len()])
        .as_bytes()
}

/// The keys `environ()` always sets itself, besides [`MOD_WSGI_KEYS`].
const OWN: [&str; 8] = [
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "REQUEST_METHOD",
    "QUERY_STRING",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "PATH_INFO",
    "wsgi.url_scheme",
];

/// Keys trusted proxy processing may set.
const PROXY_SET: [&str; 8] = [
    "REMOTE_ADDR",
    "HTTP_HOST",
    "HTTPS",
    "SCRIPT_NAME",
    "mod_wsgi.mount_point",
    "SERVER_NAME",
    "SERVER_PORT",
    "HTTP_X_FORWARDED_FOR",
];

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = (self.byte() as usize).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }

    fn name(&mut self) -> &'a [u8] {
        match self.byte() {
            b @ 0..=0x7f => name(b as usize),
            b => {
                let n = ((b & 0x7f) as usize).min(self.0.len());
                let (name, rest) = self.0.split_at(n);
                self.0 = rest;
                name
            }
        }
    }
}

fn first<'v>(pairs: &'v [(&[u8], &'v [u8])], key: impl AsRef<[u8]>) -> Option<&'v [u8]> {
    pairs
        .iter()
        .find(|(k, _)| *k == key.as_ref())
        .map(|(_, v)| *v)
}

/// Whether `key` is one of `names` (byte for byte: CGI names need not be UTF-8).
fn among(names: &[&str], key: &[u8]) -> bool {
    names.iter().any(|n| n.as_bytes() == key)
}

/// The checks; see the module documentation for the input layout.
pub fn check(data: &[u8]) {
    let mut input = Input(data);
    let flags = input.byte();
    let f: [&[u8]; 8] = std::array::from_fn(|_| input.bytes());
    let scheme: &[u8] = if flags & 4 != 0 { b"https" } else { f[6] };
    let facts = RequestFacts {
        script_name: f[0],
        path_info: f[1],
        method: f[2],
        protocol: f[3],
        query: f[4],
        request_uri: f[5],
        scheme,
        process_group: f[7],
        ..Default::default()
    };
    let headers: Vec<String> = (0..input.byte() % 8)
        .map(|_| PROXY_HEADERS[input.byte() as usize % PROXY_HEADERS.len()].to_string())
        .collect();
    let nets: Vec<Subnet> = (0..input.byte() % 4)
        .filter_map(|_| Subnet::parse(&String::from_utf8_lossy(input.bytes())).ok())
        .collect();
    let mut cgi: Vec<(&[u8], &[u8])> = Vec::new();
    while !input.0.is_empty() {
        let name = input.name();
        cgi.push((name, input.bytes()));
    }
    let policy = ProxyPolicy {
        headers: (flags & 1 != 0).then_some(&headers[..]),
        proxies: (flags & 2 != 0).then_some(&nets[..]),
    };
    let env = environ(cgi.iter().copied(), &facts, policy);
    let out: Vec<(&[u8], &[u8])> = env.pairs().collect();
    let count = |key: &[u8]| out.iter().filter(|(k, _)| *k == key).count();
    let get = |key: &str| first(&out, key);

    // What the builder sets is there once, so no value from Apache's table can shadow it
    // (the daemon's dict keeps the last of repeated keys).
    for key in OWN.iter().chain(&MOD_WSGI_KEYS) {
        let n = count(key.as_bytes());
        assert_eq!(n, 1, "{key} appears {n} times");
    }
    for pair @ (k, _) in &out {
        if !cgi.contains(pair) {
            let n = count(k);
            assert_eq!(n, 1, "{} was set, yet appears {n} times", k.escape_ascii());
        }
    }
    let own_facts: [(&str, &[u8]); 8] = [
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        ("SERVER_PROTOCOL", facts.protocol),
        ("REQUEST_METHOD", facts.method),
        ("QUERY_STRING", facts.query),
        ("REQUEST_URI", facts.request_uri),
        ("PATH_INFO", facts.path_info),
        ("mod_wsgi.process_group", facts.process_group),
        ("mod_wsgi.script_name", facts.script_name),
    ];
    for (k, v) in own_facts {
        assert_eq!(get(k), Some(v), "{k}");
    }
    // The keys of the request head's typed fields never travel as pairs, whatever Apache's
    // table holds: the daemon adds them from the fields.
    for k in rswsgi_protocol::meta::KEYS {
        assert_eq!(get(k), None, "{k} travelled as a pair");
    }

    // No key the module owns comes from Apache's table, and nothing appears from nowhere.
    for &(k, _) in &out {
        let known = among(&OWN, k) || among(&MOD_WSGI_KEYS, k) || among(&PROXY_SET, k);
        if k.starts_with(b"wsgi.") || k.starts_with(b"mod_wsgi.") || k == b"PATH_TRANSLATED" {
            assert!(known, "{} passed through", k.escape_ascii());
        }
        assert!(
            known || first(&cgi, k).is_some(),
            "{} from nowhere",
            k.escape_ascii()
        );
    }
    if get("mod_wsgi.mount_point").is_some() {
        assert!(headers.iter().any(|h| h.contains("SCRIPT_NAME")));
    }

    // The scheme.
    let https_var = get("HTTPS").is_some_and(|v| {
        [&b"on"[..], b"true", b"1", b"yes"]
            .iter()
            .any(|t| v.eq_ignore_ascii_case(t))
    });
    let https = scheme.eq_ignore_ascii_case(b"https") || https_var;
    assert_eq!(
        get("wsgi.url_scheme"),
        Some(if https { &b"https"[..] } else { b"http" })
    );

    // Cookies: repeated-header commas become `; `, nothing else changes, and joining twice
    // changes nothing more.
    if let Some(cookie) = get("HTTP_COOKIE") {
        if let Some(joined) = join_cookies(cookie) {
            panic!("HTTP_COOKIE {cookie:?} left to join: {joined:?}");
        }
    }
    if let Some(v) = first(&cgi, "HTTP_COOKIE") {
        check_join(v);
    }

    if let (Some(trusted), Some(nets)) = (policy.headers, policy.proxies) {
        let peer = first(&cgi, "REMOTE_ADDR")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<IpAddr>().ok());
        if !peer.is_some_and(|ip| nets.iter().any(|n| n.contains(ip))) {
            // A peer that is not trusted changes nothing, and its proxy headers are gone.
            for k in [
                "REMOTE_ADDR",
                "HTTP_HOST",
                "HTTPS",
                "SERVER_NAME",
                "SERVER_PORT",
            ] {
                assert_eq!(get(k), first(&cgi, k), "{k} from an untrusted peer");
            }
            assert_eq!(get("SCRIPT_NAME"), Some(facts.script_name));
            for h in trusted {
                assert_eq!(get(h), None, "{h} from an untrusted peer");
            }
        }
    }

    if policy.headers.is_none() {
        // No proxy processing: Apache's table passes through in order, minus what the
        // module owns, with the cookie header joined.
        let want: Vec<(&[u8], Cow<'_, [u8]>)> = cgi
            .iter()
            .filter(|&&(k, _)| {
                !among(&OWN, k)
                    && !k.starts_with(b"wsgi.")
                    && !k.starts_with(b"mod_wsgi.")
                    && k != b"PATH_TRANSLATED"
                    && !rswsgi_protocol::RequestMeta::is_key(k)
            })
            .map(|&(k, v)| (k, Cow::Borrowed(v)))
            .collect();
        let got: Vec<(&[u8], Cow<'_, [u8]>)> = out
            .iter()
            .filter(|&&(k, _)| !among(&OWN, k) && !among(&MOD_WSGI_KEYS, k))
            .map(|&(k, v)| (k, Cow::Borrowed(v)))
            .collect();
        let mut want = want;
        if let Some(i) = want.iter().position(|(k, _)| *k == b"HTTP_COOKIE") {
            if let Some(j) = join_cookies(&want[i].1) {
                // Joined, the header is set, and so appears once.
                want[i].1 = Cow::Owned(j);
                let mut at = 0;
                want.retain(|(k, _)| {
                    at += 1;
                    at <= i + 1 || *k != b"HTTP_COOKIE"
                });
            }
        }
        assert_eq!(got, want);
        assert_eq!(get("SCRIPT_NAME"), Some(facts.script_name));
    }
}

/// `join_cookies` changes only `,` before ` name=` into `;`, and is then done.
fn check_join(v: &[u8]) {
    let Some(j) = join_cookies(v) else {
        return;
    };
    assert_eq!(j.len(), v.len());
    for (i, (a, b)) in v.iter().zip(&j).enumerate() {
        if a != b {
            assert_eq!((*a, *b), (b',', b';'));
            assert_eq!(v.get(i + 1), Some(&b' '));
        }
    }
    assert_eq!(join_cookies(&j), None);
}
