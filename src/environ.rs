//! The environ sent to the daemon: Apache's CGI variables with the WSGI mount applied and
//! mod_wsgi's extra keys added. Pure: the handler supplies the values.

/// Request facts that are not in Apache's CGI table, or that the mount overrides.
pub struct RequestFacts<'a> {
    /// `SCRIPT_NAME`: the mount point, `""` at the root.
    pub script_name: &'a [u8],
    /// `PATH_INFO`: the rest of the decoded path.
    pub path_info: &'a [u8],
    /// `REQUEST_METHOD`.
    pub method: &'a [u8],
    /// `SERVER_PROTOCOL`.
    pub protocol: &'a [u8],
    /// `QUERY_STRING` (may be empty).
    pub query: &'a [u8],
    /// `REQUEST_URI`: the request target as sent.
    pub request_uri: &'a [u8],
    /// `wsgi.url_scheme`.
    pub scheme: &'a [u8],
    /// `mod_wsgi.process_group`.
    pub process_group: &'a [u8],
    /// `mod_wsgi.application_group`.
    pub application_group: &'a [u8],
    /// `mod_wsgi.callable_object`.
    pub callable: &'a [u8],
    /// `mod_wsgi.request_id`: Apache's log id for the request.
    pub request_id: &'a [u8],
}

/// Keys the module sets itself; same-named entries of Apache's table are dropped.
fn overridden(key: &[u8]) -> bool {
    matches!(
        key,
        b"SCRIPT_NAME" | b"PATH_INFO" | b"PATH_TRANSLATED" | b"QUERY_STRING" | b"REQUEST_URI"
    ) || key.starts_with(b"wsgi.")
        || key.starts_with(b"mod_wsgi.")
}

/// The full environ: `cgi` (Apache's table, in order) filtered, then the facts.
pub fn environ<'a>(
    cgi: impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a,
    f: &'a RequestFacts<'a>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
    let own: [(&[u8], &[u8]); 13] = [
        (b"GATEWAY_INTERFACE", b"CGI/1.1"),
        (b"SERVER_PROTOCOL", f.protocol),
        (b"REQUEST_METHOD", f.method),
        (b"QUERY_STRING", f.query),
        (b"REQUEST_URI", f.request_uri),
        (b"SCRIPT_NAME", f.script_name),
        (b"PATH_INFO", f.path_info),
        (b"wsgi.url_scheme", f.scheme),
        (b"mod_wsgi.process_group", f.process_group),
        (b"mod_wsgi.application_group", f.application_group),
        (b"mod_wsgi.callable_object", f.callable),
        (b"mod_wsgi.script_name", f.script_name),
        (b"mod_wsgi.request_id", f.request_id),
    ];
    cgi.filter(|(k, _)| !overridden(k)).chain(own)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_overrides_cgi_values() {
        let facts = RequestFacts {
            script_name: b"/sub",
            path_info: b"/a b",
            method: b"GET",
            protocol: b"HTTP/1.1",
            query: b"x=1",
            request_uri: b"/sub/a%20b?x=1",
            scheme: b"http",
            process_group: b"g",
            application_group: b"",
            callable: b"application",
            request_id: b"abc",
        };
        let cgi: Vec<(&[u8], &[u8])> = vec![
            (b"HTTP_HOST", b"h"),
            (b"SCRIPT_NAME", b"/wrong"),
            (b"PATH_INFO", b"/wrong"),
            (b"wsgi.input", b"spoof"),
        ];
        let env: Vec<_> = environ(cgi.into_iter(), &facts).collect();
        let get = |k: &[u8]| {
            env.iter()
                .filter(|(n, _)| *n == k)
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
        };
        assert_eq!(get(b"SCRIPT_NAME"), [b"/sub"]);
        assert_eq!(get(b"PATH_INFO"), [b"/a b"]);
        assert_eq!(get(b"HTTP_HOST"), [b"h"]);
        assert!(get(b"wsgi.input").is_empty());
        assert_eq!(get(b"mod_wsgi.request_id"), [b"abc"]);
    }
}
