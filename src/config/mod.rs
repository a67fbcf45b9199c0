//! Directive parsing and the server/directory configuration records. Pure Rust: nothing here
//! calls into httpd, so it is unit-tested as plain code.

pub mod app_group;
pub mod catalogue;
mod daemon_group;
pub mod daemon_options;
mod handler_script;
mod hook_script;
mod implicit;
mod plan;
pub(crate) mod proxy;
mod python_flags;
mod reload;
mod script_alias;
pub(crate) mod words;

pub use daemon_group::{
    ignored_reason, root_refused, DaemonGroupConfig, Principal, DEFAULT_SHUTDOWN_TIMEOUT,
};
pub use daemon_options::ScriptOwner;
pub use handler_script::{parse_import_script, HandlerScript, HANDLER_CALLABLE};
pub use hook_script::{HookKind, HookScript, HookScripts};
pub use implicit::{add_implicit_group, gives_wsgi_handler, needs_implicit_group};
pub use plan::{group_scripts, GroupScripts};
pub use proxy::{parse_proxy_headers, parse_trusted_proxies, HeadMapping, Subnet};
pub use python_flags::PythonFlags;
pub use script_alias::{DirectoryTarget, ScriptAlias};

/// The process group mod_wsgi runs embedded mode in (`%{GLOBAL}`): rswsgi's implicit daemon
/// group.
pub const EMBEDDED_GROUP: &str = "%{GLOBAL}";

/// A place in the configuration files, for error messages.
pub type Location = String;

/// Per-server (virtual host) configuration.
#[derive(Debug, Default, Clone)]
pub struct ServerConfig {
    /// `WSGIScriptAlias` mounts, this server's first, then those inherited from the main server.
    pub aliases: Vec<ScriptAlias>,
    /// `WSGIHandlerScript`s (in any section of this server), this server's first, then the
    /// main server's: a handler name means one script per server.
    pub handler_scripts: Vec<HandlerScript>,
    /// `WSGIDaemonProcess` groups defined in this server's context.
    pub groups: Vec<(DaemonGroupConfig, Location)>,
    /// Process group names referenced by directives in this server, with where, checked once the
    /// whole configuration has been read.
    pub group_refs: Vec<(String, Location)>,
    /// True when some `WSGIProcessGroup` appears anywhere in this server.
    pub has_process_group_directive: bool,
    /// A `WSGIProcessGroup %{GLOBAL}` (embedded mode under mod_wsgi) is in its sections: the
    /// server needs its implicit group whatever else it has.
    pub embedded_sections: bool,
    /// `WSGIRestrictStdin` (main server only).
    pub restrict_stdin: Option<bool>,
    /// `WSGIRestrictStdout` (main server only).
    pub restrict_stdout: Option<bool>,
    /// `WSGIVerboseDebugging` (main server only): the daemons log their debug lines.
    pub verbose_debugging: Option<bool>,
    /// `<Directory>` sections with a `WSGIProcessGroup`: (directory, group). The group's
    /// daemons may load scripts under the directory (`AddHandler wsgi-script`).
    pub group_dirs: Vec<(String, String)>,
    /// `WSGISocketPrefix`.
    pub socket_prefix: Option<String>,
    /// `RSWSGIDaemonExecutable`: where `rswsgi-daemon` lives.
    pub daemon_executable: Option<String>,
    /// `RSWSGIHealthDrainFile`: while this file exists, `?health` answers 503.
    pub health_drain_file: Option<String>,
    /// `WSGIPythonHome`: the python-home of groups that set none.
    pub python_home: Option<String>,
    /// `WSGIScriptReloading` (default On).
    pub script_reloading: Option<bool>,
    /// `WSGIRestrictEmbedded` (main server): On refuses mounts with no daemon group.
    pub restrict_embedded: Option<bool>,
    /// `WSGIPythonPath` (main server): the implicit groups' `python-path`.
    pub python_path: Option<String>,
    /// `RSWSGIImplicitDaemonProcess` (main server): the implicit groups' options.
    pub implicit_options: Option<String>,
    /// `WSGISlowRequests SECS` (main server): the `slow-requests=` of groups that set none.
    pub slow_requests: Option<String>,
    /// `WSGIPythonOptimize`, `WSGIDontWriteBytecode`, `WSGIPythonHashSeed`,
    /// `WSGIPythonWarnings` (main server): every daemon's interpreter settings.
    pub python_flags: PythonFlags,
    /// `WSGIImportScript`s: (script, process group, application group), preloaded by the
    /// group's daemons at start-up.
    pub import_scripts: Vec<(String, String, Option<String>)>,
    /// The implicit daemon group serving this server's mounts that name none (set at
    /// `check_config`, see [`add_implicit_group`]).
    pub implicit_group: Option<String>,
    /// The hook scripts (auth, access, dispatch) named in this server's configuration files
    /// (not `.htaccess`), wherever they are: the groups may load them.
    pub hook_scripts: Vec<(HookScript, Location)>,
    /// The configuration lines that give files the `wsgi-script` handler (`AddHandler
    /// wsgi-script .wsgi`; found at `check_config`), each as `DIRECTIVE ARGS (at FILE:LINE)`
    /// with the `<Directory>` it is in, if any.
    pub wsgi_handler_lines: Vec<(String, Option<String>)>,
    /// `WSGIApplicationGroup` at server level, and in `<Directory /path>` sections (path,
    /// group): the application group of the mounts that name none.
    pub application_groups: Vec<(Option<String>, String)>,
}

impl ServerConfig {
    /// The daemon group a configured name means: `%{GLOBAL}` (mod_wsgi's embedded mode) is
    /// this server's implicit group (`None` when it has none), any other name itself.
    pub fn named_group(&self, name: &str) -> Option<String> {
        match name {
            EMBEDDED_GROUP => self.implicit_group.clone(),
            other => Some(other.to_owned()),
        }
    }

    /// The `WSGIApplicationGroup` configured for `script` outside its mount: that of the
    /// deepest `<Directory>` holding it, else the server's.
    pub fn application_group_for(&self, script: &str) -> Option<String> {
        let path = std::path::Path::new(script);
        self.application_groups
            .iter()
            .filter(|(dir, _)| dir.as_deref().is_none_or(|d| path.starts_with(d)))
            .max_by_key(|(dir, _)| dir.as_ref().map_or(0, String::len) + 1)
            .map(|(_, g)| g.clone())
    }
}

impl ServerConfig {
    /// Merges a virtual host's configuration over the main server's.
    pub fn merge(base: &ServerConfig, vhost: &ServerConfig) -> ServerConfig {
        let mut aliases = vhost.aliases.clone();
        aliases.extend(base.aliases.iter().cloned());
        let mut handler_scripts = vhost.handler_scripts.clone();
        handler_scripts.extend(base.handler_scripts.iter().cloned());
        ServerConfig {
            aliases,
            handler_scripts,
            groups: vhost.groups.clone(),
            group_refs: vhost.group_refs.clone(),
            has_process_group_directive: vhost.has_process_group_directive
                || base.has_process_group_directive,
            embedded_sections: vhost.embedded_sections || base.embedded_sections,
            restrict_stdin: base.restrict_stdin,
            restrict_stdout: base.restrict_stdout,
            verbose_debugging: base.verbose_debugging,
            group_dirs: vhost
                .group_dirs
                .iter()
                .chain(&base.group_dirs)
                .cloned()
                .collect(),
            socket_prefix: vhost
                .socket_prefix
                .clone()
                .or_else(|| base.socket_prefix.clone()),
            daemon_executable: vhost
                .daemon_executable
                .clone()
                .or_else(|| base.daemon_executable.clone()),
            health_drain_file: vhost
                .health_drain_file
                .clone()
                .or_else(|| base.health_drain_file.clone()),
            python_home: vhost
                .python_home
                .clone()
                .or_else(|| base.python_home.clone()),
            script_reloading: vhost.script_reloading.or(base.script_reloading),
            restrict_embedded: vhost.restrict_embedded.or(base.restrict_embedded),
            python_path: vhost
                .python_path
                .clone()
                .or_else(|| base.python_path.clone()),
            implicit_options: vhost
                .implicit_options
                .clone()
                .or_else(|| base.implicit_options.clone()),
            python_flags: base.python_flags.clone(),
            slow_requests: base.slow_requests.clone(),
            import_scripts: vhost
                .import_scripts
                .iter()
                .chain(&base.import_scripts)
                .cloned()
                .collect(),
            implicit_group: None,
            hook_scripts: vhost
                .hook_scripts
                .iter()
                .chain(&base.hook_scripts)
                .cloned()
                .collect(),
            wsgi_handler_lines: Vec::new(),
            application_groups: vhost
                .application_groups
                .iter()
                .chain(&base.application_groups)
                .cloned()
                .collect(),
        }
    }

    /// The first mount matching `uri`: its index, and the `(SCRIPT_NAME, PATH_INFO)` split.
    /// `regex_match` answers for `WSGIScriptAliasMatch` mounts (the FFI side matches them): the
    /// end of the match and the expanded script, which is then returned as well.
    pub fn match_uri<'u>(
        &self,
        uri: &'u [u8],
        mut regex_match: impl FnMut(&ScriptAlias) -> Option<(usize, Vec<u8>)>,
    ) -> Option<UriMatch<'u>> {
        self.aliases.iter().enumerate().find_map(|(index, a)| {
            if a.regex != 0 {
                let (end, script) = regex_match(a)?;
                let (script_name, path_info) = uri.split_at(end.min(uri.len()));
                return Some(UriMatch {
                    index,
                    script_name,
                    path_info,
                    expanded: Some(script),
                });
            }
            a.split(uri).map(|(script_name, path_info)| UriMatch {
                index,
                script_name,
                path_info,
                expanded: None,
            })
        })
    }

    /// The `WSGIHandlerScript` for Apache handler `name`, if one is configured.
    pub fn handler_script(&self, name: &str) -> Option<&HandlerScript> {
        self.handler_scripts.iter().find(|h| h.name == name)
    }
}

/// The mount a request URI falls under (see [`ServerConfig::match_uri`]).
#[derive(Debug)]
pub struct UriMatch<'u> {
    /// Its index in [`ServerConfig::aliases`].
    pub index: usize,
    /// `SCRIPT_NAME`.
    pub script_name: &'u [u8],
    /// `PATH_INFO`.
    pub path_info: &'u [u8],
    /// For a `WSGIScriptAliasMatch`, the target with the captures substituted.
    pub expanded: Option<Vec<u8>>,
}

/// Per-directory configuration.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DirConfig {
    /// `WSGIProcessGroup`.
    pub process_group: Option<String>,
    /// `WSGICallableObject`.
    pub callable: Option<String>,
    /// `WSGIApplicationGroup`.
    pub application_group: Option<String>,
    /// `WSGIPassAuthorization`: pass `Authorization` to the app as `HTTP_AUTHORIZATION`.
    pub pass_authorization: Option<bool>,
    /// `WSGIChunkedRequest`: accept chunked request bodies (otherwise 411).
    pub chunked_request: Option<bool>,
    /// `WSGIMapHEADToGET`.
    pub map_head_to_get: Option<HeadMapping>,
    /// `WSGIErrorOverride`: an error status from the application (400-599) is answered with
    /// Apache's error document for it (`ErrorDocument`), the application's body discarded.
    pub error_override: Option<bool>,
    /// `WSGITrustedProxyHeaders`, as CGI variable names (`HTTP_X_FORWARDED_FOR`).
    pub trusted_proxy_headers: Option<Vec<String>>,
    /// `WSGITrustedProxies`: the peers whose proxy headers are believed (all, when unset).
    pub trusted_proxies: Option<Vec<Subnet>>,
    /// The auth, access and dispatch scripts.
    pub hooks: HookScripts,
    /// `WSGIRestrictProcess`: the only daemon groups requests here may go to.
    pub restrict_process: Option<Vec<String>>,
    /// `WSGIEnableSendfile`: send `wsgi.file_wrapper` files with `sendfile` (unset: as
    /// Apache's `EnableSendfile` says).
    pub enable_sendfile: Option<bool>,
    /// `WSGIIgnoreActivity`: requests here do not count as activity for
    /// `inactivity-timeout`.
    pub ignore_activity: Option<bool>,
}

impl DirConfig {
    /// Whether `WSGIRestrictProcess` lets requests here go to `group` (`%{GLOBAL}` in the
    /// list stands for `implicit`, the server's implicit group).
    pub fn may_use_group(&self, group: &str, implicit: Option<&str>) -> bool {
        self.restrict_process.as_ref().is_none_or(|allowed| {
            allowed
                .iter()
                .any(|a| a == group || a == "%{GLOBAL}" && implicit == Some(group))
        })
    }

    /// Merges a nested section's configuration over its parent's.
    pub fn merge(base: &DirConfig, child: &DirConfig) -> DirConfig {
        DirConfig {
            process_group: child
                .process_group
                .clone()
                .or_else(|| base.process_group.clone()),
            callable: child.callable.clone().or_else(|| base.callable.clone()),
            application_group: child
                .application_group
                .clone()
                .or_else(|| base.application_group.clone()),
            pass_authorization: child.pass_authorization.or(base.pass_authorization),
            chunked_request: child.chunked_request.or(base.chunked_request),
            map_head_to_get: child.map_head_to_get.or(base.map_head_to_get),
            error_override: child.error_override.or(base.error_override),
            trusted_proxy_headers: child
                .trusted_proxy_headers
                .clone()
                .or_else(|| base.trusted_proxy_headers.clone()),
            trusted_proxies: child
                .trusted_proxies
                .clone()
                .or_else(|| base.trusted_proxies.clone()),
            hooks: HookScripts::merge(&base.hooks, &child.hooks),
            restrict_process: child
                .restrict_process
                .clone()
                .or_else(|| base.restrict_process.clone()),
            enable_sendfile: child.enable_sendfile.or(base.enable_sendfile),
            ignore_activity: child.ignore_activity.or(base.ignore_activity),
        }
    }
}

/// Checks the configuration of every server once all of it has been read: group names are
/// unique, every referenced group exists, and every mount can reach a daemon group.
pub fn check_all<'a>(
    servers: impl IntoIterator<Item = &'a ServerConfig> + Clone,
) -> Result<(), String> {
    let mut defined: Vec<(&str, &str)> = Vec::new();
    for s in servers.clone() {
        for (g, at) in &s.groups {
            if let Some((_, first)) = defined.iter().find(|(n, _)| *n == g.name) {
                return Err(format!(
                    "WSGIDaemonProcess {} at {at}: a daemon group of that name is already defined at {first}",
                    g.name
                ));
            }
            defined.push((&g.name, at));
        }
    }
    for s in servers {
        for (name, at) in &s.group_refs {
            if !defined.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "{at}: process group '{name}' is not defined by any WSGIDaemonProcess directive"
                ));
            }
        }
        let served = s.has_process_group_directive || s.implicit_group.is_some();
        for h in &s.handler_scripts {
            if h.process_group.is_none() && !served {
                return Err(format!(
                    "WSGIHandlerScript {} {}: no daemon process group is assigned and \
                     WSGIRestrictEmbedded is On, so add process-group=NAME (or WSGIProcessGroup NAME)",
                    h.name, h.script
                ));
            }
        }
        for a in &s.aliases {
            if a.process_group.is_none() && !served {
                return Err(format!(
                    "WSGIScriptAlias {} {}: no daemon process group is assigned and \
                     WSGIRestrictEmbedded is On (no embedded mode), so add process-group=NAME (or \
                     WSGIProcessGroup NAME) naming a WSGIDaemonProcess",
                    a.url, a.script
                ));
            }
        }
    }
    Ok(())
}

/// The listening socket of daemon group `group`, for the httpd parent `pid`. Named after the
/// group (not its position), so it stays the same across graceful restarts; characters other
/// than `[A-Za-z0-9_-]` become `_`, and a hash of the exact name keeps names that map to the
/// same text apart.
pub fn socket_path(prefix: &str, pid: u32, group: &str) -> String {
    let readable: String = group
        .chars()
        .take(24)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // FNV-1a: stable across builds and platforms.
    let hash = group.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{prefix}.{pid}.{readable}.{hash:08x}.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(groups: &[&str], aliases: &[&str], refs: &[&str]) -> ServerConfig {
        ServerConfig {
            groups: groups
                .iter()
                .map(|g| (DaemonGroupConfig::parse(g).unwrap(), "line 1".to_string()))
                .collect(),
            aliases: aliases
                .iter()
                .map(|a| ScriptAlias::parse(a).unwrap())
                .collect(),
            group_refs: refs
                .iter()
                .map(|r| (r.to_string(), "WSGIProcessGroup at line 2".into()))
                .collect(),
            has_process_group_directive: !refs.is_empty(),
            ..Default::default()
        }
    }

    #[test]
    fn valid_config_passes() {
        let s = server(&["g"], &["/ /a.py process-group=g"], &["g"]);
        assert_eq!(check_all([&s]), Ok(()));
    }

    #[test]
    fn undefined_group_is_named() {
        let s = server(&["g"], &[], &["nope"]);
        let e = check_all([&s]).unwrap_err();
        assert!(
            e.contains("'nope'") && e.contains("WSGIDaemonProcess"),
            "{e}"
        );
    }

    #[test]
    fn embedded_mode_refused() {
        // (Under WSGIRestrictEmbedded On: otherwise check_config gave it an implicit group.)
        let mut s = server(&["g"], &["/ /a.py"], &[]);
        assert!(check_all([&s])
            .unwrap_err()
            .contains("WSGIRestrictEmbedded is On"));
        s.implicit_group = Some("embedded:x:80".into());
        assert!(check_all([&s]).is_ok());
    }

    #[test]
    fn duplicate_groups_refused() {
        let a = server(&["g"], &[], &[]);
        let b = server(&["g processes=2"], &[], &[]);
        assert!(check_all([&a, &b]).unwrap_err().contains("already defined"));
    }

    #[test]
    fn merge_prefers_vhost_and_appends_base_aliases() {
        let base = server(&[], &["/ /base.py process-group=g"], &[]);
        let vhost = server(&[], &["/v /v.py process-group=g"], &[]);
        let m = ServerConfig::merge(&base, &vhost);
        let found = m.match_uri(b"/v/x", |_| None).unwrap();
        let (i, script_name, path_info) = (found.index, found.script_name, found.path_info);
        assert_eq!(
            (m.aliases[i].script.as_str(), script_name, path_info),
            ("/v.py", &b"/v"[..], &b"/x"[..])
        );
        assert_eq!(
            m.aliases[m.match_uri(b"/other", |_| None).unwrap().index].script,
            "/base.py"
        );
        let d = DirConfig::merge(
            &DirConfig {
                process_group: Some("a".into()),
                ..Default::default()
            },
            &DirConfig {
                callable: Some("app".into()),
                ..Default::default()
            },
        );
        assert_eq!(d.process_group.as_deref(), Some("a"));
        assert_eq!(d.callable.as_deref(), Some("app"));
    }

    #[test]
    fn socket_paths_are_per_parent_and_group() {
        let p = socket_path("/run/wsgi", 42, "localhost:8000");
        assert!(
            p.starts_with("/run/wsgi.42.localhost_8000.") && p.ends_with(".sock"),
            "{p}"
        );
        assert_eq!(p, socket_path("/run/wsgi", 42, "localhost:8000"), "stable");
        assert_ne!(
            socket_path("/run/wsgi", 42, "a:b"),
            socket_path("/run/wsgi", 42, "a_b")
        );
        assert_ne!(p, socket_path("/run/wsgi", 43, "localhost:8000"));
    }
}
