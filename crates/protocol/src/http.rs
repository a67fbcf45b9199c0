//! HTTP rules both peers apply to a response head: what a header name may be, which headers
//! an application may not send, and how a `Content-Length` value is read. One copy, so the
//! module and the daemon cannot disagree.

/// True for an RFC 9110 `tchar`: the bytes an HTTP token (a header name, say) is made of.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// True for an RFC 9110 token: one or more [`is_token_char`] bytes.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&c| is_token_char(c))
}

/// True for a response header that describes the connection, not the response: RFC 9110's
/// hop-by-hop fields and every `Proxy-*` header. PEP 3333 forbids them in an application's
/// response; the daemon refuses them from Python and the module from any daemon.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const FIELDS: [&[u8]; 6] = [
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"trailer",
    ];
    FIELDS.iter().any(|h| name.eq_ignore_ascii_case(h))
        || name.len() >= 6 && name[..6].eq_ignore_ascii_case(b"proxy-")
}

/// True for `Status`: CGI's way of giving the status, never a WSGI response header (the status
/// is `start_response`'s first argument; wsgiref.validate refuses the header). The daemon
/// refuses it from Python and the module from any daemon.
pub fn is_status_header(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"status")
}

/// The length a `Content-Length` value declares, `None` when it is not one.
///
/// The syntax is the one the daemon has always taken (Rust's `u64` parse of the UTF-8 text,
/// trimmed of whitespace): decimal digits, optionally preceded by `+`, with any whitespace
/// around them (Unicode whitespace included), up to `u64::MAX`. Nothing else: no `-`, no
/// inner spaces, no list (`5, 5`), no empty value.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_chars() {
        let all: Vec<u8> = (0..=255u8).filter(|&c| is_token_char(c)).collect();
        let mut want: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .collect();
        want.extend_from_slice(b"!#$%&'*+-.^_`|~");
        want.sort_unstable();
        assert_eq!(all, want);
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"X-Ok"));
        assert!(is_token(b"!#$%&'*+-.^_`|~09azAZ"));
        for bad in [
            &b""[..],
            b"X Bad",
            b"X:Bad",
            b"X\tB",
            b"(x)",
            b"\xe9",
            b"a\"b",
            b"a/b",
        ] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop() {
        for h in [
            &b"Connection"[..],
            b"keep-alive",
            b"Transfer-Encoding",
            b"UPGRADE",
            b"TE",
            b"Trailer",
            b"Proxy-Authenticate",
            b"proxy-",
            b"Proxy-\xc3\xa9",
        ] {
            assert!(is_hop_by_hop(h), "{h:?}");
        }
        for h in [
            &b""[..],
            b"proxy",
            b"Proxyx-a",
            b"Connections",
            b"TEs",
            b"X-Upgrade",
        ] {
            assert!(!is_hop_by_hop(h), "{h:?}");
        }
    }

    #[test]
    fn status_header() {
        assert!(is_status_header(b"Status"));
        assert!(is_status_header(b"STATUS"));
        assert!(!is_status_header(b"X-Status"));
        assert!(!is_status_header(b"Statuses"));
    }

    #[test]
    fn content_length() {
        for (v, n) in [
            (&b"0"[..], 0),
            (b"13", 13),
            (b"007", 7),
            (b"+5", 5),
            (b" 5\t", 5),
            (b"\r\n5 ", 5),
            ("\u{a0}5".as_bytes(), 5),
            (b"18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_content_length(v), Some(n), "{v:?}");
        }
        for v in [
            &b""[..],
            b" ",
            b"-1",
            b"-0",
            b"++5",
            b"5 5",
            b"5,5",
            b"0x10",
            b"1e3",
            b"5.0",
            b"18446744073709551616",
            b"\xa05",
            b"\xff",
        ] {
            assert_eq!(parse_content_length(v), None, "{v:?}");
        }
    }
}
