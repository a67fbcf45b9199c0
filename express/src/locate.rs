//! Finding Apache, its modules directory, `mod_rswsgi.so` and `rswsgi-daemon`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

/// File names the module may have: installed (`mod_rswsgi.so`) or as cargo builds it.
pub const MODULE_NAMES: [&str; 2] = ["mod_rswsgi.so", "libmod_rswsgi.so"];
/// File name of the daemon binary.
pub const DAEMON_NAME: &str = "rswsgi-daemon";

/// The httpd binary: `explicit` if given, else Debian's `/usr/sbin/apache2`, else
/// `apxs -q SBINDIR`/`apxs -q TARGET`, else `apache2` or `httpd` on `PATH`.
pub fn find_httpd(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if is_executable(path) {
            return Ok(path.to_path_buf());
        }
        bail!(
            "--httpd-executable {}: no executable file there",
            path.display()
        );
    }
    let debian = Path::new("/usr/sbin/apache2");
    if is_executable(debian) {
        return Ok(debian.to_path_buf());
    }
    if let (Some(sbin), Some(target)) = (apxs_query("SBINDIR"), apxs_query("TARGET")) {
        let candidate = Path::new(&sbin).join(target);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    for name in ["apache2", "httpd"] {
        if let Some(found) = search_path(name) {
            return Ok(found);
        }
    }
    bail!("Apache httpd not found: install apache2 (apt-get install apache2) or pass --httpd-executable")
}

/// Apache's modules directory: `explicit` if given, else `apxs -q LIBEXECDIR`, else
/// Debian's `/usr/lib/apache2/modules`.
pub fn find_modules_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    let dir = match explicit {
        Some(dir) => dir.to_path_buf(),
        None => match apxs_query("LIBEXECDIR") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from("/usr/lib/apache2/modules"),
        },
    };
    if !dir.join("mod_mpm_event.so").is_file() && !dir.join("mod_authz_core.so").is_file() {
        bail!(
            "Apache modules directory {} has no mod_mpm_event.so or mod_authz_core.so: \
             install apache2 or pass --modules-directory",
            dir.display()
        );
    }
    Ok(dir)
}

/// `mod_rswsgi.so`: `explicit`, else `$RSWSGI_MODULE`, else next to the running
/// executable (as `mod_rswsgi.so` or cargo's `libmod_rswsgi.so`), else in `modules_dir`.
pub fn find_module(explicit: Option<&Path>, modules_dir: &Path) -> Result<PathBuf> {
    if let Some(path) = given(explicit, "RSWSGI_MODULE") {
        if path.is_file() {
            return Ok(path);
        }
        bail!("mod_rswsgi module {}: no such file", path.display());
    }
    let mut dirs: Vec<PathBuf> = exe_dir().into_iter().collect();
    dirs.push(modules_dir.to_path_buf());
    for dir in &dirs {
        for name in MODULE_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "mod_rswsgi.so not found in {}: build it with `cargo build --release --workspace` or pass --module-path",
        join_dirs(&dirs)
    )
}

/// Where the Debian package installs the daemon, relative to the launcher's directory
/// (`/usr/bin/rswsgi-express` → `/usr/lib/rswsgi/rswsgi-daemon`).
pub const INSTALLED_DAEMON: &str = "../lib/rswsgi/rswsgi-daemon";

/// `rswsgi-daemon`: `explicit`, else `$RSWSGI_DAEMON`, else next to the running
/// executable, else next to the module, else at [`INSTALLED_DAEMON`] from the running
/// executable (an installed express), else on `PATH`.
pub fn find_daemon(explicit: Option<&Path>, module: &Path) -> Result<PathBuf> {
    if let Some(path) = given(explicit, "RSWSGI_DAEMON") {
        if is_executable(&path) {
            return Ok(path);
        }
        bail!("rswsgi-daemon {}: no executable file there", path.display());
    }
    let mut dirs: Vec<PathBuf> = exe_dir().into_iter().collect();
    if let Some(dir) = module.parent() {
        dirs.push(dir.to_path_buf());
    }
    for dir in &dirs {
        let candidate = dir.join(DAEMON_NAME);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    if let Some(installed) = exe_dir().map(|dir| dir.join(INSTALLED_DAEMON)) {
        if is_executable(&installed) {
            return Ok(installed.canonicalize().unwrap_or(installed));
        }
    }
    if let Some(found) = search_path(DAEMON_NAME) {
        return Ok(found);
    }
    bail!(
        "rswsgi-daemon not found in {} or on PATH: build it with `cargo build --release --workspace` \
         or pass --daemon-executable",
        join_dirs(&dirs)
    )
}

/// The option's value, else the environment variable's (when set and not empty).
fn given(explicit: Option<&Path>, var: &str) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| {
        env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// The directory of the running executable, symlinks resolved.
fn exe_dir() -> Option<PathBuf> {
    let exe = env::current_exe().ok()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    exe.parent().map(Path::to_path_buf)
}

fn join_dirs(dirs: &[PathBuf]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(" or ")
}

/// `apxs -q NAME`, when apxs is installed and answers with something.
pub fn apxs_query(name: &str) -> Option<String> {
    let apxs = search_path("apxs").or_else(|| search_path("apxs2"))?;
    let out = Command::new(apxs)
        .args(["-q", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let value = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !value.is_empty()).then_some(value)
}

/// The first executable `name` in the directories of `$PATH`.
pub fn search_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// A regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_httpd_must_exist() {
        let err = find_httpd(Some(Path::new("/nonexistent/httpd"))).unwrap_err();
        assert!(err.to_string().contains("--httpd-executable"), "{err}");
    }

    #[test]
    fn sh_is_on_path() {
        assert!(search_path("sh").is_some());
        assert!(search_path("surely-no-such-binary-here").is_none());
    }
}
