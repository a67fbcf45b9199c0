//! Whole exchanges between a scripted daemon and a recording client: what reaches the
//! client, what the daemon is sent, and what Apache is answered, without Apache.

use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;

use proptest::prelude::*;
use rswsgi_protocol as proto;
use rswsgi_protocol::Code;

use super::fakes::{Cut, Event, FakeClient, FakeLink, Mark, Timeline};
use super::io::{BodyReadError, DaemonLink};
use super::tests::{encode, frame, F};
use super::{run, Answer, Outcome};

pub(super) const REQUEST: &[u8] = b"the encoded request";
pub(super) const SEQ: u64 = 7;

/// The bytes of `frames` as the daemon sends them for request `SEQ`.
fn script(frames: &[F]) -> Vec<u8> {
    frames.iter().flat_map(|f| encode(f, SEQ)).collect()
}

pub(super) fn head(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    proto::encode_response_head(&mut out, SEQ, status, b"", pairs).unwrap();
    out
}

pub(super) fn body(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode_body(&mut out, data).unwrap();
    out
}

fn body_file(offset: u64, length: u64) -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode_body_file(&mut out, offset, length);
    out
}

pub(super) fn end() -> Vec<u8> {
    encode(&F::End, SEQ)
}

/// A regular file holding `data`, as the descriptor a `BodyFile` frame brings.
pub(super) fn file(data: &[u8]) -> OwnedFd {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("rswsgi-relay-{}-{n}", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(data).unwrap();
    let f = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    f.into()
}

/// Runs one exchange; `setup` adjusts the two sides first.
pub(super) fn exchange(
    parts: &[Vec<u8>],
    fds: Vec<OwnedFd>,
    cut: Cut,
    setup: impl FnOnce(&mut FakeLink, &mut FakeClient),
) -> (Outcome<Answer>, FakeLink, FakeClient) {
    let mut link = FakeLink::new(parts.concat(), fds, cut);
    let mut client = FakeClient::default();
    setup(&mut link, &mut client);
    let outcome = run(&mut link, &mut client, REQUEST, SEQ, false, "g");
    (outcome, link, client)
}

pub(super) fn done(value: Answer, reusable: bool) -> Outcome<Answer> {
    Outcome::Done { value, reusable }
}

pub(super) fn logged(client: &FakeClient, text: &str) -> bool {
    client.logs.iter().any(|(_, line)| line.contains(text))
}

/// A line logged with `code` in its place (first, before the text).
pub(super) fn coded(client: &FakeClient, code: rswsgi_protocol::Code) -> bool {
    let prefix = format!("{code}: ");
    client
        .logs
        .iter()
        .any(|(_, line)| line.starts_with(&prefix))
}

#[test]
fn a_complete_response_reaches_the_client_and_the_connection_is_reusable() {
    let headers = [
        ("Content-Type", "text/plain"),
        ("Content-Length", "5"),
        ("X-A", "1"),
    ];
    let parts = [head(200, &headers), body(b"hel"), body(b"lo"), end()];
    let (outcome, link, client) = exchange(&parts, vec![], Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Sent, true));
    assert_eq!(link.sent, REQUEST);
    let header = |n: &str, v: &str| Event::Header(n.into(), v.into());
    assert_eq!(
        client.events,
        [
            Event::Status(200),
            header("Content-Type", "text/plain"),
            header("Content-Length", "5"),
            header("X-A", "1"),
            Event::Begins,
            // Both blocks had arrived: they go out in one write.
            Event::Body(b"hello".to_vec()),
        ]
    );
    // Bytes past the response: the connection cannot be reused.
    let parts = [head(200, &[]), end(), end()];
    let (outcome, _, _) = exchange(&parts, vec![], Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Sent, false));
}

#[test]
fn body_files_go_out_in_frame_order_between_the_written_blocks() {
    let parts = [
        head(200, &[("Content-Length", "8")]),
        body(b"a"),
        body_file(2, 3),
        body(b"c"),
        body_file(0, 3),
        end(),
    ];
    let fds = vec![file(b"xxbbbyy"), file(b"ddd")];
    let (outcome, link, client) = exchange(&parts, fds, Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Sent, true));
    assert_eq!(client.body_sent(), b"abbbcddd");
    assert_eq!(link.fds_left(), 0);
}

#[test]
fn a_bad_body_file_is_a_protocol_error_that_aborts_the_response() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(b);
    let cases: [(Vec<OwnedFd>, &str); 3] = [
        (vec![], "without its file descriptor"),
        (
            vec![file(b"xy")],
            "bytes 0..3 asked for, but the file holds 2",
        ),
        (vec![a.into()], "not a regular file"),
    ];
    for (fds, why) in cases {
        let parts = [head(200, &[]), body(b"a"), body_file(0, 3), end()];
        let (outcome, _, client) = exchange(&parts, fds, Cut::Close, |_, _| {});
        assert_eq!(outcome, done(Answer::Sent, false), "{why}");
        assert!(client.saw(&Event::Abort), "{why}: {:?}", client.events);
        assert!(logged(&client, why), "{why}: {:?}", client.logs);
        assert!(coded(&client, Code::RelayProtocol), "{:?}", client.logs);
        assert_eq!(client.body_sent(), b"a");
    }
}

#[test]
fn error_override_answers_the_status_and_drops_body_and_files() {
    let parts = [head(404, &[]), body(b"gone"), body_file(0, 1), end()];
    let mut link = FakeLink::new(parts.concat(), vec![file(b"z")], Cut::Close);
    let mut client = FakeClient::default();
    let outcome = run(&mut link, &mut client, REQUEST, SEQ, true, "g");
    assert_eq!(outcome, done(Answer::Status(404), true));
    assert!(client.events.is_empty(), "{:?}", client.events);
    assert_eq!(link.fds_left(), 0, "the descriptor is taken and closed");
}

/// The frames the relay sent the daemon after the request.
fn answers(link: &FakeLink) -> Vec<String> {
    let mut rest = &link.sent[REQUEST.len()..];
    let mut out = Vec::new();
    while let Some((f, n)) = proto::decode(rest).unwrap() {
        out.push(match f {
            proto::Frame::Body(b) => format!("Body {}", b.len()),
            other => format!("{:?}", other.kind()),
        });
        rest = &rest[n..];
    }
    out
}

#[test]
fn read_body_frames_are_answered_from_the_client_body_then_its_end() {
    let read = |max| {
        let mut out = Vec::new();
        proto::encode_read_body(&mut out, SEQ, max);
        out
    };
    let big = 300 << 10;
    let parts = [
        read(1000),
        read(u32::MAX),
        read(u32::MAX),
        read(10),
        head(200, &[]),
        end(),
    ];
    let (outcome, link, _) = exchange(&parts, vec![], Cut::Close, |_, client| {
        client.body = vec![b'b'; 1000 + big].into();
    });
    assert_eq!(outcome, done(Answer::Sent, true));
    // One read is capped at 256 KiB, whatever the daemon asks.
    let rest = big - (256 << 10);
    assert_eq!(
        answers(&link),
        [
            "Body 1000".to_string(),
            "Body 262144".into(),
            format!("Body {rest}"),
            "BodyEnd".into()
        ]
    );
}

#[test]
fn a_failed_client_body_tells_the_daemon_and_answers_its_status() {
    let mut read = Vec::new();
    proto::encode_read_body(&mut read, SEQ, 100);
    let (outcome, link, client) = exchange(&[read], vec![], Cut::Close, |_, client| {
        client.body_error = Some(BodyReadError {
            status: 413,
            reason: "too large".into(),
        });
    });
    assert_eq!(outcome, done(Answer::Status(413), false));
    assert_eq!(answers(&link), ["Error"]);
    assert!(client
        .logs
        .iter()
        .any(|(l, m)| *l == tracing::Level::INFO && m.contains("too large")));
}

#[test]
fn a_daemon_that_dies_is_retried_only_while_the_request_is_unread() {
    let reset = |parts: &[Vec<u8>]| exchange(parts, vec![], Cut::Reset, |_, _| {}).0;
    let close = |parts: &[Vec<u8>]| exchange(parts, vec![], Cut::Close, |_, _| {}).0;
    assert_eq!(reset(&[]), Outcome::Retry);
    let (outcome, _, client) = exchange(&[], vec![], Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Status(502), false));
    assert!(coded(&client, Code::RelayClosed), "{:?}", client.logs);
    assert_eq!(close(&[encode(&F::Retry, SEQ)]), Outcome::Retry);
    let mut read = Vec::new();
    proto::encode_read_body(&mut read, SEQ, 10);
    assert_eq!(reset(&[read.clone()]), done(Answer::Status(502), false));
    // Once the response began, the client sees an aborted connection.
    for parts in [vec![head(200, &[])], vec![head(200, &[]), body(b"a")]] {
        let (outcome, _, client) = exchange(&parts, vec![], Cut::Close, |_, _| {});
        assert_eq!(outcome, done(Answer::Sent, false));
        assert_eq!(client.events.last(), Some(&Event::Abort));
    }
    // The request itself refused: a reset or broken pipe is retried, anything else is a 503.
    for (kind, want) in [
        (ErrorKind::BrokenPipe, Outcome::Retry),
        (ErrorKind::ConnectionReset, Outcome::Retry),
        (
            ErrorKind::PermissionDenied,
            done(Answer::Status(503), false),
        ),
    ] {
        let (outcome, _, client) = exchange(&[], vec![], Cut::Close, |link, _| {
            link.sends_ok = Some(0);
            link.send_error = kind;
        });
        assert_eq!(outcome, want, "{kind:?}");
        if kind == ErrorKind::PermissionDenied {
            assert!(coded(&client, Code::RelayUnavailable), "{:?}", client.logs);
        }
    }
}

#[test]
fn a_client_that_goes_away_is_dropped_in_every_phase() {
    let cases = [
        (vec![], None, "before the response began"),
        (
            vec![head(200, &[]), body(b"a")],
            None,
            "while the response was being sent",
        ),
        (
            vec![head(200, &[]), body(b"a"), body(b"b")],
            Some(1),
            "while the response",
        ),
    ];
    for (parts, writes_ok, when) in cases {
        let (outcome, _, client) = exchange(&parts, vec![], Cut::ClientGone, |_, client| {
            client.writes_ok = writes_ok;
        });
        assert_eq!(outcome, done(Answer::Sent, false), "{when}");
        assert_eq!(client.events.last(), Some(&Event::DropClient), "{when}");
        assert!(
            logged(&client, &format!("client went away {when}")),
            "{:?}",
            client.logs
        );
    }
}

#[test]
fn a_quiet_daemon_times_out_and_daemon_timeouts_are_504() {
    let (outcome, _, client) = exchange(&[], vec![], Cut::Quiet, |_, _| {});
    assert_eq!(outcome, done(Answer::Status(504), false));
    assert!(coded(&client, Code::RelayTimeout), "{:?}", client.logs);
    let (outcome, _, client) = exchange(&[encode(&F::Timeout, SEQ)], vec![], Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Status(504), false));
    assert!(coded(&client, Code::RelayGivenUp), "{:?}", client.logs);
    let (_, _, client) = exchange(&[head(200, &[])], vec![], Cut::Quiet, |_, _| {});
    assert_eq!(client.events.last(), Some(&Event::Abort));
}

#[test]
fn the_content_length_budget_cuts_excess_and_aborts_short_bodies() {
    let cl = [("Content-Length", "3")];
    let (outcome, _, client) = exchange(
        &[head(200, &cl), body(b"abcdef")],
        vec![],
        Cut::Close,
        |_, _| {},
    );
    assert_eq!(outcome, done(Answer::Sent, false));
    assert_eq!(client.body_sent(), b"abc");
    assert!(
        !client.saw(&Event::Abort),
        "the declared body went out whole"
    );
    assert!(logged(&client, "more than its Content-Length of 3 bytes"));
    let (_, _, client) = exchange(
        &[head(200, &cl), body(b"ab"), end()],
        vec![],
        Cut::Close,
        |_, _| {},
    );
    assert_eq!(client.events.last(), Some(&Event::Abort));
    assert!(logged(&client, "sent 2 of the 3 bytes"));
    // HEAD: no body is owed, whatever the Content-Length says.
    let (outcome, _, _) = exchange(&[head(200, &cl), end()], vec![], Cut::Close, |_, client| {
        client.header_only = true;
    });
    assert_eq!(outcome, done(Answer::Sent, true));
}

#[test]
fn an_application_error_and_a_refused_script_are_logged_with_their_codes() {
    let mut error = Vec::new();
    proto::encode_error(&mut error, SEQ, b"boom");
    let (outcome, _, client) = exchange(&[error], vec![], Cut::Close, |_, _| {});
    assert!(matches!(
        outcome,
        Outcome::Done {
            value: Answer::Status(500),
            ..
        }
    ));
    assert!(coded(&client, Code::RelayAppFailed), "{:?}", client.logs);
    let mut forbidden = Vec::new();
    proto::encode_forbidden(&mut forbidden, SEQ, b"not owned by www-data");
    let (outcome, _, client) = exchange(&[forbidden], vec![], Cut::Close, |_, _| {});
    assert!(matches!(
        outcome,
        Outcome::Done {
            value: Answer::Status(403),
            ..
        }
    ));
    assert!(coded(&client, Code::RelayRefused), "{:?}", client.logs);
}

#[test]
fn a_head_that_cannot_be_sent_is_a_500_with_its_headers_discarded() {
    let cases = [
        ("Connection", "close", "hop-by-hop header 'Connection'"),
        ("Status", "200 OK", "Status header"),
        ("Content-Length", "-1", "invalid Content-Length '-1'"),
        (
            "Content-Length",
            "9223372036854775808",
            "invalid Content-Length",
        ),
    ];
    for (name, value, why) in cases {
        let parts = [head(200, &[("X-Ok", "1"), (name, value)]), end()];
        let (outcome, _, client) = exchange(&parts, vec![], Cut::Close, |_, _| {});
        assert_eq!(outcome, done(Answer::Status(500), false), "{why}");
        assert!(
            client.saw(&Event::Discarded) && !client.saw(&Event::Begins),
            "{why}"
        );
        assert!(logged(&client, why), "{why}: {:?}", client.logs);
        assert!(coded(&client, Code::RelayBadHead), "{:?}", client.logs);
    }
}

/// How an arbitrary exchange is cut short.
fn cut() -> impl Strategy<Value = Cut> {
    prop_oneof![
        Just(Cut::Close),
        Just(Cut::Reset),
        Just(Cut::Quiet),
        Just(Cut::ClientGone)
    ]
}

proptest! {
    /// Whatever the daemon sends, however it or the client stops: a retry only with nothing
    /// passed on and no body read, never more body than declared, a status only when nothing
    /// went out, and a response that began either ends cleanly or is aborted or dropped.
    #[test]
    fn any_exchange_keeps_the_invariants(
        frames in proptest::collection::vec(frame(), 0..12),
        cut in cut(),
        writes_ok in proptest::option::of(0usize..4),
        error_override in any::<bool>(),
    ) {
        let files = frames.iter().filter(|f| matches!(f, F::File(_))).count();
        let fds = (0..files).map(|_| file(&[b'f'; 64])).collect();
        let mut link = FakeLink::new(script(&frames), fds, cut);
        let mut client = FakeClient { writes_ok, ..FakeClient::default() };
        client.body = vec![b'b'; 100].into();
        let outcome = run(&mut link, &mut client, REQUEST, SEQ, error_override, "g");
        let began = client.saw(&Event::Begins);
        let declared = client.events.iter().find_map(|e| match e {
            Event::Header(n, v) if n == "Content-Length" => v.parse::<usize>().ok(),
            _ => None,
        });
        let sent = client.body_sent().len();
        prop_assert!(client.events.iter().filter(|e| **e == Event::Begins).count() <= 1);
        if let Some(n) = declared { prop_assert!(sent <= n); }
        match outcome {
            Outcome::Retry => {
                prop_assert!(client.events.is_empty());
                prop_assert_eq!(&link.sent[..], REQUEST);
            }
            Outcome::Done { value: Answer::Status(_), .. } => prop_assert!(!began),
            Outcome::Done { value: Answer::Sent, reusable } => {
                let ended = client.saw(&Event::Abort) || client.saw(&Event::DropClient);
                if reusable { prop_assert!(!ended); }
                // Not aborted: the declared body went out whole, or the response ended and
                // stray bytes followed it.
                if began && !reusable && !ended {
                    let whole = declared == Some(sent) || link.has_buffered();
                    prop_assert!(whole, "{:?}", client.events);
                }
            }
        }
    }
}

/// Runs a response whose bytes arrive in `bursts`; returns the client and the timeline.
fn in_bursts(bursts: Vec<Vec<u8>>, cut: Cut) -> (Outcome<Answer>, FakeClient, Vec<Mark>) {
    in_bursts_read(bursts, cut, 7)
}

/// As [`in_bursts`], with reads of up to `read_size` bytes.
fn in_bursts_read(
    bursts: Vec<Vec<u8>>,
    cut: Cut,
    read_size: usize,
) -> (Outcome<Answer>, FakeClient, Vec<Mark>) {
    let timeline = Timeline::default();
    let mut link = FakeLink::bursts(bursts, vec![], cut, timeline.clone());
    link.set_read_size(read_size);
    let mut client = FakeClient {
        timeline: timeline.clone(),
        ..FakeClient::default()
    };
    let outcome = run(&mut link, &mut client, REQUEST, SEQ, false, "g");
    let marks = timeline.borrow().clone();
    (outcome, client, marks)
}

#[test]
fn blocks_that_arrived_together_go_out_together_and_before_any_wait() {
    let first = [head(200, &[]), body(b"a"), body(b"b"), body(b"c")].concat();
    let second = [body(b"d"), end()].concat();
    let (outcome, client, marks) = in_bursts(vec![first, second], Cut::Close);
    assert_eq!(outcome, done(Answer::Sent, true));
    assert_eq!(client.body_sent(), b"abcd");
    assert_eq!(marks, [Mark::Wrote(3), Mark::Wait, Mark::Wrote(1)]);
    // A large block goes out as it is, after what was gathered before it.
    let big = vec![b'x'; 20 << 10];
    let burst = [head(200, &[]), body(b"a"), body(&big), body(b"b"), end()].concat();
    let (_, _, marks) = in_bursts_read(vec![burst], Cut::Close, 64 << 10);
    assert_eq!(
        marks,
        [Mark::Wrote(1), Mark::Wrote(20 << 10), Mark::Wrote(1)]
    );
    // At most 64 KiB is gathered.
    let block = vec![b'y'; 1 << 10];
    let mut burst = head(200, &[]);
    for _ in 0..100 {
        burst.extend(body(&block));
    }
    burst.extend(end());
    let (_, _, marks) = in_bursts(vec![burst], Cut::Close);
    assert_eq!(marks, [Mark::Wrote(64 << 10), Mark::Wrote(36 << 10)]);
}

#[test]
fn gathered_blocks_reach_the_client_before_a_failure_ends_the_response() {
    let burst = [head(200, &[]), body(b"a"), body(b"b")].concat();
    let (outcome, client, _) = in_bursts(vec![burst.clone()], Cut::Close);
    assert_eq!(outcome, done(Answer::Sent, false));
    assert_eq!(client.body_sent(), b"ab");
    assert_eq!(client.events.last(), Some(&Event::Abort));
    let (_, client, _) = in_bursts(vec![burst], Cut::ClientGone);
    assert_eq!(
        client.body_sent(),
        b"ab",
        "sent before the client was found gone"
    );
}

/// Body payload bytes within the first `upto` bytes of `frames` (encoded one after the other).
fn payload_before(frames: &[Vec<u8>], upto: usize) -> usize {
    let mut at = 0;
    let mut total = 0;
    for f in frames {
        if f[0] == proto::FrameKind::Body as u8 {
            let payload = (at + proto::HEADER_LEN)..(at + f.len());
            total += payload.end.min(upto).saturating_sub(payload.start);
        }
        at += f.len();
    }
    total
}

proptest! {
    /// However a stream of blocks is split into bursts: whenever the relay waits for more,
    /// every body byte that had arrived has gone to the client, and the body is exact.
    #[test]
    fn no_block_is_held_across_a_wait(
        sizes in proptest::collection::vec(
            prop_oneof![4 => 0usize..64, 1 => 0usize..(40 << 10)], 1..30),
        mut cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
    ) {
        let mut frames = vec![head(200, &[])];
        let mut want = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let block = vec![b'a' + (i % 26) as u8; *n];
            frames.push(body(&block));
            want.extend(block);
        }
        frames.push(end());
        let bytes = frames.concat();
        let mut at: Vec<usize> = cuts.drain(..).map(|i| i.index(bytes.len())).collect();
        at.sort_unstable();
        at.dedup();
        let mut bursts = Vec::new();
        let mut from = 0;
        for &to in &at {
            bursts.push(bytes[from..to].to_vec());
            from = to;
        }
        bursts.push(bytes[from..].to_vec());
        let (outcome, client, marks) = in_bursts(bursts, Cut::Close);
        prop_assert_eq!(outcome, done(Answer::Sent, true));
        prop_assert_eq!(client.body_sent(), want);
        let mut written = 0;
        let mut waits = 0;
        for mark in marks {
            match mark {
                Mark::Wrote(n) => written += n,
                Mark::Wait => {
                    // Before this wait, the bursts up to the cut had arrived.
                    let arrived = payload_before(&frames, at[waits]);
                    prop_assert_eq!(written, arrived, "at wait {}", waits);
                    waits += 1;
                }
            }
        }
    }
}
