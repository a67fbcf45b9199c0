//! Worker threads. All of a process's workers wait on one epoll set holding the group's
//! shared listening socket, the stop pipe and every idle connection: the module keeps
//! connections open between requests (a pool per Apache child), and an idle connection costs
//! no thread. A worker takes whichever is ready — a new connection to accept, or the next
//! request on an idle one —, serves it, and parks the connection again.

use rswsgi_protocol::Code;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use parking_lot::Mutex;
use rswsgi_protocol::ReadError;

use crate::backend::Backend;
use crate::conn::{Conn, IoError, Outcome, Shared};
use crate::fork;
use crate::gate::Gate;
use crate::lifecycle::Lifecycle;
use crate::log::RequestScope;
use crate::sockopts::SocketBuffers;

/// Stack size of worker threads unless `stack-size` says otherwise: Python code can recurse
/// deeply.
const STACK_SIZE: usize = 8 << 20;

const LISTENER: u64 = 0;
const STOP: u64 = 1;
/// Idle connections get event ids from here up.
const FIRST_CONN: u64 = 2;
/// Most new connections left waiting to answer their challenge; past it the oldest is closed.
/// The module answers at once, so only a peer that is not Apache lingers there: without the
/// cap, a local process could hold every descriptor the daemon may open.
const MAX_UNANSWERED: usize = 64;

/// Everything a worker needs.
pub struct Server {
    /// The inherited listening socket, shared with the group's other daemon processes.
    pub listener: UnixListener,
    /// The request handler.
    pub backend: Arc<dyn Backend>,
    /// Stop flag and in-progress count.
    pub life: Arc<Lifecycle>,
    /// The check every new connection must pass.
    gate: Arc<Gate>,
    epoll: Epoll,
    /// Idle connections by event id, parked between requests.
    idle: Mutex<HashMap<u64, Arc<Shared>>>,
    /// The ids of parked connections that have not answered their challenge yet, oldest first.
    unanswered: Mutex<VecDeque<u64>>,
    next_id: AtomicU64,
    /// `send-buffer-size` and `receive-buffer-size` of accepted connections.
    buffers: SocketBuffers,
}

impl Server {
    /// Sets up the epoll set: the listener (`EPOLLEXCLUSIVE`: one of the group's processes
    /// is woken per connection) and the stop pipe.
    pub fn new(
        listener: UnixListener,
        backend: Arc<dyn Backend>,
        life: Arc<Lifecycle>,
        gate: Gate,
    ) -> io::Result<Self> {
        // Shared by the group's daemons; accept must not block once epoll said "readable",
        // because another process may have taken the connection first.
        listener.set_nonblocking(true)?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(
            &listener,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE, LISTENER),
        )?;
        epoll.add(life.stop_fd(), EpollEvent::new(EpollFlags::EPOLLIN, STOP))?;
        // Kept for the life of the process: a process the application forks loses them.
        fork::register(listener.as_raw_fd());
        fork::register(epoll.0.as_raw_fd());
        Ok(Server {
            listener,
            backend,
            life,
            gate: Arc::new(gate),
            epoll,
            idle: Mutex::new(HashMap::new()),
            unanswered: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(FIRST_CONN),
            buffers: SocketBuffers::default(),
        })
    }

    /// Sets `send-buffer-size` and `receive-buffer-size` for the connections it accepts.
    pub fn with_buffers(mut self, buffers: SocketBuffers) -> Self {
        self.buffers = buffers;
        self
    }

    /// Parks a connection just accepted until it answers its challenge, closing the oldest
    /// such connection when too many are waiting.
    fn park_new(&self, shared: Arc<Shared>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = {
            let mut waiting = self.unanswered.lock();
            waiting.push_back(id);
            if waiting.len() > MAX_UNANSWERED {
                waiting.pop_front()
            } else {
                None
            }
        };
        self.park(shared, Some(id), true);
        let Some(old) = evicted else { return };
        let mut idle = self.idle.lock();
        if idle.get(&old).is_some_and(|s| !s.answered()) {
            let dropped = idle.remove(&old);
            drop(idle);
            if let Some((pid, uid)) = dropped
                .as_ref()
                .and_then(|s| crate::gate::peer_of_fd(s.fd()))
            {
                tracing::warn!("{}: closed a connection from pid {pid} (uid {uid}) that had not answered its challenge: more than {MAX_UNANSWERED} are waiting", Code::UnansweredChallenges);
            }
        }
    }

    /// Parks `shared` until its next request arrives (under a new id when `id` is `None`, or
    /// when `fresh`: a connection not in the epoll set yet).
    fn park(&self, shared: Arc<Shared>, id: Option<u64>, fresh: bool) {
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT;
        // SAFETY: the descriptor belongs to `shared`, which the idle map keeps alive while it
        // is registered; closing it (dropping the last Arc) removes it from the set.
        let fd = unsafe { BorrowedFd::borrow_raw(shared.fd()) };
        let (id, fresh) = match id {
            Some(id) => (id, fresh),
            None => (self.next_id.fetch_add(1, Ordering::Relaxed), true),
        };
        let mut event = EpollEvent::new(flags, id);
        self.idle.lock().insert(id, Arc::clone(&shared));
        let result = if fresh {
            self.epoll.add(fd, event)
        } else {
            self.epoll.modify(fd, &mut event)
        };
        if let Err(e) = result {
            // Not watched, it would never be served again (and a request the module sends on
            // it would wait out the socket timeout): out of the map, so that dropping `shared`
            // closes it and the module reconnects.
            self.idle.lock().remove(&id);
            tracing::error!(
                "{}: cannot wait on an idle connection: {e}; closing it",
                Code::IdleWaitFailed
            );
        }
    }

    /// Gives back the response-ring pages of connections idle for [`crate::conn::IDLE_TRIM`].
    pub fn trim_idle_rings(&self) {
        let idle: Vec<Arc<Shared>> = self.idle.lock().values().cloned().collect();
        for shared in idle {
            shared.trim_ring(crate::conn::IDLE_TRIM);
        }
    }

    /// Declines every idle connection (`Retry`), as the process stops: a request the module
    /// sends on one meanwhile is sent again elsewhere.
    pub fn decline_idle(&self) {
        for shared in self.idle.lock().values() {
            shared.decline();
        }
    }
}

/// Starts `threads` worker threads, each with a stack of `stack` bytes (`stack-size`; Rust
/// raises a size under the platform's minimum to it), else 8 MiB. They run until the process
/// stops.
pub fn spawn_workers(server: Arc<Server>, threads: usize, stack: Option<usize>) -> io::Result<()> {
    for n in 0..threads {
        let server = Arc::clone(&server);
        thread::Builder::new()
            .name(format!("worker-{n}"))
            .stack_size(stack.unwrap_or(STACK_SIZE))
            .spawn(move || {
                let backend = Arc::clone(&server.backend);
                backend.run_worker(&mut || worker_loop(&server, n));
            })?;
    }
    Ok(())
}

/// Takes one ready thing at a time and serves it. A worker checks for a stop before it takes
/// anything, so every connection it accepts and every request it reads is served to the end;
/// what it leaves is taken by the group's other daemons (new connections) or declined
/// (idle ones).
fn worker_loop(server: &Server, worker: usize) {
    let _running = server.life.worker();
    let mut events = [EpollEvent::empty(); 1];
    loop {
        if server.life.stopping() {
            return;
        }
        match server.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("{}: waiting for connections failed: {e}", Code::PollFailed);
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        if server.life.stopping() {
            return;
        }
        match events[0].data() {
            STOP => return,
            LISTENER => match server.listener.accept() {
                Ok((stream, _)) => {
                    server.buffers.apply_or_warn(&stream);
                    // Served once it answers the challenge, which it does with its first
                    // request: until then it waits in the epoll set like an idle connection.
                    if let Some(conn) = Conn::accept(stream, Arc::clone(&server.gate)) {
                        server.park_new(Shared::new(conn));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => accept_failed(&e),
            },
            id => {
                let Some(shared) = server.idle.lock().remove(&id) else {
                    continue;
                };
                if !shared.answered() {
                    server.unanswered.lock().retain(|&w| w != id);
                }
                let flags = events[0].events();
                let readable = flags.contains(EpollFlags::EPOLLIN);
                if readable
                    || !flags.intersects(
                        EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR,
                    )
                {
                    serve_connection(server, worker, shared, Some(id));
                }
                // Otherwise the module closed it: dropping `shared` closes our end.
            }
        }
    }
}

fn accept_failed(e: &io::Error) {
    match e.raw_os_error() {
        Some(libc::ECONNABORTED) | Some(libc::EINTR) => {}
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM) => {
            tracing::error!("{}: accept failed: {e}; retrying", Code::AcceptFailed);
            thread::sleep(Duration::from_millis(100));
        }
        Some(libc::EBADF) | Some(libc::ENOTSOCK) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            tracing::error!(
                "{}: accept on the listening socket failed: {e}; exiting",
                Code::ListenerBroken
            );
            std::process::exit(1);
        }
        _ => {
            tracing::error!("{}: accept failed: {e}", Code::AcceptFailed);
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Serves requests on a connection while they are already there, then parks it (or drops it
/// when it broke, the module closed it, or the process is stopping).
fn serve_connection(server: &Server, worker: usize, shared: Arc<Shared>, id: Option<u64>) {
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
            server.life.recycle(
                "script_reload",
                &format!(
                    "{} changed on disk",
                    crate::backend::requested_script(&req)
                        .unwrap_or_default()
                        .display()
                ),
            );
            let _ = io.retry();
            io.end();
            return;
        }
        if let Some(waited) = queued_too_long(&req, server.life.limits().queue_timeout) {
            let message = format!(
                "queue-timeout exceeded: the request waited {:.1}s for a worker",
                waited.as_secs_f64()
            );
            tracing::error!(
                request_id = req.meta.request_id.as_str(),
                "{}: {} {message}; answered 504 without running the application",
                Code::QueueTimeout,
                req.url()
            );
            io.give_up(&message);
            io.end();
            return;
        }
        let request = server.life.request(worker, &req, &io);
        let scope = RequestScope::enter(Some(req.meta.request_id.clone()));
        let began = std::time::Instant::now();
        tracing::debug!(
            "worker {worker} serves {} {} (script {})",
            req.get_str("REQUEST_METHOD").unwrap_or_default(),
            req.url(),
            crate::backend::requested_script(&req)
                .map_or_else(String::new, |p| p.display().to_string())
        );
        let handled = catch_unwind(AssertUnwindSafe(|| server.backend.handle(&req, &io)));
        tracing::debug!(
            "worker {worker} done with {} after {:.1} ms",
            req.url(),
            began.elapsed().as_secs_f64() * 1000.0
        );
        // A process the application forked never goes on from here.
        fork::exit_if_forked();
        if handled.is_err() {
            tracing::error!(
                "{}: the handler panicked serving {}",
                Code::HandlerPanicked,
                req.url()
            );
        }
        drop(scope);
        drop(request);
        if io.end() == Outcome::Close || server.life.stopping() {
            return;
        }
        if !shared.has_buffered() {
            server.park(shared, id, false);
            return;
        }
    }
}

/// How long the request waited since Apache read it, when that is over `limit`.
fn queued_too_long(req: &crate::conn::Request, limit: Option<Duration>) -> Option<Duration> {
    let limit = limit?;
    let start = req.meta.request_start?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let waited = now.checked_sub(start)?;
    (waited > limit).then_some(waited)
}

fn log_read_error(e: &IoError) {
    match e {
        // Logged, naming the peer, where it was refused.
        IoError::Refused(_) => {}
        IoError::Read(ReadError::Io(io)) => {
            tracing::info!("connection from the module failed: {io}")
        }
        _ => tracing::error!(
            "{}: bad frame from the module, closing the connection: {e}",
            Code::BadFrame
        ),
    }
}
