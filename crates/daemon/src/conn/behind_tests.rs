//! The write-behind thread against a real socket pair: blocks in, frames out on the module's
//! side, byte-exact and in order, in fewer writes than blocks, and never held back.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rswsgi_protocol::{Frame, FrameReader};

use super::{Conn, IoError, Outcome, RequestIo, SentNow, Shared, State};
use crate::gate::Gate;

/// A connection with request 1 in progress and its head sent, and the module's end of it.
fn streaming() -> (RequestIo, UnixStream) {
    let (ours, module) = UnixStream::pair().expect("socketpair");
    let secret = rswsgi_protocol::auth::Secret::from_bytes([7; rswsgi_protocol::auth::SECRET_LEN]);
    let conn = Conn {
        seq: 1,
        challenge: None,
        gate: Arc::new(Gate::new(secret, 0)),
        reader: FrameReader::with_buffer(ours, Vec::new()),
        wbuf: Vec::new(),
        state: State {
            head_sent: true,
            ..State::default()
        },
        ring: super::ring::RingState::default(),
        behind: false,
    };
    let shared = Shared::new(conn);
    shared.current.store(1, Ordering::SeqCst);
    (RequestIo { shared, seq: 1 }, module)
}

/// What the WSGI layer does with a block (`response::send_block`), minus the GIL.
fn send_block(io: &RequestIo, block: &[u8]) -> Result<(), IoError> {
    match io.send_now(None, block, false)? {
        SentNow::All => Ok(()),
        SentNow::Queued => io.flush(),
        SentNow::NotTried => io.send(None, block),
    }
}

fn block(i: usize) -> Vec<u8> {
    format!("line {i:07} of the stream\n").into_bytes()
}

/// Sends lines 0 to n-1 as blocks, as fast as they come; returns the bytes sent.
fn stream_lines(io: &RequestIo, n: usize) -> Vec<u8> {
    let mut sent = Vec::new();
    for i in 0..n {
        let b = block(i);
        send_block(io, &b).unwrap();
        sent.extend_from_slice(&b);
    }
    sent
}

/// Reads body frames until `ResponseEnd`, sending each read's bytes down `arrived`.
fn read_body(module: UnixStream, arrived: Option<mpsc::Sender<usize>>) -> Vec<u8> {
    let mut reader = FrameReader::new(module);
    let mut body = Vec::new();
    loop {
        match reader.read_frame().expect("a frame") {
            Some(Frame::Body(bytes)) => {
                body.extend_from_slice(bytes);
                if let Some(tx) = &arrived {
                    let _ = tx.send(body.len());
                }
            }
            Some(Frame::ResponseEnd { seq }) => {
                assert_eq!(seq, 1);
                return body;
            }
            Some(other) => panic!("unexpected frame {other:?}"),
            None => panic!("the connection closed before ResponseEnd"),
        }
    }
}

#[test]
fn blocks_made_fast_go_out_byte_exact_in_fewer_writes_than_blocks() {
    let (io, module) = streaming();
    let reader = std::thread::spawn(move || read_body(module, None));
    let expected = stream_lines(&io, 5000);
    io.finish(None, b"").unwrap();
    let writes = io.shared.writes_behind.load(Ordering::Relaxed);
    let shared = Arc::clone(&io.shared);
    assert_eq!(io.end(), Outcome::Complete);
    assert_eq!(reader.join().unwrap(), expected);
    assert!(!shared.conn.lock().behind);
    assert!(writes > 0, "the connection was never handed off");
    assert!(writes < 2500, "{writes} writes for 5000 blocks");
}

#[test]
fn a_block_is_not_held_while_the_application_makes_the_next() {
    let (io, module) = streaming();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || read_body(module, Some(tx)));
    let mut expected = Vec::new();
    // Blocks as fast as they come, until one is left with the flusher.
    for i in 0.. {
        assert!(i < 1_000_000, "the connection was never handed off");
        let b = block(i);
        send_block(&io, &b).unwrap();
        expected.extend_from_slice(&b);
        if io.shared.behind.load(Ordering::Acquire) {
            break;
        }
    }
    // The application now takes its time over the next block: what it made so far arrives.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got = 0;
    while got < expected.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        got = rx.recv_timeout(left).expect("blocks held back");
    }
    io.finish(None, b"last\n").unwrap();
    expected.extend_from_slice(b"last\n");
    assert_eq!(io.end(), Outcome::Complete);
    assert_eq!(reader.join().unwrap(), expected);
}

#[test]
fn a_connection_whose_reader_stalls_holds_up_no_other() {
    let (slow, slow_module) = streaming();
    let slow_shared = Arc::clone(&slow.shared);
    let slow_worker = std::thread::spawn(move || {
        let expected = stream_lines(&slow, 100_000);
        slow.finish(None, b"").unwrap();
        assert_eq!(slow.end(), Outcome::Complete);
        expected
    });
    // Let the slow connection fill its socket and reach the flusher's bound.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !slow_worker.is_finished(),
        "2.6 MB went into a socket nobody reads"
    );

    let (fast, fast_module) = streaming();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = std::thread::spawn(move || read_body(fast_module, None));
        let expected = stream_lines(&fast, 3000);
        fast.finish(None, b"").unwrap();
        let outcome = fast.end();
        let _ = done.send((outcome, reader.join().unwrap() == expected));
    });
    let (outcome, exact) = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the fast connection waited for the stalled one");
    assert_eq!(outcome, Outcome::Complete);
    assert!(exact, "the fast connection's body differs");

    let body = read_body(slow_module, None);
    assert_eq!(body, slow_worker.join().unwrap());
    // The idle connection keeps none of the stream's buffering.
    let capacity = slow_shared.conn.lock().wbuf.capacity();
    assert!(capacity <= 64 << 10, "{capacity} bytes kept");
}

#[test]
fn a_module_that_goes_away_ends_the_stream_with_an_error() {
    let (io, module) = streaming();
    stream_lines(&io, 50);
    drop(module);
    let deadline = Instant::now() + Duration::from_secs(5);
    let failed = loop {
        if let Err(e) = send_block(&io, &block(0)) {
            break e;
        }
        assert!(Instant::now() < deadline, "writes kept succeeding");
    };
    assert!(
        matches!(failed, IoError::Broken | IoError::Write(_)),
        "{failed:?}"
    );
    assert_eq!(io.end(), Outcome::Close);
}

#[test]
fn a_response_of_two_blocks_is_written_by_its_worker() {
    let (io, mut module) = streaming();
    send_block(&io, b"one").unwrap();
    io.finish(None, b"two").unwrap();
    assert_eq!(io.shared.writes_behind.load(Ordering::Relaxed), 0);
    assert_eq!(io.end(), Outcome::Complete);
    module.flush().unwrap();
    assert_eq!(read_body(module, None), b"onetwo");
}
