//! Raw HTTP/1.x over one TCP connection, for tests where the wire matters: pipelining,
//! `Expect: 100-continue`, chunked request bodies, truncated uploads, disconnects, and
//! telling a complete response from an aborted one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// A response as read off the wire: the same type as [`super::http::Response`] (whose
/// `complete` can be false here).
pub use super::http::Response as RawResponse;

/// One client connection.
pub struct RawConn {
    reader: BufReader<TcpStream>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl RawConn {
    /// Connects with a 30 s read timeout (tests set shorter ones where they wait on purpose).
    pub fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        RawConn {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream().set_read_timeout(Some(t)).expect("timeout");
    }

    /// Writes `data` (all of it).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let mut s = self.reader.get_ref();
        s.write_all(data)?;
        s.flush()
    }

    /// Reads one line (without CRLF); an error at EOF.
    pub fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF"));
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Reads a status line and headers (an interim `100 Continue` is returned like any other).
    pub fn read_head(&mut self) -> io::Result<RawResponse> {
        let status_line = self.line()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("bad status line {status_line:?}")));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (k, v) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header {line:?}")))?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(RawResponse {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            complete: false,
        })
    }

    /// Reads a whole response (skipping interim 1xx ones). `head_only` for HEAD requests.
    /// A connection that ends early gives `complete == false`, not an error.
    pub fn read_response(&mut self, head_only: bool) -> io::Result<RawResponse> {
        let mut resp = loop {
            let r = self.read_head()?;
            if !(100..200).contains(&r.status) {
                break r;
            }
        };
        if head_only || matches!(resp.status, 204 | 304) {
            resp.complete = true;
            return Ok(resp);
        }
        if resp.is_chunked() {
            loop {
                match self.read_chunk() {
                    Ok(Some(chunk)) => resp.body.extend_from_slice(&chunk),
                    Ok(None) => {
                        resp.complete = true;
                        break;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e),
                }
            }
        } else if let Some(len) = resp.header("Content-Length") {
            let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
            let mut buf = vec![0; len];
            let mut got = 0;
            while got < len {
                match self.reader.read(&mut buf[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            buf.truncate(got);
            resp.complete = got == len;
            resp.body = buf;
        } else {
            let _ = self.reader.read_to_end(&mut resp.body);
            resp.complete = true;
        }
        Ok(resp)
    }

    /// Reads one chunk of a chunked body: `Some(data)`, or `None` after the final chunk and
    /// trailers. A connection that ends mid-way is an `UnexpectedEof` error.
    pub fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let line = self.line()?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            while !self.line()?.is_empty() {}
            return Ok(None);
        }
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data)?;
        if &data[size..] != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
        data.truncate(size);
        Ok(Some(data))
    }

    /// Reads chunks until one has arrived since `since`, returning it with its arrival time.
    pub fn timed_chunk(&mut self, since: Instant) -> io::Result<Option<(Vec<u8>, Duration)>> {
        Ok(self.read_chunk()?.map(|c| (c, since.elapsed())))
    }

    /// True when the server closes the connection within `within` (reads hit EOF or a reset;
    /// data that arrives first is discarded).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        self.set_read_timeout(within);
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Everything the server sends until it closes the connection (bounded by `within`).
    pub fn read_rest(&mut self, within: Duration) -> Vec<u8> {
        self.set_read_timeout(within);
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        out
    }

    /// Closes abortively: the kernel sends RST instead of FIN (`SO_LINGER` 0), as a client
    /// that gives up mid-response does.
    pub fn abort(self) {
        let fd = self.stream().as_raw_fd();
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: fd is an open socket owned by self; setsockopt reads `linger` for its size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        drop(self);
    }
}

/// A request head: `METHOD path HTTP/1.1`, `Host`, then `headers`, then the blank line.
pub fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut h = format!("{method} {path} HTTP/1.1\r\nHost: test.invalid\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

/// `data` in chunked transfer coding, in chunks of at most `size` bytes, with the last chunk.
pub fn chunked(data: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(size.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// One request on its own connection (`Connection: close`), read raw.
pub fn one_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> RawResponse {
    let mut c = RawConn::connect(addr);
    let mut headers = extra.to_vec();
    headers.push(("Connection", "close"));
    c.send(&head(method, path, &headers)).unwrap();
    c.read_response(method == "HEAD")
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}
