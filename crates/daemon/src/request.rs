//! A request as the daemon keeps it (copied out of its frame) and an owned response head.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use rswsgi_protocol as proto;
use rswsgi_protocol::BodyKind;

/// A request head copied out of its frame: the body kind, the typed fields and the environ
/// pairs.
#[derive(Debug, Clone)]
pub struct Request {
    /// How the request body is delimited.
    pub body: BodyKind,
    /// When the daemon read the request (`mod_wsgi.daemon_start`).
    pub received: std::time::SystemTime,
    /// The head's typed fields.
    pub meta: Meta,
    data: Vec<u8>,
    /// (name start, name end, value end) offsets into `data`; the value starts at name end.
    spans: Vec<(usize, usize, usize)>,
}

/// The typed fields of a request head (`rswsgi_protocol::RequestMeta`), owned.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The script the request names (`SCRIPT_FILENAME`); `None` when it names none.
    pub script: Option<PathBuf>,
    /// The callable's name (`mod_wsgi.callable_object`), as (lossy) UTF-8; empty: the
    /// group's default.
    pub callable: String,
    /// Apache's log id for the request (`mod_wsgi.request_id`), as (lossy) UTF-8.
    pub request_id: String,
    /// When Apache read the request, as a duration since the epoch; `None` when not known.
    pub request_start: Option<Duration>,
}

impl Request {
    /// Copies a decoded request head. The environ is the module's pairs, except any named
    /// like a typed field (`rswsgi_protocol::meta::KEYS`: the field is the only source), then
    /// the pairs the typed fields stand for, which is what the application sees.
    pub fn from_head(head: &proto::RequestHead<'_>) -> Self {
        let m = &head.meta;
        let mut start_text = String::new();
        let typed = m.environ(&mut start_text);
        // The typed fields' own keys and the start's digits come to well under 192 bytes.
        let typed_len = m.script.len()
            + m.callable.len()
            + m.request_id.len()
            + m.application_group.len()
            + 192;
        let mut data = Vec::with_capacity(head.environ.encoded_len() + typed_len);
        let mut spans = Vec::with_capacity(head.environ.len() + typed.len());
        let module = head
            .environ
            .into_iter()
            .filter(|(name, _)| !proto::RequestMeta::is_key(name));
        for (name, value) in module.chain(typed.map(|(k, v)| (k.as_bytes(), v))) {
            let start = data.len();
            data.extend_from_slice(name);
            let mid = data.len();
            data.extend_from_slice(value);
            spans.push((start, mid, data.len()));
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let meta = Meta {
            script: (!m.script.is_empty())
                .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(m.script))),
            callable: text(m.callable),
            request_id: text(m.request_id),
            request_start: (m.request_start != 0).then(|| Duration::from_micros(m.request_start)),
        };
        Request {
            body: head.body,
            received: std::time::SystemTime::now(),
            meta,
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

    /// How many environ pairs there are.
    pub fn environ_len(&self) -> usize {
        self.spans.len()
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

    /// Appends what [`Request::url`] returns to `out`, allocating only when `out` must grow
    /// or the URL is not UTF-8.
    pub fn push_url(&self, out: &mut String) {
        let lossy = |v: &[u8], out: &mut String| out.push_str(&String::from_utf8_lossy(v));
        match self.get("REQUEST_URI") {
            Some(uri) => lossy(uri, out),
            None => {
                lossy(self.get("SCRIPT_NAME").unwrap_or_default(), out);
                lossy(self.get("PATH_INFO").unwrap_or_default(), out);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(meta: &proto::RequestMeta<'_>, pairs: &[(&[u8], &[u8])]) -> Request {
        let mut wire = Vec::new();
        proto::encode_request_head(&mut wire, 1, BodyKind::None, meta, pairs.iter().copied())
            .expect("encode");
        match proto::decode(&wire).expect("decode") {
            Some((proto::Frame::RequestHead(h), _)) => Request::from_head(&h),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn typed_fields_become_the_environ_keys_and_pairs_cannot_shadow_them() {
        let meta = proto::RequestMeta {
            script: b"/srv/app.wsgi",
            callable: b"app",
            request_id: b"id-1",
            request_start: 1_700_000_000_000_001,
            application_group: b"",
        };
        let forged: [(&[u8], &[u8]); 3] = [
            (b"SCRIPT_FILENAME", b"/etc/passwd"),
            (b"REQUEST_METHOD", b"GET"),
            (b"mod_wsgi.x-request_start_us", b"1"),
        ];
        let req = decoded(&meta, &forged);
        let names: Vec<&[u8]> = req.environ().map(|(k, _)| k).collect();
        let mut want: Vec<&[u8]> = vec![b"REQUEST_METHOD"];
        want.extend(proto::meta::KEYS.map(str::as_bytes));
        assert_eq!(names, want);
        assert_eq!(req.get("SCRIPT_FILENAME"), Some(&b"/srv/app.wsgi"[..]));
        assert_eq!(req.get("mod_wsgi.application_group"), Some(&b""[..]));
        assert_eq!(
            req.get(proto::carriers::REQUEST_START_US),
            Some(&b"1700000000000001"[..])
        );
        assert_eq!(req.meta.script, Some(PathBuf::from("/srv/app.wsgi")));
        assert_eq!(
            (&*req.meta.callable, &*req.meta.request_id),
            ("app", "id-1")
        );
        assert_eq!(
            req.meta.request_start,
            Some(Duration::from_micros(1_700_000_000_000_001))
        );
        // Empty fields: no script, an unknown start.
        let req = decoded(&proto::RequestMeta::default(), &[]);
        assert_eq!(req.get("mod_wsgi.request_id"), Some(&b""[..]));
        assert_eq!((req.meta.script, req.meta.request_start), (None, None));
    }
}
