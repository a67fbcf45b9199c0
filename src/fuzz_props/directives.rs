//! The `directives` fuzz target's checks: every parser of `src/config/` on arbitrary text.
//!
//! Input layout: `selector, text…` (text not UTF-8 becomes U+FFFD, as a configuration file
//! read by httpd can hold any bytes but the directives take `str`).

use std::net::IpAddr;

use crate::config::daemon_options::ConnOptions;
use crate::config::{
    parse_proxy_headers, parse_trusted_proxies, socket_path, DaemonGroupConfig, HeadMapping,
    Principal, ScriptAlias, ScriptOwner, Subnet,
};

/// Runs the check `data[0]` selects on the rest of `data`.
pub fn check(data: &[u8]) {
    let [selector, text @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    match selector % 6 {
        0 => check_words(&text),
        1 => check_daemon_process(&text),
        2 => check_script_alias(&text),
        3 => check_proxies(&text),
        4 => {
            let (url, uri) = text.split_once('\n').unwrap_or((&text, "/"));
            check_split(url, uri);
        }
        _ => check_small(&text),
    }
}

/// Whether a word must be quoted to come back from `split_words` as itself.
fn needs_quotes(w: &str) -> bool {
    w.is_empty() || w.starts_with(['"', '\'']) || w.chars().any(char::is_whitespace)
}

/// Writes `words` as directive arguments that `split_words` splits back into `words`, or
/// `None` if that cannot be done. A quoted word cannot end in `\` (the `\` would escape the
/// closing quote) unless it is the last word and its quote is left open, which
/// `split_words` reads to the end of the line.
pub fn render(words: &[String]) -> Option<String> {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !needs_quotes(w) {
            out.push_str(w);
            continue;
        }
        out.push('"');
        out.push_str(&w.replace('"', "\\\""));
        if w.ends_with('\\') {
            if i + 1 != words.len() {
                return None;
            }
        } else {
            out.push('"');
        }
    }
    Some(out)
}

/// `split_words`: no word of an unquoted run holds whitespace, and the words rendered back
/// into a line (quoting where needed) split into the same words.
pub fn check_words(text: &str) {
    let words = crate::config::words::split_words(text);
    let line = render(&words).expect("only the last word can end in an open quote");
    assert_eq!(
        crate::config::words::split_words(&line),
        words,
        "{text:?} rendered as {line:?}"
    );
}

/// The options of `c` written back as `option=value` words.
fn conn_words(c: &ConnOptions) -> Vec<String> {
    let mut words = Vec::new();
    match &c.script_owner {
        Some(ScriptOwner::User(p)) => words.push(format!("script-user={p}")),
        Some(ScriptOwner::Group(p)) => words.push(format!("script-group={p}")),
        None => {}
    }
    if let Some(p) = &c.socket_user {
        words.push(format!("socket-user={p}"));
    }
    let numbers = [
        ("send-buffer-size", c.send_buffer_size.map(u64::from)),
        ("receive-buffer-size", c.receive_buffer_size.map(u64::from)),
        ("stack-size", c.stack_size),
        ("response-socket-timeout", c.response_socket_timeout),
    ];
    for (o, v) in numbers {
        if let Some(v) = v {
            words.push(format!("{o}={v}"));
        }
    }
    if let Some(s) = &c.switch_interval {
        words.push(format!("switch-interval={s}"));
    }
    words
}

/// A `WSGIDaemonProcess` line that parses to `g`: every field that is not at its default
/// written back as its option (a name that must end in an open quote came alone).
fn daemon_process_line(g: &DaemonGroupConfig) -> Option<String> {
    let mut words = vec![g.name.clone()];
    let mut opt = |o: &str, v: String| words.push(format!("{o}={v}"));
    let mut unless = |o: &str, v: u64, default: u64| {
        if v != default {
            opt(o, v.to_string());
        }
    };
    unless("processes", g.processes.into(), 1);
    unless("threads", g.threads.into(), 15);
    unless("connect-timeout", g.connect_timeout.into(), 15);
    let backlog = rswsgi_protocol::daemon_spec::DEFAULT_LISTEN_BACKLOG;
    unless("listen-backlog", g.listen_backlog.into(), backlog as u64);
    unless(
        "shutdown-timeout",
        g.shutdown_timeout,
        crate::config::DEFAULT_SHUTDOWN_TIMEOUT,
    );
    let principal = |p: &Principal| p.to_string();
    if let Some(u) = &g.user {
        opt("user", principal(u));
    }
    if let Some(u) = &g.group {
        opt("group", principal(u));
    }
    for (o, v) in [
        ("python-home", &g.python_home),
        ("python-path", &g.python_path),
        ("home", &g.home),
        ("lang", &g.lang),
        ("locale", &g.locale),
    ] {
        if let Some(v) = v {
            opt(o, v.clone());
        }
    }
    if let Some(t) = g.socket_timeout {
        opt("socket-timeout", t.to_string());
    }
    if let Some(m) = g.umask {
        opt("umask", format!("0{m:o}"));
    }
    for (o, v) in &g.limits {
        opt(o, v.to_string());
    }
    words.extend(conn_words(&g.conn));
    words.extend(g.ignored.iter().cloned());
    // `display-name` is stored with `%{GROUP}` expanded, and there is no way to write a
    // literal `%{GROUP}`: it is left out when the expansion left one.
    if let Some(d) = g.display_name.as_ref().filter(|d| !d.contains("%{GROUP}")) {
        words.push(format!("display-name={d}"));
    }
    // The one word that can only be written with its quote left open goes last.
    let last = words
        .iter()
        .skip(1)
        .position(|w| needs_quotes(w) && w.ends_with('\\'));
    if let Some(i) = last {
        let w = words.remove(i + 1);
        words.push(w);
    }
    render(&words)
}

/// `WSGIDaemonProcess`: a parsed group written back as a directive line parses to the same
/// group; counts are at least 1 and the superuser is refused.
pub fn check_daemon_process(text: &str) {
    let Ok(g) = DaemonGroupConfig::parse(text) else {
        return;
    };
    assert!(g.processes >= 1 && g.threads >= 1 && g.connect_timeout >= 1);
    assert!(g.listen_backlog >= 1);
    assert!(!matches!(&g.user, Some(Principal::Id(0))));
    assert!(!matches!(&g.user, Some(Principal::Name(n)) if n == "root"));
    assert!(!matches!(g.umask, Some(m) if m > 0o777));
    assert!(!g.name.contains('='));
    let line = daemon_process_line(&g).expect("a group can be written back");
    let again = DaemonGroupConfig::parse(&line)
        .unwrap_or_else(|e| panic!("{text:?} written back as {line:?} fails: {e}"));
    let mut want = g.clone();
    if want
        .display_name
        .as_ref()
        .is_some_and(|d| d.contains("%{GROUP}"))
    {
        want.display_name = None;
    }
    assert_eq!(again, want, "{text:?} written back as {line:?}");
}

/// `WSGIScriptAlias`: a parsed mount written back parses to the same mount, and it splits
/// its own URL (and anything below it) into a SCRIPT_NAME and PATH_INFO.
pub fn check_script_alias(text: &str) {
    let Ok(a) = ScriptAlias::parse(text) else {
        return;
    };
    assert!(a.url.starts_with('/'));
    let mut words = vec![a.url.clone(), a.script.clone()];
    for (o, v) in [
        ("process-group", &a.process_group),
        ("application-group", &a.application_group),
        ("callable-object", &a.callable),
    ] {
        if let Some(v) = v {
            assert!(!v.is_empty());
            words.push(format!("{o}={v}"));
        }
    }
    // The one word that can only be written with its quote left open goes last (options
    // may come in any order; the URL and script must stay first).
    if let Some(i) = words
        .iter()
        .skip(2)
        .position(|w| needs_quotes(w) && w.ends_with('\\'))
    {
        let w = words.remove(i + 2);
        words.push(w);
    }
    let line = render(&words).expect("the open-quoted word is last");
    assert_eq!(
        ScriptAlias::parse(&line).as_ref(),
        Ok(&a),
        "{text:?} as {line:?}"
    );
    check_split(&a.url, &a.url);
    check_split(&a.url, &format!("{}/x", a.url));
}

/// Collapses runs of `/` into one.
fn collapse(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// `ScriptAlias::split`: SCRIPT_NAME + PATH_INFO is the URI, SCRIPT_NAME is the mount's URL
/// up to runs of `/` and never ends in `/`, PATH_INFO is empty or starts with `/`; a URI
/// that starts with the URL at a segment boundary always matches.
pub fn check_split(url: &str, uri: &str) {
    if !url.starts_with('/') {
        return;
    }
    let a = ScriptAlias {
        url: url.to_string(),
        script: "/s.py".into(),
        process_group: None,
        application_group: None,
        callable: None,
        directory: true,
        regex: 0,
    };
    let at_boundary = uri
        .strip_prefix(url)
        .is_some_and(|rest| url.ends_with('/') || rest.is_empty() || rest.starts_with('/'));
    let Some((script_name, path_info)) = a.split(uri.as_bytes()) else {
        assert!(!at_boundary, "{uri:?} is below {url:?} but did not match");
        return;
    };
    // A UTF-8 URI splits at a '/' or at its end, so both parts are UTF-8 again.
    let text = |b| std::str::from_utf8(b).expect("a UTF-8 URI splits into UTF-8 parts");
    let (script_name, path_info) = (text(script_name), text(path_info));
    assert_eq!(format!("{script_name}{path_info}"), uri);
    // As a directory mount: the file is one segment (never `.` or `..`), and the new split
    // still joins back to the URI.
    if let Some(t) = a.in_directory(script_name.as_bytes(), path_info.as_bytes()) {
        assert!(!t.file.is_empty() && !t.file.contains(&b'/'), "{t:?}");
        assert!(t.file != b"." && t.file != b"..", "{t:?}");
        let joined = [t.script_name.as_slice(), t.path_info.as_slice()].concat();
        assert_eq!(joined, uri.as_bytes());
    }
    assert!(!script_name.ends_with('/'), "{url:?} {uri:?}");
    assert!(path_info.is_empty() || path_info.starts_with('/'));
    assert_eq!(collapse(script_name), collapse(url).trim_end_matches('/'));
}

/// `WSGITrustedProxies`: each subnet written as a plain address contains that address, and
/// one written as `ADDR/N` contains `ADDR`. `WSGITrustedProxyHeaders`: every name becomes a
/// known CGI proxy header.
pub fn check_proxies(text: &str) {
    if let Ok(nets) = parse_trusted_proxies(text) {
        let words = crate::config::words::split_words(text);
        assert_eq!(nets.len(), words.len());
        for (net, w) in nets.iter().zip(&words) {
            let addr = w.split_once('/').map_or(w.as_str(), |(a, _)| a);
            if let Ok(ip) = addr.parse::<IpAddr>() {
                assert!(net.contains(ip), "{w:?} does not contain {ip}");
            }
            assert_eq!(Subnet::parse(w).as_ref(), Ok(net));
        }
    }
    if let Ok(headers) = parse_proxy_headers(text) {
        assert_eq!(headers.len(), crate::config::words::split_words(text).len());
        assert!(headers
            .iter()
            .all(|h| crate::config::proxy::PROXY_HEADERS.contains(&h.as_str())));
    }
}

/// `WSGIMapHEADToGET` and the socket path of a group named `text`.
pub fn check_small(text: &str) {
    if HeadMapping::parse(text).is_ok() {
        assert!(["on", "off", "auto"].contains(&text.to_ascii_lowercase().as_str()));
    }
    let p = socket_path("/run/wsgi", 7, text);
    let middle = p
        .strip_prefix("/run/wsgi.7.")
        .and_then(|m| m.strip_suffix(".sock"))
        .expect("prefix and suffix");
    let (readable, hash) = middle.rsplit_once('.').expect("a hash");
    assert_eq!(hash.len(), 8);
    assert!(readable.chars().count() <= 24);
    assert!(readable
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    assert_eq!(p, socket_path("/run/wsgi", 7, text), "stable");
}
