//! Hook calls (`rswsgi_protocol::hook`): the functions of mod_wsgi's auth scripts and of
//! `WSGIDispatchScript`, run here in the daemon for a check the module relays. The script
//! is loaded (and reloaded) like a WSGI script, under the group's script policy; the reply
//! goes back as the headers of a 200 response, or a failure as an `Error` frame (the module
//! answers 500).

use rswsgi_protocol::Code;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyString};
use rswsgi_protocol::{HookCall, HookReply};

use super::environ::{self, latin1};
use super::errors::{log_exception, type_name, ErrorLog};
use super::input::Input;
use super::WsgiBackend;
use crate::conn::{Request, RequestIo};
use crate::request::Head;

/// Answers one hook call.
pub fn serve(
    py: Python<'_>,
    backend: &WsgiBackend,
    req: &Request,
    call: HookCall<'_>,
    io: &RequestIo,
) {
    let reply = answer(py, backend, req, call, io);
    let sent = match reply {
        Ok(reply) => {
            let head = Head {
                status: 200,
                reason: b"OK".to_vec(),
                headers: reply.to_headers(),
            };
            py.detach(|| io.finish(Some(&head), b""))
        }
        Err(message) => {
            tracing::error!(
                "{}: {message} (request for {})",
                Code::DaemonHookFailed,
                req.url()
            );
            py.detach(|| io.fail(&message))
        }
    };
    if let Err(e) = sent {
        tracing::info!(
            "could not send the answer of {} to the module: {e}",
            call.name()
        );
    }
}

fn answer(
    py: Python<'_>,
    backend: &WsgiBackend,
    req: &Request,
    call: HookCall<'_>,
    io: &RequestIo,
) -> Result<HookReply, String> {
    use std::os::unix::ffi::OsStrExt;
    let script = req
        .get(rswsgi_protocol::hook::SCRIPT)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
        .ok_or_else(|| format!("{} call without its script", call.name()))?;
    backend
        .config
        .policy
        .check(&script)
        .map_err(|refused| refused.to_string())?;
    let module = backend.scripts.get(py, &script).map_err(|e| {
        e.log(py);
        e.to_string()
    })?;
    let input = Bound::new(py, Input::new(io.clone())).map_err(|e| e.to_string())?;
    let errors = Bound::new(py, ErrorLog::new(Some(req.meta.request_id.clone())))
        .map_err(|e| e.to_string())?;
    let env = environ::build(py, req, &backend.config, input, errors).map_err(|e| e.to_string())?;
    let ctx = Context {
        py,
        module: &module,
        script: &script,
        env: env.into_any(),
    };
    match call {
        HookCall::CheckPassword { user, password } => ctx.check_password(user, password),
        HookCall::RealmHash { user, realm } => ctx.realm_hash(user, realm),
        HookCall::GroupsForUser { user } => ctx.groups_for_user(user),
        HookCall::AllowAccess { host } => ctx.allow_access(host),
        HookCall::Dispatch => ctx.dispatch(),
    }
}

/// What every hook function is called with.
struct Context<'a, 'py> {
    py: Python<'py>,
    module: &'a Bound<'py, PyModule>,
    script: &'a std::path::Path,
    env: Bound<'py, PyAny>,
}

impl<'py> Context<'_, 'py> {
    /// Calls the script's function `name` with the environ and `args` (latin-1 strings, as
    /// mod_wsgi passes them); `Ok(None)` when the script has no such function and it is
    /// optional.
    fn call(
        &self,
        name: &str,
        args: &[&[u8]],
        required: bool,
    ) -> Result<Option<Bound<'py, PyAny>>, String> {
        let func = match self.module.getattr_opt(name) {
            Ok(Some(f)) => f,
            Ok(None) if !required => return Ok(None),
            Ok(None) => {
                return Err(format!(
                    "the script '{}' has no '{name}' function",
                    self.script.display()
                ))
            }
            Err(e) => return Err(self.raised(name, &e)),
        };
        let mut all = vec![self.env.clone()];
        for a in args {
            all.push(latin1(self.py, a).map_err(|e| e.to_string())?.into_any());
        }
        let args = pyo3::types::PyTuple::new(self.py, all).map_err(|e| e.to_string())?;
        let result = func.call1(args);
        crate::fork::exit_if_forked();
        result.map(Some).map_err(|e| self.raised(name, &e))
    }

    fn raised(&self, name: &str, e: &PyErr) -> String {
        let context = format!("'{name}' in '{}' raised", self.script.display());
        log_exception(self.py, e, &context);
        context
    }

    fn wrong(&self, name: &str, want: &str, got: &Bound<'_, PyAny>) -> String {
        format!(
            "'{name}' in '{}' must return {want}, not {}",
            self.script.display(),
            type_name(got)
        )
    }

    fn check_password(&self, user: &[u8], password: &[u8]) -> Result<HookReply, String> {
        const NAME: &str = "check_password";
        let r = self.call(NAME, &[user, password], true)?.expect("required");
        if r.is_none() {
            return Ok(HookReply::Unknown);
        }
        if let Ok(b) = r.cast::<PyBool>() {
            return Ok(if b.is_true() {
                HookReply::Granted
            } else {
                HookReply::Denied
            });
        }
        match r.cast::<PyString>() {
            Ok(s) => {
                let name = s.to_str().map_err(|e| e.to_string())?;
                if name.is_empty() {
                    return Err(format!(
                        "'{NAME}' in '{}' returned an empty user name",
                        self.script.display()
                    ));
                }
                Ok(HookReply::GrantedAs(name.as_bytes().to_vec()))
            }
            Err(_) => Err(self.wrong(NAME, "True, False, None or a user name", &r)),
        }
    }

    fn realm_hash(&self, user: &[u8], realm: &[u8]) -> Result<HookReply, String> {
        const NAME: &str = "get_realm_hash";
        let r = self.call(NAME, &[user, realm], true)?.expect("required");
        if r.is_none() {
            return Ok(HookReply::Unknown);
        }
        match text_bytes(&r) {
            Some(h) if !h.is_empty() => Ok(HookReply::RealmHash(h)),
            Some(_) => Err(format!(
                "'{NAME}' in '{}' returned an empty hash",
                self.script.display()
            )),
            None => Err(self.wrong(NAME, "None or a latin-1 string", &r)),
        }
    }

    fn groups_for_user(&self, user: &[u8]) -> Result<HookReply, String> {
        const NAME: &str = "groups_for_user";
        let r = self.call(NAME, &[user], true)?.expect("required");
        let iter = r
            .try_iter()
            .map_err(|_| self.wrong(NAME, "an iterable of group names", &r))?;
        let mut groups = Vec::new();
        for item in iter {
            let item = item.map_err(|e| self.raised(NAME, &e))?;
            let name = text_bytes(&item).ok_or_else(|| {
                self.wrong(NAME, "group names as latin-1 strings or bytes", &item)
            })?;
            groups.push(name);
        }
        Ok(HookReply::Groups(groups))
    }

    fn allow_access(&self, host: &[u8]) -> Result<HookReply, String> {
        const NAME: &str = "allow_access";
        let r = self.call(NAME, &[host], true)?.expect("required");
        if r.is_none() {
            return Ok(HookReply::Unknown);
        }
        match r.cast::<PyBool>() {
            Ok(b) if b.is_true() => Ok(HookReply::Granted),
            Ok(_) => Ok(HookReply::Denied),
            Err(_) => Err(self.wrong(NAME, "True, False or None", &r)),
        }
    }

    fn dispatch(&self) -> Result<HookReply, String> {
        let mut chosen = [None, None, None];
        let names = ["process_group", "application_group", "callable_object"];
        for (slot, name) in chosen.iter_mut().zip(names) {
            let Some(r) = self.call(name, &[], false)? else {
                continue;
            };
            if r.is_none() {
                continue;
            }
            *slot = Some(text_bytes(&r).ok_or_else(|| self.wrong(name, "None or a string", &r))?);
        }
        let [process_group, application_group, callable_object] = chosen;
        Ok(HookReply::Dispatch {
            process_group,
            application_group,
            callable_object,
        })
    }
}

/// A `str` as latin-1 bytes (mod_wsgi's rule for names handed back to Apache), or `bytes`.
fn text_bytes(v: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    if let Ok(b) = v.cast::<PyBytes>() {
        return Some(b.as_bytes().to_vec());
    }
    let s = v.cast::<PyString>().ok()?;
    let encoded = s.call_method1("encode", ("latin-1",)).ok()?;
    Some(encoded.cast::<PyBytes>().ok()?.as_bytes().to_vec())
}
