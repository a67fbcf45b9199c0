//! mod_wsgi's directives that rswsgi reads but does not carry out, each with why: accepted
//! with one start-up warning (they mean nothing without embedded mode or sub-interpreters, or
//! rswsgi already behaves so). No mod_wsgi directive is an "Invalid command", and none is
//! refused: a directive whose silent acceptance would do the wrong thing (leave a location
//! unprotected, say) is implemented instead.

/// One catalogued directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catalogued {
    /// Its name as mod_wsgi spells it.
    pub name: &'static str,
    /// Why it changes nothing here.
    pub why: &'static str,
    /// The argument that asks for what rswsgi always does: given it, the directive is
    /// carried out and nothing is logged.
    pub always: Option<&'static str>,
}

const fn warned(name: &'static str, why: &'static str) -> Catalogued {
    Catalogued {
        name,
        why,
        always: None,
    }
}

/// A directive whose `value` is how rswsgi always behaves (silently accepted); any other
/// value is warned about.
const fn warned_unless(name: &'static str, value: &'static str, why: &'static str) -> Catalogued {
    Catalogued {
        name,
        why,
        always: Some(value),
    }
}

const EMBEDDED: &str =
    "it configures Python inside Apache, and rswsgi runs Python only in daemon processes";

/// The catalogue.
pub const CATALOGUE: &[Catalogued] = &[
    warned_unless("WSGISocketRotation", "Off", "the daemon sockets are named per httpd parent and group, so they keep their names across graceful restarts (mod_wsgi's Off)"),
    warned_unless("WSGIRestrictSignal", "On", "signal.signal() in the application is always ignored with a log line (mod_wsgi's On): the daemon's signals stop and recycle it, so Off cannot be had"),
    warned("WSGIAcceptMutex", "daemon processes share one listening socket without a mutex"),
    warned("WSGILazyInitialization", "Python is never started in Apache's parent (nor anywhere in Apache): each daemon process starts its own interpreter after it is forked, which is mod_wsgi's On"),
    warned("WSGICaseSensitivity", "file names are compared as the file system does (case-sensitively on Linux)"),
    warned("WSGIDestroyInterpreter", "a daemon process's interpreter ends with the process"),
    warned("WSGIPerInterpreterGIL", "rswsgi runs one interpreter per daemon process, without sub-interpreters"),
    warned("WSGIFreeThreading", "the daemon runs Debian's CPython 3.11, which has no free-threaded build"),
    warned("<WSGIInterpreterOptions", "rswsgi runs one interpreter per daemon process, without sub-interpreters; the section's contents are skipped"),
    warned("WSGIPassApacheRequest", EMBEDDED),
    warned("WSGIPythonEggs", "egg caches are obsolete; set PYTHON_EGG_CACHE in the environment if one is needed"),
    warned("WSGIServerMetrics", "server metrics are not available yet; mod_wsgi.server_metrics() returns None"),
    warned("WSGITelemetryService", "telemetry is not available yet"),
    warned("WSGITelemetryOptions", "telemetry is not available yet"),
];

/// The catalogue entry for `name` (case-insensitive, as httpd matches directive names).
pub fn lookup(name: &str) -> Option<&'static Catalogued> {
    CATALOGUE.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The start-up warning for a catalogued directive given `arg`; `None` when `arg` asks for
/// what rswsgi always does.
pub fn warning_for(c: &Catalogued, arg: &str) -> Option<String> {
    match c.always {
        Some(v) if v.eq_ignore_ascii_case(arg.trim()) => None,
        _ => Some(warning(c)),
    }
}

/// The start-up warning for a catalogued directive.
pub fn warning(c: &Catalogued) -> String {
    format!(
        "{} is accepted and does nothing: {}",
        c.name.trim_start_matches('<'),
        c.why
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_messages() {
        let c = lookup("wsgiacceptmutex").unwrap();
        assert_eq!(c.name, "WSGIAcceptMutex");
        assert!(warning(c).contains("accepted and does nothing"));
        assert!(
            lookup("WSGIAuthUserScript").is_none(),
            "implemented, not catalogued"
        );
        assert!(lookup("WSGIScriptAlias").is_none());
        let mut names: Vec<_> = CATALOGUE.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "no directive twice");
    }

    #[test]
    fn every_entry_has_a_row_in_the_docs() {
        let docs = include_str!("../../docs/directives.md");
        for c in CATALOGUE {
            let row = format!("| `{}` |", c.name.trim_start_matches('<'));
            assert!(
                docs.contains(&row),
                "docs/directives.md has no row for {}",
                c.name
            );
        }
    }
}
