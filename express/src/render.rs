//! Rendering `conf/httpd.conf.in` and `conf/apachectl.in` with `{{name}}` substitution.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Result};

use rswsgi_protocol::daemon_spec::flags;

use crate::config::ServerConfig;

/// The httpd.conf template.
pub const HTTPD_CONF_TEMPLATE: &str = include_str!("../../conf/httpd.conf.in");
/// The apachectl template.
pub const APACHECTL_TEMPLATE: &str = include_str!("../../conf/apachectl.in");

/// Most request threads per Apache child (Apache's default `ThreadLimit`).
const MAX_THREADS_PER_CHILD: u32 = 64;

/// How Apache's request threads are split into child processes for `max_clients`: at least
/// two children (a second listener measurably helps on a busy server) of at most
/// [`MAX_THREADS_PER_CHILD`] threads each. Returns (children, threads per child); their
/// product covers `max_clients`.
fn mpm_split(max_clients: u32) -> (u32, u32) {
    let max_clients = max_clients.max(2);
    let children = max_clients.div_ceil(MAX_THREADS_PER_CHILD).max(2);
    (children, max_clients.div_ceil(children))
}

/// Replaces every `{{name}}` in `template` with `values[name]`; a placeholder with no
/// value is an error, so a template and its renderer cannot drift apart silently.
pub fn substitute(template: &str, values: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unterminated {{{{ in template");
        };
        let name = &after[..end];
        match values.get(name) {
            Some(value) => out.push_str(value),
            None => bail!("template placeholder {{{{{name}}}}} has no value"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A word for Apache's configuration parser (`ap_getword_conf`): as is when it has
/// no blanks or quotes, else in double quotes with `"` and `\` escaped.
pub fn conf_word(word: &str) -> Result<String> {
    if word.contains(['\n', '\r', '\0']) {
        bail!("{word:?}: a line break or NUL cannot go into httpd.conf");
    }
    if !word.is_empty() && !word.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        return Ok(word.to_owned());
    }
    let escaped = word.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!("\"{escaped}\""))
}

/// A path as a word for Apache's configuration parser ([`conf_word`]); it must be UTF-8.
pub fn conf_path(path: &Path) -> Result<String> {
    match path.to_str() {
        Some(s) => conf_word(s),
        None => bail!("{}: path is not UTF-8", path.display()),
    }
}

/// A word for `sh`, in single quotes.
pub fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The `WSGIDaemonProcess` arguments: group name, then mod_wsgi's `key=value` options.
pub fn daemon_process_args(c: &ServerConfig) -> Result<String> {
    let mut args = vec![
        conf_word(&c.process_group())?,
        format!("processes={}", c.processes),
        format!("threads={}", c.threads),
        conf_word(&format!("display-name={}", c.daemon.display_name()))?,
        conf_word(&format!("home={}", path_str(&c.working_directory)?))?,
    ];
    if let Some(home) = &c.python_home {
        args.push(conf_word(&format!("python-home={}", path_str(home)?))?);
    }
    if !c.python_path.is_empty() {
        let joined = c
            .python_path
            .iter()
            .map(|p| path_str(p))
            .collect::<Result<Vec<_>>>()?
            .join(":");
        args.push(conf_word(&format!("python-path={joined}"))?);
    }
    if let Some(id) = &c.identity {
        args.push(conf_word(&format!("user={}", id.user))?);
        args.push(conf_word(&format!("group={}", id.group))?);
    }
    let request_timeout = flags::REQUEST_TIMEOUT.option();
    args.push(format!("{request_timeout}={}", c.timeouts.request_timeout));
    args.push(format!("socket-timeout={}", c.timeouts.socket_timeout));
    args.extend(c.daemon.wsgi_options()?);
    for option in &c.daemon_options {
        args.push(conf_word(option)?);
    }
    Ok(args.join(" "))
}

fn path_str(path: &Path) -> Result<&str> {
    match path.to_str() {
        Some(s) => Ok(s),
        None => bail!("{}: path is not UTF-8", path.display()),
    }
}

/// The Apache modules every generated server loads (each as `mod_NAME.so`, guarded by
/// `<IfModule !NAME_module>`): mod_wsgi-express's set, with Debian's names.
pub const STANDARD_MODULES: &[&str] = &[
    "unixd",
    "log_config",
    "access_compat",
    "authn_core",
    "authn_file",
    "authz_core",
    "authz_host",
    "authz_user",
    "authz_groupfile",
    "auth_basic",
    "mime",
    "alias",
    "dir",
    "env",
    "setenvif",
    "headers",
    "filter",
    "deflate",
    "rewrite",
    "status",
    "reqtimeout",
];

/// The guarded `LoadModule` lines of [`STANDARD_MODULES`].
fn standard_modules(modules_dir: &str) -> String {
    let mut out = String::new();
    for name in STANDARD_MODULES {
        let _ = writeln!(
            out,
            "<IfModule !{name}_module>\n  LoadModule {name}_module {modules_dir}/mod_{name}.so\n</IfModule>"
        );
    }
    out
}

/// The generated `httpd.conf`.
pub fn render_httpd_conf(c: &ServerConfig) -> Result<String> {
    let root = &c.server_root;
    let (server_limit, threads_per_child) = mpm_split(c.max_clients);
    let mut user_directives = String::new();
    if let Some(id) = &c.identity {
        writeln!(user_directives, "User {}", conf_word(&id.user)?)?;
        writeln!(user_directives, "Group {}", conf_word(&id.group)?)?;
    }
    let mut extra = String::new();
    for file in &c.include_files {
        writeln!(extra, "Include {}", conf_path(file)?)?;
    }
    for line in &c.extra_directives {
        writeln!(extra, "{line}")?;
    }
    let script_dir = c.script.parent().unwrap_or(Path::new("/"));
    let mount_point = match c.mount_point.trim_end_matches('/') {
        "" => "/".to_owned(),
        m => m.to_owned(),
    };

    let mut v: BTreeMap<&str, String> = BTreeMap::new();
    v.insert("script", conf_path(&c.script)?);
    v.insert("script_dir", conf_path(script_dir)?);
    v.insert("server_root", conf_path(root)?);
    v.insert("server_name", conf_word(&c.listen_address())?);
    v.insert("listen", conf_word(&c.listen_address())?);
    v.insert("pid_file", conf_path(&c.pid_file())?);
    v.insert("mpm", c.process.mpm().to_owned());
    v.insert("prefork_start", c.max_clients.clamp(1, 8).to_string());
    v.insert("user_directives", user_directives);
    v.insert("modules_dir", conf_path(&c.modules_dir)?);
    v.insert(
        "standard_modules",
        standard_modules(&conf_path(&c.modules_dir)?),
    );
    v.insert("module_path", conf_path(&c.module_path)?);
    v.insert("server_limit", server_limit.to_string());
    v.insert("threads_per_child", threads_per_child.to_string());
    v.insert(
        "max_spare_threads",
        (server_limit * threads_per_child).to_string(),
    );
    v.insert(
        "max_clients",
        (server_limit * threads_per_child).to_string(),
    );
    v.insert("error_log_directives", crate::logs::render_error_log(c)?);
    v.insert("log_level", conf_word(&c.log_level)?);
    v.insert("socket_timeout", c.timeouts.socket_timeout.to_string());
    v.insert("request_read_timeout", c.timeouts.request_read_timeout());
    v.insert("access_log_directives", crate::logs::render_access_log(c)?);
    v.insert("request_directives", crate::limits::render_requests(c)?);
    v.insert("host_server_directives", crate::hosts::render_server(c)?);
    v.insert("site_directives", crate::site::render(c)?);
    v.insert("proxy_directives", crate::proxy::render_mount_points(c)?);
    v.insert(
        "virtual_hosts",
        crate::hosts::render_vhosts(c)? + &crate::proxy::render_virtual_hosts(c)?,
    );
    v.insert("socket_prefix", conf_path(&c.socket_prefix())?);
    v.insert("daemon_path", conf_path(&c.daemon_path)?);
    v.insert("daemon_process_args", daemon_process_args(c)?);
    v.insert("mount_point", conf_word(&mount_point)?);
    v.insert("process_group", conf_word(&c.process_group())?);
    // mod_wsgi-express's default: the application in the main interpreter.
    let app_group = format!(
        " application-group={}",
        conf_word(c.app.application_group.as_deref().unwrap_or("%{GLOBAL}"))?
    );
    v.insert("application_group", app_group);
    v.insert("environ_directives", crate::app::render_environ(c)?);
    v.insert("python_directives", crate::daemon::render_directives(c)?);
    v.insert("callable_object", conf_word(&c.callable_object)?);
    v.insert("extra_directives", extra);
    v.insert("status_directives", c.status.render(root)?);
    substitute(HTTPD_CONF_TEMPLATE, &v)
}

/// The generated `apachectl` shell script.
pub fn render_apachectl(c: &ServerConfig) -> Result<String> {
    let mut v: BTreeMap<&str, String> = BTreeMap::new();
    v.insert("httpd", shell_word(path_str(&c.httpd)?));
    v.insert(
        "httpd_conf",
        shell_word(path_str(&c.server_root.join("httpd.conf"))?),
    );
    let startup_log = match crate::root::startup_log_path(c) {
        Some(log) => shell_word(path_str(&log)?),
        None => "''".to_owned(),
    };
    v.insert("startup_log", startup_log);
    let envvars = match &c.process.envvars_script {
        Some(script) => shell_word(path_str(script)?),
        None => "''".to_owned(),
    };
    v.insert("envvars", envvars);
    let mut exports = String::new();
    for (name, value) in c.process_environment() {
        writeln!(exports, "{name}={}\nexport {name}", shell_word(&value))?;
    }
    v.insert("exports", exports);
    substitute(APACHECTL_TEMPLATE, &v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Identity;
    use std::path::PathBuf;

    fn sample() -> ServerConfig {
        ServerConfig {
            httpd: "/usr/sbin/apache2".into(),
            modules_dir: "/usr/lib/apache2/modules".into(),
            module_path: "/opt/rswsgi/mod_rswsgi.so".into(),
            daemon_path: "/opt/rswsgi/rswsgi-daemon".into(),
            server_root: "/tmp/rswsgi-express-127.0.0.1:8000:0".into(),
            script: "/srv/my app/wsgi.py".into(),
            native_source: None,
            module_entry: None,
            build: Default::default(),
            callable_object: "application".into(),
            mount_point: "/".into(),
            host: "127.0.0.1".into(),
            port: 8000,
            processes: 2,
            threads: 3,
            max_clients: 10,
            daemon_options: vec!["request-timeout=30".into()],
            timeouts: Default::default(),
            identity: Some(Identity {
                user: "www-data".into(),
                group: "www-data".into(),
                uid: 33,
                gid: 33,
                groups: vec![33],
            }),
            python_home: Some("/opt/venv".into()),
            python_path: vec![PathBuf::from("/a"), PathBuf::from("/b")],
            working_directory: "/srv/my app".into(),
            log_to_terminal: false,
            access_log: true,
            log_level: "info".into(),
            include_files: vec![],
            extra_directives: vec!["# extra".into()],
            startup_log: false,
            keep_serving_on_load_error: false,
            load_wait: 60,
            app: Default::default(),
            daemon: Default::default(),
            logs: crate::logs::Logs {
                options: Default::default(),
                directory: "/tmp/rswsgi-express-127.0.0.1:8000:0".into(),
                rotatelogs: None,
                express: None,
            },
            site: crate::site::SiteOptions {
                document_root: Some("/tmp/rswsgi-express-127.0.0.1:8000:0/htdocs".into()),
                ..Default::default()
            },
            hosts: Default::default(),
            proxy: Default::default(),
            status: Default::default(),
            requests: Default::default(),
            process: Default::default(),
        }
    }

    #[test]
    fn renders_every_placeholder() {
        let conf = render_httpd_conf(&sample()).unwrap();
        assert!(!conf.contains("{{"), "{conf}");
        assert!(conf.contains("Listen 127.0.0.1:8000\n"));
        assert!(conf.contains("User www-data\nGroup www-data\n"));
        assert!(conf.contains(
            "WSGIDaemonProcess localhost:8000 processes=2 threads=3 display-name=%{GROUP} \
             \"home=/srv/my app\" python-home=/opt/venv python-path=/a:/b user=www-data group=www-data \
             request-timeout=60 socket-timeout=60 startup-timeout=15 queue-timeout=45 \
             deadlock-timeout=60 listen-backlog=100 request-timeout=30\n"
        ));
        assert!(conf
            .contains("WSGIScriptAlias / \"/srv/my app/wsgi.py\" process-group=localhost:8000 application-group=%{GLOBAL}\n"));
        assert!(conf.contains("<Directory \"/srv/my app\">"));
        assert!(conf.contains("WSGISocketPrefix /tmp/rswsgi-express-127.0.0.1:8000:0/wsgi\n"));
        assert!(conf.contains("RSWSGIDaemonExecutable /opt/rswsgi/rswsgi-daemon\n"));
        assert!(conf.contains("CustomLog /tmp/rswsgi-express-127.0.0.1:8000:0/access_log"));
        assert!(conf.contains("MaxRequestWorkers 10\n"));
        assert!(conf
            .contains("LoadModule reqtimeout_module /usr/lib/apache2/modules/mod_reqtimeout.so\n"));
        assert!(conf.contains("\nTimeout 60\n"));
        assert!(
            conf.contains("\nRequestReadTimeout header=15-30,MinRate=500 body=15,MinRate=500\n")
        );
        assert!(conf.contains("# extra\n"));
    }

    #[test]
    fn no_user_when_not_root() {
        let mut c = sample();
        c.identity = None;
        c.log_to_terminal = true;
        c.access_log = false;
        c.mount_point = "/sub/".into();
        let conf = render_httpd_conf(&c).unwrap();
        assert!(!conf.contains("\nUser "));
        assert!(!conf.contains("user="));
        assert!(!conf.contains("CustomLog"));
        assert!(conf.contains("ErrorLog /dev/stderr\n"));
        assert!(conf.contains("WSGIScriptAlias /sub "));
        assert_eq!(c.url(), "http://127.0.0.1:8000/sub/");
    }

    #[test]
    fn quoting() {
        assert_eq!(conf_word("a").unwrap(), "a");
        assert_eq!(conf_word("a b").unwrap(), "\"a b\"");
        assert_eq!(conf_word("a\"b\\").unwrap(), "\"a\\\"b\\\\\"");
        assert!(conf_word("a\nb").is_err());
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let err = substitute("x {{nope}}", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let ctl = render_apachectl(&sample()).unwrap();
        assert!(ctl.contains("HTTPD='/usr/sbin/apache2'"));
    }

    #[test]
    fn threads_are_split_into_children() {
        assert_eq!(mpm_split(0), (2, 1));
        assert_eq!(mpm_split(17), (2, 9));
        assert_eq!(mpm_split(22), (2, 11));
        assert_eq!(mpm_split(64), (2, 32));
        assert_eq!(mpm_split(150), (3, 50));
        assert_eq!(mpm_split(1000), (16, 63));
        let mut c = sample();
        c.max_clients = 60;
        let conf = render_httpd_conf(&c).unwrap();
        // Every child starts at once and none is stopped for being idle.
        assert!(conf.contains("StartServers 2\n"));
        assert!(conf.contains("ServerLimit 2\n"));
        assert!(conf.contains("ThreadsPerChild 30\n"));
        assert!(conf.contains("MaxSpareThreads 60\n"));
        assert!(conf.contains("MaxRequestWorkers 60\n"));
    }
}
