//! Putting rswsgi into an existing Apache, as mod_wsgi-express's `module-location`,
//! `module-config` and `install-module` do: where the module is, the configuration lines
//! that load it, and a copy of the module and the daemon in Apache's modules directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::absolute;
use crate::handler::install_library;
use crate::locate::{find_daemon, find_module, find_modules_dir, DAEMON_NAME, MODULE_NAMES};
use crate::render::conf_path;

/// Where the module looks for the daemon when neither `RSWSGIDaemonExecutable` nor
/// `$RSWSGI_DAEMON` names one and none is beside it: its build-time default (the module's
/// `daemon_executable` in `src/dispatch`, built from the same `RSWSGI_DAEMON_DEFAULT`).
pub const MODULE_DEFAULT_DAEMON: &str = match option_env!("RSWSGI_DAEMON_DEFAULT") {
    Some(path) => path,
    None => "/usr/lib/rswsgi/rswsgi-daemon",
};

/// Which module, daemon and Python home the lines are for (each found as `start-server`
/// finds it when not given).
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleOptions {
    /// mod_rswsgi.so [default: $RSWSGI_MODULE, else next to express, else in the modules directory].
    #[arg(long, value_name = "PATH")]
    pub module_path: Option<PathBuf>,
    /// rswsgi-daemon [default: $RSWSGI_DAEMON, else next to express, else next to the module].
    #[arg(long, value_name = "PATH")]
    pub daemon_executable: Option<PathBuf>,
    /// Apache's modules directory [default: apxs -q LIBEXECDIR, else /usr/lib/apache2/modules].
    #[arg(long, value_name = "DIR")]
    pub modules_directory: Option<PathBuf>,
    /// A WSGIPythonHome line for this virtualenv or prefix [default: $VIRTUAL_ENV, else none].
    #[arg(long, value_name = "DIR")]
    pub python_home: Option<PathBuf>,
}

/// The module and daemon found for [`ModuleOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// `mod_rswsgi.so` (absolute).
    pub module: PathBuf,
    /// `rswsgi-daemon` (absolute).
    pub daemon: PathBuf,
    /// The modules directory.
    pub modules_dir: PathBuf,
    /// The Python home to name, if any (absolute).
    pub python_home: Option<PathBuf>,
}

impl ModuleOptions {
    /// Finds the module, the daemon and the modules directory (see [`find_module`],
    /// [`find_daemon`], [`find_modules_dir`]; a `--modules-directory` given is not checked
    /// for Apache's own modules); the Python home defaults to `$VIRTUAL_ENV`.
    pub fn locate(&self) -> Result<Located> {
        // A directory given is taken as it is: install-module may fill an empty one.
        let modules_dir = match &self.modules_directory {
            Some(dir) => absolute(dir)?,
            None => find_modules_dir(None)?,
        };
        let module = absolute(&find_module(self.module_path.as_deref(), &modules_dir)?)?;
        let daemon = absolute(&find_daemon(self.daemon_executable.as_deref(), &module)?)?;
        let python_home = self
            .python_home
            .clone()
            .or_else(|| {
                std::env::var_os("VIRTUAL_ENV")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .map(|p| absolute(&p))
            .transpose()?;
        Ok(Located {
            module,
            daemon,
            modules_dir,
            python_home,
        })
    }
}

/// Whether a module at `module` finds `daemon` by itself: it is `rswsgi-daemon` beside the
/// module, or at [`MODULE_DEFAULT_DAEMON`] with none beside it.
pub fn module_finds_daemon(module: &Path, daemon: &Path) -> bool {
    let beside = module.with_file_name(DAEMON_NAME);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if beside.exists() {
        return same(&beside, daemon);
    }
    same(Path::new(MODULE_DEFAULT_DAEMON), daemon)
}

/// The configuration lines that load `module` with `daemon`: `LoadModule rswsgi_module …`,
/// then `RSWSGIDaemonExecutable …` when the module would not find the daemon by itself
/// ([`module_finds_daemon`]), then `WSGIPythonHome …` when a Python home is given.
pub fn config_lines(located: &Located) -> Result<Vec<String>> {
    let mut lines = vec![format!(
        "LoadModule rswsgi_module {}",
        conf_path(&located.module)?
    )];
    if !module_finds_daemon(&located.module, &located.daemon) {
        lines.push(format!(
            "RSWSGIDaemonExecutable {}",
            conf_path(&located.daemon)?
        ));
    }
    if let Some(home) = &located.python_home {
        lines.push(format!("WSGIPythonHome {}", conf_path(home)?));
    }
    Ok(lines)
}

/// Copies the module (mode 0644, as `mod_rswsgi.so`) and the daemon (mode 0755, as
/// `rswsgi-daemon`, beside it, where the module finds it) into `dir`, each replaced by a
/// rename so a running Apache keeps its mapped copy. Returns the copies' [`Located`].
pub fn install_module(located: &Located, dir: &Path) -> Result<Located> {
    let dir = absolute(dir)?;
    if !dir.is_dir() {
        anyhow::bail!(
            "--modules-directory {}: not a directory (create it first)",
            dir.display()
        );
    }
    let module = dir.join(MODULE_NAMES[0]);
    let daemon = dir.join(DAEMON_NAME);
    install_library(&located.module, &module, 0o644)
        .with_context(|| format!("installing the module into {}", dir.display()))?;
    install_library(&located.daemon, &daemon, 0o755)
        .with_context(|| format!("installing the daemon into {}", dir.display()))?;
    Ok(Located {
        module,
        daemon,
        modules_dir: dir,
        python_home: located.python_home.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_line_only_when_the_module_would_not_find_it() {
        let dir = std::env::temp_dir().join(format!("rswsgi-install-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let module = dir.join("mod_rswsgi.so");
        std::fs::write(&module, "").unwrap();
        let mut located = Located {
            module: module.clone(),
            daemon: "/opt/x/rswsgi-daemon".into(),
            modules_dir: dir.clone(),
            python_home: None,
        };
        let lines = config_lines(&located).unwrap();
        assert_eq!(
            lines[0],
            format!("LoadModule rswsgi_module {}", module.display())
        );
        assert_eq!(lines[1], "RSWSGIDaemonExecutable /opt/x/rswsgi-daemon");
        std::fs::write(dir.join(DAEMON_NAME), "").unwrap();
        located.daemon = dir.join(DAEMON_NAME);
        located.python_home = Some("/srv/venv".into());
        let lines = config_lines(&located).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[1], "WSGIPythonHome /srv/venv");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
