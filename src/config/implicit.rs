//! Embedded-mode configurations: a `WSGIScriptAlias` (or `WSGIHandlerScript`) with no daemon
//! group is served by an implicit daemon group of its server (one per virtual host that has
//! this module's directives), running as Apache's `User`, instead of failing the
//! configuration. `WSGIRestrictEmbedded On` refuses such configurations, as mod_wsgi does.

use super::{DaemonGroupConfig, ServerConfig};

/// The options of an implicit group before `RSWSGIImplicitDaemonProcess` adds its own: two
/// processes of fifteen threads (mod_wsgi's default thread count), thirty requests at once,
/// about what an embedded-mode site gets from Python's GIL across Apache's children.
pub const IMPLICIT_DEFAULTS: &str = "processes=2 threads=15";

/// Whether `s` has a mount that no daemon group serves.
pub fn needs_implicit_group(s: &ServerConfig) -> bool {
    s.embedded_sections
        || !s.has_process_group_directive
            && (s.aliases.iter().any(|a| a.process_group.is_none())
                || !s.wsgi_handler_lines.is_empty()
                || s.handler_scripts.iter().any(|h| h.process_group.is_none())
                || s.hook_scripts
                    .iter()
                    .any(|(h, _)| h.process_group.is_none()))
}

/// Whether a line of the configuration files gives files mod_wsgi's handler (`AddHandler
/// wsgi-script .wsgi`, `SetHandler wsgi-script`, `AddType application/x-httpd-wsgi .wsgi`,
/// `AddHandler wsgi-script` in `<Files>`...): such files are WSGI scripts, served embedded
/// by mod_wsgi where no group is in force.
pub fn gives_wsgi_handler(directive: &str, args: &str) -> bool {
    let handler_directive = ["AddHandler", "SetHandler", "AddType", "ForceType"]
        .iter()
        .any(|d| d.eq_ignore_ascii_case(directive));
    handler_directive
        && args.split_whitespace().any(|w| {
            let w = w.trim_matches(|c| c == '"' || c == '\'');
            w.eq_ignore_ascii_case("wsgi-script")
                || w.eq_ignore_ascii_case("application/x-httpd-wsgi")
        })
}

/// Gives `s` its implicit group, named `name`: `IMPLICIT_DEFAULTS`, then `options` (the
/// main server's `RSWSGIImplicitDaemonProcess`), and `WSGIPythonPath` as its `python-path`
/// when the options set none. Returns the notice to log, naming what it replaces.
pub fn add_implicit_group(
    s: &mut ServerConfig,
    name: &str,
    options: Option<&str>,
    python_path: Option<&str>,
) -> Result<String, String> {
    let args = format!("{name} {IMPLICIT_DEFAULTS} {}", options.unwrap_or_default());
    let mut group =
        DaemonGroupConfig::parse(&args).map_err(|e| format!("RSWSGIImplicitDaemonProcess: {e}"))?;
    if group.python_path.is_none() {
        group.python_path = python_path.map(str::to_owned);
    }
    let mounts: Vec<String> = s
        .aliases
        .iter()
        .filter(|a| a.process_group.is_none())
        .map(|a| {
            let directive = if a.regex != 0 {
                "WSGIScriptAliasMatch"
            } else {
                "WSGIScriptAlias"
            };
            format!("{directive} {} {}", a.url, a.script)
        })
        .chain(
            s.handler_scripts
                .iter()
                .filter(|h| h.process_group.is_none())
                .map(|h| format!("WSGIHandlerScript {} {}", h.name, h.script)),
        )
        .chain(s.wsgi_handler_lines.iter().map(|(text, _)| text.clone()))
        .chain(
            s.hook_scripts
                .iter()
                .filter(|(h, _)| h.process_group.is_none())
                .map(|(h, _)| format!("{} {}", h.kind.directive(), h.script)),
        )
        .fold(Vec::new(), |mut seen, m| {
            if !seen.contains(&m) {
                seen.push(m);
            }
            seen
        });
    let notice = format!(
        "{} has no daemon process group (embedded mode under mod_wsgi): served by the implicit \
         daemon group '{name}' ({} process(es) x {} thread(s), as Apache's User; tune it with \
         RSWSGIImplicitDaemonProcess, refuse such mounts with WSGIRestrictEmbedded On)",
        mounts.join(", "),
        group.processes,
        group.threads
    );
    s.groups.push((group, "implicit".to_owned()));
    s.implicit_group = Some(name.to_owned());
    Ok(notice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScriptAlias;

    #[test]
    fn a_mount_without_a_group_gets_the_implicit_one() {
        let mut s = ServerConfig {
            aliases: vec![ScriptAlias::parse("/ /srv/site/wsgi.py").unwrap()],
            ..ServerConfig::default()
        };
        assert!(needs_implicit_group(&s));
        let notice = add_implicit_group(
            &mut s,
            "embedded:site:80",
            Some("threads=4"),
            Some("/srv/site"),
        )
        .unwrap();
        assert!(
            notice.contains("WSGIScriptAlias / /srv/site/wsgi.py"),
            "{notice}"
        );
        assert!(notice.contains("'embedded:site:80'"), "{notice}");
        let (g, _) = &s.groups[0];
        assert_eq!((g.processes, g.threads), (2, 4));
        assert_eq!(g.python_path.as_deref(), Some("/srv/site"));
        assert_eq!(s.implicit_group.as_deref(), Some("embedded:site:80"));
        assert!(gives_wsgi_handler("AddHandler", "wsgi-script .wsgi .py"));
        assert!(gives_wsgi_handler("sethandler", "\"wsgi-script\""));
        assert!(gives_wsgi_handler(
            "AddType",
            "application/x-httpd-wsgi .wsgi"
        ));
        assert!(!gives_wsgi_handler("AddHandler", "cgi-script .cgi"));
        assert!(!gives_wsgi_handler("Alias", "/wsgi-script /srv/x"));
        let mut handled = ServerConfig::default();
        let line = "AddHandler wsgi-script .wsgi (at site.conf:3)";
        handled.wsgi_handler_lines.push((line.into(), None));
        assert!(needs_implicit_group(&handled));
        // An auth script with no group (mod_wsgi ran it inside Apache) needs one too.
        let mut auth = ServerConfig::default();
        let h = crate::config::HookScript::parse(crate::config::HookKind::AuthUser, "/a.wsgi");
        auth.hook_scripts.push((h.unwrap(), "here".into()));
        assert!(needs_implicit_group(&auth));
        let notice = add_implicit_group(&mut auth, "embedded:a:80", None, None).unwrap();
        assert!(
            notice.starts_with("WSGIAuthUserScript /a.wsgi has no"),
            "{notice}"
        );
        // A group named by the mount, or WSGIProcessGroup anywhere, means no implicit group.
        let mut t = ServerConfig {
            aliases: vec![ScriptAlias::parse("/ /w.py process-group=g").unwrap()],
            ..ServerConfig::default()
        };
        assert!(!needs_implicit_group(&t));
        t.aliases.push(ScriptAlias::parse("/x /x.py").unwrap());
        t.has_process_group_directive = true;
        assert!(!needs_implicit_group(&t));
        let bad = add_implicit_group(&mut s, "e", Some("bogus=1"), None).unwrap_err();
        assert!(bad.contains("RSWSGIImplicitDaemonProcess"), "{bad}");
    }
}
