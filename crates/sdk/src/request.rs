//! The request as a handler sees it.

use std::io;

use crate::abi::{Bytes, HostRequest, Pair};

/// One request: its CGI/WSGI environ, headers and streamed body. It exists only for the
/// duration of the handler call.
pub struct Request {
    host: *const HostRequest,
    environ: &'static [Pair],
    body: Body,
}

/// The request body, streamed from the client as it is read (`std::io::Read`).
///
/// ```no_run
/// # fn f(req: &mut rswsgi::Request) -> std::io::Result<()> {
/// use std::io::Read;
/// let mut data = Vec::new();
/// req.body().read_to_end(&mut data)?;
/// # Ok(()) }
/// ```
pub struct Body {
    host: *const HostRequest,
    done: bool,
}

impl io::Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: the host outlives the Request/Body (both live only during the handler call);
        // buf is valid for buf.len() bytes.
        let n = unsafe { ((*self.host).read_body)((*self.host).ctx, buf.as_mut_ptr(), buf.len()) };
        match usize::try_from(n) {
            Ok(0) => {
                self.done = true;
                Ok(0)
            }
            Ok(n) => Ok(n.min(buf.len())),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "reading the request body failed (client disconnected?)",
            )),
        }
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

impl Request {
    /// Wraps the daemon's request.
    ///
    /// # Safety
    /// `host`, its environ and every byte string it points to must stay valid for as long as
    /// the returned Request exists (the handler call).
    #[doc(hidden)]
    pub unsafe fn from_host(host: &HostRequest) -> Self {
        let environ = if host.environ_len == 0 {
            &[][..]
        } else {
            // SAFETY: valid for environ_len pairs while the Request exists, per this contract;
            // the 'static is never handed out: accessors tie borrows to &self.
            unsafe { std::slice::from_raw_parts(host.environ, host.environ_len) }
        };
        Request {
            host,
            environ,
            body: Body { host, done: false },
        }
    }

    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        // SAFETY: pair bytes are valid while the Request exists (from_host contract).
        self.environ
            .iter()
            .map(|p| unsafe { (p.name.as_slice(), p.value.as_slice()) })
    }

    /// An environ value as raw bytes (CGI values are latin-1 on the wire).
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) {
    /// let agent = req.var_bytes("HTTP_USER_AGENT");
    /// # }
    /// ```
    pub fn var_bytes(&self, key: &str) -> Option<&[u8]> {
        self.pairs()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// An environ value as text (`None` when absent or not UTF-8).
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) {
    /// let host = req.var("HTTP_HOST").unwrap_or("localhost");
    /// # }
    /// ```
    pub fn var(&self, key: &str) -> Option<&str> {
        self.var_bytes(key)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every environ entry, in the order Apache sent them.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) {
    /// for (k, v) in req.environ() { eprintln!("{k}={v}"); }
    /// # }
    /// ```
    pub fn environ(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs().map(|(k, v)| (text(k), text(v)))
    }

    /// The method, e.g. `GET`.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { assert!(!req.method().is_empty()); }
    /// ```
    pub fn method(&self) -> &str {
        self.var("REQUEST_METHOD").unwrap_or("GET")
    }

    /// `SCRIPT_NAME`: where the handler is mounted (`""` at the root).
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let mount = req.script_name(); }
    /// ```
    pub fn script_name(&self) -> &str {
        self.var("SCRIPT_NAME").unwrap_or("")
    }

    /// `PATH_INFO`: the path below the mount point (decoded).
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { if req.path_info() == "/" {} }
    /// ```
    pub fn path_info(&self) -> &str {
        self.var("PATH_INFO").unwrap_or("")
    }

    /// The full decoded path: `SCRIPT_NAME` + `PATH_INFO`.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let p: String = req.path(); }
    /// ```
    pub fn path(&self) -> String {
        format!("{}{}", self.script_name(), self.path_info())
    }

    /// The query string without `?` (`""` when there is none).
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let q = req.query_string(); }
    /// ```
    pub fn query_string(&self) -> &str {
        self.var("QUERY_STRING").unwrap_or("")
    }

    /// A request header by name, case-insensitively (`Content-Type` and `Content-Length`
    /// included). Repeated headers arrive joined with `, `.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let ct = req.header("content-type"); }
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        let key = name.to_ascii_uppercase().replace('-', "_");
        match key.as_str() {
            "CONTENT_TYPE" | "CONTENT_LENGTH" => self.var(&key),
            _ => self.var(&format!("HTTP_{key}")),
        }
    }

    /// Every request header, with names as `Title-Case` reconstructed from the environ.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { for (name, value) in req.headers() {} }
    /// ```
    pub fn headers(&self) -> impl Iterator<Item = (String, &str)> + '_ {
        self.environ().filter_map(|(k, v)| {
            let name = k.strip_prefix("HTTP_").or(match k {
                "CONTENT_TYPE" | "CONTENT_LENGTH" => Some(k),
                _ => None,
            })?;
            let title = name
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| {
                            f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()
                        })
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("-");
            Some((title, v))
        })
    }

    /// The client's address (`REMOTE_ADDR`).
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let ip = req.remote_addr(); }
    /// ```
    pub fn remote_addr(&self) -> Option<&str> {
        self.var("REMOTE_ADDR")
    }

    /// `http` or `https`.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let secure = req.url_scheme() == "https"; }
    /// ```
    pub fn url_scheme(&self) -> &str {
        self.var("wsgi.url_scheme").unwrap_or("http")
    }

    /// Apache's id for this request (its `%L` log id), for correlating log lines.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { let id = req.request_id(); }
    /// ```
    pub fn request_id(&self) -> &str {
        self.var("mod_wsgi.request_id").unwrap_or("")
    }

    /// The request body, streamed as it is read.
    ///
    /// ```no_run
    /// # fn f(req: &mut rswsgi::Request) {
    /// let n = std::io::copy(req.body(), &mut std::io::sink()).unwrap();
    /// # }
    /// ```
    pub fn body(&mut self) -> &mut Body {
        &mut self.body
    }

    /// Writes `message` to Apache's error log at error level.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { req.log_error("database unreachable"); }
    /// ```
    pub fn log_error(&self, message: &str) {
        self.log(1, message)
    }

    /// Writes `message` to Apache's error log at info level.
    ///
    /// ```no_run
    /// # fn f(req: &rswsgi::Request) { req.log_info("cache warmed"); }
    /// ```
    pub fn log_info(&self, message: &str) {
        self.log(3, message)
    }

    fn log(&self, level: u32, message: &str) {
        // SAFETY: the host is valid while the Request exists; the message outlives the call.
        unsafe { ((*self.host).log)((*self.host).ctx, level, Bytes::new(message.as_bytes())) }
    }
}
