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
    /// The client went away (its connection failed, or passing the response on did).
    ClientGone,
    /// The application sent more body than its Content-Length; the excess was dropped.
    TooLong {
        /// The Content-Length.
        declared: u64,
    },
    /// The application ended its body short of its Content-Length.
    Short {
        /// Bytes sent.
        sent: u64,
        /// The Content-Length.
        declared: u64,
    },
}

/// How the handler ends a failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answer with this status (nothing of the response went out).
    Status(u16),
    /// Abort the response that began, so the client never sees a clean end.
    Abort,
    /// The client is gone: send it nothing more and close its connection.
    DropClient,
    /// The response went out as it should; only the log line tells.
    Sent,
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
            Kind::ClientGone => 400,
            Kind::TooLong { .. } | Kind::Short { .. } => 500,
        }
    }

    /// How the handler ends the exchange; `head_sent`: the response head went to the client.
    pub fn disposition(&self, head_sent: bool) -> Disposition {
        match self.kind {
            Kind::ClientGone => Disposition::DropClient,
            // The declared body went out whole.
            Kind::TooLong { .. } => Disposition::Sent,
            _ if head_sent => Disposition::Abort,
            _ => Disposition::Status(self.status()),
        }
    }

    /// The log level: an error for the operator, or information when the client did it.
    pub fn level(&self) -> tracing::Level {
        match self.kind {
            Kind::BodyRead(_) | Kind::ClientGone => tracing::Level::INFO,
            _ => tracing::Level::ERROR,
        }
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
            Kind::ClientGone => format!("client went away {d}"),
            Kind::TooLong { declared } => format!(
                "the application sent more than its Content-Length of {declared} bytes; the \
                 excess was not sent"
            ),
            Kind::Short { sent, declared } => format!(
                "the application sent {sent} of the {declared} bytes its Content-Length \
                 declared; closing the client connection"
            ),
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
            (Kind::ClientGone, 400, "client went away why"),
            (
                Kind::TooLong { declared: 5 },
                500,
                "Content-Length of 5 bytes",
            ),
            (
                Kind::Short {
                    sent: 1,
                    declared: 5,
                },
                500,
                "sent 1 of the 5 bytes",
            ),
        ];
        for (kind, status, text) in cases {
            let e = RelayError::new(Source::Daemon, kind, "why");
            assert_eq!(e.status(), status, "{e:?}");
            assert!(e.log_text("g").contains(text), "{}", e.log_text("g"));
        }
        let quiet = RelayError::new(Source::Client, Kind::BodyRead(400), "x");
        assert_eq!(quiet.level(), tracing::Level::INFO);
        assert_eq!(quiet.disposition(false), Disposition::Status(400));
        assert_eq!(quiet.disposition(true), Disposition::Abort);
        let gone = RelayError::new(Source::Client, Kind::ClientGone, "x");
        assert_eq!(gone.disposition(false), Disposition::DropClient);
        let long = RelayError::new(Source::App, Kind::TooLong { declared: 1 }, "");
        assert_eq!(long.disposition(true), Disposition::Sent);
    }
}
