//! Writing the server root: `httpd.conf`, `apachectl`, `htdocs/`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

use crate::config::{resolve, ServerConfig};
use crate::handler::{build_handler, install_library, BuiltHandler};
use crate::options::ServerOptions;
use crate::render::{render_apachectl, render_httpd_conf};

/// A written server root, ready for [`crate::start_httpd`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRoot {
    /// The directory.
    pub dir: PathBuf,
    /// `<dir>/httpd.conf`.
    pub httpd_conf: PathBuf,
    /// `<dir>/apachectl`.
    pub apachectl: PathBuf,
    /// `<dir>/httpd.pid`, or the `--pid-file`.
    pub pid_file: PathBuf,
    /// `<dir>/error_log`, or `None` when the error log goes to the terminal.
    pub error_log: Option<PathBuf>,
    /// With `--startup-log`, where httpd writes its start-up messages (`-E`):
    /// `<dir>/startup_log`, or `/dev/stderr` when the error log goes to the terminal.
    pub startup_log: Option<PathBuf>,
    /// The httpd binary.
    pub httpd: PathBuf,
    /// The URL the application answers at.
    pub url: String,
    /// The configuration it was written from.
    pub config: ServerConfig,
    /// The native handler built (or found in the cache) for it, when the script was a `.rs`.
    pub handler: Option<BuiltHandler>,
    /// Every file [`write_server_root`] wrote or created, in that order (what
    /// `setup-server` lists).
    pub written: Vec<PathBuf>,
}

impl ServerRoot {
    /// Runs `httpd -t -f httpd.conf` (a configuration test; starts nothing).
    pub fn config_test(&self) -> Result<Output> {
        Command::new(&self.httpd)
            .arg("-t")
            .arg("-f")
            .arg(&self.httpd_conf)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} -t", self.httpd.display()))
    }

    /// The error log's contents, or an empty string when there is none (yet).
    pub fn read_error_log(&self) -> String {
        self.error_log
            .as_deref()
            .and_then(|p| fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

/// Resolves `opts` (see [`resolve`]) and writes the server root.
pub fn setup_server(opts: &ServerOptions) -> Result<ServerRoot> {
    write_server_root(&resolve(opts)?)
}

/// Writes `httpd.conf`, `apachectl` and `htdocs/` into `config.server_root`.
///
/// For a native handler source, first builds it (see [`build_handler`]; a cache hit runs
/// no cargo) and then puts the library at `config.script` (`<root>/handler.so`, mode 0644,
/// replaced by a rename so running daemons keep their mapped copy). When the build fails,
/// nothing is written (unless the build cache itself lives in the server root).
///
/// The root is created mode 0755; an existing one must be a real directory owned by
/// the current user that nobody else can write (the default lives under `/tmp`,
/// where anyone could have made it first). The files are 0644 (`apachectl` 0755),
/// so the user Apache switches to can read but not change them. The logs (`error_log`,
/// and `access_log` and `startup_log` when they are written) are created here, mode [`LOG_MODE`] (see
/// [`prepare_log`]), before httpd opens them for appending.
pub fn write_server_root(config: &ServerConfig) -> Result<ServerRoot> {
    let dir = &config.server_root;
    let conf = render_httpd_conf(config)?;
    let ctl = render_apachectl(config)?;
    let handler = match &config.native_source {
        Some(source) => {
            if config
                .build
                .cache_dir
                .as_ref()
                .is_some_and(|c| c.starts_with(dir))
            {
                make_private_dir(dir)?;
            }
            Some(build_handler(source, &config.build)?)
        }
        None => None,
    };
    make_private_dir(dir)?;
    let mut written = Vec::new();
    if let Some(built) = &handler {
        install_library(&built.library, &config.script, 0o644)?;
        written.push(config.script.clone());
    }
    for h in crate::site::resource_handlers(config) {
        write_file(&h.wrapper, &h.wrapper_source(), 0o644)?;
        written.push(h.wrapper.clone());
    }
    if let Some(entry) = &config.module_entry {
        let source = crate::script::module_handler(entry, &config.callable_object);
        write_file(&config.script, &source, 0o644)?;
        written.push(config.script.clone());
    }
    make_private_dir(&dir.join("htdocs"))?;
    let httpd_conf = dir.join("httpd.conf");
    let apachectl = dir.join("apachectl");
    write_file(&httpd_conf, &conf, 0o644)?;
    write_file(&apachectl, &ctl, 0o755)?;
    written.extend([httpd_conf.clone(), apachectl.clone()]);
    let error_log = (!config.log_to_terminal).then(|| config.logs.error_log());
    let access_log =
        (config.access_log && !config.log_to_terminal).then(|| config.logs.access_log());
    let startup_log = startup_log_path(config);
    let startup_file = startup_log.as_ref().filter(|_| !config.log_to_terminal);
    if !config.log_to_terminal && config.logs.directory != *dir {
        fs::create_dir_all(&config.logs.directory).with_context(|| {
            format!(
                "creating the log directory {}",
                config.logs.directory.display()
            )
        })?;
    }
    for log in error_log.iter().chain(&access_log).chain(startup_file) {
        prepare_log(log)?;
        written.push(log.clone());
    }
    Ok(ServerRoot {
        httpd_conf,
        apachectl,
        pid_file: config.pid_file(),
        error_log,
        startup_log,
        httpd: config.httpd.clone(),
        url: config.url(),
        dir: dir.clone(),
        config: config.clone(),
        handler,
        written,
    })
}

/// Where `--startup-log` sends httpd's start-up messages, as mod_wsgi-express does:
/// `<log directory>/<--startup-log-name>`, or standard error with `--log-to-terminal`.
pub fn startup_log_path(config: &ServerConfig) -> Option<PathBuf> {
    match (config.startup_log, config.log_to_terminal) {
        (false, _) => None,
        (true, true) => Some(PathBuf::from("/dev/stderr")),
        (true, false) => Some(config.logs.startup_log()),
    }
}

/// Mode of the log files: tracebacks and request lines can carry secrets, so not
/// world-readable. Readable by their owner and group, as Debian keeps `/var/log/apache2`.
pub const LOG_MODE: u32 = 0o640;

/// The group that may read the logs when express runs as root (Debian's log readers).
pub const LOG_GROUP: &str = "adm";

/// Creates the log file `path`, or takes the one an earlier run left, with mode
/// [`LOG_MODE`]; as root, owned by root and group [`LOG_GROUP`] (when it exists), as Debian's
/// `/var/log/apache2`; otherwise by the invoking user and its group. httpd's parent (root,
/// or the invoking user) appends to it and hands the descriptor to its children and the
/// daemons, so nobody else needs to open it. A symlink in its place is refused (the server
/// root is private to this user, so only the user could have put it there).
pub fn prepare_log(path: &Path) -> Result<()> {
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(LOG_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("creating the log {}", path.display()))?;
    if !file.metadata()?.is_file() {
        bail!("log {} is not a regular file", path.display());
    }
    file.set_permissions(fs::Permissions::from_mode(LOG_MODE))
        .with_context(|| format!("chmod {LOG_MODE:04o} {}", path.display()))?;
    if nix::unistd::geteuid().is_root() {
        if let Ok(Some(group)) = nix::unistd::Group::from_name(LOG_GROUP) {
            std::os::unix::fs::fchown(&file, Some(0), Some(group.gid.as_raw()))
                .with_context(|| format!("chown root:{LOG_GROUP} {}", path.display()))?;
        }
    }
    Ok(())
}

/// Creates `dir` (mode 0755) or checks that the existing one is safe to use.
fn make_private_dir(dir: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod 0755 {}", dir.display()))?;
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating server root {}", dir.display())),
    }
    let meta = fs::symlink_metadata(dir).with_context(|| format!("stat {}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        bail!(
            "server root {} exists but is not a directory owned by uid {me} that only it can \
             write: remove it or pass another --server-root",
            dir.display()
        );
    }
    Ok(())
}

/// Replaces `path` with `contents` (through a temporary file and a rename).
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}
