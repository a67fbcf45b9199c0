//! [`DaemonSpec::parse`]: the daemon's side of the command line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::str::FromStr;

use super::flags::{self, *};
use super::{DaemonSpec, LogLevel, ScriptOwner, LIMIT_FLAGS, MAX_SIZE, MIN_SOCKET_BUFFER};

/// Why a command line is not a daemon's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// An argument that is no flag of [`FLAGS`].
    #[error("unexpected argument {0:?}")]
    Unknown(String),
    /// A flag that takes a value came last.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// `--switch=value` for a flag that takes none.
    #[error("{0} takes no value")]
    UnexpectedValue(&'static str),
    /// A required flag was not given.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A flag that is not repeatable was given twice.
    #[error("{0} cannot be given more than once")]
    Repeated(&'static str),
    /// Two flags that exclude each other.
    #[error("{0} cannot be used with {1}")]
    Conflict(&'static str, &'static str),
    /// A flag given without another that it needs.
    #[error("{0} needs {1}")]
    Requires(&'static str, &'static str),
    /// A value that is not valid for its flag.
    #[error("invalid value {value:?} for {flag}: {why}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// The value, as given (lossily, when not UTF-8).
        value: String,
        /// What was expected.
        why: String,
    },
}

impl DaemonSpec {
    /// Reads a command line (the arguments after `argv[0]`), `--flag value` or
    /// `--flag=value`.
    pub fn parse<I, A>(args: I) -> Result<DaemonSpec, SpecError>
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut spec = DaemonSpec::new(String::new(), 0, 0, 0);
        let mut seen: Vec<&'static str> = Vec::new();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            let (name, inline) = match text.split_once('=') {
                Some((n, _)) if n.starts_with("--") => (n, Some(after_eq(&arg))),
                _ => (&*text, None),
            };
            let flag = FLAGS
                .iter()
                .find(|f| f.name == name)
                .ok_or_else(|| SpecError::Unknown(text.to_string()))?;
            if seen.contains(&flag.name) && !flag.repeatable {
                return Err(SpecError::Repeated(flag.name));
            }
            seen.push(flag.name);
            let value = match (flag.value, inline) {
                (None, None) => None,
                (None, Some(_)) => return Err(SpecError::UnexpectedValue(flag.name)),
                (Some(_), Some(v)) => Some(v),
                (Some(_), None) => Some(args.next().ok_or(SpecError::MissingValue(flag.name))?),
            };
            spec.apply(flag, value)?;
        }
        let mut required = FLAGS.iter().filter(|f| f.required);
        if let Some(missing) = required.find(|f| !seen.contains(&f.name)) {
            return Err(SpecError::Missing(missing.name));
        }
        if seen.contains(&SCRIPT_USER.name) && seen.contains(&SCRIPT_GROUP.name) {
            return Err(SpecError::Conflict(SCRIPT_USER.name, SCRIPT_GROUP.name));
        }
        if !spec.reload_files.is_empty() && !spec.reload_on_changes {
            return Err(SpecError::Requires(
                RELOAD_FILE.name,
                RELOAD_ON_CHANGES.name,
            ));
        }
        Ok(spec)
    }

    /// Sets the field of one flag.
    fn apply(&mut self, flag: &Flag, value: Option<OsString>) -> Result<(), SpecError> {
        let Some(raw) = value else {
            return self.apply_switch(*flag);
        };
        let v = Value {
            flag: flag.name,
            raw,
        };
        match *flag {
            flags::LISTEN_FD => self.listen_fd = v.number()?,
            flags::SECRET_FD => self.secret_fd = v.number()?,
            flags::STATS_FD => self.stats_fd = Some(v.number()?),
            PEER_UID => self.peer_uid = Some(v.number()?),
            LISTEN_BACKLOG => self.listen_backlog = v.number()?,
            GROUP => self.group = v.text()?.to_string(),
            PROCESSES => self.processes = v.in_range(1, 100_000)?,
            THREADS => self.threads = v.in_range(1, 10_000)?,
            PARENT_PID => self.parent_pid = v.number()?,
            SCRIPT => self.scripts.push(v.path()),
            ALLOW_SCRIPT => self.allow_scripts.push(v.path()),
            ALLOW_DIR => self.allow_dirs.push(v.path()),
            RELOAD_FILE => self.reload_files.push(v.path()),
            CALLABLE => self.callable = v.text()?.to_string(),
            PYTHON_HOME => self.python_home = Some(v.path()),
            PYTHON_PATH => self
                .python_path
                .extend(std::env::split_paths(&v.raw).filter(|p| !p.as_os_str().is_empty())),
            HOME => self.home = Some(v.path()),
            LOG_LEVEL => self.log_level = v.log_level()?,
            SEND_BUFFER_SIZE => {
                self.send_buffer_size = Some(v.in_range(MIN_SOCKET_BUFFER, MAX_SIZE)?)
            }
            RECEIVE_BUFFER_SIZE => {
                self.receive_buffer_size = Some(v.in_range(MIN_SOCKET_BUFFER, MAX_SIZE)?)
            }
            STACK_SIZE => self.stack_size = Some(v.in_range(1, u64::from(MAX_SIZE))?),
            SWITCH_INTERVAL => self.switch_interval = Some(v.switch_interval()?),
            SLOW_REQUESTS => self.slow_requests = Some(v.seconds_at_least_0()?),
            SCRIPT_USER => self.script_owner = Some(ScriptOwner::User(v.number()?)),
            SCRIPT_GROUP => self.script_owner = Some(ScriptOwner::Group(v.number()?)),
            APACHE_VERSION => self.apache_version = Some(v.version()?),
            limit if LIMIT_FLAGS.contains(&limit) => self.set_limit_flag(limit, v.number()?),
            other => unreachable!("{} is in FLAGS but not parsed", other.name),
        }
        Ok(())
    }

    fn apply_switch(&mut self, flag: Flag) -> Result<(), SpecError> {
        match flag {
            VERBOSE => self.verbose = true,
            NO_SCRIPT_RELOADING => self.script_reloading = false,
            RELOAD_ON_CHANGES => self.reload_on_changes = true,
            RESTRICT_STDIN => self.restrict_stdin = true,
            RESTRICT_STDOUT => self.restrict_stdout = true,
            other => unreachable!("{} is a switch in FLAGS but not parsed", other.name),
        }
        Ok(())
    }
}

/// What follows the first `=` of `arg`.
fn after_eq(arg: &OsString) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = arg.as_bytes();
    let at = bytes
        .iter()
        .position(|b| *b == b'=')
        .map_or(bytes.len(), |i| i + 1);
    OsString::from_vec(bytes[at..].to_vec())
}

/// One flag's value.
struct Value {
    flag: &'static str,
    raw: OsString,
}

impl Value {
    fn invalid(&self, why: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            flag: self.flag,
            value: self.raw.to_string_lossy().into_owned(),
            why: why.into(),
        }
    }

    fn text(&self) -> Result<&str, SpecError> {
        self.raw.to_str().ok_or_else(|| self.invalid("not UTF-8"))
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(&self.raw)
    }

    fn number<T: FromStr>(&self) -> Result<T, SpecError>
    where
        T::Err: std::fmt::Display,
    {
        self.text()?
            .parse()
            .map_err(|e: T::Err| self.invalid(e.to_string()))
    }

    fn in_range<T>(&self, min: T, max: T) -> Result<T, SpecError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let n: T = self.number()?;
        if n < min || n > max {
            return Err(self.invalid(format!("{n} is not in {min}..={max}")));
        }
        Ok(n)
    }

    /// A number of seconds of at least 0 (`--slow-requests`).
    fn seconds_at_least_0(&self) -> Result<f64, SpecError> {
        match self.text()?.parse::<f64>() {
            Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
            _ => Err(self.invalid("expected a number of seconds of at least 0")),
        }
    }

    /// A positive number of seconds.
    fn switch_interval(&self) -> Result<f64, SpecError> {
        match self.text()?.parse::<f64>() {
            Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
            _ => Err(self.invalid("expected a positive number of seconds")),
        }
    }

    /// One of Apache's log level names.
    fn log_level(&self) -> Result<LogLevel, SpecError> {
        self.text()?
            .parse()
            .map_err(|e: super::UnknownLogLevel| self.invalid(e.to_string()))
    }

    /// `X.Y.Z` as three numbers.
    fn version(&self) -> Result<(u32, u32, u32), SpecError> {
        let parts: Vec<u32> = self
            .text()?
            .split('.')
            .map(|p| p.parse().map_err(|e| self.invalid(format!("{e}"))))
            .collect::<Result<_, _>>()?;
        match parts[..] {
            [x, y, z] => Ok((x, y, z)),
            _ => Err(self.invalid("expected three numbers, X.Y.Z")),
        }
    }
}
