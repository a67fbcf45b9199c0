//! Response-ring exchanges between a scripted daemon and a recording client: slices pass on
//! in frame order and each one is released, whatever became of it; a bad ring or slice is a
//! protocol error.

use rswsgi_protocol as proto;
use rswsgi_protocol::ring::RING_DATA;

use super::exchange_tests::{body, done, end, exchange, file, head, logged, REQUEST, SEQ};
use super::fakes::{Cut, Event, FakeClient, FakeLink};
use super::{run, Answer};

fn setup() -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode_ring_setup(&mut out, RING_DATA as u32);
    out
}

fn slice(offset: u32, len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode_body_ring(&mut out, offset, len);
    out
}

fn blocks(lens: &[usize]) -> Vec<Vec<u8>> {
    let fill = |i: usize, n: usize| (0..n).map(|j| (i * 31 + j) as u8).collect();
    lens.iter().enumerate().map(|(i, &n)| fill(i, n)).collect()
}

#[test]
fn slices_pass_on_in_frame_order_after_what_was_gathered_and_each_is_released() {
    let data = blocks(&[40_000, 9, 70_000]);
    let total = 3 + 40_000 + 1 + 9 + 70_000;
    let parts = [
        head(200, &[("Content-Length", &total.to_string())]),
        body(b"abc"),
        setup(),
        slice(0, 40_000),
        body(b"d"),
        slice(40_000, 9),
        slice(40_009, 70_000),
        end(),
    ];
    let (outcome, link, client) = exchange(&parts, vec![file(b"")], Cut::Close, |link, _| {
        *link = std::mem::replace(link, FakeLink::new(vec![], vec![], Cut::Close))
            .with_ring_blocks(data.clone());
    });
    assert_eq!(outcome, done(Answer::Sent, true));
    let expected = [&b"abc"[..], &data[0], b"d", &data[1], &data[2]].concat();
    assert_eq!(client.body_sent(), expected);
    let writes: Vec<usize> = client
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Body(b) => Some(b.len()),
            _ => None,
        })
        .collect();
    // The small blocks go out on their own, each before the slice that follows it.
    assert_eq!(writes, [3, 40_000, 1, 9, 70_000]);
    assert_eq!(link.ring.as_ref().unwrap().released, [40_000, 9, 70_000]);
    assert_eq!(link.fds_left(), 0);
}

/// Runs `parts` with the ring's blocks `data`; `override_errors`: `WSGIErrorOverride On`.
fn with_ring(
    parts: &[Vec<u8>],
    data: Vec<Vec<u8>>,
    override_errors: bool,
    setup: impl FnOnce(&mut FakeClient),
) -> (super::Outcome<Answer>, FakeLink, FakeClient) {
    let fds = vec![file(b"")];
    let mut link = FakeLink::new(parts.concat(), fds, Cut::Close).with_ring_blocks(data);
    let mut client = FakeClient::default();
    setup(&mut client);
    let outcome = run(&mut link, &mut client, REQUEST, SEQ, override_errors, "g");
    (outcome, link, client)
}

#[test]
fn slices_apache_replaces_cuts_or_cannot_send_are_released_all_the_same() {
    // Error override: Apache's error document replaces the body.
    let parts = [head(500, &[]), setup(), slice(0, 5), end()];
    let (outcome, link, client) = with_ring(&parts, blocks(&[5]), true, |_| {});
    assert_eq!(outcome, done(Answer::Status(500), true));
    assert!(client.body_sent().is_empty());
    assert_eq!(link.ring_released(), 5);
    // Past the Content-Length: what fits goes out, and the connection is not reused.
    let parts = [head(200, &[("Content-Length", "4")]), setup(), slice(0, 6)];
    let (outcome, link, client) = with_ring(&parts, blocks(&[6]), false, |_| {});
    assert_eq!(outcome, done(Answer::Sent, false));
    assert_eq!(client.body_sent(), blocks(&[6])[0][..4]);
    assert!(logged(&client, "more than its Content-Length of 4 bytes"));
    assert_eq!(link.ring_released(), 6);
    // The client went away: the slice is released before the exchange ends.
    let parts = [head(200, &[]), setup(), slice(0, 6), slice(6, 6), end()];
    let (outcome, link, client) = with_ring(&parts, blocks(&[6, 6]), false, |c| {
        c.writes_ok = Some(0);
    });
    assert_eq!(outcome, done(Answer::Sent, false));
    assert!(client.saw(&Event::DropClient), "{:?}", client.events);
    assert_eq!(link.ring_released(), 6);
}

#[test]
fn a_ring_without_its_descriptor_or_a_slice_without_a_ring_is_a_protocol_error() {
    let no_fd = [head(200, &[]), body(b"a"), setup(), slice(0, 3), end()];
    let (outcome, link, client) = exchange(&no_fd, vec![], Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Sent, false));
    assert!(client.saw(&Event::Abort));
    assert!(logged(
        &client,
        "RingSetup frame came without its file descriptor"
    ));
    assert!(link.ring.is_none());

    let no_ring = [head(200, &[]), body(b"a"), slice(0, 3), end()];
    let (outcome, _, client) = exchange(&no_ring, vec![], Cut::Close, |_, _| {});
    assert_eq!(outcome, done(Answer::Sent, false));
    assert!(client.saw(&Event::Abort));
    assert!(logged(&client, "a bad ring slice"), "{:?}", client.logs);
    assert_eq!(client.body_sent(), b"a");

    // Before the head, a slice is out of place: a 502 (the daemon broke the protocol).
    let early = [setup(), slice(0, 3), head(200, &[]), end()];
    let (outcome, _, client) = with_ring(&early, blocks(&[3]), false, |_| {});
    assert_eq!(outcome, done(Answer::Status(502), false));
    assert!(client.body_sent().is_empty());

    let mut wrong_size = Vec::new();
    proto::encode_ring_setup(&mut wrong_size, 4096);
    let parts = [head(200, &[]), wrong_size, slice(0, 3), end()];
    let (outcome, _, client) = with_ring(&parts, blocks(&[3]), false, |_| {});
    assert_eq!(outcome, done(Answer::Sent, false));
    assert!(logged(&client, "a bad response ring"), "{:?}", client.logs);
}
