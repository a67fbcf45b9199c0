//! Helpers for the PEP 3333 / HTTP semantics tests against `tests/apps/wsgi_semantics.py`.

use std::collections::HashMap;
use std::time::Duration;

use super::http::Response;
use super::procs;
use super::server::{Builder, TestServer};

/// The semantics app.
pub const APP: &str = "tests/apps/wsgi_semantics.py";

/// `<Location>` prefixes with their own configuration; the app routes on the last segment.
pub const SITE: &[&str] = &[
    "<LocationMatch \"/chunked/\">\n  WSGIChunkedRequest On\n</LocationMatch>",
    "<Location /limited>\n  WSGIChunkedRequest On\n  LimitRequestBody 100000\n</Location>",
    "<Location /auth>\n  WSGIPassAuthorization On\n</Location>",
    "<Location /off>\n  WSGIMapHEADToGET Off\n</Location>",
    "<Location /on>\n  WSGIMapHEADToGET On\n</Location>",
    "<Location /deflate>\n  SetOutputFilter DEFLATE\n</Location>",
    "<Location /deflate-off>\n  SetOutputFilter DEFLATE\n  WSGIMapHEADToGET Off\n</Location>",
];

/// `LoadModule` for Apache's module `name` (`deflate`, `ssl` ...) unless it is loaded already,
/// from the modules directory the platform uses.
pub fn load_module(name: &str) -> String {
    let dir = rswsgi_express::find_modules_dir(None).expect("Apache's modules directory");
    format!(
        "<IfModule !{name}_module>\n  LoadModule {name}_module {}/mod_{name}.so\n</IfModule>",
        dir.display()
    )
}

/// A server for the semantics app with [`SITE`] and one daemon process (the app keeps
/// per-process state that tests read back).
pub fn builder() -> Builder {
    SITE.iter()
        .fold(
            TestServer::builder(APP)
                .processes(1)
                .threads(4)
                .directive(&load_module("deflate")),
            |b, d| b.directive(d),
        )
        .ready_path("/environ")
}

/// One environ entry as the app reports it: Python type name and `ascii()` of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub ty: String,
    pub repr: String,
}

/// The parsed `/environ` answer.
#[derive(Debug)]
pub struct Env(pub HashMap<String, Value>);

impl Env {
    /// The entry `key`, if present.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.0.get(key).cloned()
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }
}

/// Parses the `/environ` answer.
pub fn environ(resp: &Response) -> Env {
    assert_eq!(resp.status, 200, "{resp:?}");
    Env(resp
        .text()
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            let (k, ty, repr) = (parts.next()?, parts.next()?, parts.next()?);
            Some((
                k.to_owned(),
                Value {
                    ty: ty.to_owned(),
                    repr: repr.to_owned(),
                },
            ))
        })
        .collect())
}

/// The `ascii()` form of a Python `str` that contains no quote or backslash.
pub fn py_str(s: &str) -> String {
    format!("'{s}'")
}

/// The events the app recorded under `key`, waiting (bounded) for one that starts with
/// `wait_for` if given.
pub fn events(srv: &TestServer, key: &str, wait_for: Option<&str>) -> Vec<String> {
    let path = match wait_for {
        Some(w) => format!("/events?key={key}&wait_for={}", w.replace(' ', "+")),
        None => format!("/events?key={key}"),
    };
    let resp = srv.get(&path);
    assert_eq!(resp.status, 200, "{resp:?}");
    resp.text().lines().map(str::to_owned).collect()
}

/// Polls the error log until `pred` holds for it (bounded), returning the log.
pub fn wait_log(srv: &TestServer, pred: impl Fn(&str) -> bool) -> String {
    let mut log = String::new();
    procs::wait_until(Duration::from_secs(10), || {
        log = srv.root.read_error_log();
        pred(&log)
    });
    log
}

/// Deterministic pseudo-random bytes (xorshift).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
