//! The response a handler returns: a whole body, or a stream written as it is produced.

use std::io;

use crate::abi::{Bytes, HostRequest};

type StreamFn<'r> = Box<dyn FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + 'r>;

pub(crate) enum Payload<'r> {
    Whole(Vec<u8>),
    Stream(StreamFn<'r>),
}

/// A response: status, headers (repeated names allowed) and a body.
///
/// ```
/// use rswsgi::Response;
/// let r = Response::new(201)
///     .with_header("Content-Type", "application/json")
///     .with_header("Set-Cookie", "a=1")
///     .with_header("Set-Cookie", "b=2")
///     .with_body(b"{\"ok\":true}".to_vec());
/// assert_eq!(r.status(), 201);
/// ```
///
/// The lifetime lets a streamed body borrow the request, so a handler can stream the request
/// body straight back (see [`Response::stream`]); write handlers as
/// `fn application(req: &mut Request) -> Response<'_>`.
pub struct Response<'r> {
    pub(crate) status: u16,
    pub(crate) reason: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) payload: Payload<'r>,
}

/// Writes the streamed response body; each write reaches the client before it returns.
///
/// ```no_run
/// use std::io::Write;
/// let r = rswsgi::Response::stream(200, |out| {
///     for i in 0..3 {
///         writeln!(out, "tick {i}")?;
///     }
///     Ok(())
/// });
/// ```
pub struct BodyWriter<'a> {
    pub(crate) host: &'a HostRequest,
    pub(crate) failed: bool,
}

impl io::Write for BodyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: the host function is valid for the request; buf outlives the call.
        if unsafe { (self.host.write_body)(self.host.ctx, Bytes::new(buf)) } != 0 {
            self.failed = true;
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            ));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'r> Response<'r> {
    /// An empty response with `status`.
    ///
    /// ```
    /// let r = rswsgi::Response::new(204);
    /// ```
    pub fn new(status: u16) -> Self {
        Response {
            status,
            reason: None,
            headers: Vec::new(),
            payload: Payload::Whole(Vec::new()),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    ///
    /// ```
    /// let r = rswsgi::Response::text(200, "hello\n");
    /// ```
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(body.into().into_bytes())
    }

    /// A streamed response: `produce` runs after the headers are sent and writes the body.
    /// An error from it (or a panic) aborts the client connection, so a cut-short body is
    /// never mistaken for a complete one. It may borrow the request, e.g. to echo its body:
    ///
    /// ```no_run
    /// fn echo(req: &mut rswsgi::Request) -> rswsgi::Response<'_> {
    ///     rswsgi::Response::stream(200, move |out| std::io::copy(req.body(), out).map(drop))
    /// }
    /// ```
    pub fn stream<F>(status: u16, produce: F) -> Self
    where
        F: FnOnce(&mut BodyWriter<'_>) -> io::Result<()> + 'r,
    {
        Response {
            payload: Payload::Stream(Box::new(produce)),
            ..Response::new(status)
        }
    }

    /// Adds a header (repeat the call for repeated headers such as `Set-Cookie`).
    ///
    /// ```
    /// let r = rswsgi::Response::new(200).with_header("X-Frame-Options", "DENY");
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body with `body` (sent with a Content-Length).
    ///
    /// ```
    /// let r = rswsgi::Response::new(200).with_body(b"raw bytes".to_vec());
    /// ```
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.payload = Payload::Whole(body);
        self
    }

    /// Sets the reason phrase (default: the standard one for the status).
    ///
    /// ```
    /// let r = rswsgi::Response::new(299).with_reason("Custom");
    /// ```
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The status code.
    ///
    /// ```
    /// assert_eq!(rswsgi::Response::new(418).status(), 418);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The headers set so far.
    ///
    /// ```
    /// let r = rswsgi::Response::new(200).with_header("A", "1");
    /// assert_eq!(r.headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

/// The standard reason phrase for `status` (empty when there is none).
pub(crate) fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        418 => "I'm a teapot",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
