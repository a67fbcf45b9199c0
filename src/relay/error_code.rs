//! The stable code of a relay failure's log line (`rswsgi_protocol::Code`, `docs/errors.md`),
//! and the line itself as the operator reads it.

use rswsgi_protocol::Code;

use super::error::{Kind, RelayError};

impl RelayError {
    /// The line's code; `None` for what the client did (an information line, uncoded).
    pub fn code(&self) -> Option<Code> {
        Some(match self.kind {
            Kind::Timeout => Code::RelayTimeout,
            Kind::Closed => Code::RelayClosed,
            Kind::Protocol => Code::RelayProtocol,
            Kind::Refused => Code::RelayRefused,
            Kind::Failed => Code::RelayAppFailed,
            Kind::BadHead => Code::RelayBadHead,
            Kind::GivenUp => Code::RelayGivenUp,
            Kind::Unavailable => Code::RelayUnavailable,
            Kind::TooLong { .. } => Code::ContentLengthExceeded,
            Kind::Short { .. } => Code::ContentLengthShort,
            Kind::BodyRead(_) | Kind::ClientGone => return None,
        })
    }

    /// The log line for a request to daemon group `group`, with its code in front; `daemon_pid`
    /// is the pid of the daemon process on the other end when known, so a line about a
    /// request a daemon dropped joins the supervisor's line about that daemon's death.
    pub fn operator_line(&self, group: &str, daemon_pid: Option<i32>) -> String {
        let mut text = self.log_text(group);
        if let Some(pid) = daemon_pid.filter(|_| matches!(self.source, super::Source::Daemon)) {
            text.push_str(&format!(" (daemon pid {pid})"));
        }
        match self.code() {
            Some(code) => format!("{code}: {text}"),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Source;
    use super::*;

    #[test]
    fn operator_lines_carry_the_code_and_the_daemon_pid() {
        let e = RelayError::new(Source::Daemon, Kind::Closed, "");
        let line = e.operator_line("g", Some(4321));
        let want = format!("{}: daemon process of group 'g'", Code::RelayClosed);
        assert!(line.starts_with(&want), "{line}");
        assert!(line.ends_with(" (daemon pid 4321)"), "{line}");
        let client = RelayError::new(Source::Client, Kind::ClientGone, "x");
        assert_eq!(client.code(), None);
        assert!(!client.operator_line("g", Some(1)).contains("pid"));
        let app = RelayError::new(Source::App, Kind::TooLong { declared: 3 }, "");
        let want = format!("{}: the application sent more", Code::ContentLengthExceeded);
        assert!(app.operator_line("g", None).starts_with(&want));
    }
}
