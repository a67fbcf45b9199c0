//! `express log-filter json`: Apache's access log lines in the `json` format
//! ([`crate::logs::JSON_FORMAT`]) rewritten as valid JSON, one object per line.
//!
//! mod_log_config escapes every field it takes from the request (`ap_escape_logitem`): `"`
//! and `\` get a backslash, `\b \n \r \t \v` their C escapes, and every other byte that is
//! not printable ASCII (controls, DEL, every byte from 0x80) becomes `\xhh`. What it writes is
//! therefore printable ASCII in which no field can end a JSON string early, but `\v` and
//! `\xhh` are not JSON. This filter undoes Apache's escapes (recovering the exact bytes a
//! client sent) and writes each string again as JSON: UTF-8 text as it is, control
//! characters and DEL as `\u00XX`, and each byte that is not part of valid UTF-8 as the four
//! characters `\xHH` (as Apache's own logs show it). Bare words between the strings (the
//! numbers) are copied when they are JSON numbers and quoted otherwise. A line that is not
//! such an object becomes `{"unparsed":"…"}`, so every output line parses.
//!
//! Every line written is shorter than [`MAX_LINE`] (`PIPE_BUF`), so it reaches the log (or
//! `rotatelogs`, which writes whatever one read gives it) in one piece and a rotation never
//! splits it: when a line would be longer, its strings are cut, each ending in
//! [`TRUNCATED`].

use std::io::{self, BufRead, Write};

/// Bytes a written line (with its newline) stays under: `PIPE_BUF`, the most a pipe takes in
/// one piece.
pub const MAX_LINE: usize = 4096;
/// What a string cut to keep its line under [`MAX_LINE`] ends with.
pub const TRUNCATED: &str = "[truncated]";

/// Rewrites one line Apache wrote (without its newline) as a JSON object, shorter than
/// [`MAX_LINE`] with its newline.
pub fn convert_line(line: &[u8]) -> String {
    for cap in [usize::MAX, 1024, 256, 32] {
        let out = convert(line, cap).unwrap_or_else(|| unparsed(line, cap));
        if out.len() < MAX_LINE {
            return out;
        }
    }
    unparsed(line, 32)
}

fn unparsed(line: &[u8], cap: usize) -> String {
    let mut out = String::from("{\"unparsed\":");
    push_capped(&mut out, line, cap);
    out.push('}');
    out
}

/// A JSON string of `bytes`, cut to `cap` of them (then ending in [`TRUNCATED`]).
fn push_capped(out: &mut String, bytes: &[u8], cap: usize) {
    if bytes.len() <= cap {
        return push_json_string(out, bytes);
    }
    let mut cut = bytes[..cap].to_vec();
    cut.extend_from_slice(TRUNCATED.as_bytes());
    push_json_string(out, &cut);
}

fn convert(line: &[u8], cap: usize) -> Option<String> {
    let mut out = String::with_capacity(line.len() + 16);
    let mut i = 0;
    let mut word = Vec::new();
    if line.first() != Some(&b'{') || line.last() != Some(&b'}') {
        return None;
    }
    while i < line.len() {
        match line[i] {
            b'"' => {
                if !word.is_empty() {
                    return None;
                }
                let (bytes, end) = unescape_apache(line, i + 1)?;
                push_capped(&mut out, &bytes, cap);
                i = end + 1;
            }
            c @ (b'{' | b'}' | b':' | b',' | b'[' | b']') => {
                flush_word(&mut out, &mut word);
                out.push(char::from(c));
                i += 1;
            }
            b' ' => i += 1,
            c => {
                word.push(c);
                i += 1;
            }
        }
    }
    flush_word(&mut out, &mut word);
    Some(out)
}

/// A bare word: as is when it is a JSON number, else as a string (Apache's `-`).
fn flush_word(out: &mut String, word: &mut Vec<u8>) {
    if word.is_empty() {
        return;
    }
    if is_json_number(word) {
        out.push_str(std::str::from_utf8(word).unwrap_or("0"));
    } else {
        push_json_string(out, word);
    }
    word.clear();
}

fn is_json_number(w: &[u8]) -> bool {
    let digits = w.strip_prefix(b"-").unwrap_or(w);
    !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0')
}

/// The bytes of the Apache-escaped string starting at `start` (after its opening quote),
/// and the index of its closing quote; `None` when it does not end on this line.
fn unescape_apache(line: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let mut bytes = Vec::new();
    let mut i = start;
    while i < line.len() {
        match line[i] {
            b'"' => return Some((bytes, i)),
            b'\\' => {
                let next = *line.get(i + 1)?;
                let (byte, used) = match next {
                    b'"' | b'\\' => (next, 2),
                    b'b' => (0x08, 2),
                    b'n' => (b'\n', 2),
                    b'r' => (b'\r', 2),
                    b't' => (b'\t', 2),
                    b'v' => (0x0b, 2),
                    b'x' => {
                        let hex = line.get(i + 2..i + 4)?;
                        let hex = std::str::from_utf8(hex).ok()?;
                        (u8::from_str_radix(hex, 16).ok()?, 4)
                    }
                    // Not one of Apache's escapes: the backslash was literal.
                    _ => (b'\\', 1),
                };
                bytes.push(byte);
                i += used;
            }
            c => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    None
}

/// `bytes` as a JSON string: UTF-8 text kept, `"` `\` and controls (and DEL) escaped, bytes
/// outside valid UTF-8 written as the text `\xHH`.
pub fn push_json_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = std::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = std::fmt::Write::write_fmt(out, format_args!("\\\\x{b:02X}"));
        }
    }
    out.push('"');
}

/// Reads lines from `input` until its end and writes each converted, flushed at once (so
/// a log follower sees every request as it is logged). Returns at end of input.
pub fn filter(input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    for line in input.split(b'\n') {
        let line = line?;
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        // One write of the line and its newline: under PIPE_BUF, the pipe takes it whole.
        let mut text = convert_line(line);
        text.push('\n');
        output.write_all(text.as_bytes())?;
        output.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_escapes_become_json() {
        // What mod_log_config wrote for a hostile request (see tests/express_logs_ops.rs).
        let apache = br#"{"method":"G\"T","path":"/a\"b\\c\x01\xc3\xa9\xff\v","status":400,"bytes":266,"ua":"-","n":-}"#;
        let json = convert_line(apache);
        assert_eq!(
            json,
            r#"{"method":"G\"T","path":"/a\"b\\c\u0001é\\xFF\u000b","status":400,"bytes":266,"ua":"-","n":"-"}"#
        );
    }

    #[test]
    fn a_line_that_is_not_an_object_is_kept_as_a_string() {
        assert_eq!(convert_line(b"oops \"x"), r#"{"unparsed":"oops \"x"}"#);
        assert_eq!(
            convert_line(b"{\"a\":\"unterminated}"),
            r#"{"unparsed":"{\"a\":\"unterminated}"}"#
        );
        assert_eq!(convert_line(b"{\"a\":01}"), r#"{"a":"01"}"#);
    }

    #[test]
    fn every_line_stays_under_pipe_buf_however_long_its_fields() {
        let long = "a".repeat(8000);
        let line = format!("{{\"path\":\"/{long}\",\"ua\":\"{long}\",\"status\":200}}");
        let out = convert_line(line.as_bytes());
        assert!(out.len() < MAX_LINE, "{} bytes", out.len());
        let cut = format!("\"/{}{TRUNCATED}\"", "a".repeat(1023));
        assert!(out.contains(&cut), "{out}");
        assert!(out.ends_with(",\"status\":200}"), "{out}");
        // Control bytes grow sixfold in JSON: the cap shrinks until the line fits.
        let controls = "\\x01".repeat(3000);
        let line = format!("{{\"a\":\"{controls}\",\"b\":\"{controls}\"}}");
        assert!(convert_line(line.as_bytes()).len() < MAX_LINE);
        let garbage = vec![b'x'; 10_000];
        assert!(convert_line(&garbage).len() < MAX_LINE);
        let short = br#"{"path":"/ok","status":200}"#;
        assert_eq!(convert_line(short), r#"{"path":"/ok","status":200}"#);
    }

    #[test]
    fn filter_writes_one_line_per_line() {
        let mut out = Vec::new();
        filter(&b"{\"a\":1}\n{\"b\":\"\\x80\"}\n"[..], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1}\n{\"b\":\"\\\\x80\"}\n"
        );
    }
}
