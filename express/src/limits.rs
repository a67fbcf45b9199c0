//! Request handling and the httpd process: mod_wsgi-express's `--limit-request-body`,
//! `--chunked-request`, `--keep-alive-timeout`, `--server-backlog`, `--trust-proxy*`,
//! `--server-mpm`, `--pid-file`, `--process-name` and `--envvars-script`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::config::{absolute, ServerConfig};
use crate::render::conf_word;
use crate::site::existing_file;

/// The MPMs express can run, in the order it prefers them.
pub const MPMS: [&str; 3] = ["event", "worker", "prefork"];

/// How requests are taken: body limit, chunked bodies, keep-alive, backlog, trusted proxies.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// Largest request body in bytes; a larger one gets a 413 (LimitRequestBody; 0: no limit).
    #[arg(long, value_name = "BYTES", default_value_t = 10485760)]
    pub limit_request_body: u64,
    /// Accept request bodies sent with chunked transfer encoding (WSGIChunkedRequest On).
    #[arg(long)]
    pub chunked_request: bool,
    /// Seconds an idle client connection is kept open for its next request (0: no keep-alive).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub keep_alive_timeout: u64,
    /// Connections the kernel queues for Apache's listeners (ListenBacklog).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub server_backlog: u32,
    /// A header a trusted proxy sets (X-Forwarded-For, X-Forwarded-Proto, ...), applied to the environ (repeatable).
    #[arg(long, value_name = "HEADER-NAME")]
    pub trust_proxy_header: Vec<String>,
    /// An address or subnet of a trusted proxy (repeatable) [default: every client is one].
    #[arg(long, value_name = "IP-ADDRESS/SUBNET")]
    pub trust_proxy: Vec<String>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

/// The httpd process: MPM, pid file, process name, environment script.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ProcessOptions {
    /// Preferred MPM: event, worker or prefork (repeatable, in order of preference) [default: event, worker, prefork].
    #[arg(long, value_name = "NAME")]
    pub server_mpm: Vec<String>,
    /// Where httpd writes its process id [default: <root>/httpd.pid].
    #[arg(long, value_name = "FILE")]
    // The doc comment is the --help text, shown as written (not markdown).
    #[allow(rustdoc::invalid_html_tags)]
    pub pid_file: Option<PathBuf>,
    /// Name (argv[0]) httpd's parent runs under [default: the httpd binary's path].
    #[arg(long, value_name = "NAME")]
    // The doc comment is the --help text, shown as written (not markdown).
    #[allow(rustdoc::broken_intra_doc_links)]
    pub process_name: Option<String>,
    /// Shell script sourced before httpd starts, to set its environment (and the daemons').
    #[arg(long, value_name = "FILE")]
    pub envvars_script: Option<PathBuf>,
}

impl Default for ProcessOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl RequestOptions {
    /// Checks the proxy header names (one word each, as `WSGITrustedProxyHeaders` takes).
    pub fn resolve(&self) -> Result<RequestOptions> {
        for h in &self.trust_proxy_header {
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("--trust-proxy-header {h:?}: not a header name");
            }
        }
        for p in &self.trust_proxy {
            if p.is_empty() || p.contains(char::is_whitespace) {
                bail!("--trust-proxy {p:?}: not an address or subnet");
            }
        }
        Ok(self.clone())
    }
}

impl ProcessOptions {
    /// Picks the MPM (the first preferred one the modules directory has) and makes the files
    /// absolute; the environment script must exist.
    pub fn resolve(&self, modules_dir: &Path) -> Result<ProcessOptions> {
        let mut out = self.clone();
        for m in &self.server_mpm {
            if !MPMS.contains(&m.as_str()) {
                bail!("--server-mpm {m}: one of {}", MPMS.join(", "));
            }
        }
        let preferred: Vec<&str> = match self.server_mpm.is_empty() {
            true => MPMS.to_vec(),
            false => self.server_mpm.iter().map(String::as_str).collect(),
        };
        let Some(mpm) = preferred
            .iter()
            .find(|m| modules_dir.join(format!("mod_mpm_{m}.so")).exists())
        else {
            bail!(
                "--server-mpm: none of {} is in {}",
                preferred.join(", "),
                modules_dir.display()
            );
        };
        out.server_mpm = vec![(*mpm).to_owned()];
        out.pid_file = self.pid_file.as_deref().map(absolute).transpose()?;
        out.envvars_script = self
            .envvars_script
            .as_deref()
            .map(|f| existing_file(f, "--envvars-script"))
            .transpose()?;
        if let Some(name) = &self.process_name {
            if name.is_empty() || name.contains('\0') {
                bail!("--process-name {name:?}: not a process name");
            }
        }
        Ok(out)
    }

    /// The MPM chosen by [`ProcessOptions::resolve`].
    pub fn mpm(&self) -> &str {
        self.server_mpm.first().map_or("event", String::as_str)
    }
}

/// The request-handling directives.
pub fn render_requests(c: &ServerConfig) -> Result<String> {
    let r = &c.requests;
    let mut out = String::new();
    writeln!(out, "LimitRequestBody {}", r.limit_request_body)?;
    writeln!(out, "ListenBacklog {}", r.server_backlog)?;
    match r.keep_alive_timeout {
        0 => out.push_str("KeepAlive Off\n"),
        t => writeln!(out, "KeepAlive On\nKeepAliveTimeout {t}")?,
    }
    if r.chunked_request {
        out.push_str("WSGIChunkedRequest On\n");
    }
    if !r.trust_proxy_header.is_empty() {
        writeln!(
            out,
            "WSGITrustedProxyHeaders {}",
            r.trust_proxy_header.join(" ")
        )?;
    }
    if !r.trust_proxy.is_empty() {
        let words = r
            .trust_proxy
            .iter()
            .map(|p| conf_word(p))
            .collect::<Result<Vec<_>>>()?;
        writeln!(out, "WSGITrustedProxies {}", words.join(" "))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_mod_wsgi_express() {
        let r = RequestOptions::default();
        assert_eq!(r.limit_request_body, 10_485_760);
        assert_eq!(r.keep_alive_timeout, 2);
        assert_eq!(r.server_backlog, 500);
        assert!(!r.chunked_request);
    }

    #[test]
    fn the_mpm_must_be_known_and_present() {
        let dir = std::env::temp_dir().join(format!("rswsgi-mpm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("mod_mpm_worker.so"), "").unwrap();
        let mut p = ProcessOptions::default();
        assert_eq!(p.resolve(&dir).unwrap().mpm(), "worker");
        p.server_mpm = vec!["prefork".into()];
        assert!(p
            .resolve(&dir)
            .unwrap_err()
            .to_string()
            .contains("none of prefork"));
        p.server_mpm = vec!["winnt".into()];
        assert!(p
            .resolve(&dir)
            .unwrap_err()
            .to_string()
            .contains("one of event"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
