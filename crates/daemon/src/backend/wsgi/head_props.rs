//! The properties the `response_head` fuzz target checks, shared (by `#[path]`) between the
//! target and the corpus replay test below, so a corpus file is held to exactly what the
//! fuzzer held it to. Each check compares `head_check` with an independent model of PEP 3333
//! and RFC 9110 and asserts what an accepted head guarantees downstream.

use super::head_check::{check_header, is_hop_by_hop, parse_status};

/// Input layout: `mode, text…`; an even mode checks `text` as a status line, an odd one
/// checks it as a header (name before the first 0xFF byte, which UTF-8 never contains,
/// value after it). Bytes that are not UTF-8 become U+FFFD.
pub fn check(data: &[u8]) {
    let [mode, text @ ..] = data else {
        return;
    };
    if mode % 2 == 0 {
        check_status(&String::from_utf8_lossy(text));
    } else {
        let (name, value) = match text.iter().position(|&b| b == 0xFF) {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, &[][..]),
        };
        check_one_header(
            &String::from_utf8_lossy(name),
            &String::from_utf8_lossy(value),
        );
    }
}

fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn is_control(c: char) -> bool {
    (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32))
}

/// `parse_status` accepts exactly `DDD SP reason` with a final status (200..=999) and a
/// latin-1 reason without control characters; what it returns renders back to the input
/// and parses the same again.
pub fn check_status(s: &str) {
    let b = s.as_bytes();
    let model = b.len() >= 4
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3] == b' '
        && s[..3].parse::<u16>().is_ok_and(|c| c >= 200)
        && !s[4..].chars().any(is_control)
        && latin1(&s[4..]).is_some();
    let got = parse_status(s);
    assert_eq!(got.is_ok(), model, "parse_status({s:?}) = {got:?}");
    let Ok((code, reason)) = got else {
        return;
    };
    assert!((200..=999).contains(&code));
    assert!(
        reason.iter().all(|&c| !is_control(char::from(c))),
        "control byte in {reason:?}"
    );
    let rendered: String =
        format!("{code:03} ") + &reason.iter().map(|&c| char::from(c)).collect::<String>();
    assert_eq!(rendered, s, "an accepted status renders back to itself");
    assert_eq!(parse_status(&rendered), Ok((code, reason)));
}

fn is_tchar(c: u8) -> bool {
    matches!(c, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z') || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// `check_header` accepts exactly a token name that is neither hop-by-hop nor `Status` and a
/// latin-1 value
/// whose only control character is a tab; an accepted value holds no CR, LF or NUL (no
/// header injection), and the bytes returned are the name as is and the value in latin-1.
pub fn check_one_header(name: &str, value: &str) {
    let lower = name.to_ascii_lowercase();
    let hop = [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ]
    .contains(&lower.as_str())
        || lower.starts_with("proxy-");
    assert_eq!(is_hop_by_hop(name), hop, "is_hop_by_hop({name:?})");
    let model = !name.is_empty()
        && name.bytes().all(is_tchar)
        && !hop
        && lower != "status"
        && value
            .chars()
            .all(|c| c == '\t' || !is_control(c) || (c as u32) >= 0x80)
        && latin1(value).is_some();
    let got = check_header(name, value);
    assert_eq!(
        got.is_ok(),
        model,
        "check_header({name:?}, {value:?}) = {got:?}"
    );
    let Ok((n, v)) = got else {
        return;
    };
    assert_eq!(n, name.as_bytes());
    assert!(!n.iter().any(|c| b": \t\r\n\0".contains(c)));
    assert!(
        !v.iter()
            .any(|c| matches!(c, b'\r' | b'\n' | b'\0' | 0x7f) || (*c < 0x20 && *c != b'\t')),
        "an accepted value holds a control byte: {v:?}"
    );
    assert_eq!(Some(v), latin1(value));
}

#[cfg(test)]
mod tests {
    use super::check;

    /// Replays `fuzz/corpus/response_head` through the fuzz target's checks.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/response_head"
        );
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(
                r.is_ok(),
                "{} fails the response_head checks",
                path.display()
            );
            n += 1;
        }
        assert!(n > 0, "{dir} is empty");
    }
}
