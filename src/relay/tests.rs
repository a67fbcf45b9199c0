//! The relay core against frame sequences: the decisions the module makes without Apache.

use proptest::prelude::*;
use rswsgi_protocol as proto;

use super::*;

/// One frame as the daemon would send it, encoded and decoded again.
#[derive(Debug, Clone)]
pub(super) enum F {
    Head(u16, Option<u64>),
    Body(usize),
    File(u64),
    End,
    ReadBody,
    Retry,
    Error,
    Timeout,
    /// A frame about another request.
    Stray,
}

pub(super) fn encode(f: &F, seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    match f {
        F::Head(status, len) => {
            let len = len.map(|n| n.to_string());
            let headers: Vec<(&[u8], &[u8])> = len
                .iter()
                .map(|n| (&b"Content-Length"[..], n.as_bytes()))
                .collect();
            proto::encode_response_head(&mut out, seq, *status, b"", headers).unwrap();
        }
        F::Body(n) => proto::encode_body(&mut out, &vec![b'x'; *n]).unwrap(),
        F::File(n) => proto::encode_body_file(&mut out, 0, (*n).max(1)),
        F::End => proto::encode_response_end(&mut out, seq),
        F::ReadBody => proto::encode_read_body(&mut out, seq, 8192),
        F::Retry => proto::encode_retry(&mut out, seq),
        F::Error => proto::encode_error(&mut out, seq, b"boom"),
        F::Timeout => proto::encode_timeout(&mut out, seq, b"too slow"),
        F::Stray => proto::encode_response_end(&mut out, seq + 1),
    }
    out
}

/// Runs `frames` through a relay for request 7, applying heads as the FFI side does (the
/// Content-Length the head declares); returns every step up to the first that ends it.
fn run(frames: &[F], error_override: bool) -> (Relay, Vec<Step>) {
    let mut relay = Relay::new(7, error_override);
    let mut steps = Vec::new();
    for f in frames {
        let bytes = encode(f, 7);
        let (frame, _) = proto::decode(&bytes).unwrap().unwrap();
        let step = relay.on_frame(&frame);
        if step == Step::ApplyHead {
            if let F::Head(_, len) = f {
                relay.head_applied(*len);
            }
        }
        let ends = matches!(step, Step::Done(_) | Step::Retry | Step::Fail(_));
        steps.push(step);
        if ends {
            break;
        }
    }
    (relay, steps)
}

fn last(frames: &[F], error_override: bool) -> Step {
    run(frames, error_override).1.pop().expect("a step")
}

#[test]
fn a_complete_response_and_the_content_length_budget() {
    let steps = run(
        &[F::Head(200, Some(10)), F::Body(4), F::Body(6), F::End],
        false,
    )
    .1;
    assert_eq!(steps[0], Step::ApplyHead);
    assert_eq!(
        steps[1],
        Step::Write {
            len: 4,
            over: false
        }
    );
    assert_eq!(steps[3], Step::Done(Ending::Complete));
    // Past the declared length: the excess is dropped and the exchange ends there.
    let over = run(&[F::Head(200, Some(5)), F::Body(4), F::Body(4)], false).1;
    assert_eq!(over[2], Step::Write { len: 1, over: true });
    let file = run(&[F::Head(200, Some(5)), F::File(9)], false).1;
    assert_eq!(
        file[1],
        Step::SendFile {
            offset: 0,
            length: 9,
            len: 5,
            over: true
        }
    );
    // Short of it: the client connection is aborted, never a response that looks whole.
    assert_eq!(
        last(&[F::Head(200, Some(10)), F::Body(3), F::End], false),
        Step::Fail(RelayError::new(
            Source::App,
            Kind::Short {
                sent: 3,
                declared: 10
            },
            ""
        ))
    );
    // No Content-Length: anything goes.
    assert_eq!(
        last(&[F::Head(200, None), F::Body(3), F::End], false),
        Step::Done(Ending::Complete)
    );
}

#[test]
fn retry_only_while_the_request_is_provably_unread() {
    assert_eq!(last(&[F::Retry], false), Step::Retry);
    // After the daemon asked for the body, or sent a head, a Retry is a protocol error.
    assert!(
        matches!(last(&[F::ReadBody, F::Retry], false), Step::Fail(e) if e.kind == Kind::Protocol)
    );
    assert!(matches!(
        last(&[F::Head(200, None), F::Retry], false),
        Step::Fail(_)
    ));
    let fresh = Relay::new(1, false);
    let reset = std::io::ErrorKind::ConnectionReset;
    assert_eq!(
        fresh.on_read_failed(ReadFailure::Io(reset), "reset"),
        Step::Retry
    );
    assert_eq!(
        fresh.on_send_failed(std::io::ErrorKind::BrokenPipe, "pipe"),
        Step::Retry
    );
    let (seen, _) = run(&[F::ReadBody], false);
    assert!(
        matches!(seen.on_read_failed(ReadFailure::Io(reset), "reset"), Step::Fail(e) if e.status() == 502)
    );
    assert!(
        matches!(fresh.on_send_failed(std::io::ErrorKind::Other, "x"), Step::Fail(e) if e.status() == 503)
    );
}

#[test]
fn failures_map_to_their_statuses() {
    let status = |frames: &[F]| match last(frames, false) {
        Step::Fail(e) => e.status(),
        other => panic!("{other:?}"),
    };
    assert_eq!(status(&[F::Error]), 500);
    assert_eq!(status(&[F::Timeout]), 504);
    assert_eq!(status(&[F::Stray]), 502);
    assert_eq!(status(&[F::Head(200, None), F::Head(200, None)]), 502);
    let relay = Relay::new(1, false);
    let timeout = relay.on_read_failed(ReadFailure::Io(std::io::ErrorKind::WouldBlock), "");
    assert!(matches!(timeout, Step::Fail(e) if e.status() == 504));
    assert!(
        matches!(relay.on_read_failed(ReadFailure::Closed, ""), Step::Fail(e) if e.status() == 502)
    );
    assert!(matches!(relay.on_timeout(), Step::Fail(e) if e.kind == Kind::Timeout));
}

#[test]
fn error_override_keeps_the_status_and_drops_the_body() {
    let steps = run(
        &[F::Head(404, Some(3)), F::Body(3), F::File(3), F::End],
        true,
    )
    .1;
    assert_eq!(
        steps,
        [
            Step::Skip,
            Step::Skip,
            Step::DropFile,
            Step::Done(Ending::Overridden(404))
        ]
    );
    // A success is passed on as usual.
    assert_eq!(run(&[F::Head(200, None)], true).1, [Step::ApplyHead]);
}

pub(super) fn frame() -> impl Strategy<Value = F> {
    prop_oneof![
        (
            prop_oneof![Just(200u16), Just(404), Just(500)],
            proptest::option::of(0u64..64)
        )
            .prop_map(|(s, n)| F::Head(s, n)),
        (0usize..40).prop_map(F::Body),
        (1u64..40).prop_map(F::File),
        Just(F::End),
        Just(F::ReadBody),
        Just(F::Retry),
        Just(F::Error),
        Just(F::Timeout),
        Just(F::Stray),
    ]
}

proptest! {
    /// Whatever a daemon sends, cut off anywhere: a retry only before any head or body read,
    /// never more body than declared, at most one head, and a failure after the head is
    /// known to need an abort.
    #[test]
    fn any_frame_sequence_keeps_the_invariants(
        frames in proptest::collection::vec(frame(), 0..12),
        error_override in any::<bool>(),
    ) {
        let (relay, steps) = run(&frames, error_override);
        let mut declared = None;
        let mut sent = 0u64;
        let mut heads = 0;
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::ApplyHead => {
                    heads += 1;
                    if let F::Head(_, n) = &frames[i] { declared = *n; }
                }
                Step::Write { len, .. } => sent += *len as u64,
                Step::SendFile { len, .. } => sent += *len,
                Step::Retry => {
                    let before = &frames[..i];
                    prop_assert!(!before.iter().any(|f| matches!(f, F::Head(..) | F::ReadBody)));
                }
                _ => {}
            }
        }
        prop_assert!(heads <= 1);
        if let Some(n) = declared { prop_assert!(sent <= n); }
        prop_assert_eq!(relay.head_sent(), heads == 1);
        // The daemon dies (or the connection resets) right there: a retry only if no frame
        // came at all, otherwise a failure (whose status is kept only before the head).
        let ended = matches!(steps.last(), Some(Step::Done(_) | Step::Retry | Step::Fail(_)));
        if !ended {
            let reset = ReadFailure::Io(std::io::ErrorKind::ConnectionReset);
            for failure in [ReadFailure::Closed, reset] {
                match relay.on_read_failed(failure, "gone") {
                    Step::Retry => prop_assert!(steps.is_empty() && failure == reset),
                    Step::Fail(e) => prop_assert_eq!(e.status(), 502),
                    other => prop_assert!(false, "{:?}", other),
                }
            }
        }
    }
}
