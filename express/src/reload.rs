//! `--reload-on-changes` and `--reload-on-changes-file`: the daemons' change monitor
//! (`WSGIDaemonProcess reload-on-changes=On reload-files=...`), which recycles a daemon
//! gracefully when a file of a module the application imported, the script, or one of the
//! files named changes.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::config::absolute;

/// The reloading options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ReloadOptions {
    /// Restart a daemon process (gracefully) when a source file of any module the application imported, or the script, changes; checked every second.
    #[arg(long)]
    pub reload_on_changes: bool,
    /// Also restart when FILE changes (repeatable; needs --reload-on-changes).
    #[arg(long, value_name = "FILE", requires = "reload_on_changes")]
    pub reload_on_changes_file: Vec<PathBuf>,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

impl ReloadOptions {
    /// The `WSGIDaemonProcess` options they stand for, the files made absolute.
    pub fn daemon_options(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if self.reload_on_changes {
            out.push("reload-on-changes=On".to_owned());
        } else if !self.reload_on_changes_file.is_empty() {
            bail!("--reload-on-changes-file needs --reload-on-changes");
        }
        for file in &self.reload_on_changes_file {
            let file = absolute(file)?;
            match file.to_str() {
                Some(f) if !f.contains(':') => out.push(format!("reload-files={f}")),
                _ => bail!(
                    "--reload-on-changes-file {}: the path must be UTF-8 without ':'",
                    file.display()
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_daemon_options() {
        assert!(ReloadOptions::default()
            .daemon_options()
            .unwrap()
            .is_empty());
        let o = ReloadOptions {
            reload_on_changes: true,
            reload_on_changes_file: vec!["/srv/a.ini".into(), "/srv/b.txt".into()],
        };
        assert_eq!(
            o.daemon_options().unwrap(),
            [
                "reload-on-changes=On",
                "reload-files=/srv/a.ini",
                "reload-files=/srv/b.txt"
            ]
        );
        let without = ReloadOptions {
            reload_on_changes: false,
            ..o
        };
        assert!(without.daemon_options().is_err());
    }
}
