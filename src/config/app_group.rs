//! `WSGIApplicationGroup` (and `application-group=`) values, expanded per request as
//! mod_wsgi expands them: `%{GLOBAL}` is `''` (the main interpreter), `%{SERVER}` the server's
//! `host[:port]`, `%{RESOURCE}` (the default) `host[:port]|SCRIPT_NAME`, `%{ENV:NAME}` the
//! request's variable `NAME`. rswsgi runs one interpreter per daemon process whatever the
//! group; the value reaches the application as `mod_wsgi.application_group`.

use super::ScriptAlias;

/// The application group of a request: `spec` as configured (`None`: `%{RESOURCE}`), for a
/// request to `host` on `port` with `script_name`; `env` looks up its variables.
pub fn expand(
    spec: Option<&str>,
    host: &str,
    port: u16,
    script_name: &[u8],
    env: impl Fn(&str) -> Option<Vec<u8>>,
) -> Vec<u8> {
    let server = match port {
        80 | 443 | 0 => host.to_owned(),
        p => format!("{host}:{p}"),
    };
    match spec.unwrap_or("%{RESOURCE}") {
        "%{GLOBAL}" => Vec::new(),
        "%{SERVER}" => server.into_bytes(),
        "%{RESOURCE}" => [server.as_bytes(), b"|", script_name].concat(),
        s if s.starts_with("%{ENV:") && s.ends_with('}') => {
            env(&s[6..s.len() - 1]).unwrap_or_default()
        }
        s => s.as_bytes().to_vec(),
    }
}

/// A warning when two mounts that mod_wsgi would run in separate interpreters (different
/// application groups: by default one per mount) share a daemon group, where rswsgi runs them
/// in one interpreter per process; `None` when there is no such pair.
pub fn shared_interpreter_warning<'a>(
    group: &str,
    mounts: impl IntoIterator<Item = &'a ScriptAlias>,
    configured: impl Fn(&ScriptAlias) -> Option<String>,
) -> Option<String> {
    let key = |a: &ScriptAlias| match a
        .application_group
        .clone()
        .or_else(|| configured(a))
        .as_deref()
    {
        None | Some("%{RESOURCE}") => format!("resource {}", a.url),
        Some(g) => g.to_owned(),
    };
    let mounts: Vec<&ScriptAlias> = mounts.into_iter().collect();
    let first = mounts.first()?;
    let other = mounts
        .iter()
        .find(|a| key(a) != key(first) && a.script != first.script)?;
    Some(format!(
        "daemon group '{group}' serves {} ({}) and {} ({}), which mod_wsgi would run in \
         separate sub-interpreters; rswsgi runs them in one interpreter per process, so they \
         share sys.modules and os.environ (DJANGO_SETTINGS_MODULE ...). Give each its own \
         WSGIDaemonProcess, or application-group=%{{GLOBAL}} to both to say they may share",
        first.script,
        key(first),
        other.script,
        key(other)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions() {
        let env = |n: &str| (n == "SITE").then(|| b"blue".to_vec());
        let e = |spec| String::from_utf8(expand(spec, "example.org", 8080, b"/app", env)).unwrap();
        assert_eq!(e(Some("%{GLOBAL}")), "");
        assert_eq!(e(Some("%{SERVER}")), "example.org:8080");
        assert_eq!(e(None), "example.org:8080|/app");
        assert_eq!(e(Some("%{RESOURCE}")), "example.org:8080|/app");
        assert_eq!(e(Some("%{ENV:SITE}")), "blue");
        assert_eq!(e(Some("%{ENV:NONE}")), "");
        assert_eq!(e(Some("named")), "named");
        assert_eq!(
            expand(None, "example.org", 80, b"", |_| None),
            b"example.org|"
        );
    }

    #[test]
    fn two_mounts_in_one_group_are_warned_about() {
        let a = ScriptAlias::parse("/a /srv/a.wsgi process-group=g").unwrap();
        let b = ScriptAlias::parse("/b /srv/b.wsgi process-group=g").unwrap();
        let none = |_: &ScriptAlias| None;
        let w = shared_interpreter_warning("g", [&a, &b], none).unwrap();
        assert!(
            w.contains("/srv/a.wsgi") && w.contains("/srv/b.wsgi"),
            "{w}"
        );
        let global = |s: &str| {
            ScriptAlias::parse(&format!(
                "{s} process-group=g application-group=%{{GLOBAL}}"
            ))
            .unwrap()
        };
        let (c, d) = (global("/c /srv/c.wsgi"), global("/d /srv/d.wsgi"));
        assert_eq!(shared_interpreter_warning("g", [&c, &d], none), None);
        assert_eq!(shared_interpreter_warning("g", [&a], none), None);
        // WSGIApplicationGroup %{GLOBAL} in the server (or the scripts' <Directory>) says so too.
        let global = |_: &ScriptAlias| Some("%{GLOBAL}".to_owned());
        assert_eq!(shared_interpreter_warning("g", [&a, &b], global), None);
    }
}
