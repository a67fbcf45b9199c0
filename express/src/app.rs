//! How the application is mounted and what its requests carry: mod_wsgi-express's
//! `--process-group`, `--application-group`, `--socket-prefix`, `--setenv` and `--passenv`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::config::{absolute, ServerConfig};
use crate::render::conf_word;

/// The mounting options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct AppOptions {
    /// Name of the daemon process group (and of its processes, `(wsgi:NAME)`) [default: localhost:PORT].
    #[arg(long, value_name = "NAME")]
    pub process_group: Option<String>,
    /// The application group (WSGIApplicationGroup) [default: %{GLOBAL}].
    #[arg(long, value_name = "NAME")]
    pub application_group: Option<String>,
    /// Directory-and-name prefix of the daemon sockets (WSGISocketPrefix) [default: <root>/wsgi].
    #[arg(long, value_name = "PATH")]
    // The doc comment is the --help text, shown as written (not markdown).
    #[allow(rustdoc::invalid_html_tags)]
    pub socket_prefix: Option<PathBuf>,
    /// Put KEY=VALUE in every request's environ (SetEnv) and in httpd's and the daemons' process environment (os.environ) (repeatable).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"])]
    pub setenv: Vec<String>,
    /// Put this variable of httpd's environment in every request's environ (PassEnv; repeatable).
    #[arg(long, value_name = "KEY")]
    pub passenv: Vec<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl AppOptions {
    /// Checks the names and makes the socket prefix absolute.
    pub fn resolve(&self) -> Result<AppOptions> {
        let mut out = self.clone();
        for name in self.process_group.iter().chain(&self.application_group) {
            if name.is_empty() || name.contains(char::is_control) {
                bail!("{name:?}: not a group name");
            }
        }
        let variables = self
            .setenv
            .chunks_exact(2)
            .map(|p| &p[0])
            .chain(&self.passenv);
        for name in variables {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
            if !ok {
                bail!("{name:?}: not an environment variable name");
            }
        }
        out.socket_prefix = self.socket_prefix.as_deref().map(absolute).transpose()?;
        Ok(out)
    }
}

/// `SetEnv` and `PassEnv` lines.
pub fn render_environ(c: &ServerConfig) -> Result<String> {
    let mut out = String::new();
    for pair in c.app.setenv.chunks_exact(2) {
        writeln!(out, "SetEnv {} {}", pair[0], conf_word(&pair[1])?)?;
    }
    for name in &c.app.passenv {
        writeln!(out, "PassEnv {name}")?;
    }
    Ok(out)
}
