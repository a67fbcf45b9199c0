//! The request being served (`request_rec`).

use std::os::raw::c_char;

use super::pool::Pool;
use super::table::Table;
use super::{cbytes, cstr};
use crate::ffi;

/// The output brigade of one request, created on first use.
#[derive(Default)]
pub struct OutBrigade(Option<*mut ffi::apr_bucket_brigade>);

/// A borrowed `request_rec`, used only on the thread serving it.
pub struct Request(*mut ffi::request_rec);

impl Request {
    /// Wraps the request httpd passed to a hook.
    ///
    /// # Safety
    /// `r` must be NULL or a live request for as long as the wrapper is used, on this thread.
    pub unsafe fn from_ptr(r: *mut ffi::request_rec) -> Option<Self> {
        (!r.is_null()).then_some(Request(r))
    }

    /// The raw pointer, for the log and shim functions.
    pub fn as_ptr(&self) -> *mut ffi::request_rec {
        self.0
    }

    fn rec(&self) -> &ffi::request_rec {
        // SAFETY: live for the wrapper's lifetime (from_ptr contract).
        unsafe { &*self.0 }
    }

    fn rec_mut(&mut self) -> &mut ffi::request_rec {
        // SAFETY: as in `rec`; the serving thread is the only user of the request.
        unsafe { &mut *self.0 }
    }

    /// The request pool.
    pub fn pool(&self) -> Pool {
        // SAFETY: the request pool lives as long as the request.
        unsafe { Pool::from_ptr(self.rec().pool) }
    }

    /// The decoded, normalised URI path (`r->uri`).
    /// Bytes, not text: what `%XX` decodes to need not be UTF-8.
    pub fn uri(&self) -> Option<&[u8]> {
        // SAFETY: request strings live in the request pool.
        unsafe { cbytes(self.rec().uri) }
    }

    /// The request line's target as sent (`r->unparsed_uri`).
    pub fn unparsed_uri(&self) -> &[u8] {
        // SAFETY: as in `uri`.
        unsafe { cbytes(self.rec().unparsed_uri) }.unwrap_or_default()
    }

    /// The query string without `?` (`r->args`).
    pub fn args(&self) -> &[u8] {
        // SAFETY: as in `uri`.
        unsafe { cbytes(self.rec().args) }.unwrap_or_default()
    }

    /// The method (`r->method`).
    pub fn method(&self) -> &[u8] {
        // SAFETY: as in `uri`.
        unsafe { cbytes(self.rec().method) }.unwrap_or_default()
    }

    /// The protocol (`r->protocol`), e.g. `HTTP/1.1`.
    pub fn protocol(&self) -> &[u8] {
        // SAFETY: as in `uri`.
        unsafe { cbytes(self.rec().protocol) }.unwrap_or_default()
    }

    /// True for a HEAD request: Apache sends headers only.
    pub fn header_only(&self) -> bool {
        self.rec().header_only != 0
    }

    /// `r->method_number` (`M_GET` for GET and HEAD).
    pub fn method_number(&self) -> i32 {
        self.rec().method_number
    }

    /// True when the first output filter is a content filter (DEFLATE, INCLUDES, ...), one
    /// that may need the whole response to get its headers right.
    pub fn first_output_filter_is_content(&self) -> bool {
        // SAFETY: live request; the shim only reads r->output_filters and its filter record.
        unsafe { ffi::rswsgi_first_filter_is_content(self.0) != 0 }
    }

    /// The client connection's socket descriptor, if it has one of its own (not an HTTP/2
    /// stream). Only for polling; httpd owns it.
    pub fn client_fd(&self) -> Option<std::os::fd::RawFd> {
        // SAFETY: live request; the shim only reads the connection's socket.
        let fd = unsafe { ffi::rswsgi_client_fd(self.0) };
        (fd >= 0).then_some(fd)
    }

    /// Sets the timeout of writes to the client (the connection's socket timeout, Apache's
    /// `Timeout` by default) to `us` microseconds; returns the previous timeout to put back,
    /// or `None` (nothing changed) for a connection without a socket of its own (HTTP/2).
    pub fn swap_client_timeout(&mut self, us: i64) -> Option<i64> {
        // SAFETY: live request; the shim only sets the timeout of the connection's socket,
        // which only this thread uses while the handler runs.
        let old = unsafe { ffi::rswsgi_swap_client_timeout(self.0, us) };
        (old >= 0).then_some(old)
    }

    /// Marks the client connection as gone: httpd sends nothing more on it.
    pub fn mark_aborted(&mut self) {
        // SAFETY: the connection outlives the request and only this thread serves it.
        unsafe { (*self.rec().connection).aborted = 1 };
    }

    /// The client connection is not kept alive after this request.
    pub fn close_connection(&mut self) {
        // SAFETY: a request's connection lives longer than the request; only this thread
        // serves it.
        unsafe { (*self.rec().connection).keepalive = ffi::AP_CONN_CLOSE };
    }

    /// The handler name chosen for this request.
    pub fn handler(&self) -> Option<&str> {
        // SAFETY: as in `uri`.
        unsafe { cstr(self.rec().handler) }
    }

    /// Whether `Options ExecCGI` is in force for the request (`ap_allow_options`).
    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: the request is live; ap_allow_options only reads its per-dir configuration.
        let options = unsafe { ffi::ap_allow_options(self.0) };
        options & ffi::OPT_EXECCGI as i32 != 0
    }

    /// What the directory walk found at `r->filename`: `None` for nothing there, else whether
    /// it is a directory.
    pub fn file_is_dir(&self) -> Option<bool> {
        let t = self.rec().finfo.filetype;
        (t != ffi::APR_NOFILE).then_some(t == ffi::APR_DIR)
    }

    /// Sets the handler name (must be a static string).
    pub fn set_handler(&mut self, handler: &'static std::ffi::CStr) {
        self.rec_mut().handler = handler.as_ptr();
    }

    /// Declares that the request's resource accepts `methods` (httpd's method numbers,
    /// `ffi::M_GET` …): the core lists them in the `Allow` header of a 405 or 501 it answers
    /// the request with.
    pub fn allow_methods(&mut self, methods: &[u32]) {
        let mask = methods.iter().fold(0i64, |m, &n| m | (1i64 << n));
        // SAFETY: httpd creates r->allowed_methods with the request (ap_read_request), in its
        // pool; the serving thread is its only user.
        if let Some(list) = unsafe { self.rec_mut().allowed_methods.as_mut() } {
            list.method_mask |= mask;
        }
    }

    /// Sets `r->filename` (copied into the request pool).
    pub fn set_filename(&mut self, name: &str) {
        self.set_filename_bytes(name.as_bytes());
    }

    /// `r->filename`, from bytes (a file name need not be UTF-8).
    pub fn set_filename_bytes(&mut self, name: &[u8]) {
        let p = self.pool().strdup(name);
        self.rec_mut().filename = p;
    }

    /// The path after the script (`r->path_info`).
    pub fn path_info(&self) -> Option<&[u8]> {
        // SAFETY: as in `uri`.
        unsafe { cbytes(self.rec().path_info) }
    }

    /// Sets `r->path_info` (copied into the request pool).
    pub fn set_path_info(&mut self, info: &[u8]) {
        let p = self.pool().strdup(info);
        self.rec_mut().path_info = p;
    }

    /// The authenticated user (`r->user`).
    pub fn user(&self) -> Option<&[u8]> {
        // SAFETY: as in `uri`.
        unsafe { cbytes(self.rec().user) }
    }

    /// Sets `r->user` (copied into the request pool).
    pub fn set_user(&mut self, user: &[u8]) {
        let p = self.pool().strdup(user);
        self.rec_mut().user = p;
    }

    /// The client's host name when Apache has looked it up (`HostnameLookups`), else its
    /// address: what mod_wsgi hands an access script.
    pub fn remote_host_or_ip(&self) -> Vec<u8> {
        let rec = self.rec();
        // SAFETY: the connection and per-dir config live as long as the request; with
        // REMOTE_HOST, ap_get_remote_host returns NULL or a connection-pool string.
        let host = unsafe {
            cbytes(ffi::ap_get_remote_host(
                rec.connection,
                rec.per_dir_config.cast(),
                ffi::REMOTE_HOST as i32,
                std::ptr::null_mut(),
            ))
        };
        // SAFETY: useragent_ip is NULL or a pool string.
        host.or_else(|| unsafe { cbytes(rec.useragent_ip) })
            .unwrap_or_default()
            .to_vec()
    }

    /// Request headers.
    pub fn headers_in(&self) -> Table {
        // SAFETY: the request's tables live as long as the request.
        unsafe { Table::from_ptr(self.rec().headers_in) }
    }

    /// Response headers.
    pub fn headers_out(&self) -> Table {
        // SAFETY: the request's tables live as long as the request.
        unsafe { Table::from_ptr(self.rec().headers_out) }
    }

    /// The CGI environment being built for the request.
    pub fn subprocess_env(&self) -> Table {
        // SAFETY: as in `headers_out`.
        unsafe { Table::from_ptr(self.rec().subprocess_env) }
    }

    /// Per-request notes shared between hooks.
    pub fn notes(&self) -> Table {
        // SAFETY: as in `headers_out`.
        unsafe { Table::from_ptr(self.rec().notes) }
    }

    /// The per-directory configuration vector.
    pub fn per_dir_config(&self) -> *mut ffi::ap_conf_vector_t {
        self.rec().per_dir_config
    }

    /// The virtual host's configuration vector.
    pub fn server_config(&self) -> *mut ffi::ap_conf_vector_t {
        // SAFETY: a request's server_rec lives for the whole configuration generation.
        unsafe { (*self.rec().server).module_config }
    }

    /// Apache's `Timeout` for this server, in microseconds.
    pub fn server_timeout_us(&self) -> i64 {
        // SAFETY: as in `server_config`.
        unsafe { (*self.rec().server).timeout }
    }

    /// When Apache read the request line, in microseconds since the epoch (`r->request_time`).
    pub fn request_time_us(&self) -> i64 {
        self.rec().request_time
    }

    /// The request's log id (`%L`) if something has generated it already (rswsgi does as it
    /// builds the request for the daemon): never generates one.
    pub fn logged_id(&self) -> Option<&[u8]> {
        // SAFETY: NULL or a pool string.
        unsafe { cbytes(self.rec().log_id) }.filter(|id| !id.is_empty())
    }

    /// The request's log id (`%L`), generated if nothing has asked for it yet.
    pub fn log_id(&mut self) -> &[u8] {
        if self.rec().log_id.is_null() {
            let mut id: *const c_char = std::ptr::null();
            // SAFETY: live request and connection; the hook stores a pool string in `id`.
            unsafe { ffi::ap_run_generate_log_id(self.rec().connection, self.0, &mut id) };
            self.rec_mut().log_id = id;
        }
        // SAFETY: NULL or a pool string.
        unsafe { cbytes(self.rec().log_id) }.unwrap_or_default()
    }

    /// The server's host name (`r->server->server_hostname`).
    pub fn server_hostname(&self) -> &str {
        // SAFETY: a live request's server record; the name is NULL or a configuration string.
        unsafe { cstr((*self.rec().server).server_hostname) }.unwrap_or("localhost")
    }

    /// The port the request came to, as Apache reports it (`ap_get_server_port`).
    pub fn server_port(&self) -> u16 {
        // SAFETY: the request is live; ap_get_server_port only reads it.
        unsafe { ffi::ap_get_server_port(self.0) }
    }

    /// The address the connection came in on (`c->local_addr`): its host name as `Listen`
    /// gave it (empty when it gave an address) and its port.
    pub fn listener(&self) -> (&[u8], u16) {
        // SAFETY: a live request's connection and its local address live as long as the
        // connection; the host name is NULL or a pool string.
        unsafe {
            let addr = (*self.rec().connection).local_addr;
            if addr.is_null() {
                return (b"", 0);
            }
            (cbytes((*addr).hostname).unwrap_or_default(), (*addr).port)
        }
    }

    /// The connection's log id, when a module has given it one (`c->log_id`).
    pub fn connection_log_id(&self) -> Option<&[u8]> {
        // SAFETY: a live request's connection; its log id is NULL or a pool string.
        unsafe { cbytes((*self.rec().connection).log_id) }.filter(|id| !id.is_empty())
    }

    /// `http` or `https`, as Apache's `ap_http_scheme`.
    pub fn scheme(&self) -> &[u8] {
        // SAFETY: live request; the hook returns a static or pool string.
        unsafe { cbytes(ffi::ap_run_http_scheme(self.0)) }.unwrap_or(b"http")
    }

    /// Fills `subprocess_env` with the common CGI variables (`ap_add_common_vars`).
    pub fn add_common_vars(&mut self) {
        // SAFETY: live request on its serving thread.
        unsafe { ffi::ap_add_common_vars(self.0) }
    }

    /// `ap_setup_client_block` with the given chunked policy; `Err(status)` on refusal.
    pub fn setup_client_block(&mut self, policy: u32) -> Result<(), i32> {
        // SAFETY: live request.
        match unsafe { ffi::ap_setup_client_block(self.0, policy as i32) } {
            0 => Ok(()),
            status => Err(status),
        }
    }

    /// True when the request has a body (`r->read_chunked` or `r->remaining`).
    pub fn body_expected(&self) -> (bool, i64) {
        (self.rec().read_chunked != 0, self.rec().remaining)
    }

    /// The response status (`r->status`).
    pub fn status(&self) -> i32 {
        self.rec().status
    }

    /// Sets the response status and, if `reason` is not empty, the status line.
    pub fn set_status(&mut self, status: u16, reason: &[u8]) {
        self.rec_mut().status = i32::from(status);
        if !reason.is_empty() {
            let mut line = format!("{status} ").into_bytes();
            line.extend_from_slice(reason);
            let p = self.pool().strdup(&line);
            self.rec_mut().status_line = p;
        }
    }

    /// Forgets response headers set so far (after the application's were refused).
    pub fn headers_out_clear(&mut self) {
        // SAFETY: live request; clearing a table only resets its element count.
        unsafe { ffi::apr_table_clear(self.rec().headers_out) }
    }

    /// Sets the response content type (`ap_set_content_type`).
    pub fn set_content_type(&mut self, ct: &[u8]) {
        let p = self.pool().strdup(ct);
        // SAFETY: live request; p is a pool string that outlives the response.
        unsafe { ffi::ap_set_content_type(self.0, p) }
    }

    /// Sets the response content length (`ap_set_content_length`).
    pub fn set_content_length(&mut self, len: i64) {
        // SAFETY: live request.
        unsafe { ffi::ap_set_content_length(self.0, len) }
    }

    /// The brigade kept in `out` for this request's output, created on first use.
    fn out_brigade(&self, out: &mut OutBrigade) -> *mut ffi::apr_bucket_brigade {
        *out.0.get_or_insert_with(|| {
            // SAFETY: live request; the brigade lives in the request pool.
            unsafe { ffi::rswsgi_out_brigade(self.0) }
        })
    }

    /// Sends `data` to the client through the output filters and flushes it, without copying
    /// it aside (see `rswsgi_write_flush`); `out` is this request's output brigade.
    pub fn write_flush(&mut self, out: &mut OutBrigade, data: &[u8]) -> Result<(), ()> {
        self.write_flush_shared(out, data.into())
    }

    /// Like [`write_flush`](Self::write_flush), for bytes in shared memory: the brigade's
    /// FLUSH has the filters write them out, or copy them aside (a transient bucket's
    /// set-aside), before this returns.
    pub fn write_flush_shared(
        &mut self,
        out: &mut OutBrigade,
        data: crate::relay::io::SharedBytes<'_>,
    ) -> Result<(), ()> {
        if data.is_empty() {
            return Ok(());
        }
        let bb = self.out_brigade(out);
        // SAFETY: live request; bb belongs to it; the bytes stay mapped for the call
        // (`SharedBytes`), and the FLUSH makes the filters write or copy them before
        // returning. The shim only passes the address on (a transient bucket).
        let rv = unsafe { ffi::rswsgi_write_flush(self.0, bb, data.as_ptr().cast(), data.len()) };
        if rv == 0 {
            Ok(())
        } else {
            Err(())
        }
    }

    /// Passes `len` bytes from `offset` of the file `fd` to the output filters as file buckets
    /// (sent with `sendfile` when Apache's `EnableSendfile` is on). The descriptor is closed
    /// with the request pool, once the core has written it. `allow_mmap` lets the core map
    /// the file instead; only safe for a file that cannot shrink (a sealed memfd).
    pub fn send_file(
        &mut self,
        out: &mut OutBrigade,
        fd: std::os::fd::OwnedFd,
        offset: u64,
        len: u64,
        allow_mmap: bool,
        allow_sendfile: bool,
    ) -> Result<(), ()> {
        use std::os::fd::IntoRawFd;
        let bb = self.out_brigade(out);
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), usize::try_from(len)) else {
            return Err(());
        };
        // SAFETY: live request; bb belongs to it; the shim takes ownership of the descriptor
        // (a pool cleanup closes it after the core is done with the buckets).
        let rv = unsafe {
            ffi::rswsgi_send_file(
                self.0,
                bb,
                fd.into_raw_fd(),
                offset,
                len,
                i32::from(allow_mmap),
                i32::from(allow_sendfile),
            )
        };
        if rv == 0 {
            Ok(())
        } else {
            Err(())
        }
    }

    /// Whether Apache's `EnableSendfile` is On for this request.
    pub fn core_sendfile(&self) -> bool {
        // SAFETY: live request; the shim only reads the core's per-dir configuration.
        unsafe { ffi::rswsgi_core_sendfile(self.0) != 0 }
    }

    /// Ends a response whose source failed after output began: the client sees an aborted
    /// connection, never a clean end.
    pub fn abort_response(&mut self) {
        // SAFETY: live request on its serving thread; the shim only builds and passes a brigade.
        unsafe { ffi::rswsgi_abort_response(self.0) }
    }
}
