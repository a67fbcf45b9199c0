//! Test harness: runs `rswsgi-daemon` on a fresh listening socket and speaks the protocol to it.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rswsgi_protocol::auth::{self, SECRET_LEN};
use rswsgi_protocol::{self as proto, BodyKind, Frame, FrameReader, Secret};

pub mod ring;
use ring::FdStream;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("rswsgi-daemon-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running daemon; killed (by pid) on drop. Its stderr goes to `daemon.log` in its dir.
pub struct Daemon {
    child: Child,
    pub sock: PathBuf,
    pub script: PathBuf,
    log: PathBuf,
    exited: bool,
    /// The connection secret the daemon was given.
    pub secret: Secret,
    // Last, so the directory outlives the child.
    pub dir: TempDir,
}

impl Daemon {
    /// Writes `script` as `app.py` and starts a daemon for it with `args` added.
    pub fn start(script: &str, args: &[&str]) -> Self {
        Self::start_with(script, args, |_| {})
    }

    /// Like [`start`](Self::start), with a hook to adjust the command.
    pub fn start_with(script: &str, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Self {
        Self::spawn(script, true, args, adjust)
    }

    /// Writes `script` as `app.py` but starts the daemon without `--script` (a group that
    /// loads nothing at start-up; requests must name their script).
    pub fn start_unloaded(script: &str, args: &[&str]) -> Self {
        Self::spawn(script, false, args, |_| {})
    }

    fn spawn(script: &str, load: bool, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Self {
        let dir = TempDir::new();
        let script_path = dir.0.join("app.py");
        fs::write(&script_path, script).expect("write script");
        let sock = dir.0.join("daemon.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        let log = dir.0.join("daemon.log");
        let fd = listener.as_raw_fd();
        let secret = test_secret();
        let (secret_read, secret_write) = nix::unistd::pipe().expect("pipe");
        fs::File::from(secret_write)
            .write_all(secret.as_bytes())
            .expect("write the secret");
        let secret_fd = secret_read.as_raw_fd();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rswsgi-daemon"));
        cmd.args(["--listen-fd", "3", "--group", "test", "--processes", "1"])
            .args(["--secret-fd", "4"]);
        if load {
            cmd.arg("--script").arg(&script_path);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"));
        if !args.contains(&"--parent-pid") {
            cmd.args(["--parent-pid", &std::process::id().to_string()]);
        }
        if !args.contains(&"--threads") {
            cmd.args(["--threads", "2"]);
        }
        adjust(&mut cmd);
        // SAFETY: between fork and exec the closure only calls fcntl and dup2, which are
        // async-signal-safe, on descriptors that stay open in the parent meanwhile.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first, so that moving one cannot overwrite the other.
                let high = |from| libc::fcntl(from, libc::F_DUPFD_CLOEXEC, 10);
                let (l, s) = (high(fd), high(secret_fd));
                if l < 0 || s < 0 || libc::dup2(l, 3) < 0 || libc::dup2(s, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn rswsgi-daemon");
        drop(listener);
        drop(secret_read);
        Daemon {
            child,
            sock,
            script: script_path,
            log,
            exited: false,
            secret,
            dir,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The daemon's stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A connection that has answered the daemon's challenge with the right secret.
    pub fn connect(&self) -> Client {
        self.connect_with(&self.secret.clone())
    }

    /// A connection that answers the challenge with `secret` (with its first request).
    pub fn connect_with(&self, secret: &Secret) -> Client {
        let mut client = self.connect_raw();
        let mut challenge = [0u8; auth::CHALLENGE_LEN];
        client
            .reader
            .get_mut()
            .read_exact(&mut challenge)
            .expect("the daemon's challenge");
        let nonce = auth::decode_challenge(&challenge).expect("a well-formed challenge");
        client.proof = Some(auth::encode_proof(secret, &nonce).to_vec());
        client
    }

    /// A connection that has done nothing yet (the challenge is still unread).
    pub fn connect_raw(&self) -> Client {
        let stream = UnixStream::connect(&self.sock).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Client {
            reader: FrameReader::new(FdStream::new(stream)),
            ring: None,
            proof: None,
            seq: 0,
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill() has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// Waits up to `limit` for the daemon to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = true;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- daemon log ----\n{}", self.log());
        }
    }
}

/// What the daemon answered.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub ended: bool,
    pub error: Option<String>,
    /// Whether a response head arrived.
    pub head: bool,
    /// The `max` of each `ReadBody` the daemon sent.
    pub reads: Vec<u32>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A secret for one test daemon, different every time.
pub fn test_secret() -> Secret {
    let mut bytes = [0u8; SECRET_LEN];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("random bytes");
    Secret::from_bytes(bytes)
}

pub struct Client {
    pub reader: FrameReader<FdStream>,
    /// The connection's response ring, once the daemon sent one.
    ring: Option<ring::Ring>,
    /// The answer to the challenge, sent with the first request.
    proof: Option<Vec<u8>>,
    /// The number of the last request sent.
    pub seq: u64,
}

/// The environ every test request carries.
pub fn base_environ(script: &Path, path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    [
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", path),
        ("REQUEST_URI", path),
        ("QUERY_STRING", ""),
        ("SERVER_NAME", "localhost"),
        ("SERVER_PORT", "80"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("wsgi.url_scheme", "http"),
        ("mod_wsgi.request_id", "REQ-42"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .chain([(
        b"SCRIPT_FILENAME".to_vec(),
        script.to_str().expect("utf-8 path").as_bytes().to_vec(),
    )])
    .collect()
}

/// The typed fields a test environ names (the first value of each key), and its other pairs.
pub fn split_meta(
    environ: &[(Vec<u8>, Vec<u8>)],
) -> (proto::RequestMeta<'_>, impl Iterator<Item = (&[u8], &[u8])>) {
    let get = |key: &str| {
        environ
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map_or(&b""[..], |(_, v)| v.as_slice())
    };
    let start = std::str::from_utf8(get(proto::carriers::REQUEST_START_US))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let meta = proto::RequestMeta {
        script: get(proto::meta::SCRIPT_FILENAME),
        callable: get(proto::meta::CALLABLE_OBJECT),
        request_id: get(proto::meta::REQUEST_ID),
        request_start: start,
        application_group: get(proto::meta::APPLICATION_GROUP),
    };
    let pairs = environ
        .iter()
        .filter(|(k, _)| !proto::RequestMeta::is_key(k))
        .map(|(k, v)| (k.as_slice(), v.as_slice()));
    (meta, pairs)
}

impl Client {
    pub fn write(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("write to daemon");
    }

    /// Sends a request head (after the proof on first use), numbered one past the last.
    pub fn send_request(&mut self, environ: &[(Vec<u8>, Vec<u8>)], body: BodyKind) {
        self.seq += 1;
        let seq = self.seq;
        self.send_request_numbered(seq, environ, body);
    }

    /// Sends a request head numbered `seq` (after the proof on first use). As the module
    /// does, the typed fields' keys (`SCRIPT_FILENAME`, `mod_wsgi.request_id`, …) go as the
    /// head's typed fields, not as pairs.
    pub fn send_request_numbered(
        &mut self,
        seq: u64,
        environ: &[(Vec<u8>, Vec<u8>)],
        body: BodyKind,
    ) {
        let mut out = self.proof.take().unwrap_or_default();
        let (meta, pairs) = split_meta(environ);
        proto::encode_request_head(&mut out, seq, body, &meta, pairs).expect("encode head");
        self.write(&out);
    }

    /// Reads the response, answering `ReadBody` from `body` in pieces of at most `piece`.
    pub fn read_response(&mut self, body: &[u8], piece: usize) -> Response {
        let mut resp = Response::default();
        let mut offset = 0;
        loop {
            let frame = match self.reader.read_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return resp,
                Err(e) => panic!("reading from the daemon: {e}"),
            };
            let mut answer = Vec::new();
            match frame {
                Frame::ReadBody { seq, max } => {
                    assert_eq!(seq, self.seq, "ReadBody for another request");
                    resp.reads.push(max);
                    let n = (max as usize).min(piece).min(body.len() - offset);
                    if n == 0 {
                        proto::encode_body_end(&mut answer);
                    } else {
                        proto::encode_body(&mut answer, &body[offset..offset + n]).expect("body");
                        offset += n;
                    }
                }
                Frame::ResponseHead(h) => {
                    assert!(!resp.head, "two response heads");
                    assert_eq!(h.seq, self.seq, "a response head for another request");
                    resp.head = true;
                    resp.status = h.status;
                    resp.reason = String::from_utf8_lossy(h.reason).into_owned();
                    resp.headers = h
                        .headers
                        .into_iter()
                        .map(|(n, v)| {
                            let v = v.iter().map(|&c| char::from(c)).collect();
                            (String::from_utf8_lossy(n).into_owned(), v)
                        })
                        .collect();
                }
                Frame::Body(b) => {
                    assert!(resp.head, "body before head");
                    resp.body.extend_from_slice(b);
                }
                Frame::RingSetup { .. } => {
                    assert!(self.ring.is_none(), "a second ring on one connection");
                    let fd = self.reader.get_mut().take_fd().expect("the ring's memfd");
                    self.ring = Some(ring::Ring::new(fd));
                }
                Frame::BodyRing { offset, len } => {
                    assert!(resp.head, "body before head");
                    let ring = self.ring.as_mut().expect("BodyRing before RingSetup");
                    resp.body.extend_from_slice(&ring.take(offset, len));
                }
                Frame::ResponseEnd { seq } => {
                    assert_eq!(seq, self.seq, "a response end for another request");
                    resp.ended = true;
                    return resp;
                }
                Frame::Error { seq, message } => {
                    assert_eq!(seq, self.seq, "an error for another request");
                    resp.error = Some(String::from_utf8_lossy(message).into_owned());
                    return resp;
                }
                other => panic!("unexpected frame from the daemon: {other:?}"),
            }
            if !answer.is_empty() {
                self.write(&answer);
            }
        }
    }

    /// One whole request: head, body on demand, response.
    pub fn request(&mut self, environ: &[(Vec<u8>, Vec<u8>)], body: Option<&[u8]>) -> Response {
        let kind = match body {
            None => BodyKind::None,
            Some(b) => BodyKind::Length(b.len() as u64),
        };
        self.send_request(environ, kind);
        self.read_response(body.unwrap_or_default(), usize::MAX)
    }

    /// True when the daemon closed the connection (after any frames still in flight).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match self.reader.read_frame() {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(_) => {
                    return self
                        .reader
                        .get_mut()
                        .read(&mut buf)
                        .map_or(true, |n| n == 0)
                }
            }
        }
    }
}
