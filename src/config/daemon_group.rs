//! `WSGIDaemonProcess NAME [option=value]...`: one group of daemon processes.

use super::daemon_options::ConnOptions;
use super::reload::ReloadOptions;
use super::words::{split_option, split_words};
// The options handed to the daemon as `--OPTION VALUE` (seconds, bytes or a count; 0 turns
// one off) are the daemon contract's limits.
use rswsgi_protocol::daemon_spec::LIMITS;

const DIRECTIVE: &str = "WSGIDaemonProcess";

/// mod_wsgi options this version accepts but does not act on, with why; they are logged at
/// start-up (see [`ignored_reason`]) so that an existing mod_wsgi configuration still loads.
const ACCEPTED_NOT_IMPLEMENTED: &[(&str, &str)] = &[
    (
        "server-metrics",
        "Apache's scoreboard is not visible from the daemons, so mod_wsgi.server_metrics() \
         returns None whatever it says",
    ),
    (
        "python-eggs",
        "egg caches are obsolete; set PYTHON_EGG_CACHE in httpd's environment if one is needed",
    ),
    (
        "response-flush-delay",
        "the module passes each block of the response on to the client as it arrives, with \
         no delay to gather blocks",
    ),
];

/// Why an option word kept in [`DaemonGroupConfig::ignored`] has no effect.
pub fn ignored_reason(word: &str) -> &'static str {
    let option = word.split_once('=').map_or(word, |(o, _)| o);
    ACCEPTED_NOT_IMPLEMENTED
        .iter()
        .find(|(o, _)| *o == option)
        .map_or("not implemented", |(_, why)| *why)
}

/// mod_wsgi options refused with the reason: accepting them would quietly drop a restriction
/// the configuration asks for.
const REFUSED: &[(&str, &str)] = &[(
    "chroot",
    "not supported: the daemon binary and its Python would have to live inside the chroot",
)];

/// A user or group as written in the configuration: a name, or `#N` for a numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Looked up by name.
    Name(String),
    /// `#N`: a numeric id.
    Id(u32),
}

impl Principal {
    pub(super) fn parse(option: &str, value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err(format!("{DIRECTIVE}: {option}= needs a value"));
        }
        match value.strip_prefix('#') {
            Some(n) => n
                .parse()
                .map(Principal::Id)
                .map_err(|_| format!("{DIRECTIVE}: {option}={value} is not a valid numeric id")),
            None => Ok(Principal::Name(value.to_string())),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Name(n) => f.write_str(n),
            Principal::Id(i) => write!(f, "#{i}"),
        }
    }
}

/// One `WSGIDaemonProcess` group as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonGroupConfig {
    /// The group's name, used by `WSGIProcessGroup` and `process-group=`.
    pub name: String,
    /// How many daemon processes (default 1).
    pub processes: u32,
    /// Worker threads per process (default 15).
    pub threads: u32,
    /// The user the daemons run as (default: Apache's `User`).
    pub user: Option<Principal>,
    /// The group the daemons run as (default: the user's primary group, or Apache's `Group`).
    pub group: Option<Principal>,
    /// A Python installation or virtualenv to use.
    pub python_home: Option<String>,
    /// Directories added to `sys.path`, colon-separated as written.
    pub python_path: Option<String>,
    /// The process title shown by `ps`, with `%{GROUP}` expanded.
    pub display_name: Option<String>,
    /// The daemons' working directory.
    pub home: Option<String>,
    /// `connect-timeout`: seconds a request waits for the group to accept it before a 503.
    pub connect_timeout: u32,
    /// `listen-backlog`: the listening socket's backlog.
    pub listen_backlog: u32,
    /// Recycling limits and timeouts passed to the daemons, as `(option, value)`; 0 = off.
    pub limits: Vec<(&'static str, u64)>,
    /// `shutdown-timeout`: seconds daemons get to finish when httpd stops
    /// ([`DEFAULT_SHUTDOWN_TIMEOUT`]).
    pub shutdown_timeout: u64,
    /// `socket-timeout`: seconds the module waits on the daemon (default: Apache's `Timeout`).
    pub socket_timeout: Option<u64>,
    /// `lang` (`LANG`) and `locale` (`LC_ALL`) for the daemons.
    pub lang: Option<String>,
    /// See `lang`.
    pub locale: Option<String>,
    /// `umask` of the daemons (octal).
    pub umask: Option<u32>,
    /// `supplementary-groups`: more groups for the daemons, besides the user's own.
    pub supplementary_groups: Vec<Principal>,
    /// `virtual-memory-limit`: the daemons' `RLIMIT_AS`, in bytes.
    pub virtual_memory_limit: Option<u64>,
    /// `cpu-priority`: the daemons' nice value (-20 to 19), set before privileges are dropped.
    pub cpu_priority: Option<i32>,
    /// Sockets, worker threads, script owners (`config/daemon_options.rs`).
    pub conn: ConnOptions,
    /// The change monitor (`config/reload.rs`).
    pub reload: ReloadOptions,
    /// Options accepted for mod_wsgi compatibility but not acted on yet.
    pub ignored: Vec<String>,
}

fn parse_count(option: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{DIRECTIVE}: {option}={value} is not valid: expected a whole number of at least 1"
        )),
    }
}

/// `listen-backlog` when none is given: the daemon's own default.
const DEFAULT_LISTEN_BACKLOG: u32 = rswsgi_protocol::daemon_spec::DEFAULT_LISTEN_BACKLOG as u32;
/// `shutdown-timeout` when none is given: seconds daemons get to finish when httpd stops.
pub const DEFAULT_SHUTDOWN_TIMEOUT: u64 = 5;

fn parse_number(option: &str, value: &str) -> Result<u64, String> {
    value.parse::<u64>().map_err(|_| {
        format!(
            "{DIRECTIVE}: {option}={value} is not valid: expected a whole number (0 turns it off)"
        )
    })
}

/// `supplementary-groups=G1,G2`: names or `#GID`, never the root group.
fn parse_groups(option: &str, value: &str) -> Result<Vec<Principal>, String> {
    let mut groups = Vec::new();
    for name in value.split(',').filter(|n| !n.is_empty()) {
        let group = Principal::parse(option, name)?;
        if matches!(group, Principal::Id(0)) || name == "root" {
            return Err(format!(
                "{DIRECTIVE}: {option}={value} names the root group; daemon processes must not \
                 have root's privileges"
            ));
        }
        groups.push(group);
    }
    Ok(groups)
}

/// `cpu-priority=N`: a nice value.
fn parse_nice(option: &str, value: &str) -> Result<i32, String> {
    match value.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(format!(
            "{DIRECTIVE}: {option}={value} is not valid: a nice value from -20 to 19"
        )),
    }
}

/// `umask=0NNN`: an octal mode.
fn parse_umask(value: &str) -> Result<u32, String> {
    u32::from_str_radix(value.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{DIRECTIVE}: umask={value} is not an octal mode such as 0022"))
}

fn non_empty(option: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("{DIRECTIVE}: {option}= needs a value"))
    } else {
        Ok(value.to_string())
    }
}

impl DaemonGroupConfig {
    /// A group called `name` with every option at its default.
    fn new(name: &str) -> Self {
        DaemonGroupConfig {
            name: name.to_owned(),
            processes: 1,
            threads: 15,
            user: None,
            group: None,
            python_home: None,
            python_path: None,
            display_name: None,
            home: None,
            connect_timeout: 15,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            limits: Vec::new(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            socket_timeout: None,
            lang: None,
            locale: None,
            umask: None,
            supplementary_groups: Vec::new(),
            virtual_memory_limit: None,
            cpu_priority: None,
            conn: ConnOptions::default(),
            reload: ReloadOptions::default(),
            ignored: Vec::new(),
        }
    }

    /// Parses the raw arguments of a `WSGIDaemonProcess` line. User names are not looked up
    /// here (the supervisor resolves them when the daemons start, and the directive handler
    /// refuses a name that is root); `#0` is refused at once.
    pub fn parse(args: &str) -> Result<Self, String> {
        let words = split_words(args);
        let Some((name, options)) = words.split_first() else {
            return Err(format!("{DIRECTIVE}: missing the group name"));
        };
        if name.contains('=') {
            return Err(format!(
                "{DIRECTIVE}: the first argument must be the group name, found option '{name}'"
            ));
        }
        let mut g = DaemonGroupConfig::new(name);
        for word in options {
            let (option, value) = split_option(DIRECTIVE, word)?;
            if g.conn.parse_option(option, value)? || g.reload.parse_option(option, value)? {
                continue;
            }
            match option {
                "processes" => g.processes = parse_count(option, value)?,
                "threads" => g.threads = parse_count(option, value)?,
                "user" => {
                    let user = Principal::parse(option, value)?;
                    if matches!(user, Principal::Id(0)) || value == "root" {
                        return Err(root_refused(option, value));
                    }
                    g.user = Some(user);
                }
                "group" => g.group = Some(Principal::parse(option, value)?),
                "python-home" => g.python_home = Some(non_empty(option, value)?),
                "python-path" => g.python_path = Some(non_empty(option, value)?),
                "home" => g.home = Some(non_empty(option, value)?),
                "connect-timeout" => g.connect_timeout = parse_count(option, value)?,
                "listen-backlog" => g.listen_backlog = parse_count(option, value)?,
                "shutdown-timeout" => g.shutdown_timeout = parse_number(option, value)?,
                "socket-timeout" => g.socket_timeout = Some(u64::from(parse_count(option, value)?)),
                "lang" => g.lang = Some(non_empty(option, value)?),
                "supplementary-groups" => {
                    g.supplementary_groups.extend(parse_groups(option, value)?)
                }
                "virtual-memory-limit" => {
                    g.virtual_memory_limit = Some(parse_number(option, value)?)
                }
                "cpu-priority" => g.cpu_priority = Some(parse_nice(option, value)?),
                o if REFUSED.iter().any(|(r, _)| *r == o) => {
                    let why = REFUSED
                        .iter()
                        .find(|(r, _)| *r == o)
                        .map_or("", |(_, w)| *w);
                    return Err(format!("{DIRECTIVE} {name}: {o}= is {why}"));
                }
                "locale" => g.locale = Some(non_empty(option, value)?),
                "umask" => g.umask = Some(parse_umask(value)?),
                o if LIMITS.contains(&o) => {
                    let known = LIMITS.iter().find(|l| **l == o).expect("checked");
                    g.limits.retain(|(k, _)| k != known);
                    g.limits.push((known, parse_number(option, value)?));
                }
                "display-name" => {
                    let shown =
                        non_empty(option, value)?.replace("%{GROUP}", &format!("(wsgi:{name})"));
                    g.display_name = Some(shown);
                }
                o if ACCEPTED_NOT_IMPLEMENTED.iter().any(|(a, _)| *a == o) => {
                    g.ignored.push(word.clone())
                }
                o => return Err(format!("{DIRECTIVE} {name}: unknown option '{o}'")),
            }
        }
        g.reload.check()?;
        Ok(g)
    }
}

/// The message for a `user=` that names the superuser.
pub fn root_refused(option: &str, value: &str) -> String {
    format!("{DIRECTIVE}: {option}={value} resolves to root (uid 0); daemon processes must not run as root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let g = DaemonGroupConfig::parse("site").unwrap();
        assert_eq!((g.name.as_str(), g.processes, g.threads), ("site", 1, 15));
        assert_eq!(g.user, None);
    }

    #[test]
    fn all_options() {
        let g = DaemonGroupConfig::parse(
            "app processes=2 threads=4 user=www-data group=#33 python-home=/v python-path=/a:/b \
             display-name=%{GROUP} home=/srv maximum-requests=100 connect-timeout=3 listen-backlog=7 \
             lang=C.UTF-8 request-timeout=30 shutdown-timeout=2 umask=0027 stack-size=100000 \
             server-metrics=On",
        )
        .unwrap();
        assert_eq!(g.processes, 2);
        assert_eq!(g.threads, 4);
        assert_eq!(g.user, Some(Principal::Name("www-data".into())));
        assert_eq!(g.group, Some(Principal::Id(33)));
        assert_eq!(g.python_path.as_deref(), Some("/a:/b"));
        assert_eq!(g.display_name.as_deref(), Some("(wsgi:app)"));
        assert_eq!(g.ignored, ["server-metrics=On"]);
        assert_eq!(g.conn.stack_size, Some(100_000));
        assert_eq!((g.lang.as_deref(), g.umask), (Some("C.UTF-8"), Some(0o027)));
        assert!(DaemonGroupConfig::parse("g umask=999").is_err());
        assert_eq!(
            g.limits,
            [("maximum-requests", 100), ("request-timeout", 30)]
        );
        assert_eq!(g.shutdown_timeout, 2);
        assert_eq!((g.connect_timeout, g.listen_backlog), (3, 7));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = DaemonGroupConfig::parse("g foo=1").unwrap_err();
        assert!(
            e.contains("WSGIDaemonProcess") && e.contains("unknown option 'foo'"),
            "{e}"
        );
        let e = DaemonGroupConfig::parse("g processes=abc").unwrap_err();
        assert!(e.contains("processes=abc"), "{e}");
        assert!(DaemonGroupConfig::parse("g threads=0").is_err());
        let e = DaemonGroupConfig::parse("g user=root").unwrap_err();
        assert!(e.contains("root"), "{e}");
        assert!(DaemonGroupConfig::parse("g user=#0").is_err());
        assert!(DaemonGroupConfig::parse("").is_err());
        assert!(DaemonGroupConfig::parse("processes=2").is_err());
        assert!(DaemonGroupConfig::parse("g user=").is_err());
        assert!(DaemonGroupConfig::parse("g processes").is_err());
        let g = DaemonGroupConfig::parse(
            "g supplementary-groups=adm,#100 virtual-memory-limit=1000000000 cpu-priority=5 \
             python-eggs=/tmp/eggs",
        )
        .unwrap();
        assert_eq!(
            g.supplementary_groups,
            [Principal::Name("adm".into()), Principal::Id(100)]
        );
        assert_eq!(
            (g.virtual_memory_limit, g.cpu_priority),
            (Some(1_000_000_000), Some(5))
        );
        assert_eq!(g.ignored, ["python-eggs=/tmp/eggs"]);
        assert!(ignored_reason(&g.ignored[0]).contains("PYTHON_EGG_CACHE"));
        assert!(ignored_reason("server-metrics=On").contains("server_metrics() returns None"));
        assert!(ignored_reason("response-flush-delay=5").contains("as it arrives"));
        assert!(DaemonGroupConfig::parse("g supplementary-groups=root").is_err());
        assert!(DaemonGroupConfig::parse("g cpu-priority=40").is_err());
        let g = DaemonGroupConfig::parse(
            "g script-user=www-data socket-user=#33 send-buffer-size=8192 switch-interval=0.01",
        )
        .unwrap();
        assert!(g.ignored.is_empty(), "{:?}", g.ignored);
        assert_eq!(g.conn.send_buffer_size, Some(8192));
        let e = DaemonGroupConfig::parse("g script-user=a script-group=b").unwrap_err();
        assert!(
            e.contains("only one of script-user= and script-group="),
            "{e}"
        );
        let e = DaemonGroupConfig::parse("g receive-buffer-size=100").unwrap_err();
        assert!(e.contains("receive-buffer-size=100"), "{e}");
        let e = DaemonGroupConfig::parse("g chroot=/srv/jail").unwrap_err();
        assert!(e.contains("chroot= is not supported"), "{e}");
        let e = DaemonGroupConfig::parse("g request-timeout=soon").unwrap_err();
        assert!(e.contains("request-timeout=soon"), "{e}");
    }
}
