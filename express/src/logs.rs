//! Where the logs go and what they look like: mod_wsgi-express's `--log-directory`,
//! `--error-log-name`, `--access-log-name`, `--startup-log-name`, `--access-log-format`,
//! `--error-log-format`, `--rotate-logs`, `--max-log-size` and `--rotatelogs-executable`.
//!
//! A rotated log is written by Apache's `rotatelogs` (a piped log, through `/bin/sh` so that
//! the files it creates get umask 027, as express's own logs are 0640), to
//! `NAME.YYYY-MM-DD-HH_MM_SS` files with `NAME` a hard link to the current one
//! (`rotatelogs -L`). The `json` access log format goes through `express log-filter json`
//! (see [`crate::jsonlog`]), which turns Apache's escaped fields into JSON strings.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::config::{absolute, ServerConfig};
use crate::locate::{apxs_query, is_executable, search_path};
use crate::render::{conf_path, conf_word, shell_word};

/// The access log formats known by name: mod_wsgi-express's `common` and `combined`, the
/// `referer` and `agent` of Apache's stock configuration (and of older mod_wsgi-express
/// releases), and express's `json`, as (name, Apache format). `common` and `combined` end with
/// the request's log id (`%L`, its `[request ID]` in the error log), so the two logs join; a
/// parser of Apache's formats still reads the fields before it. `json` has it as `request_id`.
pub const NAMED_FORMATS: [(&str, &str); 5] = [
    ("common", r#"%h %l %u %t "%r" %>s %b %L"#),
    (
        "combined",
        r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %L"#,
    ),
    ("referer", "%{Referer}i -> %U"),
    ("agent", "%{User-agent}i"),
    ("json", JSON_FORMAT),
];

/// The access log format without `--access-log-format`: Apache's `combined`, the request's
/// duration in microseconds (`%D`) and its log id (`%L`).
pub const DEFAULT_FORMAT: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D %L"#;

/// The `json` format as Apache writes it: a JSON object whose strings hold Apache's escaped
/// fields (`\"`, `\\`, `\xhh`, ...), which `express log-filter json` rewrites as JSON
/// strings. Numbers stay bare.
pub const JSON_FORMAT: &str = concat!(
    r#"{"time":"%{%Y-%m-%dT%H:%M:%S}t.%{msec_frac}t%{%z}t","method":"%m","path":"%U","#,
    r#""query":"%q","protocol":"%H","status":%>s,"bytes":%B,"duration_us":%D,"#,
    r#""request_id":"%L","remote_addr":"%a","user_agent":"%{User-Agent}i","#,
    r#""referer":"%{Referer}i"}"#
);

/// Where the rotated files' names get their time stamp (mod_wsgi-express's).
const ROTATED_SUFFIX: &str = ".%Y-%m-%d-%H_%M_%S";

/// The log options of `express start-server`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct LogOptions {
    /// Directory for the error, access and start-up logs (it overrides --log-to-terminal) [default: the server root].
    #[arg(long, value_name = "DIR")]
    pub log_directory: Option<PathBuf>,
    /// File name of the error log in the log directory.
    #[arg(long, value_name = "FILE-NAME", default_value = "error_log")]
    pub error_log_name: String,
    /// File name of the access log in the log directory.
    #[arg(long, value_name = "FILE-NAME", default_value = "access_log")]
    pub access_log_name: String,
    /// File name of the start-up log in the log directory.
    #[arg(long, value_name = "FILE-NAME", default_value = "startup_log")]
    pub startup_log_name: String,
    /// Access log format (with --access-log): common, combined, referer, agent, json, or an Apache LogFormat string [default: combined, %D and %L].
    #[arg(long, value_name = "FORMAT")]
    pub access_log_format: Option<String>,
    /// Apache's ErrorLogFormat for the error log [default: Apache's].
    #[arg(long, value_name = "FORMAT")]
    pub error_log_format: Option<String>,
    /// Rotate the error and access logs with Apache's rotatelogs when they reach --max-log-size (not with --log-to-terminal).
    #[arg(long)]
    pub rotate_logs: bool,
    /// Size in MB at which --rotate-logs starts a new file.
    #[arg(long, value_name = "MB", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_log_size: u64,
    /// The rotatelogs program [default: /usr/bin/rotatelogs, else apxs -q SBINDIR, else on PATH].
    #[arg(long, value_name = "FILE-PATH")]
    pub rotatelogs_executable: Option<PathBuf>,
}

impl Default for LogOptions {
    fn default() -> Self {
        crate::options::clap_defaults()
    }
}

/// [`LogOptions`] resolved: the directory absolute, the programs found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logs {
    /// The options as given (file names checked).
    pub options: LogOptions,
    /// The log directory (absolute).
    pub directory: PathBuf,
    /// `rotatelogs`, with `--rotate-logs`.
    pub rotatelogs: Option<PathBuf>,
    /// The `express` binary, for the `json` access log's filter.
    pub express: Option<PathBuf>,
}

impl LogOptions {
    /// Checks the names and the format, makes the directory absolute (default
    /// `server_root`), and finds `rotatelogs` (with `--rotate-logs`) and `express` (for
    /// `json`, see [`find_express`]; `daemon` is the daemon binary found).
    pub fn resolve(&self, server_root: &Path, daemon: &Path) -> Result<Logs> {
        let names = [
            ("--error-log-name", &self.error_log_name),
            ("--access-log-name", &self.access_log_name),
            ("--startup-log-name", &self.startup_log_name),
        ];
        for (flag, name) in names {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                bail!("{flag} {name:?}: a file name, without /");
            }
        }
        for (flag, f) in [
            ("--access-log-format", &self.access_log_format),
            ("--error-log-format", &self.error_log_format),
        ] {
            if f.as_deref()
                .is_some_and(|f| f.is_empty() || f.contains(['\n', '\r', '\0']))
            {
                bail!("{flag}: must be one non-empty line");
            }
        }
        let directory = match &self.log_directory {
            Some(dir) => absolute(dir)?,
            None => server_root.to_path_buf(),
        };
        let rotatelogs = match self.rotate_logs {
            true => Some(find_rotatelogs(self.rotatelogs_executable.as_deref())?),
            false => None,
        };
        let express = match self.access_log_format.as_deref() {
            Some("json") => Some(find_express(daemon)?),
            _ => None,
        };
        Ok(Logs {
            options: self.clone(),
            directory,
            rotatelogs,
            express,
        })
    }
}

impl Logs {
    /// The error log file (when not to the terminal).
    pub fn error_log(&self) -> PathBuf {
        self.directory.join(&self.options.error_log_name)
    }

    /// The access log file (when not to the terminal).
    pub fn access_log(&self) -> PathBuf {
        self.directory.join(&self.options.access_log_name)
    }

    /// The start-up log file (when not to the terminal).
    pub fn startup_log(&self) -> PathBuf {
        self.directory.join(&self.options.startup_log_name)
    }

    /// The Apache format of the access log: a named one, the one given, or [`DEFAULT_FORMAT`].
    pub fn access_format(&self) -> &str {
        match self.options.access_log_format.as_deref() {
            None => DEFAULT_FORMAT,
            Some(f) => NAMED_FORMATS
                .iter()
                .find(|(name, _)| *name == f)
                .map_or(f, |(_, format)| format),
        }
    }

    /// `/bin/sh` words that run rotatelogs on `file`, or `None` without `--rotate-logs`.
    fn rotate_command(&self, file: &Path) -> Result<Option<String>> {
        let Some(rotatelogs) = &self.rotatelogs else {
            return Ok(None);
        };
        let word = |p: &Path| -> Result<String> {
            match p.to_str() {
                Some(s) => Ok(shell_word(s)),
                None => bail!("{}: path is not UTF-8", p.display()),
            }
        };
        let rotated = format!("{}{ROTATED_SUFFIX}", file.display());
        Ok(Some(format!(
            "{} -L {} {} {}M",
            word(rotatelogs)?,
            word(file)?,
            shell_word(&rotated),
            self.options.max_log_size
        )))
    }
}

/// A piped log target run by `/bin/sh` (`|$`), its files created with umask 027.
fn piped(command: &str) -> Result<String> {
    conf_word(&format!("|$umask 027; {command}"))
}

/// The `ErrorLog` (and `ErrorLogFormat`) lines.
pub fn render_error_log(c: &ServerConfig) -> Result<String> {
    let logs = &c.logs;
    let mut out = String::new();
    let target = if c.log_to_terminal {
        "/dev/stderr".to_owned()
    } else {
        match logs.rotate_command(&logs.error_log())? {
            Some(rotate) => piped(&format!("exec {rotate}"))?,
            None => conf_path(&logs.error_log())?,
        }
    };
    writeln!(out, "ErrorLog {target}")?;
    if let Some(format) = &logs.options.error_log_format {
        writeln!(out, "ErrorLogFormat {}", conf_word(format)?)?;
    }
    Ok(out)
}

/// The `LogFormat` and `CustomLog` lines, with `--access-log`.
pub fn render_access_log(c: &ServerConfig) -> Result<String> {
    if !c.access_log {
        return Ok(String::new());
    }
    let logs = &c.logs;
    let filter = match &logs.express {
        Some(express) => match express.to_str() {
            Some(s) => Some(format!("{} log-filter json", shell_word(s))),
            None => bail!("{}: path is not UTF-8", express.display()),
        },
        None => None,
    };
    let file = logs.access_log();
    let rotate = match c.log_to_terminal {
        true => None,
        false => logs.rotate_command(&file)?,
    };
    let target = match (filter, rotate, c.log_to_terminal) {
        (Some(f), _, true) => piped(&format!("exec {f}"))?,
        (Some(f), Some(r), false) => piped(&format!("{f} | exec {r}"))?,
        (Some(f), None, false) => piped(&format!(
            "exec {f} >> {}",
            shell_word(&file.display().to_string())
        ))?,
        (None, Some(r), _) => piped(&format!("exec {r}"))?,
        (None, None, true) => "/dev/stdout".to_owned(),
        (None, None, false) => conf_path(&file)?,
    };
    Ok(format!(
        "LogFormat {} rswsgi\nCustomLog {target} rswsgi\n",
        conf_word(logs.access_format())?
    ))
}

/// `rotatelogs`: `explicit`, else `/usr/bin/rotatelogs` (Debian's `apache2-utils`), else in
/// `apxs -q SBINDIR`, else on `PATH`.
pub fn find_rotatelogs(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !is_executable(path) {
            bail!(
                "--rotatelogs-executable {}: not an executable file",
                path.display()
            );
        }
        return absolute(path);
    }
    let candidates = [
        Some(PathBuf::from("/usr/bin/rotatelogs")),
        apxs_query("SBINDIR").map(|d| Path::new(&d).join("rotatelogs")),
        search_path("rotatelogs"),
    ];
    match candidates.into_iter().flatten().find(|p| is_executable(p)) {
        Some(p) => Ok(p),
        None => bail!(
            "--rotate-logs: rotatelogs not found: install apache2-utils or pass --rotatelogs-executable"
        ),
    }
}

/// The `express` binary that runs the `json` log filter: the running executable when it is
/// express (`express`, `rswsgi-express`), else `express` beside the daemon binary.
pub fn find_express(daemon: &Path) -> Result<PathBuf> {
    let current = std::env::current_exe().ok().filter(|exe| {
        exe.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "express" || n == "rswsgi-express")
    });
    let beside = daemon.with_file_name("express");
    match current.or_else(|| is_executable(&beside).then_some(beside)) {
        Some(exe) => Ok(exe),
        None => bail!(
            "--access-log-format json: the express binary that filters the log was not found \
             (run express itself, or put it beside {})",
            daemon.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_joinable_formats_end_with_the_request_id() {
        for (name, format) in NAMED_FORMATS {
            match name {
                "common" | "combined" => assert!(format.ends_with(" %L"), "{name}: {format}"),
                "json" => assert!(format.contains(r#""request_id":"%L""#)),
                _ => assert!(!format.contains("%L"), "{name} stays Apache's stock format"),
            }
        }
        assert!(DEFAULT_FORMAT.ends_with(" %D %L"), "{DEFAULT_FORMAT}");
    }
}
