//! Why a relayed request failed, typed by where the failure came from and what it was; the
//! one place that maps a failure to its HTTP status and its log line.

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The daemon process or the connection to it.
    Daemon,
    /// The client, or reading its request body.
    Client,
    /// The application (it raised, answered badly, or was given up).
    App,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// No answer in time.
    Timeout,
    /// The connection ended before the response was complete.
    Closed,
    /// A frame that breaks the protocol.
    Protocol,
    /// The daemon refused the request's script (`script-user`, `script-group`).
    Refused,
    /// The application failed (an `Error` frame).
    Failed,
    /// The application's response head cannot be sent.
    BadHead,
    /// The daemon gave the request up (`request-timeout`).
    GivenUp,
    /// The request body could not be read from the client; the status Apache maps it to.
    BodyRead(u16),
    /// The daemon could not take the request (writing it failed).
    Unavailable,
}

/// A failed exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayError {
    /// Where it came from.
    pub source: Source,
    /// What it was.
    pub kind: Kind,
    /// The detail for the log line.
    pub detail: String,
}

impl RelayError {
    /// A failure of `kind` from `source`, with `detail` for the log.
    pub fn new(source: Source, kind: Kind, detail: impl Into<String>) -> Self {
        RelayError {
            source,
            kind,
            detail: detail.into(),
        }
    }

    /// The status the request gets when nothing of the response was sent yet.
    pub fn status(&self) -> u16 {
        match self.kind {
            Kind::Timeout | Kind::GivenUp => 504,
            Kind::Closed | Kind::Protocol => 502,
            Kind::Refused => 403,
            Kind::Failed | Kind::BadHead => 500,
            Kind::BodyRead(status) => status,
            Kind::Unavailable => 503,
        }
    }

    /// Whether the line is an operator's error (else information: the client's doing).
    pub fn is_error(&self) -> bool {
        !matches!(self.kind, Kind::BodyRead(_))
    }

    /// The log line for a request to daemon group `group`.
    pub fn log_text(&self, group: &str) -> String {
        let d = &self.detail;
        match self.kind {
            Kind::Timeout => {
                format!("timeout waiting for the daemon process of group '{group}' ({d})")
            }
            Kind::Closed => {
                format!(
                "daemon process of group '{group}' closed the connection before the response was \
                 complete (it may have crashed; see earlier log lines){}",
                if d.is_empty() { String::new() } else { format!(": {d}") }
            )
            }
            Kind::Protocol => format!("protocol error from daemon group '{group}': {d}"),
            Kind::Refused => format!("daemon group '{group}' refused the request's script: {d}"),
            Kind::Failed => format!("application error in group '{group}': {d}"),
            Kind::BadHead => format!("bad response headers from the application: {d}"),
            Kind::GivenUp => format!("daemon group '{group}' gave the request up: {d}"),
            Kind::BodyRead(_) => format!("reading the request body from the client failed: {d}"),
            Kind::Unavailable => format!("daemon group '{group}': {d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_log_lines_come_from_one_table() {
        let cases = [
            (Kind::Timeout, 504, "timeout waiting"),
            (Kind::GivenUp, 504, "gave the request up"),
            (Kind::Closed, 502, "closed the connection"),
            (Kind::Protocol, 502, "protocol error"),
            (Kind::Refused, 403, "refused the request's script"),
            (Kind::Failed, 500, "application error"),
            (Kind::BadHead, 500, "bad response headers"),
            (Kind::BodyRead(413), 413, "reading the request body"),
            (Kind::Unavailable, 503, "daemon group 'g'"),
        ];
        for (kind, status, text) in cases {
            let e = RelayError::new(Source::Daemon, kind, "why");
            assert_eq!(e.status(), status, "{e:?}");
            assert!(e.log_text("g").contains(text), "{}", e.log_text("g"));
        }
        assert!(!RelayError::new(Source::Client, Kind::BodyRead(400), "x").is_error());
    }
}
