//! What a request is sent to its daemon group as: the parts of the environ the module
//! decides (group, split), encoded with Apache's CGI table and the typed fields (script,
//! callable, request id and start, application group) into one `RequestHead`. Shared by
//! relayed requests and hook calls.

use rswsgi_protocol::Code;
use rswsgi_protocol::{BodyKind, RequestMeta};
use tracing::Level;

use super::{request_method, DirConfig};
use crate::environ::{environ, ProxyPolicy, RequestFacts};
use crate::ffi;
use crate::httpd::log;
use crate::httpd::request::Request;

/// Where a request goes and what the application is told about its mount.
pub struct Target<'a> {
    /// The daemon process group.
    pub group: &'a str,
    /// `SCRIPT_NAME`.
    pub script_name: &'a [u8],
    /// `PATH_INFO`.
    pub path_info: &'a [u8],
    /// `mod_wsgi.callable_object`.
    pub callable: &'a str,
    /// The application group as configured (`%{...}` unexpanded; `None`: mod_wsgi's
    /// default).
    pub application_group: Option<&'a str>,
    /// `WSGIPassAuthorization` (or `pass-authorization=`) is on.
    pub pass_authorization: bool,
    /// The `WSGIHandlerScript` serving the request, or empty.
    pub handler_script: &'a str,
    /// A hook call: the credentials never travel in the environ (mod_wsgi leaves them out of
    /// an auth script's environ whatever `CGIPassAuth` says).
    pub hook: bool,
}

/// Now, in microseconds since the epoch (as `r->request_time`).
fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// Encodes the request head (numbered 0: each connection it is sent on gets its own number,
/// `set_request_seq`), with `extra` carrier pairs appended; `Err` is the status to answer
/// (logged).
pub fn encode_head(
    r: &mut Request,
    dir: &DirConfig,
    t: &Target<'_>,
    body: BodyKind,
    extra: &[(&'static str, &[u8])],
) -> Result<Vec<u8>, i32> {
    r.add_common_vars();
    if t.pass_authorization {
        if let Some(auth) = r.headers_in().get("Authorization").map(str::to_owned) {
            r.subprocess_env()
                .set(r.pool(), b"HTTP_AUTHORIZATION", auth.as_bytes());
        }
    }
    let request_id = r.log_id().to_vec();
    let (host, port) = (r.server_hostname().to_owned(), r.server_port());
    let app_group =
        crate::config::app_group::expand(t.application_group, &host, port, t.script_name, |name| {
            r.subprocess_env().get(name).map(|v| v.as_bytes().to_vec())
        });
    let method = request_method(r, dir.map_head_to_get.unwrap_or_default());
    let request_start = u64::try_from(r.request_time_us()).unwrap_or(0);
    let queue_start = now_us().to_string();
    let (listener_host, listener_port) = r.listener();
    let listener_port = listener_port.to_string();
    let server_pid = std::process::id().to_string();
    let facts = RequestFacts {
        script_name: t.script_name,
        path_info: t.path_info,
        method,
        protocol: r.protocol(),
        query: r.args(),
        request_uri: r.unparsed_uri(),
        scheme: r.scheme(),
        process_group: t.group.as_bytes(),
        queue_start: queue_start.as_bytes(),
        handler: r.handler().unwrap_or_default().as_bytes(),
        listener_host,
        listener_port: listener_port.as_bytes(),
        server_pid: server_pid.as_bytes(),
        connection_id: r.connection_log_id(),
        pass_authorization: if t.pass_authorization { b"1" } else { b"0" },
        handler_script: t.handler_script.as_bytes(),
    };
    let proxy = ProxyPolicy {
        headers: dir.trusted_proxy_headers.as_deref(),
        proxies: dir.trusted_proxies.as_deref(),
    };
    let cgi = r.subprocess_env();
    let meta = RequestMeta {
        script: cgi.get_bytes("SCRIPT_FILENAME").unwrap_or_default(),
        callable: t.callable.as_bytes(),
        request_id: &request_id,
        request_start,
        application_group: &app_group,
    };
    let mut env = environ(cgi.entries(), &facts, proxy);
    if t.hook {
        env.unset("HTTP_AUTHORIZATION");
        env.unset("HTTP_PROXY_AUTHORIZATION");
    }
    for (key, value) in extra {
        env.set(key, *value);
    }
    // A typical head is 1-2 KiB: start with room for it rather than grow through 64, 128…
    let mut head = Vec::with_capacity(4096);
    if let Err(e) = rswsgi_protocol::encode_request_head(&mut head, 0, body, &meta, env.pairs()) {
        log::request(
            r,
            Level::ERROR,
            &format!(
                "{}: request too large to forward to the daemon: {e}",
                Code::HeadTooLarge
            ),
        );
        return Err(ffi::HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE as i32);
    }
    Ok(head)
}
