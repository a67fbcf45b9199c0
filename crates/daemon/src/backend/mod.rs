//! Request handlers. The server speaks the protocol; a [`Backend`] turns one request into one
//! response: the Python WSGI backend, or the native (`libloading`) one for handler libraries.

pub mod native;
pub mod wsgi;

use crate::conn::{Request, RequestIo};

/// Something that serves requests. One instance is shared by all worker threads.
pub trait Backend: Send + Sync + 'static {
    /// Runs a worker thread's whole loop, `run`, in whatever per-thread context the backend
    /// needs. `run` blocks (accept, socket reads) almost all the time.
    fn run_worker(&self, run: &mut (dyn FnMut() + Send)) {
        run()
    }

    /// Serves one request: reads its body through `io` as the application asks for it, and
    /// ends with [`RequestIo::finish`] or [`RequestIo::fail`]. A handler that returns without
    /// either gets an `Error` frame sent for it.
    fn handle(&self, req: &Request, io: &RequestIo);
}
