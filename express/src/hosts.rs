//! Host names, TLS and HTTP/2: mod_wsgi-express's `--server-name`, `--https-port`,
//! `--ssl-*`, `--https-only`, `--hsts-policy` and `--http2`. [`HostOptions`] is the option
//! table; [`HostOptions::resolve`] checks it (a certificate file that does not exist is
//! refused before httpd starts) and [`render_server`] and [`render_vhosts`] write the listeners and virtual hosts.
//!
//! As in mod_wsgi-express, a `--server-name` makes name-based virtual hosts: the first
//! (default) one refuses requests for any other name with a 403 (`--allow-localhost` lets
//! local clients through), and a `www.` name gets a virtual host for the parent domain that
//! redirects to it. Without a server name, the HTTPS port serves every name (mod_wsgi-express
//! then serves no HTTPS at all).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::config::ServerConfig;
use crate::render::{conf_path, conf_word};
use crate::site::{existing_file, load_module};

/// The host-name, TLS and HTTP/2 options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct HostOptions {
    /// The site's host name; requests for other names get a 403. A www. name also redirects its parent domain to it.
    #[arg(long, value_name = "HOSTNAME")]
    pub server_name: Option<String>,
    /// Another host name of the site, wildcards allowed (repeatable).
    #[arg(long, value_name = "HOSTNAME")]
    pub server_alias: Vec<String>,
    /// With --server-name, still serve clients on this machine that use another name.
    #[arg(long)]
    pub allow_localhost: bool,
    /// Port for HTTPS (1-65535); needs a certificate and key.
    #[arg(long, alias = "ssl-port", value_name = "PORT")]
    pub https_port: Option<u64>,
    /// The server's certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub ssl_certificate_file: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub ssl_certificate_key_file: Option<PathBuf>,
    /// Certificate and key as FILE-ROOT.crt and FILE-ROOT.key.
    #[arg(long, value_name = "FILE-ROOT")]
    pub ssl_certificate: Option<PathBuf>,
    /// CA certificates for client authentication; clients must then present a certificate (for the whole site, or the --ssl-verify-client URLs).
    #[arg(long, value_name = "FILE")]
    pub ssl_ca_certificate_file: Option<PathBuf>,
    /// A URL path where a client certificate is required, instead of the whole site (repeatable).
    #[arg(long, value_name = "URL-PATH")]
    pub ssl_verify_client: Vec<String>,
    /// Intermediate CA certificates sent with the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub ssl_certificate_chain_file: Option<PathBuf>,
    /// Pass mod_ssl's SSL_* variables to the application.
    #[arg(long)]
    pub ssl_environment: bool,
    /// Redirect every HTTP request to HTTPS.
    #[arg(long)]
    pub https_only: bool,
    /// Strict-Transport-Security header value sent over HTTPS with --https-only (for example max-age=31536000).
    #[arg(long, value_name = "PARAMS")]
    pub hsts_policy: Option<String>,
    /// Enable HTTP/2 (mod_http2): h2 over TLS, and h2c (upgrade or prior knowledge) over plain HTTP.
    #[arg(long)]
    pub http2: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl HostOptions {
    /// The HTTPS port, once resolved.
    pub fn https_port(&self) -> Option<u16> {
        self.https_port.and_then(|p| u16::try_from(p).ok())
    }

    /// Checks the options and makes every file absolute. TLS needs a port, a certificate and a
    /// key, each file must exist, and a client-certificate URL needs the CA file.
    pub fn resolve(&self) -> Result<HostOptions> {
        let mut out = self.clone();
        if let Some(port) = self.https_port {
            if !(1..=65535).contains(&port) {
                bail!("--https-port {port}: a port is a number from 1 to 65535");
            }
        }
        if let Some(root) = &self.ssl_certificate {
            let with = |ext: &str| {
                let mut p = root.clone().into_os_string();
                p.push(ext);
                PathBuf::from(p)
            };
            out.ssl_certificate_file = Some(with(".crt"));
            out.ssl_certificate_key_file = Some(with(".key"));
        }
        let check = |file: &Option<PathBuf>, option: &str| -> Result<Option<PathBuf>> {
            file.as_deref()
                .map(|f| existing_file(f, option))
                .transpose()
        };
        out.ssl_certificate_file = check(&out.ssl_certificate_file, "--ssl-certificate-file")?;
        out.ssl_certificate_key_file =
            check(&out.ssl_certificate_key_file, "--ssl-certificate-key-file")?;
        out.ssl_ca_certificate_file =
            check(&self.ssl_ca_certificate_file, "--ssl-ca-certificate-file")?;
        out.ssl_certificate_chain_file = check(
            &self.ssl_certificate_chain_file,
            "--ssl-certificate-chain-file",
        )?;
        let tls_files =
            out.ssl_certificate_file.is_some() || out.ssl_certificate_key_file.is_some();
        match (
            self.https_port,
            &out.ssl_certificate_file,
            &out.ssl_certificate_key_file,
        ) {
            (Some(_), Some(_), Some(_)) | (None, None, None) => {}
            (None, _, _) if tls_files || out.ssl_ca_certificate_file.is_some() => {
                bail!("--https-port must be given with an SSL certificate")
            }
            (None, _, _) => {}
            (Some(port), _, _) => bail!(
                "--https-port {port} needs --ssl-certificate-file and --ssl-certificate-key-file \
                 (or --ssl-certificate FILE-ROOT)"
            ),
        }
        if self.https_only && self.https_port.is_none() {
            bail!("--https-only needs --https-port and a certificate");
        }
        if !self.ssl_verify_client.is_empty() && out.ssl_ca_certificate_file.is_none() {
            bail!("--ssl-verify-client needs --ssl-ca-certificate-file");
        }
        for url in &self.ssl_verify_client {
            if !url.starts_with('/') {
                bail!("--ssl-verify-client {url}: the URL path must start with /");
            }
        }
        for name in self.server_name.iter().chain(&self.server_alias) {
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
                bail!("{name:?}: not a host name");
            }
        }
        if !self.server_alias.is_empty() && self.server_name.is_none() {
            bail!("--server-alias needs --server-name");
        }
        Ok(out)
    }

    /// The parent domain a `www.` server name redirects from.
    fn parent_domain(&self) -> Option<&str> {
        let name = self.server_name.as_deref()?;
        let lower = name.get(..4)?.eq_ignore_ascii_case("www.");
        lower.then(|| &name[4..]).filter(|d| !d.is_empty())
    }
}

/// The HTTPS URL to print, when the server has one.
pub fn https_url(c: &ServerConfig) -> Option<String> {
    let port = c.hosts.https_port()?;
    let host = c.hosts.server_name.clone().unwrap_or_else(|| c.url_host());
    let mount = c.mount_point.trim_end_matches('/');
    Some(match port {
        443 => format!("https://{host}{mount}/"),
        _ => format!("https://{host}:{port}{mount}/"),
    })
}

/// The modules, protocols and extra listeners TLS and HTTP/2 need (before the virtual hosts).
pub fn render_server(c: &ServerConfig) -> Result<String> {
    let h = &c.hosts;
    let mut out = String::new();
    if h.http2 {
        out.push_str(&load_module(c, "http2")?);
        out.push_str("Protocols h2 h2c http/1.1\n");
    }
    if let Some(port) = h.https_port() {
        out.push_str(&load_module(c, "ssl")?);
        out.push_str(&load_module(c, "socache_shmcb")?);
        writeln!(out, "Listen {} https", c.listen_address_on(port))?;
        writeln!(
            out,
            "SSLSessionCache {}",
            conf_word(&format!(
                "shmcb:{}(512000)",
                c.server_root.join("ssl_scache").display()
            ))?
        )?;
    }
    if h.https_only && h.server_name.is_none() {
        // Before the document root's rules (and inherited by the TLS virtual host, where
        // HTTPS is on and so nothing is redirected).
        writeln!(
            out,
            "RewriteEngine On\nRewriteOptions InheritDown\nRewriteCond %{{HTTPS}} off\n\
             RewriteRule ^ https://%{{SERVER_NAME}}{}%{{REQUEST_URI}} [R=301,L]",
            port_suffix("https", h.https_port().unwrap_or(443))
        )?;
    }
    Ok(out)
}

/// The virtual hosts (appended after everything else, so they inherit the server's setup).
pub fn render_vhosts(c: &ServerConfig) -> Result<String> {
    let h = &c.hosts;
    let mut out = String::new();
    let https = h.https_port();
    if h.server_name.is_some() {
        name_based(c, c.port, false, &mut out)?;
        if let Some(port) = https {
            name_based(c, port, true, &mut out)?;
        }
    } else if let Some(port) = https {
        writeln!(out, "<VirtualHost _default_:{port}>")?;
        tls_host(c, &mut out)?;
        out.push_str("</VirtualHost>\n");
    }
    Ok(out)
}

/// `:PORT` for a URL of `scheme`, empty for the scheme's default port.
fn port_suffix(scheme: &str, port: u16) -> String {
    match (scheme, port) {
        ("https", 443) | ("http", 80) => String::new(),
        (_, p) => format!(":{p}"),
    }
}

/// mod_wsgi-express's name-based set for one port: the default host refusing other names,
/// the named host, and the `www.` redirect.
fn name_based(c: &ServerConfig, port: u16, tls: bool, out: &mut String) -> Result<()> {
    let h = &c.hosts;
    let name = h.server_name.as_deref().unwrap_or_default();
    let require = match h.allow_localhost {
        true => "Require host localhost",
        false => "Require all denied",
    };
    writeln!(
        out,
        "<VirtualHost _default_:{port}>\n  ServerName _wsgi_\n  RewriteEngine On\n  \
         <Location />\n    {require}\n  </Location>"
    )?;
    if tls {
        tls_files(c, out)?;
    }
    out.push_str("</VirtualHost>\n");
    writeln!(
        out,
        "<VirtualHost *:{port}>\n  ServerName {}",
        conf_word(name)?
    )?;
    if !h.server_alias.is_empty() {
        let aliases = h
            .server_alias
            .iter()
            .map(|a| conf_word(a))
            .collect::<Result<Vec<_>>>()?;
        writeln!(out, "  ServerAlias {}", aliases.join(" "))?;
    }
    out.push_str("  RewriteEngine On\n");
    if tls {
        tls_host(c, out)?;
    } else if h.https_only {
        writeln!(
            out,
            "  RewriteRule ^ https://{name}{}%{{REQUEST_URI}} [R=301,L]",
            port_suffix("https", h.https_port().unwrap_or(443))
        )?;
    }
    out.push_str("</VirtualHost>\n");
    if let Some(parent) = h.parent_domain() {
        let scheme = if tls || h.https_only { "https" } else { "http" };
        let target_port = if tls || h.https_only {
            h.https_port().unwrap_or(443)
        } else {
            c.port
        };
        let target = format!("{scheme}://{name}{}/", port_suffix(scheme, target_port));
        writeln!(
            out,
            "<VirtualHost *:{port}>\n  ServerName {}\n  Redirect permanent / {}",
            conf_word(parent)?,
            conf_word(&target)?
        )?;
        if tls {
            tls_files(c, out)?;
        }
        out.push_str("</VirtualHost>\n");
    }
    Ok(())
}

/// The body of the virtual host that serves the site over TLS.
fn tls_host(c: &ServerConfig, out: &mut String) -> Result<()> {
    let h = &c.hosts;
    out.push_str("  RewriteEngine On\n");
    tls_files(c, out)?;
    if h.https_only {
        if let Some(policy) = &h.hsts_policy {
            writeln!(
                out,
                "  Header always set Strict-Transport-Security {}",
                conf_word(policy)?
            )?;
        }
    }
    if h.ssl_environment {
        out.push_str("  SSLOptions +StdEnvVars\n");
    }
    Ok(())
}

/// `SSLEngine On`, the certificate files, and client verification.
fn tls_files(c: &ServerConfig, out: &mut String) -> Result<()> {
    let h = &c.hosts;
    writeln!(out, "  SSLEngine On")?;
    // (The certificate and key are always there: resolve() refuses an HTTPS port without.)
    let files = [
        ("SSLCertificateFile", &h.ssl_certificate_file),
        ("SSLCertificateKeyFile", &h.ssl_certificate_key_file),
        ("SSLCertificateChainFile", &h.ssl_certificate_chain_file),
        ("SSLCACertificateFile", &h.ssl_ca_certificate_file),
    ];
    for (directive, file) in files {
        if let Some(file) = file {
            writeln!(out, "  {directive} {}", conf_path(file)?)?;
        }
    }
    if h.ssl_ca_certificate_file.is_some() {
        if h.ssl_verify_client.is_empty() {
            // The whole site: asked for in the handshake (TLS 1.3 clients such as curl do not
            // do the post-handshake authentication a per-location requirement needs).
            out.push_str("  SSLVerifyClient require\n  SSLVerifyDepth 1\n");
        } else {
            for url in &h.ssl_verify_client {
                writeln!(
                    out,
                    "  <Location {}>\n    SSLVerifyClient require\n    SSLVerifyDepth 1\n  </Location>",
                    conf_word(url)?
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_port_certificate_and_key() {
        let err = |h: HostOptions| h.resolve().unwrap_err().to_string();
        let h = HostOptions {
            https_port: Some(8443),
            ..HostOptions::default()
        };
        assert!(err(h).contains("needs --ssl-certificate-file"));
        let h = HostOptions {
            https_port: Some(70000),
            ..HostOptions::default()
        };
        assert!(err(h).contains("1 to 65535"));
        let h = HostOptions {
            https_port: Some(8443),
            ssl_certificate_file: Some("/no/such.crt".into()),
            ssl_certificate_key_file: Some("/no/such.key".into()),
            ..HostOptions::default()
        };
        assert_eq!(err(h), "--ssl-certificate-file /no/such.crt: no such file");
        let h = HostOptions {
            https_only: true,
            ..HostOptions::default()
        };
        assert!(err(h).contains("--https-only needs --https-port"));
    }

    #[test]
    fn www_names_redirect_their_parent_domain() {
        let mut h = HostOptions {
            server_name: Some("www.example.com".into()),
            ..HostOptions::default()
        };
        assert_eq!(h.parent_domain(), Some("example.com"));
        h.server_name = Some("example.com".into());
        assert_eq!(h.parent_domain(), None);
    }
}
