//! Proxying parts of the site to other HTTP servers, as mod_wsgi-express 6 does:
//! `--proxy-mount-point`, `--proxy-virtual-host` and `--proxy-timeout` (mod_proxy_http, with
//! WebSocket upgrades passed through and `X-Forwarded-*` headers for the backend).

use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::config::ServerConfig;
use crate::render::conf_word;
use crate::site::{load_module, rewrite_escape};

/// The proxy options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Proxy every request under a URL path to another server's URL (repeatable).
    #[arg(long, num_args = 2, value_names = ["URL-PATH", "URL"])]
    pub proxy_mount_point: Vec<String>,
    /// Proxy every request for a host name to another server's URL (repeatable).
    #[arg(long, num_args = 2, value_names = ["HOSTNAME", "URL"])]
    pub proxy_virtual_host: Vec<String>,
    /// Seconds to wait for a proxied server (ProxyTimeout) [default: --socket-timeout].
    #[arg(long, value_name = "SECS")]
    pub proxy_timeout: Option<u64>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl ProxyOptions {
    /// The `(URL path without its trailing /, backend URL without its trailing /)` pairs.
    pub fn mount_points(&self) -> Vec<(String, String)> {
        self.proxy_mount_point
            .chunks_exact(2)
            .map(|p| {
                (
                    p[0].trim_end_matches('/').to_owned(),
                    p[1].trim_end_matches('/').to_owned(),
                )
            })
            .collect()
    }

    fn virtual_hosts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.proxy_virtual_host
            .chunks_exact(2)
            .map(|p| (p[0].as_str(), p[1].as_str()))
    }

    /// Whether anything is proxied.
    pub fn any(&self) -> bool {
        !self.proxy_mount_point.is_empty() || !self.proxy_virtual_host.is_empty()
    }

    /// Checks the URL paths, host names and backend URLs.
    pub fn resolve(&self) -> Result<ProxyOptions> {
        let url_ok = |url: &str| {
            let lower = url.to_ascii_lowercase();
            (lower.starts_with("http://") || lower.starts_with("https://"))
                && !url.contains(char::is_whitespace)
        };
        for (path, url) in self.mount_points() {
            if !path.starts_with('/') || path.len() < 2 {
                bail!("--proxy-mount-point {path:?}: the URL path must start with / and name something below it");
            }
            if !url_ok(&url) {
                bail!("--proxy-mount-point {path} {url:?}: an http:// or https:// URL");
            }
        }
        for (host, url) in self.virtual_hosts() {
            if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
                bail!("--proxy-virtual-host {host:?}: not a host name");
            }
            if !url_ok(url) {
                bail!("--proxy-virtual-host {host} {url:?}: an http:// or https:// URL");
            }
        }
        Ok(self.clone())
    }
}

/// The directives that set the scheme and port the client used as `X-Forwarded-*` headers.
const FORWARDED_SCHEME: &str = "RewriteEngine On\n\
    RewriteRule .* - [E=RSWSGI_FORWARDED_PORT:%{SERVER_PORT},NE]\n\
    RequestHeader set X-Forwarded-Port %{RSWSGI_FORWARDED_PORT}e\n\
    RewriteCond %{HTTPS} on\n\
    RewriteRule .* - [E=RSWSGI_URL_SCHEME:https,NE]\n\
    RequestHeader set X-Forwarded-Scheme %{RSWSGI_URL_SCHEME}e env=RSWSGI_URL_SCHEME\n";

/// The modules, `ProxyPass`es and `<Location>`s of the proxied mount points (server level).
pub fn render_mount_points(c: &ServerConfig) -> Result<String> {
    let p = &c.proxy;
    let mut out = String::new();
    if !p.any() {
        return Ok(out);
    }
    for module in ["proxy", "proxy_http"] {
        out.push_str(&load_module(c, module)?);
    }
    let timeout = p.proxy_timeout.unwrap_or(c.timeouts.socket_timeout);
    writeln!(out, "ProxyTimeout {timeout}")?;
    for (path, url) in p.mount_points() {
        let (from, to) = (
            conf_word(&format!("{path}/"))?,
            conf_word(&format!("{url}/"))?,
        );
        writeln!(out, "ProxyPass {from} {to} upgrade=websocket")?;
        writeln!(out, "ProxyPassReverse {from} {to}")?;
        writeln!(out, "<Location {from}>\n{FORWARDED_SCHEME}RequestHeader set X-Forwarded-Prefix {}\n</Location>", conf_word(&path)?)?;
        // The mount point without its slash: redirected to it.
        writeln!(
            out,
            "RedirectMatch 302 {} {}",
            conf_word(&format!("^{}$", rewrite_escape(&path, true)))?,
            conf_word(&format!("{path}/"))?
        )?;
    }
    Ok(out)
}

/// The proxied virtual hosts, on the plain-HTTP port. Without `--server-name` an empty
/// default virtual host comes first, so that other names are still the main server's.
pub fn render_virtual_hosts(c: &ServerConfig) -> Result<String> {
    let mut out = String::new();
    if c.hosts.server_name.is_none() && !c.proxy.proxy_virtual_host.is_empty() {
        writeln!(out, "<VirtualHost _default_:{}>\n</VirtualHost>", c.port)?;
    }
    for (host, url) in c.proxy.virtual_hosts() {
        let url = conf_word(&format!("{}/", url.trim_end_matches('/')))?;
        writeln!(
            out,
            "<VirtualHost *:{}>\n  ServerName {}\n  ProxyPass / {url} upgrade=websocket\n  \
             ProxyPassReverse / {url}\n{FORWARDED_SCHEME}</VirtualHost>",
            c.port,
            conf_word(host)?
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_urls_are_checked() {
        let bad = |args: &[&str]| {
            ProxyOptions {
                proxy_mount_point: args.iter().map(|s| s.to_string()).collect(),
                ..ProxyOptions::default()
            }
            .resolve()
            .unwrap_err()
            .to_string()
        };
        assert!(bad(&["api", "http://x/"]).contains("must start with /"));
        assert!(bad(&["/", "http://x/"]).contains("must start with /"));
        assert!(bad(&["/api", "ftp://x/"]).contains("http:// or https://"));
        let ok = ProxyOptions {
            proxy_mount_point: vec!["/api/".into(), "http://127.0.0.1:9/".into()],
            ..ProxyOptions::default()
        };
        assert_eq!(
            ok.resolve().unwrap().mount_points(),
            [("/api".to_owned(), "http://127.0.0.1:9".to_owned())]
        );
    }
}
