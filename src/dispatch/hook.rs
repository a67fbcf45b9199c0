//! Hook calls for a request: run a function of an auth, access or dispatch script in a daemon
//! group and bring back its answer ([`rswsgi_protocol::hook`]). Nothing is cached: each check
//! Apache asks for is one call.

use rswsgi_protocol::Code;
use rswsgi_protocol::{BodyKind, HookCall, HookReply};
use tracing::Level;

use super::target::{encode_head, Target};
use super::{call, dir_config, forward, group_endpoint, request_group, restricted, server_config};
use crate::config::HookScript;
use crate::ffi;
use crate::httpd::log;
use crate::httpd::request::Request;

/// The daemon group a hook script's functions run in: its `process-group=`, else the group
/// the request would go to (see [`request_group`]); `%{GLOBAL}` is the implicit group.
fn hook_group(r: &Request, h: &HookScript, fallback: Option<&str>) -> Result<String, i32> {
    let cfg = server_config(r);
    let dir = dir_config(r).cloned().unwrap_or_default();
    let group = match h.process_group.as_deref() {
        Some(g) => cfg.named_group(g),
        None => fallback
            .map(str::to_owned)
            .or_else(|| request_group(r, cfg, &dir)),
    };
    group.ok_or_else(|| {
        log::request(
            r,
            Level::ERROR,
            &format!(
                "{}: {} {}: no daemon process group to run it in here (rswsgi runs it in a \
                 daemon, never inside Apache); add process-group=NAME or a WSGIProcessGroup",
                Code::HookNoGroup,
                h.kind.directive(),
                h.script
            ),
        );
        ffi::HTTP_INTERNAL_SERVER_ERROR as i32
    })
}

/// Runs `call` of hook script `h` for request `r`; `Err` is the status to answer (logged).
pub fn call(
    r: &mut Request,
    h: &HookScript,
    call: HookCall<'_>,
    group: Option<&str>,
) -> Result<HookReply, i32> {
    let group = hook_group(r, h, group)?;
    let dir = dir_config(r).cloned().unwrap_or_default();
    restricted(r, server_config(r), &dir, &group)?;
    let endpoint = group_endpoint(r, &group)?;
    let uri = r.uri().unwrap_or(b"/").to_vec();
    let script_name = uri
        .strip_suffix(r.path_info().unwrap_or_default())
        .unwrap_or(&uri)
        .to_vec();
    let path_info = uri[script_name.len()..].to_vec();
    let target = Target {
        group: &group,
        script_name: &script_name,
        path_info: &path_info,
        callable: "",
        application_group: h
            .application_group
            .as_deref()
            .or(dir.application_group.as_deref()),
        pass_authorization: false,
        handler_script: "",
        hook: true,
    };
    let mut extra = call.carriers();
    extra.push((rswsgi_protocol::hook::SCRIPT, h.script.as_bytes()));
    let mut head = encode_head(r, &dir, &target, BodyKind::None, &extra)?;
    let result = forward(r, &endpoint, &group, &mut head, |_, link, wire| {
        call::run(link, wire, &call)
    })?;
    result.map_err(|e| {
        log::request(
            r,
            Level::ERROR,
            &format!(
                "{}: {} {} ({} in daemon group '{group}'): {e}",
                Code::HookFailed,
                h.kind.directive(),
                h.script,
                call.name()
            ),
        );
        e.status() as i32
    })
}

/// What a dispatch script chose for a request (`None`: keep what the configuration says).
#[derive(Debug, Default)]
pub struct Dispatched {
    /// The daemon process group.
    pub process_group: Option<String>,
    /// The application group (unexpanded, like a configured one).
    pub application_group: Option<String>,
    /// The callable's name.
    pub callable_object: Option<String>,
}

/// Runs the `WSGIDispatchScript` `h` for a request bound for `group`.
pub fn dispatch(r: &mut Request, h: &HookScript, group: &str) -> Result<Dispatched, i32> {
    let reply = call(r, h, HookCall::Dispatch, Some(group))?;
    let HookReply::Dispatch {
        process_group,
        application_group,
        callable_object,
    } = reply
    else {
        return Err(ffi::HTTP_BAD_GATEWAY as i32);
    };
    let text = |v: Option<Vec<u8>>| v.map(|v| String::from_utf8_lossy(&v).into_owned());
    let cfg = server_config(r);
    // mod_wsgi's embedded mode ('' or %{GLOBAL}): the implicit group.
    let process_group = text(process_group).and_then(|g| match g.as_str() {
        "" => cfg.implicit_group.clone(),
        g => cfg.named_group(g),
    });
    Ok(Dispatched {
        process_group,
        application_group: text(application_group),
        callable_object: text(callable_object).filter(|c| !c.is_empty()),
    })
}
