//! `apache2 -t` rejects bad mod_wsgi directives with a message that names the problem.

mod common;

use common::{free_port, repo_root, test_user, Stage};
use rswsgi_express::{setup_server, ServerOptions};

/// Renders the hello example's config plus `extra` lines and runs `httpd -t` on it.
/// Returns (passed, stdout + stderr).
fn config_test(extra: &[&str]) -> (bool, String) {
    let stage = Stage::new("conf");
    let bins = stage.binaries();
    let script = stage.copy(
        &repo_root().join("examples/hello/wsgi.py"),
        "app/wsgi.py",
        0o644,
    );
    let mut opts = ServerOptions::new(&script);
    opts.port = free_port().into();
    opts.server_root = Some(stage.dir.join("root"));
    opts.user = test_user();
    opts.module_path = Some(bins.module.clone());
    opts.daemon_executable = Some(bins.daemon.clone());
    opts.extra_directives = extra.iter().map(|s| s.to_string()).collect();
    let root = setup_server(&opts).unwrap_or_else(|e| panic!("setup_server: {e:#}"));
    let out = root.config_test().expect("run httpd -t");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn assert_rejected(extra: &[&str], needles: &[&str]) {
    let (ok, text) = config_test(extra);
    assert!(!ok, "httpd -t accepted {extra:?}:\n{text}");
    for needle in needles {
        assert!(
            text.contains(needle),
            "httpd -t rejected {extra:?} but its message does not mention {needle:?}:\n{text}"
        );
    }
}

#[test]
fn generated_config_passes() {
    let (ok, text) = config_test(&[]);
    assert!(ok, "httpd -t failed on the generated config:\n{text}");
    assert!(text.contains("Syntax OK"), "{text}");
}

#[test]
fn unknown_daemon_option() {
    assert_rejected(
        &["WSGIDaemonProcess g foo=1"],
        &["WSGIDaemonProcess", "foo"],
    );
}

#[test]
fn processes_not_a_number() {
    assert_rejected(
        &["WSGIDaemonProcess g processes=abc"],
        &["processes", "abc"],
    );
}

#[test]
fn daemon_user_root() {
    assert_rejected(&["WSGIDaemonProcess g user=root"], &["root"]);
}

#[test]
fn process_group_not_defined() {
    assert_rejected(
        &["WSGIProcessGroup nosuch"],
        &["WSGIProcessGroup", "nosuch"],
    );
}

#[test]
fn embedded_mode_is_refused_only_under_restrict_embedded() {
    let script = repo_root().join("examples/hello/wsgi.py");
    let line = format!("WSGIScriptAlias /other {}", script.display());
    // mod_wsgi's embedded-mode configuration: an implicit daemon group serves it.
    let (ok, text) = config_test(&[line.as_str()]);
    assert!(ok, "{text}");
    assert!(
        text.contains("served by the implicit daemon group 'embedded:"),
        "{text}"
    );
    assert_rejected(
        &["WSGIRestrictEmbedded On", line.as_str()],
        &["WSGIScriptAlias /other", "WSGIRestrictEmbedded is On"],
    );
    assert_rejected(
        &["RSWSGIImplicitDaemonProcess threads=lots"],
        &["RSWSGIImplicitDaemonProcess", "threads=lots"],
    );
}

#[test]
fn handler_script_needs_a_daemon_group() {
    assert_rejected(
        &[
            "WSGIRestrictEmbedded On",
            "WSGIHandlerScript md-page /srv/render.py",
        ],
        &["WSGIHandlerScript md-page", "no daemon process group"],
    );
    assert_rejected(
        &["WSGIHandlerScript md-page /srv/render.py process-group=nowhere"],
        &["process group 'nowhere' is not defined"],
    );
    assert_rejected(
        &["WSGIHandlerScript md-page /srv/render.py bogus=1"],
        &["unknown option 'bogus'"],
    );
}

#[test]
fn every_mod_wsgi_directive_is_read() {
    // Each of mod_wsgi 6's 49 directives, in a context mod_wsgi allows; those that rswsgi
    // accepts without acting on them give one warning each.
    let script = repo_root().join("examples/hello/wsgi.py");
    let s = script.display();
    let dir = repo_root().join("examples/hello");
    let d = dir.display();
    let lines = [
        format!("WSGIImportScript {s} process-group=extra application-group=%{{GLOBAL}}"),
        "WSGIDaemonProcess extra processes=1 threads=1".to_owned(),
        format!("WSGIScriptAlias /other {s} process-group=extra"),
        format!("WSGIScriptAliasMatch ^/matched/([^/]+) {d}/$1.py process-group=extra"),
        "WSGISocketRotation On".to_owned(),
        "WSGIAcceptMutex default".to_owned(),
        "WSGIVerboseDebugging Off".to_owned(),
        "WSGIDontWriteBytecode On".to_owned(),
        "WSGIPythonWarnings ignore::DeprecationWarning".to_owned(),
        "WSGIPythonOptimize 1".to_owned(),
        "WSGIPythonPath /srv/lib".to_owned(),
        "WSGIPythonEggs /tmp/eggs".to_owned(),
        "WSGIPythonHashSeed random".to_owned(),
        "WSGISwitchInterval 0.005".to_owned(),
        "WSGIDestroyInterpreter On".to_owned(),
        "WSGIPerInterpreterGIL Off".to_owned(),
        "WSGIFreeThreading Off".to_owned(),
        "<WSGIInterpreterOptions %{GLOBAL}>".to_owned(),
        "  PerInterpreterGIL On".to_owned(),
        "</WSGIInterpreterOptions>".to_owned(),
        "WSGIRestrictEmbedded Off".to_owned(),
        "WSGIRestrictStdin On".to_owned(),
        "WSGIRestrictStdout Off".to_owned(),
        "WSGIRestrictSignal On".to_owned(),
        "WSGICaseSensitivity On".to_owned(),
        "WSGIServerMetrics Off".to_owned(),
        "WSGITelemetryService unix:/tmp/telemetry.sock".to_owned(),
        "WSGISlowRequests 5".to_owned(),
        "WSGITelemetryOptions +CaptureUserAgent".to_owned(),
        "WSGIPythonHome /usr".to_owned(),
        format!("<Directory {d}>"),
        "  WSGIRestrictProcess extra".to_owned(),
        "  WSGIProcessGroup extra".to_owned(),
        "  WSGIApplicationGroup %{GLOBAL}".to_owned(),
        "  WSGICallableObject application".to_owned(),
        "  WSGIPassApacheRequest Off".to_owned(),
        "  WSGIPassAuthorization On".to_owned(),
        "  WSGIScriptReloading On".to_owned(),
        "  WSGIErrorOverride Off".to_owned(),
        "  WSGIChunkedRequest On".to_owned(),
        "  WSGIMapHEADToGET Auto".to_owned(),
        "  WSGIIgnoreActivity Off".to_owned(),
        "  WSGITrustedProxyHeaders X-Forwarded-For".to_owned(),
        "  WSGITrustedProxies 127.0.0.1".to_owned(),
        "  WSGIEnableSendfile On".to_owned(),
        format!("  WSGIHandlerScript md-page {s} process-group=extra"),
        format!("  WSGIDispatchScript {s} process-group=extra"),
        "</Directory>".to_owned(),
        "<Location /private>".to_owned(),
        format!("  WSGIAccessScript {s} process-group=extra"),
        format!("  WSGIAuthUserScript {s} application-group=%{{GLOBAL}}"),
        format!("  WSGIAuthGroupScript {s} process-group=extra"),
        "  WSGIGroupAuthoritative Off".to_owned(),
        "</Location>".to_owned(),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (ok, text) = config_test(&refs);
    assert!(ok, "httpd -t refused the directives:\n{text}");
    for warned in [
        "WSGISocketRotation",
        "WSGIAcceptMutex",
        "WSGIPythonEggs",
        "WSGIInterpreterOptions",
        "WSGITelemetryService",
    ] {
        assert!(
            text.contains(&format!("RSWSGI0302: mod_rswsgi: {warned} is accepted")),
            "no warning for {warned}:\n{text}"
        );
    }
    // What rswsgi always does is carried out silently: WSGIRestrictSignal On.
    assert!(!text.contains("WSGIRestrictSignal is accepted"), "{text}");
    // Bad arguments are refused, naming the problem.
    for (line, needle) in [
        (
            "WSGIScriptAliasMatch ^/x/(.*( /srv/$1.py",
            "WSGIScriptAliasMatch '^/x/(.*(' is not a valid regular expression",
        ),
        (
            "WSGIDispatchScript /srv/dispatch.py callable-object=x",
            "WSGIDispatchScript /srv/dispatch.py: unknown option 'callable-object'",
        ),
        (
            "<Location /private>\nWSGIAuthUserScript /srv/auth.py process-group=nowhere\n</Location>",
            "process group 'nowhere' is not defined",
        ),
        (
            "<Location /private>\nWSGIAccessScript\n</Location>",
            "WSGIAccessScript",
        ),
        (
            "<Location /private>\nWSGIGroupAuthoritative Maybe\n</Location>",
            "WSGIGroupAuthoritative",
        ),
    ] {
        assert_rejected(&[line], &[needle]);
    }
    // A cross-check of the whole configuration fails with its code.
    assert_rejected(
        &["<Location /private>\nWSGIAuthUserScript /srv/auth.py process-group=nowhere\n</Location>"],
        &["RSWSGI0301:", "'nowhere'"],
    );
}

#[test]
fn settings_for_every_daemon_are_refused_in_a_virtual_host() {
    // As under mod_wsgi (GLOBAL_ONLY): in a <VirtualHost> they would be silently ignored.
    for directive in [
        "WSGIPythonHome /usr",
        "WSGIPythonPath /srv/lib",
        "WSGIPythonOptimize 1",
        "WSGISocketPrefix /run/other",
        "WSGIRestrictEmbedded On",
        "RSWSGIImplicitDaemonProcess threads=4",
        "WSGISwitchInterval 0.002",
        "WSGISlowRequests 2",
    ] {
        let block = format!("<VirtualHost 127.0.0.1:80>\n  {directive}\n</VirtualHost>");
        let name = directive.split_whitespace().next().unwrap();
        assert_rejected(&[&block], &[name, "cannot occur within"]);
    }
    // mod_wsgi's rule for its threshold: a number of seconds of at least 0.
    assert_rejected(&["WSGISlowRequests -1"], &["WSGISlowRequests -1"]);
    assert_rejected(
        &["WSGIDaemonProcess g slow-requests=soon"],
        &["slow-requests=soon is not valid"],
    );
}

#[test]
fn two_applications_sharing_an_interpreter_are_warned_about() {
    // mod_wsgi would run these two in separate sub-interpreters; rswsgi in one per process.
    let a = repo_root().join("examples/hello/wsgi.py");
    let b = repo_root().join("tests/apps/site_probe.py");
    let mounts = [
        "WSGIDaemonProcess shared processes=1 threads=1".to_owned(),
        format!("WSGIScriptAlias /a {} process-group=shared", a.display()),
        format!("WSGIScriptAlias /b {} process-group=shared", b.display()),
    ];
    let lines: Vec<&str> = mounts.iter().map(String::as_str).collect();
    let (ok, text) = config_test(&lines);
    assert!(ok, "{text}");
    assert!(text.contains("RSWSGI0303:"), "{text}");
    assert!(text.contains("daemon group 'shared' serves"), "{text}");
    // WSGIApplicationGroup %{GLOBAL} for the server (Django's documentation's advice) says
    // they may share: no warning.
    let mut global = lines.clone();
    global.push("WSGIApplicationGroup %{GLOBAL}");
    let (ok, text) = config_test(&global);
    assert!(ok, "{text}");
    assert!(!text.contains("RSWSGI0303:"), "{text}");
}

#[test]
fn unknown_users_of_daemon_options_and_bad_sizes_are_named() {
    assert_rejected(
        &["WSGIDaemonProcess g script-user=no-such-user-rswsgi"],
        &[
            "WSGIDaemonProcess g",
            "script-user=no-such-user-rswsgi",
            "no user named",
        ],
    );
    assert_rejected(
        &["WSGIDaemonProcess g socket-user=no-such-user-rswsgi"],
        &["socket-user=no-such-user-rswsgi"],
    );
    assert_rejected(
        &["WSGIDaemonProcess g script-group=no-such-group-rswsgi"],
        &["script-group=no-such-group-rswsgi", "no group named"],
    );
    assert_rejected(
        &["WSGIDaemonProcess g send-buffer-size=100"],
        &["send-buffer-size=100", "at least 512 bytes"],
    );
    assert_rejected(
        &["WSGIDaemonProcess g chroot=/srv/jail"],
        &["chroot= is not supported"],
    );
}
