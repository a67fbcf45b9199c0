use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn args(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

fn minimal() -> DaemonSpec {
    DaemonSpec::new("site", 1, 15, 42)
}

fn full() -> DaemonSpec {
    let secs = |s| Some(Duration::from_secs(s));
    DaemonSpec {
        listen_fd: 7,
        secret_fd: 8,
        stats_fd: Some(9),
        peer_uid: Some(33),
        listen_backlog: 7,
        group: "app".into(),
        processes: 3,
        threads: 4,
        parent_pid: 1234,
        scripts: vec!["/srv/a.wsgi".into(), "/srv/b.so".into()],
        allow_scripts: vec!["/srv/c.wsgi".into()],
        allow_dirs: vec!["/srv/d".into()],
        callable: "app".into(),
        python_home: Some("/venv".into()),
        python_path: vec!["/a".into(), "/b".into()],
        home: Some("/srv".into()),
        verbose: true,
        log_level: LogLevel::WARN,
        script_reloading: false,
        reload_on_changes: true,
        reload_files: vec!["/srv/settings.ini".into(), "/srv/urls.txt".into()],
        maximum_requests: Some(100),
        maximum_requests_jitter: 10,
        restart_interval: secs(1),
        inactivity_timeout: secs(2),
        request_timeout: secs(3),
        interrupt_timeout: secs(4),
        graceful_timeout: Duration::from_secs(5),
        eviction_timeout: secs(6),
        startup_timeout: secs(7),
        deadlock_timeout: None,
        queue_timeout: secs(8),
        memory_limit: Some(1 << 30),
        cpu_time_limit: secs(9),
        header_buffer_size: Some(4096),
        response_buffer_size: Some(8192),
        send_buffer_size: Some(512),
        receive_buffer_size: Some(65536),
        stack_size: Some(524_288),
        switch_interval: Some(0.005),
        slow_requests: Some(2.5),
        script_owner: Some(ScriptOwner::Group(100)),
        restrict_stdin: true,
        restrict_stdout: true,
        apache_version: Some((2, 4, 62)),
    }
}

/// The flags of a command line.
fn flags_of(args: &[OsString]) -> Vec<String> {
    let names = args.iter().map(|a| a.to_string_lossy().into_owned());
    names.filter(|a| a.starts_with("--")).collect()
}

#[test]
fn round_trips_a_full_and_a_minimal_spec() {
    for spec in [full(), minimal()] {
        assert_eq!(DaemonSpec::parse(spec.to_args()), Ok(spec));
    }
    let user = DaemonSpec {
        script_owner: Some(ScriptOwner::User(1000)),
        ..minimal()
    };
    assert_eq!(DaemonSpec::parse(user.to_args()), Ok(user));
}

#[test]
fn a_minimal_spec_writes_only_the_required_flags() {
    let a = minimal().to_args();
    assert_eq!(
        flags_of(&a),
        [
            "--listen-fd",
            "--secret-fd",
            "--group",
            "--processes",
            "--threads",
            "--parent-pid"
        ]
    );
    assert_eq!(a[1], "3");
    assert_eq!(a[3], "4");
}

#[test]
fn flags_lists_exactly_what_to_args_writes() {
    let mut written = flags_of(&full().to_args());
    written.extend(flags_of(
        &DaemonSpec {
            script_owner: Some(ScriptOwner::User(1)),
            ..minimal()
        }
        .to_args(),
    ));
    written.sort();
    written.dedup();
    let mut listed: Vec<String> = FLAGS.iter().map(|f| f.name.to_string()).collect();
    listed.sort();
    assert_eq!(written, listed);
}

/// The `[default: ...]` of a flag's help is the default the spec uses.
#[test]
fn the_defaults_in_the_help_are_the_specs() {
    let defaults = [
        (flags::LISTEN_BACKLOG, DEFAULT_LISTEN_BACKLOG.to_string()),
        (flags::CALLABLE, DEFAULT_CALLABLE.to_string()),
        (
            flags::GRACEFUL_TIMEOUT,
            DEFAULT_GRACEFUL_TIMEOUT.as_secs().to_string(),
        ),
        (
            flags::DEADLOCK_TIMEOUT,
            DEFAULT_DEADLOCK_TIMEOUT.as_secs().to_string(),
        ),
        (flags::LOG_LEVEL, LogLevel::DEFAULT.to_string()),
    ];
    for (flag, default) in &defaults {
        let said = format!("[default: {default}]");
        assert!(flag.help.ends_with(&said), "{}: {}", flag.name, flag.help);
    }
    let with_default = FLAGS.iter().filter(|f| f.help.contains("[default: "));
    assert_eq!(with_default.count(), defaults.len());
}

/// ARCHITECTURE.md's command-line block names every flag and nothing else.
#[test]
fn architecture_md_lists_every_flag() {
    let doc = include_str!("../../../../ARCHITECTURE.md");
    let start = doc
        .find("## Daemon command line")
        .expect("the section is there");
    let block = doc[start..].split("```").nth(1).expect("a code block");
    // Each flag with whether it is shown optional (after `[` or `|`), and its placeholder.
    let mut documented: Vec<(&str, bool, Option<&str>)> = Vec::new();
    for (at, _) in block.match_indices(" --").chain(block.match_indices("[--")) {
        let optional = block[..at + 1].trim_end().ends_with(['[', '|']);
        let mut words = block[at + 1..].split_whitespace();
        let word = words.next().unwrap_or_default();
        let name = word.trim_end_matches([']', '.']);
        let value = match word == name {
            true => words.next().filter(|v| !v.starts_with(['-', '[', '|'])),
            false => None,
        };
        let value = value.map(|v| v.trim_end_matches('.'));
        let value = value.map(|v| v.strip_suffix(']').filter(|_| optional).unwrap_or(v));
        if name != "--check-python-home" {
            documented.push((name, optional, value));
        }
    }
    documented.sort();
    let mut listed: Vec<(&str, bool, Option<&str>)> = FLAGS
        .iter()
        .map(|f| (f.name, !f.required, f.value))
        .collect();
    listed.sort();
    let missing: Vec<_> = listed.iter().filter(|f| !documented.contains(f)).collect();
    let extra: Vec<_> = documented.iter().filter(|f| !listed.contains(f)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && documented.len() == listed.len(),
        "ARCHITECTURE.md's block lacks {missing:?} and has {extra:?} (name, optional, value)"
    );
}

#[test]
fn bad_command_lines_are_refused() {
    let base = minimal().to_args();
    let with = |extra: &[&str]| {
        let mut a = base.clone();
        a.extend(args(extra));
        DaemonSpec::parse(a)
    };
    let invalid = |e: Result<DaemonSpec, SpecError>| match e {
        Err(SpecError::Invalid { flag, .. }) => flag,
        other => panic!("{other:?}"),
    };
    assert_eq!(invalid(with(&["--stack-size", "0"])), "--stack-size");
    assert_eq!(
        invalid(with(&["--send-buffer-size", "511"])),
        "--send-buffer-size"
    );
    assert_eq!(
        invalid(with(&["--switch-interval", "-1"])),
        "--switch-interval"
    );
    assert_eq!(invalid(with(&["--log-level", "loud"])), "--log-level");
    assert_eq!(
        with(&["--reload-file", "/srv/x"]),
        Err(SpecError::Requires("--reload-file", "--reload-on-changes"))
    );
    assert_eq!(
        invalid(with(&["--switch-interval", "inf"])),
        "--switch-interval"
    );
    assert_eq!(invalid(with(&["--slow-requests", "-1"])), "--slow-requests");
    assert_eq!(
        invalid(with(&["--apache-version", "2.4"])),
        "--apache-version"
    );
    assert_eq!(
        invalid(with(&["--request-timeout", "soon"])),
        "--request-timeout"
    );
    assert_eq!(
        with(&["--script-user", "1", "--script-group", "2"]),
        Err(SpecError::Conflict("--script-user", "--script-group"))
    );
    assert_eq!(
        with(&["--threads", "2"]),
        Err(SpecError::Repeated("--threads"))
    );
    assert_eq!(
        with(&["--bogus"]),
        Err(SpecError::Unknown("--bogus".into()))
    );
    assert_eq!(with(&["--home"]), Err(SpecError::MissingValue("--home")));
    assert_eq!(
        with(&["--verbose=1"]),
        Err(SpecError::UnexpectedValue("--verbose"))
    );
    let e = DaemonSpec::parse(args(&["--listen-fd", "3"])).unwrap_err();
    assert_eq!(e, SpecError::Missing("--secret-fd"));
    let mut zero = base.clone();
    zero[7] = "0".into(); // --processes 0
    assert_eq!(invalid(DaemonSpec::parse(zero)), "--processes");
}

#[test]
fn reads_equals_values_zeros_and_colon_lists() {
    let mut a = minimal().to_args();
    a.extend(args(&[
        "--home=/x=y",
        "--python-path",
        "/a::/b",
        "--python-path=/c",
        "--deadlock-timeout",
        "0",
        "--maximum-requests",
        "0",
    ]));
    let s = DaemonSpec::parse(a).unwrap();
    assert_eq!(s.home, Some(PathBuf::from("/x=y")));
    let path: Vec<PathBuf> = ["/a", "/b", "/c"].iter().map(PathBuf::from).collect();
    assert_eq!(s.python_path, path);
    assert_eq!((s.deadlock_timeout, s.maximum_requests), (None, None));
    assert!(DaemonSpec::help().contains("--listen-backlog <N>"));
}

fn path() -> impl Strategy<Value = PathBuf> {
    "/[a-z0-9_.=-]{1,12}(/[a-z0-9 _.-]{1,8}){0,2}".prop_map(PathBuf::from)
}

fn secs() -> impl Strategy<Value = Option<Duration>> {
    proptest::option::of((1u64..=u32::MAX as u64).prop_map(Duration::from_secs))
}

fn some(max: u64) -> impl Strategy<Value = Option<u64>> {
    proptest::option::of(1..=max)
}

fn spec() -> impl Strategy<Value = DaemonSpec> {
    let ids = (
        "[a-zA-Z0-9:._ -]{0,16}",
        1u32..=100_000,
        1u32..=10_000,
        any::<i32>(),
        proptest::option::of(any::<u32>()),
        any::<i32>(),
        proptest::option::of(prop_oneof![
            any::<u32>().prop_map(ScriptOwner::User),
            any::<u32>().prop_map(ScriptOwner::Group),
        ]),
    );
    let paths = (
        proptest::collection::vec(path(), 0..3),
        proptest::collection::vec(path(), 0..3),
        proptest::collection::vec(path(), 0..3),
        proptest::option::of(path()),
        proptest::collection::vec(path(), 0..3),
        proptest::option::of(path()),
        "[a-z_][a-z0-9_]{0,10}",
    );
    let limits = (
        (some(u64::MAX), any::<u64>(), secs(), secs(), secs(), secs()),
        (0u64..=u32::MAX as u64, secs(), secs(), secs(), secs()),
        (some(u64::MAX), secs(), some(1 << 40), some(1 << 40)),
    );
    let rest = (
        proptest::option::of(512u32..=i32::MAX as u32),
        proptest::option::of(512u32..=i32::MAX as u32),
        some(i32::MAX as u64),
        proptest::option::of(1e-6f64..1e9),
        any::<[bool; 4]>(),
        proptest::option::of(any::<(u32, u32, u32)>()),
    );
    (ids, paths, limits, rest).prop_map(|(ids, paths, limits, rest)| {
        let (group, processes, threads, parent_pid, peer_uid, listen_backlog, owner) = ids;
        let mut s = DaemonSpec::new(group, processes, threads, parent_pid);
        (s.peer_uid, s.listen_backlog, s.script_owner) = (peer_uid, listen_backlog, owner);
        (s.scripts, s.allow_scripts, s.allow_dirs) = (paths.0, paths.1, paths.2);
        (s.python_home, s.python_path, s.home, s.callable) = (paths.3, paths.4, paths.5, paths.6);
        let ((mr, jitter, ri, it, rt, irt), (gt, et, st, dt, qt), (ml, ct, hb, rb)) = limits;
        (s.maximum_requests, s.maximum_requests_jitter) = (mr, jitter);
        (s.restart_interval, s.inactivity_timeout) = (ri, it);
        (s.request_timeout, s.interrupt_timeout) = (rt, irt);
        s.graceful_timeout = Duration::from_secs(gt);
        (s.eviction_timeout, s.startup_timeout, s.deadlock_timeout) = (et, st, dt);
        (s.queue_timeout, s.memory_limit, s.cpu_time_limit) = (qt, ml, ct);
        s.header_buffer_size = hb.map(|b| b as usize);
        s.response_buffer_size = rb.map(|b| b as usize);
        let (send, receive, stack, switch, flags, version) = rest;
        (s.send_buffer_size, s.receive_buffer_size, s.stack_size) = (send, receive, stack);
        s.switch_interval = switch;
        [
            s.verbose,
            s.script_reloading,
            s.restrict_stdin,
            s.restrict_stdout,
        ] = flags;
        s.apache_version = version;
        s
    })
}

proptest! {
    #[test]
    fn parse_reads_back_what_to_args_writes(s in spec()) {
        prop_assert_eq!(DaemonSpec::parse(s.to_args()), Ok(s));
    }
}

#[test]
fn every_limit_is_a_flag_set_by_set_limit() {
    for name in LIMITS {
        let flag = format!("--{name}");
        assert!(FLAGS.iter().any(|f| f.name == flag), "{flag}");
        let mut s = minimal();
        assert!(s.set_limit(name, 3), "{name}");
        assert_ne!(s, minimal(), "{name}");
        assert!(flags_of(&s.to_args()).contains(&flag), "{flag}");
    }
    assert!(!minimal().set_limit("threads", 3));
}
