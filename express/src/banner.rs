//! What `start-server` and `setup-server` print about the server before it runs, in
//! mod_wsgi-express's layout (`Server URL         : …`): the URLs, the files, the
//! application, capacity, timeouts, backlogs and locale.

use crate::hosts::https_url;
use crate::root::ServerRoot;

/// The banner's lines, as (label, value).
pub fn banner(root: &ServerRoot) -> Vec<(&'static str, String)> {
    let c = &root.config;
    let mut lines = vec![("Server URL", root.url.clone())];
    if let Some(url) = https_url(c) {
        lines.push(("Server URL (HTTPS)", url));
    }
    lines.push(("Server Root", root.dir.display().to_string()));
    lines.push(("Server Conf", root.httpd_conf.display().to_string()));
    let error_log = match &root.error_log {
        Some(log) => log.display().to_string(),
        None => "/dev/stderr".to_owned(),
    };
    lines.push(("Error Log File", format!("{error_log} ({})", c.log_level)));
    if c.access_log {
        let access = match c.log_to_terminal {
            true => "/dev/stdout".to_owned(),
            false => c.logs.access_log().display().to_string(),
        };
        let format = c
            .logs
            .options
            .access_log_format
            .as_deref()
            .unwrap_or("default");
        lines.push(("Access Log File", format!("{access} ({format})")));
    }
    if let Some(log) = &root.startup_log {
        lines.push(("Startup Log File", log.display().to_string()));
    }
    if c.logs.rotatelogs.is_some() {
        let size = c.logs.options.max_log_size;
        lines.push(("Log Rotation", format!("at {size} MB (rotatelogs)")));
    }
    lines.extend(application(root));
    lines.extend(capacity(root));
    lines
}

/// What is served: the script, module or native handler, and the document root.
fn application(root: &ServerRoot) -> Vec<(&'static str, String)> {
    let c = &root.config;
    let mut lines = Vec::new();
    match (&c.module_entry, &c.native_source) {
        (Some(module), _) => lines.push(("WSGI Module", module.clone())),
        (None, Some(source)) => {
            lines.push(("Native Handler", source.display().to_string()));
            lines.push(("Handler Library", c.script.display().to_string()));
        }
        (None, None) => lines.push(("WSGI Script", c.script.display().to_string())),
    }
    if c.site.serves_document_root {
        lines.push((
            "Document Root",
            c.site.document_root().display().to_string(),
        ));
    }
    if let Some(id) = &c.identity {
        lines.push(("User / Group", format!("{} / {}", id.user, id.group)));
    }
    if let Some(home) = &c.python_home {
        lines.push(("Python Home", home.display().to_string()));
    }
    lines
}

/// Capacity, timeouts, backlogs and the locale, as mod_wsgi-express lists them.
fn capacity(root: &ServerRoot) -> Vec<(&'static str, String)> {
    let c = &root.config;
    let d = &c.daemon;
    let plural = if c.processes == 1 { "" } else { "es" };
    let seconds = |n: u64| match n {
        0 => "off".to_owned(),
        n => format!("{n} (seconds)"),
    };
    let mut lines = vec![
        ("Operating Mode", "daemon".to_owned()),
        (
            "Request Capacity",
            format!(
                "{} ({} process{plural} * {} threads)",
                u64::from(c.processes) * u64::from(c.threads),
                c.processes,
                c.threads
            ),
        ),
        ("Request Timeout", seconds(c.timeouts.request_timeout)),
    ];
    if let Some(t) = d.interrupt_timeout {
        lines.push(("Interrupt Timeout", seconds(t)));
    }
    lines.extend([
        ("Startup Timeout", seconds(d.startup_timeout)),
        (
            "Queue Backlog",
            format!("{} (connections)", d.daemon_backlog),
        ),
        ("Queue Timeout", seconds(d.queue_timeout)),
        ("Socket Timeout", seconds(c.timeouts.socket_timeout)),
        ("Read Timeouts", c.timeouts.request_read_timeout()),
        (
            "Server Capacity",
            format!("{} (relay threads)", c.max_clients),
        ),
        (
            "Server Backlog",
            format!("{} (connections)", c.requests.server_backlog),
        ),
        ("Locale Setting", d.locale.clone().unwrap_or_default()),
    ]);
    lines
}
