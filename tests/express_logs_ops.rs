//! express's log options: `--access-log-format json` stays valid JSON for hostile request
//! bytes (parsed with Python's json module), named and custom formats, `--log-directory`
//! with `--error-log-name`/`--access-log-name`, `--error-log-format`, and `--rotate-logs`
//! with a small `--max-log-size` rotating through Apache's rotatelogs.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::express::Express;
use common::procs;

const APP: &str = "def application(environ, start_response):\n    \
    start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
    return [b'ok\\n']\n";

/// Sends `request` as it is over one connection and reads until the server closes it.
fn send_raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Waits until `file` has at least `lines` lines; returns its contents.
fn wait_lines(file: &Path, lines: usize) -> String {
    let mut text = String::new();
    procs::wait_until(Duration::from_secs(10), || {
        text = std::fs::read_to_string(file).unwrap_or_default();
        text.lines().count() >= lines
    });
    text
}

/// Parses every line of `file` with Python's json module; for each, prints the object's
/// keys and its method, path, query and user agent (as Python's `ascii()`), one per line.
fn python_json(file: &Path) -> String {
    let script = r#"
import json, sys
for raw in open(sys.argv[1], 'rb'):
    obj = json.loads(raw)
    assert isinstance(obj, dict), raw
    for key in ('time', 'method', 'path', 'status', 'bytes', 'duration_us', 'request_id',
                'remote_addr', 'user_agent'):
        assert key in obj, (key, raw)
    assert isinstance(obj['status'], int) and isinstance(obj['duration_us'], int), raw
    print(obj['status'], ascii(obj['method']), ascii(obj['path']), ascii(obj['query']),
          ascii(obj['user_agent']), ascii(obj['referer']), obj['request_id'] != '-')
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not JSON:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_access_log_stays_json_for_hostile_bytes() {
    let mut express = Express::start(
        "json-log",
        APP,
        &["--access-log", "--access-log-format", "json"],
    );
    express.wait_serving();
    let port = express.port;
    let requests: [&[u8]; 4] = [
        // Served (200): quotes, backslashes, bytes that are not UTF-8, UTF-8, percent-decoded.
        b"GET /q%22uote%5Cback%FF%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
          User-Agent: ua \"quoted\" back\\slash \xff\xfe caf\xc3\xa9\tend\r\n\
          Referer: \\x41 not an escape\r\n\r\n",
        // Refused by Apache (400) but logged: raw bytes and quotes in the request line.
        b"GET /a\"b\\c\xff/\xc3\xa9?x=\"y\"\\\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"G\"T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x01\x1b[31m\xff\r\n\r\n",
    ];
    for r in requests {
        assert!(!send_raw(port, r).is_empty());
    }
    let log = express.root.join("access_log");
    // GET / by wait_serving, then the four.
    let text = wait_lines(&log, 5);
    let parsed = python_json(&log);
    let lines: Vec<&str> = parsed.lines().collect();
    assert_eq!(lines.len(), text.lines().count(), "{parsed}\n{text}");
    let served = lines
        .iter()
        .find(|l| l.contains("uote"))
        .unwrap_or_else(|| panic!("{parsed}"));
    assert_eq!(
        *served,
        "200 'GET' '/q\"uote\\\\back\\\\xFF\\xe9' '' \
         'ua \"quoted\" back\\\\slash \\\\xFF\\\\xFE caf\\xe9\\tend' '\\\\x41 not an escape' True",
        "{parsed}\n{text}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("400 'G\"T' '/'")),
        "{parsed}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("400 '\\x01\\x1b[31m\\\\xFF'")),
        "{parsed}\n{text}"
    );
    express.stop();
}

#[test]
fn named_formats_log_directory_and_names() {
    let mut express = Express::start(
        "log-names",
        APP,
        &[
            "--access-log",
            "--access-log-format",
            "referer",
            "--log-directory",
            "logs",
            "--error-log-name",
            "site-error.log",
            "--access-log-name",
            "site-access.log",
            "--error-log-format",
            "custom-format %l %M",
            // Overridden by --log-directory, as in mod_wsgi-express.
            "--log-to-terminal",
        ],
    );
    express.wait_serving();
    let dir = express.stage.dir.join("logs");
    let r = send_raw(
        express.port,
        b"GET /from/here HTTP/1.1\r\nHost: x\r\nReferer: http://example.test/\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let access = wait_lines(&dir.join("site-access.log"), 2);
    assert!(
        access.contains("http://example.test/ -> /from/here\n"),
        "{access}"
    );
    let error = std::fs::read_to_string(dir.join("site-error.log")).unwrap();
    assert!(error.contains("custom-format "), "{error}");
    assert!(!express.root.join("error_log").exists());
    assert!(
        express
            .stdout()
            .contains(dir.join("site-error.log").to_str().unwrap()),
        "{}",
        express.stdout()
    );
    // (Express::stop finds the pids in <root>/error_log, which this server does not write.)
    // SAFETY: kill has no memory-safety preconditions; express is our running child.
    unsafe { libc::kill(express.child.id() as i32, libc::SIGTERM) };
    let status = express.wait_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", express.logs());
}

#[test]
fn custom_access_format_is_apaches() {
    let mut express = Express::start(
        "log-custom",
        APP,
        &[
            "--access-log",
            "--access-log-format",
            "%m \"%U\" %>s custom",
        ],
    );
    express.wait_serving();
    send_raw(
        express.port,
        b"GET /x%22y HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let access = wait_lines(&express.root.join("access_log"), 2);
    assert!(access.contains("GET \"/x\\\"y\" 200 custom\n"), "{access}");
    express.stop();
}

#[test]
fn rotate_logs_starts_new_files_at_max_log_size() {
    let mut express = Express::start(
        "log-rotate",
        APP,
        &[
            "--access-log",
            "--access-log-format",
            "json",
            "--rotate-logs",
            "--max-log-size",
            "1",
        ],
    );
    // The start-up reports are read through the error log's link (rotatelogs -L): express
    // sees the daemons ready without waiting for --load-wait.
    express.wait_serving();
    assert!(
        !express.stderr().contains("--load-wait"),
        "{}",
        express.logs()
    );
    let root = express.root.clone();
    let rotated = |prefix: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
    };
    // About 1.1 MB of access log a round: 320 requests with a 3.5 KB header each (a line
    // stays under 4 KiB, so the json filter keeps it whole). rotatelogs names its files by
    // the second, so a rotation needs the next second.
    let agent = "a".repeat(3500);
    let request = format!("GET /fill HTTP/1.1\r\nHost: x\r\nUser-Agent: {agent}\r\n\r\n");
    for round in 0..2 {
        for _ in 0..4 {
            let mut s = TcpStream::connect(("127.0.0.1", express.port)).unwrap();
            for _ in 0..80 {
                s.write_all(request.as_bytes()).unwrap();
            }
            s.write_all(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut sink = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let _ = s.read_to_end(&mut sink);
        }
        if round == 0 {
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    let ok = procs::wait_until(Duration::from_secs(10), || {
        rotated("access_log.").len() >= 2
    });
    let names = rotated("access_log.");
    assert!(ok, "{names:?}");
    for name in &names {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o027, 0, "{name} is mode {mode:o}");
        // Each file, rotated or current, is JSON lines.
        python_json(&root.join(name));
    }
    assert_eq!(rotated("error_log.").len(), 1, "{:?}", rotated("error_log"));
    assert!(std::fs::read_to_string(root.join("error_log"))
        .unwrap()
        .contains("resuming normal operations"));
    express.stop();
}
