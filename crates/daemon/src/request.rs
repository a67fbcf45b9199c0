//! A request as the daemon keeps it (copied out of its frame) and an owned response head.

use rswsgi_protocol as proto;
use rswsgi_protocol::BodyKind;

/// A request head copied out of its frame: the body kind and the environ pairs.
#[derive(Debug, Clone)]
pub struct Request {
    /// How the request body is delimited.
    pub body: BodyKind,
    /// When the daemon read the request (`mod_wsgi.daemon_start`).
    pub received: std::time::SystemTime,
    data: Vec<u8>,
    /// (name start, name end, value end) offsets into `data`; the value starts at name end.
    spans: Vec<(usize, usize, usize)>,
}

impl Request {
    /// Copies a decoded request head.
    pub fn from_head(head: &proto::RequestHead<'_>) -> Self {
        let mut data = Vec::new();
        let mut spans = Vec::with_capacity(head.environ.len());
        for (name, value) in head.environ {
            let start = data.len();
            data.extend_from_slice(name);
            let mid = data.len();
            data.extend_from_slice(value);
            spans.push((start, mid, data.len()));
        }
        Request {
            body: head.body,
            received: std::time::SystemTime::now(),
            data,
            spans,
        }
    }

    /// The environ pairs, in the order the module sent them.
    pub fn environ(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|&(a, b, c)| (&self.data[a..b], &self.data[b..c]))
    }

    /// The first value of environ entry `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.environ()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// The value of `name` as (lossy) UTF-8 text.
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The time a carrier key (`rswsgi_protocol::carriers`, microseconds since the epoch)
    /// gives, as a duration since the epoch; `None` when absent or not a number.
    pub fn carried_time(&self, key: &str) -> Option<std::time::Duration> {
        let us = std::str::from_utf8(self.get(key)?).ok()?.parse().ok()?;
        Some(std::time::Duration::from_micros(us))
    }

    /// The URL the request was for, for log lines: `REQUEST_URI`, else the script name and
    /// path info.
    pub fn url(&self) -> String {
        self.get_str("REQUEST_URI").unwrap_or_else(|| {
            let mut s = self.get_str("SCRIPT_NAME").unwrap_or_default();
            s.push_str(&self.get_str("PATH_INFO").unwrap_or_default());
            s
        })
    }
}

/// An owned response head: status code, reason phrase and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code (100..=999).
    pub status: u16,
    /// The reason phrase.
    pub reason: Vec<u8>,
    /// Header (name, value) pairs in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}
