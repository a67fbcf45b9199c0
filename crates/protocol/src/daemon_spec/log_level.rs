//! [`LogLevel`]: Apache's `LogLevel` as the daemon's `--log-level` carries it.

use std::fmt;
use std::str::FromStr;

/// Apache's log level names, in the order of their numbers (`APLOG_EMERG` = 0 to
/// `APLOG_TRACE8` = 15).
const NAMES: [&str; 16] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2",
    "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// One of Apache's log levels: the most detailed level a server's error log keeps (a line is
/// written when its level is at or above this one in severity). The module passes the level
/// that applies to it (`LogLevel`, or a `LogLevel rswsgi:LEVEL` of its own), and the daemon
/// keeps to it, as httpd would for its own lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogLevel(u8);

impl LogLevel {
    /// `error`: failures only.
    pub const ERROR: LogLevel = LogLevel(3);
    /// `warn`: Debian's `apache2.conf`'s level.
    pub const WARN: LogLevel = LogLevel(4);
    /// `notice`: Apache writes notice lines at every level.
    pub const NOTICE: LogLevel = LogLevel(5);
    /// `info`: the daemon's lines about starting, recycling and stopping.
    pub const INFO: LogLevel = LogLevel(6);
    /// `debug`: also the per-request lines.
    pub const DEBUG: LogLevel = LogLevel(7);
    /// `--log-level` when none is given: the daemon's own level before it had the flag.
    pub const DEFAULT: LogLevel = LogLevel::INFO;

    /// The level of Apache's number for it (`APLOG_*`, as `server_rec->log.level` holds it);
    /// `None` outside 0 to 15.
    pub fn from_apache(n: i32) -> Option<LogLevel> {
        u8::try_from(n)
            .ok()
            .filter(|n| usize::from(*n) < NAMES.len())
            .map(LogLevel)
    }

    /// Apache's number for it (`APLOG_*`).
    pub fn apache(self) -> i32 {
        i32::from(self.0)
    }

    /// Apache's name for it (`warn`, `trace3`).
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }

    /// Whether a line at `level` is kept at this log level.
    pub fn keeps(self, level: LogLevel) -> bool {
        level <= self
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of Apache's log levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not one of Apache's log levels ({})", NAMES.join(", "))]
pub struct UnknownLogLevel;

impl FromStr for LogLevel {
    type Err = UnknownLogLevel;

    /// Apache's names, any case (as httpd's `LogLevel` takes them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| LogLevel(i as u8))
            .ok_or(UnknownLogLevel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_apaches() {
        for n in 0..16 {
            let level = LogLevel::from_apache(n).unwrap();
            assert_eq!(level.apache(), n);
            assert_eq!(level.name().parse(), Ok(level));
        }
        assert_eq!(LogLevel::from_apache(16), None);
        assert_eq!(LogLevel::from_apache(-1), None);
        assert_eq!("WARN".parse(), Ok(LogLevel::WARN));
        assert_eq!(LogLevel::from_apache(8).unwrap().name(), "trace1");
        assert!("verbose".parse::<LogLevel>().is_err());
        assert!(LogLevel::WARN.keeps(LogLevel::ERROR));
        assert!(LogLevel::WARN.keeps(LogLevel::WARN));
        assert!(!LogLevel::WARN.keeps(LogLevel::INFO));
    }
}
