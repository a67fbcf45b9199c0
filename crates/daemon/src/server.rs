//! Worker threads: each accepts a connection on the shared listening socket and serves it to
//! the end, one request after another.

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
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

/// Starts `threads` worker threads. They run until the process stops.
pub fn spawn_workers(server: Arc<Server>, threads: usize) -> io::Result<()> {
    // Shared by the group's daemons; accept must not block once epoll said "readable",
    // because another process may have taken the connection first.
    server.listener.set_nonblocking(true)?;
    for n in 0..threads {
        let server = Arc::clone(&server);
        thread::Builder::new()
            .name(format!("worker-{n}"))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let backend = Arc::clone(&server.backend);
                backend.run_worker(&mut || worker_loop(&server, n));
            })?;
    }
    Ok(())
}

const LISTENER: u64 = 1;
const STOP: u64 = 2;

/// Waits for connections on the shared socket (one worker woken per connection:
/// `EPOLLEXCLUSIVE`) or for the stop, accepts without blocking, and serves. A worker checks
/// for a stop before it accepts, so every connection it accepts is served to the end and a
/// stopping process never drops one; connections it leaves are taken by the group's other
/// daemons.
fn worker_loop(server: &Server, worker: usize) {
    let _running = server.life.worker();
    let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).and_then(|ep| {
        ep.add(
            &server.listener,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER),
        )?;
        ep.add(
            server.life.stop_fd(),
            EpollEvent::new(EpollFlags::EPOLLIN, STOP),
        )?;
        Ok(ep)
    }) {
        Ok(ep) => ep,
        Err(e) => {
            tracing::error!("worker cannot wait for connections (epoll): {e}; exiting");
            std::process::exit(1);
        }
    };
    let mut events = [EpollEvent::empty(); 2];
    loop {
        if server.life.stopping() {
            return;
        }
        match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("waiting for connections failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        if server.life.stopping() {
            return;
        }
        match server.listener.accept() {
            Ok((stream, _)) => serve_connection(server, worker, stream),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => accept_failed(&e),
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
fn serve_connection(server: &Server, worker: usize, stream: UnixStream) {
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
        if server.backend.needs_reload(&req) {
            // Not processed: the module sends it again, to a process with the new code.
            server.life.recycle(&format!(
                "{} changed on disk",
                req.get_str("SCRIPT_FILENAME").unwrap_or_default()
            ));
            let _ = io.retry();
            io.end();
            return;
        }
        let _request = server.life.request(worker, &req, &io);
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
