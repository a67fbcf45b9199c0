//! `--server-metrics[=URL]`, `--server-status` and `--health-drain-file`: the module's
//! Prometheus endpoint (`SetHandler rswsgi-metrics`, with `?health` for load balancers) and
//! Apache's `/server-status` (`ExtendedStatus On`), each refused to every client but
//! 127.0.0.1 and ::1.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::config::absolute;

/// Where `--server-metrics` mounts the endpoint when no URL is given.
pub const DEFAULT_METRICS_URL: &str = "/server-metrics";

/// The observability options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct StatusOptions {
    /// Serve the daemon groups' Prometheus metrics at URL (default /server-metrics; `URL?health` answers 200 or 503 for load balancers), to localhost only.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = DEFAULT_METRICS_URL
    )]
    pub server_metrics: Option<String>,
    /// Serve Apache's /server-status (ExtendedStatus On, with a section per daemon group) to localhost only.
    #[arg(long)]
    pub server_status: bool,
    /// While PATH exists, the metrics endpoint's ?health answers 503 (draining) [default: the file drain in the server root].
    #[arg(long, value_name = "PATH")]
    pub health_drain_file: Option<PathBuf>,
}

impl Default for StatusOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl StatusOptions {
    /// Checked: the URL is an absolute path of plain characters; the drain file absolute.
    pub fn resolve(&self) -> Result<StatusOptions> {
        if let Some(url) = &self.server_metrics {
            let plain = url
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
            if !url.starts_with('/') || url == "/" || !plain {
                bail!("--server-metrics={url}: the URL must be a path such as /server-metrics");
            }
        }
        let drain = self
            .health_drain_file
            .as_deref()
            .map(absolute)
            .transpose()?;
        Ok(StatusOptions {
            health_drain_file: drain,
            ..self.clone()
        })
    }

    /// The directives: the drain file always, and each endpoint asked for.
    pub fn render(&self, server_root: &Path) -> Result<String> {
        let mut out = String::new();
        let drain = self
            .health_drain_file
            .clone()
            .unwrap_or_else(|| server_root.join("drain"));
        writeln!(
            out,
            "RSWSGIHealthDrainFile {}",
            crate::render::conf_path(&drain)?
        )?;
        let local = "  Require ip 127.0.0.1 ::1\n";
        if let Some(url) = &self.server_metrics {
            writeln!(
                out,
                "<Location {url}>\n  SetHandler rswsgi-metrics\n{local}</Location>"
            )?;
        }
        if self.server_status {
            writeln!(
                out,
                "ExtendedStatus On\n<Location /server-status>\n  SetHandler server-status\n{local}</Location>"
            )?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        status: StatusOptions,
        script: Option<String>,
    }

    #[test]
    fn server_metrics_takes_its_url_only_with_an_equals_sign() {
        let c = Cli::parse_from(["x", "--server-metrics", "app.wsgi"]);
        assert_eq!(
            c.status.server_metrics.as_deref(),
            Some(DEFAULT_METRICS_URL)
        );
        assert_eq!(c.script.as_deref(), Some("app.wsgi"));
        let c = Cli::parse_from(["x", "--server-metrics=/m"]);
        assert_eq!(c.status.server_metrics.as_deref(), Some("/m"));
        assert_eq!(Cli::parse_from(["x"]).status.server_metrics, None);
    }

    #[test]
    fn directives_are_localhost_only() {
        let o = StatusOptions {
            server_metrics: Some("/m".into()),
            server_status: true,
            health_drain_file: None,
        };
        let text = o.resolve().unwrap().render(Path::new("/srv/root")).unwrap();
        assert!(text.contains("RSWSGIHealthDrainFile /srv/root/drain\n"));
        assert!(text
            .contains("<Location /m>\n  SetHandler rswsgi-metrics\n  Require ip 127.0.0.1 ::1\n"));
        assert!(text.contains("ExtendedStatus On\n<Location /server-status>"));
        let bad = StatusOptions {
            server_metrics: Some("/a b".into()),
            ..o
        };
        assert!(bad.resolve().is_err());
    }
}
