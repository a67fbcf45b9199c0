//! The start-up report: the one line each daemon process writes to its standard error
//! (Apache's error log) when its start-up is over, so that `express` learns whether the
//! application loaded without scraping free text.
//!
//! ```text
//! rswsgi-startup/1 ready pid=1234
//! rswsgi-startup/1 load-failed pid=1234 script="/srv/app.py" error="ModuleNotFoundError: No module named 'flask'"
//! rswsgi-startup/1 start-failed pid=1234 error="python-home /srv/venv is not …"
//! ```
//!
//! The daemon writes it through its logger, so in the log it follows the daemon's own prefix,
//! `[time] [wsgi:LEVEL] [pid P:tid T] `; [`StartupReport::find_in_log_line`] accepts a report
//! only there, with `P` the report's pid. Values are a decimal number or a double-quoted string
//! (`\\`, `\"`, `\n`, `\r`, `\t` and `\u{XX}` for other control characters), so a report is
//! always one line. Unknown fields are ignored; a new kind or an incompatible change takes a
//! new [`MARKER`].

use std::fmt::{self, Write as _};

/// What a report starts with: its name and format version.
pub const MARKER: &str = "rswsgi-startup/1";

/// How one daemon process's start-up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupReport {
    /// Every script given to load at start-up loaded (or there was none); the process listens.
    Ready {
        /// The daemon process.
        pid: u32,
    },
    /// A script given to load at start-up failed; the process serves on, and requests for the
    /// script try to load it again (a 500 each while it fails).
    LoadFailed {
        /// The daemon process.
        pid: u32,
        /// The script.
        script: String,
        /// The exception's last line (`ModuleNotFoundError: No module named 'flask'`), or
        /// why the file could not be read.
        error: String,
    },
    /// The process could not start serving (Python, a handler library, the socket); it exits,
    /// and the supervisor starts another.
    StartFailed {
        /// The daemon process.
        pid: u32,
        /// Why.
        error: String,
    },
}

/// A report line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The text does not start with [`MARKER`] and a space.
    #[error("not a start-up report")]
    NotAReport,
    /// The kind after the marker is not one this build knows.
    #[error("unknown start-up report kind {0:?}")]
    UnknownKind(String),
    /// A field is not `name=NUMBER` or `name="STRING"`.
    #[error("malformed field in start-up report: {0:?}")]
    Malformed(String),
    /// A field the kind needs is missing.
    #[error("start-up report without {0}")]
    Missing(&'static str),
}

impl StartupReport {
    /// The daemon process the report is about.
    pub fn pid(&self) -> u32 {
        match self {
            StartupReport::Ready { pid }
            | StartupReport::LoadFailed { pid, .. }
            | StartupReport::StartFailed { pid, .. } => *pid,
        }
    }

    /// Whether the process is serving the application.
    pub fn is_ready(&self) -> bool {
        matches!(self, StartupReport::Ready { .. })
    }

    /// Reads a report from `text`, which starts with [`MARKER`].
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        let rest = text
            .strip_prefix(MARKER)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(ReportError::NotAReport)?;
        let (kind, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let (mut pid, mut script, mut error) = (None, None, None);
        while !rest.is_empty() {
            let (name, value, after) = field(rest)?;
            match (name, value) {
                ("pid", Value::Number(n)) => pid = u32::try_from(n).ok(),
                ("script", Value::Text(s)) => script = Some(s),
                ("error", Value::Text(s)) => error = Some(s),
                _ => {}
            }
            rest = after;
        }
        let pid = pid.ok_or(ReportError::Missing("pid"))?;
        let error = || error.clone().ok_or(ReportError::Missing("error"));
        match kind {
            "ready" => Ok(StartupReport::Ready { pid }),
            "load-failed" => Ok(StartupReport::LoadFailed {
                pid,
                script: script.clone().ok_or(ReportError::Missing("script"))?,
                error: error()?,
            }),
            "start-failed" => Ok(StartupReport::StartFailed {
                pid,
                error: error()?,
            }),
            other => Err(ReportError::UnknownKind(other.to_owned())),
        }
    }

    /// The report in a line of the error log, when the line is one a daemon's logger wrote
    /// (see the [module](self) docs): its prefix must end in `[pid P:tid T]`, with `P` the
    /// report's pid, after a `[wsgi:LEVEL]` tag. Anything else is `None`.
    pub fn find_in_log_line(line: &str) -> Option<Self> {
        let at = line.find(&format!("] {MARKER} "))?;
        let (prefix, text) = (&line[..=at], &line[at + 2..]);
        let report = Self::parse(text.trim_end_matches(['\n', '\r'])).ok()?;
        let (before, tag) = prefix.rsplit_once(" [pid ")?;
        let (pid, tid) = tag.strip_suffix(']')?.split_once(":tid ")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let from_daemon = before.contains("] [wsgi:") && digits(pid) && digits(tid);
        (from_daemon && pid.parse() == Ok(report.pid())).then_some(report)
    }
}

impl fmt::Display for StartupReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartupReport::Ready { pid } => write!(f, "{MARKER} ready pid={pid}"),
            StartupReport::LoadFailed { pid, script, error } => write!(
                f,
                "{MARKER} load-failed pid={pid} script={} error={}",
                quote(script),
                quote(error)
            ),
            StartupReport::StartFailed { pid, error } => {
                write!(f, "{MARKER} start-failed pid={pid} error={}", quote(error))
            }
        }
    }
}

/// `s` in double quotes, escaped so that it stays on one line.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

enum Value {
    Number(u64),
    Text(String),
}

/// One `name=value` field at the front of `s` and what follows it (past one space).
fn field(s: &str) -> Result<(&str, Value, &str), ReportError> {
    let malformed = || ReportError::Malformed(s.chars().take(40).collect());
    let (name, rest) = s.split_once('=').ok_or_else(malformed)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(malformed());
    }
    let (value, after) = if let Some(quoted) = rest.strip_prefix('"') {
        let (text, after) = unquote(quoted).ok_or_else(malformed)?;
        (Value::Text(text), after)
    } else {
        let end = rest.find(' ').unwrap_or(rest.len());
        let n = rest[..end].parse().map_err(|_| malformed())?;
        (Value::Number(n), &rest[end..])
    };
    match after.strip_prefix(' ') {
        Some(after) => Ok((name, value, after)),
        None if after.is_empty() => Ok((name, value, after)),
        None => Err(malformed()),
    }
}

/// The string that `s` (just past an opening quote) holds, and what follows its closing quote.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    if chars.next()?.1 != '{' {
                        return None;
                    }
                    let mut hex = String::new();
                    loop {
                        match chars.next()?.1 {
                            '}' => break,
                            c if hex.len() < 6 => hex.push(c),
                            _ => return None,
                        }
                    }
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn failed(error: &str) -> StartupReport {
        StartupReport::LoadFailed {
            pid: 42,
            script: "/srv/my app/wsgi.py".into(),
            error: error.into(),
        }
    }

    #[test]
    fn lines_read_as_written() {
        let line = failed("ModuleNotFoundError: No module named 'flask'").to_string();
        assert_eq!(
            line,
            "rswsgi-startup/1 load-failed pid=42 script=\"/srv/my app/wsgi.py\" \
             error=\"ModuleNotFoundError: No module named 'flask'\""
        );
        assert_eq!(
            StartupReport::parse(&line),
            Ok(failed("ModuleNotFoundError: No module named 'flask'"))
        );
        let ready = StartupReport::Ready { pid: 7 };
        assert_eq!(ready.to_string(), "rswsgi-startup/1 ready pid=7");
        assert_eq!(
            StartupReport::parse("rswsgi-startup/1 ready pid=7 later=\"x\""),
            Ok(ready)
        );
    }

    #[test]
    fn reports_stay_on_one_line() {
        let r = failed("a\nb\r\"c\"\\ \u{1} \t é");
        let line = r.to_string();
        assert!(!line.contains(['\n', '\r', '\u{1}']), "{line}");
        assert_eq!(StartupReport::parse(&line), Ok(r));
    }

    #[test]
    fn only_a_daemons_own_line_counts() {
        let report = StartupReport::Ready { pid: 9 };
        let daemon =
            format!("[Tue Dec 01 11:51:58.823852 2026] [wsgi:info] [pid 9:tid 9] {report}");
        assert_eq!(
            StartupReport::find_in_log_line(&daemon),
            Some(report.clone())
        );
        for forged in [
            // Another process's pid.
            format!("[Tue Dec 01 2026] [wsgi:info] [pid 8:tid 8] {report}"),
            // Apache's own lines, where a client's text can appear.
            format!("[Tue Dec 01 2026] [core:error] [pid 9:tid 9] {report}"),
            format!("[Tue Dec 01 2026] [wsgi:error] [pid 9:tid 9] [client 1.2.3.4] x] {report}"),
            format!("{report}"),
        ] {
            assert_eq!(StartupReport::find_in_log_line(&forged), None, "{forged}");
        }
    }

    #[test]
    fn malformed_reports_are_refused() {
        for bad in [
            "rswsgi-startup/1 ready",
            "rswsgi-startup/1 ready pid=x",
            "rswsgi-startup/1 launched pid=1",
            "rswsgi-startup/1 load-failed pid=1 error=\"x\"",
            "rswsgi-startup/1 start-failed pid=1 error=\"unterminated",
            "rswsgi-startup/1 start-failed pid=1 error=\"bad \\q escape\"",
            "rswsgi-startup/2 ready pid=1",
        ] {
            assert!(StartupReport::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_text_round_trips(script in any::<String>(), error in any::<String>(), pid: u32) {
            let r = StartupReport::LoadFailed { pid, script, error };
            let line = r.to_string();
            prop_assert!(!line.contains(['\n', '\r']));
            let logged = format!("[x] [wsgi:error] [pid {pid}:tid 1] {line}");
            prop_assert_eq!(StartupReport::find_in_log_line(&logged), Some(r));
        }

        #[test]
        fn parsing_never_panics(text in any::<String>()) {
            let _ = StartupReport::parse(&format!("{MARKER} {text}"));
            let _ = StartupReport::find_in_log_line(&text);
        }
    }
}
