//! The checks PEP 3333 asks for on the status line and headers an application passes to
//! `start_response`, as pure functions over `str` (no Python), so they can be fuzzed on
//! their own (`fuzz/fuzz_targets/response_head.rs`). `response.rs` turns their `Err`
//! message into a `ValueError`.

/// `s` as latin-1 bytes; `None` when it has a character past U+00FF. The message for that
/// case is made only then, by the caller.
fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    if s.is_ascii() {
        return Some(s.as_bytes().to_vec());
    }
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn not_latin1(what: &str, s: &str) -> String {
    format!("{what} {s:?} is not latin-1 encodable")
}

/// Parses `"NNN reason"`: three digits, a space, then a reason phrase (possibly empty) of
/// latin-1 text without control characters. A 1xx status cannot be a WSGI response.
pub fn parse_status(status: &str) -> Result<(u16, Vec<u8>), String> {
    let bad = |why: &str| format!("invalid status {status:?}: {why}");
    let b = status.as_bytes();
    if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_digit) || b[3] != b' ' {
        return Err(bad("expected three digits, a space and a reason phrase"));
    }
    let code: u16 = status[..3].parse().map_err(|_| bad("not a number"))?;
    if code < 200 {
        return Err(bad("status codes below 200 cannot be a final response"));
    }
    let reason = &status[4..];
    if reason.chars().any(char::is_control) {
        return Err(bad("the reason phrase contains a control character"));
    }
    latin1_bytes(reason)
        .map(|r| (code, r))
        .ok_or_else(|| not_latin1("status", reason))
}

/// Hop-by-hop headers (RFC 9110) and `Proxy-*`: they describe a connection, which is the
/// server's business; PEP 3333 forbids them in an application's response.
pub fn is_hop_by_hop(name: &str) -> bool {
    rswsgi_protocol::is_hop_by_hop(name.as_bytes())
}

/// Checks a header: a token name that is neither hop-by-hop nor `Status`, and a latin-1 value
/// without control characters (a horizontal tab is allowed).
pub fn check_header(name: &str, value: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    if !rswsgi_protocol::http::is_token(name.as_bytes()) {
        return Err(format!("invalid header name {name:?}: not an HTTP token"));
    }
    if is_hop_by_hop(name) {
        return Err(format!(
            "hop-by-hop header {name:?} is not allowed in a WSGI response (PEP 3333)"
        ));
    }
    if rswsgi_protocol::is_status_header(name.as_bytes()) {
        return Err(format!(
            "the Status header cannot be used in a WSGI response: the status is the first \
             argument of start_response(), not a header (value: {value:?})"
        ));
    }
    // A control character is ASCII, and UTF-8 puts no ASCII byte inside another character.
    if let Some(&c) = value
        .as_bytes()
        .iter()
        .find(|&&c| c != b'\t' && (c < b' ' || c == 0x7f))
    {
        return Err(format!(
            "header {name} has a value with the control character {:?}",
            char::from(c)
        ));
    }
    let value =
        latin1_bytes(value).ok_or_else(|| not_latin1(&format!("value of header {name}"), value))?;
    Ok((name.as_bytes().to_vec(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_takes_any_name() {
        // A multi-byte character across byte 6 used to panic (`name[..6]` is not a char
        // boundary); found by the response_head fuzz target.
        assert!(!is_hop_by_hop("proxy\u{e9}"));
        assert!(is_hop_by_hop("Proxy-\u{e9}"));
        assert!(!is_hop_by_hop("\u{e9}\u{e9}\u{e9}"));
    }

    #[test]
    fn status_is_not_a_header() {
        for status in ["Status", "status", "STATUS"] {
            let err = check_header(status, "200 OK").unwrap_err();
            assert!(err.contains("Status header cannot be used"), "{err}");
        }
        assert!(check_header("X-Status", "1").is_ok());
        assert!(check_header("Statuses", "1").is_ok());
    }
}
