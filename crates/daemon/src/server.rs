//! Worker threads: each accepts a connection on the shared listening socket and serves it to
//! the end, one request after another.

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rswsgi_protocol::{encode_error, FrameReader, ReadError};

use crate::backend::Backend;
use crate::conn::{Conn, IoError, Outcome, Shared};
use crate::lifecycle::Lifecycle;
use crate::log::RequestScope;

/// Stack size of worker threads: Python code can recurse deeply.
const STACK_SIZE: usize = 8 << 20;

/// Everything a worker needs.
pub struct Server {
    /// The inherited listening socket, shared with the group's other daemon processes.
    pub listener: UnixListener,
    /// The request handler.
    pub backend: Arc<dyn Backend>,
    /// Stop flag and in-progress count.
    pub life: Arc<Lifecycle>,
}

/// Starts `threads` worker threads. They run until the process exits.
pub fn spawn_workers(server: Arc<Server>, threads: usize) -> io::Result<()> {
    for n in 0..threads {
        let server = Arc::clone(&server);
        thread::Builder::new()
            .name(format!("worker-{n}"))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let backend = Arc::clone(&server.backend);
                backend.run_worker(&mut || worker_loop(&server));
            })?;
    }
    Ok(())
}

fn worker_loop(server: &Server) {
    loop {
        let stream = match server.listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(&e);
                continue;
            }
        };
        if server.life.stopping() {
            // Closing before the request head tells the module it may retry elsewhere.
            drop(stream);
            return;
        }
        serve_connection(server, stream);
        if server.life.stopping() {
            return;
        }
    }
}

fn accept_failed(e: &io::Error) {
    match e.raw_os_error() {
        Some(libc::ECONNABORTED) | Some(libc::EINTR) => {}
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM) => {
            tracing::error!("accept failed: {e}; retrying");
            thread::sleep(Duration::from_millis(100));
        }
        Some(libc::EBADF) | Some(libc::ENOTSOCK) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            tracing::error!("accept on the listening socket failed: {e}; exiting");
            std::process::exit(1);
        }
        _ => {
            tracing::error!("accept failed: {e}");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Serves one connection until the module closes it, it breaks, or the process stops.
fn serve_connection(server: &Server, stream: UnixStream) {
    let mut reader = FrameReader::new(stream);
    match reader.read_preamble() {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!("closing a connection that did not open with the rswsgi preamble: {e}");
            let mut out = Vec::new();
            encode_error(&mut out, e.to_string().as_bytes());
            let _ = reader.get_mut().write_all(&out);
            return;
        }
    }
    let shared = Shared::new(Conn::new(reader));
    loop {
        let (req, io) = match shared.next_request() {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(e) => {
                log_read_error(&e);
                return;
            }
        };
        let _busy = server.life.busy();
        let _scope = RequestScope::enter(req.get_str("mod_wsgi.request_id"));
        let handled = catch_unwind(AssertUnwindSafe(|| server.backend.handle(&req, &io)));
        if handled.is_err() {
            tracing::error!("the handler panicked serving {}", req.url());
        }
        if io.end() == Outcome::Close || server.life.stopping() {
            return;
        }
    }
}

fn log_read_error(e: &IoError) {
    match e {
        IoError::Read(ReadError::Io(io)) => {
            tracing::info!("connection from the module failed: {io}")
        }
        _ => tracing::error!("bad frame from the module, closing the connection: {e}"),
    }
}
