//! Relaying one request over a daemon connection: the relay core ([`relay::run`]) between
//! the connection ([`SocketLink`]) and Apache's request, which this file makes a
//! [`Downstream`]: the client's body from Apache's input filters, the response through its
//! output filters.

use std::os::fd::OwnedFd;
use std::time::Duration;

use tracing::Level;

use crate::relay::io::{BodyReadError, ClientGone, Downstream, Header, SharedBytes};
pub use crate::relay::Outcome;
use crate::relay::{self, Answer, Disposition, Kind, RelayError};
use std::sync::atomic::Ordering;

use crate::metrics::area::GroupCounters;
use crate::metrics::Cause;

use super::link::SocketLink;
use super::pool::Link;
use crate::ffi;
use crate::httpd::body::BodyReader;
use crate::httpd::log;
use crate::httpd::request::{OutBrigade, Request};

/// What the configuration says about relaying a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponsePolicy {
    /// `WSGIErrorOverride On`: an error status from the application is returned to Apache,
    /// which answers with its error document; the application's body is read and discarded.
    pub error_override: bool,
    /// `WSGIEnableSendfile` (else Apache's `EnableSendfile`): a `BodyFile` goes out with
    /// `sendfile`; otherwise Apache reads the descriptor and writes what it read.
    pub sendfile: bool,
    /// `response-socket-timeout` (else `socket-timeout`): how long each write of the response
    /// to the client may take; `None` leaves Apache's `Timeout`.
    pub response_timeout: Option<Duration>,
    /// The group's statistics entry (`crate::metrics::group`).
    pub stats: Option<usize>,
    /// Failure lines may name the daemon's pid from the socket's peer credentials
    /// (`Endpoint::single_process`).
    pub peer_pid_known: bool,
}

/// Runs the exchange of `head` (the encoded request) on `link`; the value is the handler
/// status.
pub fn run(
    r: &mut Request,
    link: &mut Link,
    head: &[u8],
    group: &str,
    policy: ResponsePolicy,
) -> Outcome<i32> {
    let started = std::time::Instant::now();
    let buf = std::mem::take(&mut link.buf);
    let client = r.client_fd();
    let mut wire = SocketLink::new(&link.stream, buf, &mut link.ring, client, link.timeout)
        .peer_pid_known(policy.peer_pid_known);
    let mut down = ApacheDownstream {
        r,
        out: OutBrigade::default(),
        body: None,
        policy,
        client_timeout: None,
        counters: crate::metrics::group(policy.stats),
        sent_file: false,
    };
    let outcome = relay::run(
        &mut wire,
        &mut down,
        head,
        link.seq,
        policy.error_override,
        group,
    );
    link.buf = wire.into_buffer();
    if let Some(old) = down.client_timeout.take() {
        down.r.swap_client_timeout(old);
    }
    if let (Some(g), false) = (down.counters, matches!(outcome, Outcome::Retry)) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        g.duration.observe(us);
        if down.sent_file {
            g.body_files.fetch_add(1, Ordering::Relaxed);
        }
    }
    match outcome {
        Outcome::Retry => Outcome::Retry,
        Outcome::Done { value, reusable } => Outcome::Done {
            value: match value {
                Answer::Sent => ffi::OK as i32,
                Answer::Status(status) => i32::from(status),
            },
            reusable,
        },
    }
}

/// Apache's request as the relay's downstream.
struct ApacheDownstream<'r> {
    r: &'r mut Request,
    /// The response's output brigade, created on first use.
    out: OutBrigade,
    /// The request body's reader, created on the daemon's first `ReadBody`.
    body: Option<BodyReader>,
    policy: ResponsePolicy,
    /// The client socket's timeout before `response-socket-timeout` replaced it.
    client_timeout: Option<i64>,
    /// The group's counters.
    counters: Option<&'static GroupCounters>,
    /// A `BodyFile` block went out.
    sent_file: bool,
}

impl ApacheDownstream<'_> {
    fn count_out(&self, n: usize) {
        if let Some(g) = self.counters {
            g.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

impl Downstream for ApacheDownstream<'_> {
    fn header_only(&self) -> bool {
        self.r.header_only()
    }

    fn set_status(&mut self, status: u16, reason: &[u8]) {
        self.r.set_status(status, reason);
    }

    fn add_header(&mut self, header: Header<'_>) {
        match header {
            Header::ContentType(value) => self.r.set_content_type(value),
            // The relay checked that it fits.
            Header::ContentLength(n) => self.r.set_content_length(n as i64),
            Header::Other(name, value) => {
                let (out, pool) = (self.r.headers_out(), self.r.pool());
                out.add(pool, name, value);
            }
        }
    }

    fn discard_head(&mut self) {
        self.r.headers_out_clear();
    }

    fn response_begins(&mut self) {
        // As mod_wsgi: from the response on, writes to the client time out after
        // response-socket-timeout; put back when the exchange ends.
        if let Some(t) = self.policy.response_timeout {
            let us = i64::try_from(t.as_micros()).unwrap_or(i64::MAX);
            self.client_timeout = self.r.swap_client_timeout(us);
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), ClientGone> {
        self.count_out(data.len());
        self.r
            .write_flush(&mut self.out, data)
            .map_err(|()| ClientGone)
    }

    fn write_shared(&mut self, data: SharedBytes<'_>) -> Result<(), ClientGone> {
        self.count_out(data.len());
        self.r
            .write_flush_shared(&mut self.out, data)
            .map_err(|()| ClientGone)
    }

    fn send_file(
        &mut self,
        fd: OwnedFd,
        offset: u64,
        len: u64,
        sealed: bool,
    ) -> Result<(), ClientGone> {
        let sendfile = self.policy.sendfile;
        self.count_out(usize::try_from(len).unwrap_or(usize::MAX));
        self.sent_file = true;
        self.r
            .send_file(&mut self.out, fd, offset, len, sealed, sendfile)
            .map_err(|()| ClientGone)
    }

    fn read_body(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<Option<usize>, BodyReadError> {
        let r = &mut *self.r;
        let reader = self.body.get_or_insert_with(|| BodyReader::new(r));
        let read = reader.read(r, buf, max);
        if let (Some(g), Ok(Some(n))) = (self.counters, &read) {
            g.bytes_in.fetch_add(*n as u64, Ordering::Relaxed);
        }
        read.map_err(|e| BodyReadError {
            // AP_FILTER_ERROR (a filter has answered) is negative: a plain 400 then.
            status: u16::try_from(e.status).unwrap_or(400),
            reason: e.reason,
        })
    }

    fn abort(&mut self) {
        self.r.abort_response();
    }

    fn drop_client(&mut self) {
        self.r.mark_aborted();
        self.r.close_connection();
    }

    fn log(&mut self, level: Level, message: &str) {
        log::request(self.r, level, message);
    }

    fn failed(&mut self, e: &RelayError, disposition: Disposition) {
        let cause = match e.kind {
            Kind::Timeout => Cause::Timeout,
            Kind::GivenUp => Cause::GivenUp,
            Kind::Closed => Cause::Closed,
            Kind::Protocol => Cause::Protocol,
            Kind::Unavailable => Cause::Unavailable,
            _ => return,
        };
        if let (Some(g), Disposition::Status(502..=504)) = (self.counters, disposition) {
            g.count_cause(cause);
        }
    }
}
