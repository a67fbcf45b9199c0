use proptest::prelude::*;

use crate::*;

fn roundtrip_one(buf: &[u8]) -> Frame<'_> {
    let (frame, used) = decode(buf).unwrap().unwrap();
    assert_eq!(used, buf.len());
    frame
}

const META: RequestMeta<'static> = RequestMeta {
    script: b"/srv/app/wsgi.py",
    callable: b"application",
    request_id: b"aGk5cQ",
    request_start: 1_700_000_000_123_456,
    application_group: b"localhost|/app",
};

#[test]
fn request_head_roundtrip() {
    let env: Vec<(&[u8], &[u8])> = vec![(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/x")];
    let mut out = Vec::new();
    encode_request_head(
        &mut out,
        3,
        BodyKind::Length(42),
        &META,
        env.iter().copied(),
    )
    .unwrap();
    match roundtrip_one(&out) {
        Frame::RequestHead(h) => {
            assert_eq!(h.seq, 3);
            assert_eq!(h.body, BodyKind::Length(42));
            assert_eq!(h.meta, META);
            assert_eq!(h.environ.into_iter().collect::<Vec<_>>(), env);
        }
        f => panic!("unexpected {f:?}"),
    }
}

#[test]
fn partial_input_needs_more() {
    let mut out = Vec::new();
    encode_body(&mut out, b"hello").unwrap();
    for cut in 0..out.len() {
        assert!(decode(&out[..cut]).unwrap().is_none(), "cut at {cut}");
    }
}

#[test]
fn oversized_frames_rejected_from_header_alone() {
    let mut hdr = vec![FrameKind::Body as u8];
    hdr.extend_from_slice(&((MAX_BODY_CHUNK + 1) as u32).to_le_bytes());
    assert!(matches!(decode(&hdr), Err(DecodeError::TooLarge { .. })));
    assert!(body_header(MAX_BODY_CHUNK + 1).is_err());
    let mut out = Vec::new();
    let big = vec![b'x'; MAX_HEAD];
    let none = RequestMeta::default();
    let err = encode_request_head(&mut out, 1, BodyKind::None, &none, [(&b"K"[..], &big[..])]);
    assert!(matches!(err, Err(EncodeError::TooLarge { .. })));
    assert!(out.is_empty(), "a refused frame leaves nothing behind");
}

#[test]
fn unknown_kind_and_bad_fields() {
    assert_eq!(
        decode(&[99, 0, 0, 0, 0]).unwrap_err(),
        DecodeError::UnknownKind(99)
    );
    // ReadBody of 0 bytes is meaningless.
    let mut read0 = vec![FrameKind::ReadBody as u8, 12, 0, 0, 0];
    read0.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(decode(&read0).is_err());
    // A pair count that promises more than the payload holds.
    let mut bad = Vec::new();
    encode_request_head(&mut bad, 1, BodyKind::None, &META, []).unwrap();
    let count_at = bad.len() - 4;
    bad[count_at] = 9;
    assert_eq!(decode(&bad).unwrap_err(), DecodeError::Truncated);
    // Frames tied to a request must carry its whole sequence number.
    for kind in [
        FrameKind::ResponseEnd,
        FrameKind::Retry,
        FrameKind::Error,
        FrameKind::Timeout,
        FrameKind::Forbidden,
    ] {
        let short = [kind as u8, 4, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(
            decode(&short).unwrap_err(),
            DecodeError::Truncated,
            "{kind:?}"
        );
    }
    let mut long_end = vec![FrameKind::ResponseEnd as u8, 9, 0, 0, 0];
    long_end.extend_from_slice(&[0; 9]);
    assert!(decode(&long_end).is_err(), "ResponseEnd over 8 bytes");
    // A file block of 0 bytes, one that ends past i64::MAX, and a short payload.
    let file = |offset: u64, length: u64| {
        let mut f = vec![FrameKind::BodyFile as u8, 16, 0, 0, 0];
        f.extend_from_slice(&offset.to_le_bytes());
        f.extend_from_slice(&length.to_le_bytes());
        f
    };
    assert!(decode(&file(0, 0)).is_err());
    assert!(decode(&file(i64::MAX as u64, 1)).is_err());
    assert!(decode(&file(u64::MAX, 2)).is_err());
    assert!(decode(&[
        FrameKind::BodyFile as u8,
        8,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
        0
    ])
    .is_err());
    assert!(matches!(
        decode(&file(7, 9)).unwrap(),
        Some((
            Frame::BodyFile {
                offset: 7,
                length: 9
            },
            21
        ))
    ));
}

#[test]
fn ring_frames_roundtrip_and_slices_outside_the_data_area_are_refused() {
    use crate::ring::RING_DATA;
    let mut out = Vec::new();
    crate::encode_ring_setup(&mut out, RING_DATA as u32);
    assert!(matches!(
        roundtrip_one(&out),
        Frame::RingSetup { data_len } if data_len as usize == RING_DATA
    ));
    let ring = |offset: u32, len: u32| {
        let mut f = Vec::new();
        crate::encode_body_ring(&mut f, offset, len);
        f
    };
    let last = RING_DATA as u32 - 10;
    assert!(matches!(
        roundtrip_one(&ring(last, 10)),
        Frame::BodyRing { offset, len: 10 } if offset == last
    ));
    for (offset, len) in [(0, 0), (last, 11), (RING_DATA as u32, 1), (u32::MAX, 2)] {
        assert!(decode(&ring(offset, len)).is_err(), "{offset}+{len}");
    }
    let mut long = ring(0, 1);
    long[1] = 9;
    long.push(0);
    assert!(decode(&long).is_err(), "BodyRing over 8 bytes");
}

#[test]
fn preamble() {
    assert_eq!(check_preamble(&PREAMBLE), Ok(Some(8)));
    assert_eq!(check_preamble(&PREAMBLE[..3]), Ok(None));
    assert_eq!(
        check_preamble(b"GET / HT"),
        Err(DecodeError::BadPreamble { found: 0 })
    );
    let mut other = PREAMBLE;
    other[7] = other[7].wrapping_add(1);
    assert!(
        matches!(check_preamble(&other), Err(DecodeError::BadPreamble { found }) if found == VERSION + 1)
    );
}

#[test]
fn reader_reads_frames_across_short_reads() {
    struct Trickle(Vec<u8>, usize);
    impl std::io::Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (self.0.len() - self.1).min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    let mut wire = PREAMBLE.to_vec();
    encode_response_head(
        &mut wire,
        1,
        200,
        b"OK",
        [(&b"Content-Type"[..], &b"text/plain"[..])],
    )
    .unwrap();
    let big = vec![7u8; 300_000];
    encode_body(&mut wire, &big).unwrap();
    encode_response_end(&mut wire, 1);
    let mut r = FrameReader::new(Trickle(wire, 0));
    assert!(r.read_preamble().unwrap());
    assert!(matches!(r.read_frame().unwrap(), Some(Frame::ResponseHead(h)) if h.status == 200));
    assert!(matches!(r.read_frame().unwrap(), Some(Frame::Body(b)) if b == &big[..]));
    assert!(matches!(
        r.read_frame().unwrap(),
        Some(Frame::ResponseEnd { seq: 1 })
    ));
    assert!(r.read_frame().unwrap().is_none());
}

/// A reader handing out its bytes in reads of the given sizes, in turn.
struct Uneven {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    turn: usize,
}

impl std::io::Read for Uneven {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let n = (self.data.len() - self.at).min(buf.len()).min(size);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn body_in_pieces_is_cut_short_by_eof() {
    let mut wire = Vec::new();
    encode_body(&mut wire, &[1u8; 100_000]).unwrap();
    wire.truncate(70_000);
    let reader = Uneven {
        data: wire,
        at: 0,
        sizes: vec![30_000],
        turn: 0,
    };
    let mut r = FrameReader::new(reader);
    let mut got = 0;
    loop {
        match r.read_frame_in_pieces() {
            Ok(Some(Frame::Body(b))) => got += b.len(),
            Err(ReadError::Truncated) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, 70_000 - HEADER_LEN);
    assert!(r.in_body());
}

#[test]
fn reader_buffer_is_reused() {
    let mut wire = Vec::new();
    encode_body(&mut wire, b"abc").unwrap();
    let mut r = FrameReader::new(&wire[..]);
    assert!(matches!(r.read_frame().unwrap(), Some(Frame::Body(b"abc"))));
    let (_, buf) = r.into_parts();
    let ptr = buf.as_ptr();
    let mut r = FrameReader::with_buffer(&wire[..], buf);
    assert!(matches!(r.read_frame().unwrap(), Some(Frame::Body(b"abc"))));
    assert_eq!(r.into_parts().1.as_ptr(), ptr, "the same allocation");
}

#[test]
fn pooled_buffer_starts_small_and_grows_for_a_large_body() {
    let mut wire = Vec::new();
    encode_body(&mut wire, b"abc").unwrap();
    let mut r = FrameReader::with_buffer(&wire[..], Vec::new());
    assert!(matches!(
        r.read_frame_in_pieces().unwrap(),
        Some(Frame::Body(b"abc"))
    ));
    assert_eq!(r.into_parts().1.len(), 8 << 10);
    let mut wire = Vec::new();
    encode_body(&mut wire, &[5u8; 300_000]).unwrap();
    let mut r = FrameReader::with_buffer(&wire[..], Vec::new());
    let mut got = 0;
    while let Some(Frame::Body(b)) = r.read_frame_in_pieces().unwrap() {
        got += b.len();
    }
    assert_eq!(got, 300_000);
    r.release_buffer();
    assert_eq!(r.into_parts().1.len(), 8 << 10);
    // A whole large frame grows the buffer too; with bytes still buffered it is kept.
    let mut wire = Vec::new();
    encode_body(&mut wire, &[5u8; 60_000]).unwrap();
    encode_retry(&mut wire, 2);
    let mut r = FrameReader::with_buffer(&wire[..], Vec::new());
    assert!(matches!(r.read_frame().unwrap(), Some(Frame::Body(b)) if b.len() == 60_000));
    r.release_buffer();
    assert!(r.has_buffered());
    assert!(matches!(
        r.read_frame().unwrap(),
        Some(Frame::Retry { seq: 2 })
    ));
    r.release_buffer();
    assert_eq!(r.into_parts().1.len(), 8 << 10);
}

#[test]
fn reader_reports_truncation() {
    let mut wire = Vec::new();
    encode_body(&mut wire, b"abcdef").unwrap();
    wire.truncate(wire.len() - 2);
    let mut r = FrameReader::new(&wire[..]);
    assert!(matches!(r.read_frame(), Err(ReadError::Truncated)));
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..200),
        ),
        0..30,
    )
}

proptest! {
    #[test]
    fn request_head_roundtrips(pairs in pairs_strategy(), fields in prop::array::uniform4(prop::collection::vec(any::<u8>(), 0..300)), len in any::<u64>(), which in 0u8..3) {
        let body = match which { 0 => BodyKind::None, 1 => BodyKind::Length(len), _ => BodyKind::Chunked };
        let mut out = Vec::new();
        let meta = RequestMeta { script: &fields[0], callable: &fields[1], request_id: &fields[2], request_start: len.rotate_left(7), application_group: &fields[3] };
        encode_request_head(&mut out, len ^ 5, body, &meta, pairs.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
        let Frame::RequestHead(h) = roundtrip_one(&out) else { panic!("kind") };
        prop_assert_eq!(h.seq, len ^ 5);
        prop_assert_eq!(h.body, body);
        prop_assert_eq!(h.meta, meta);
        let got: Vec<(Vec<u8>, Vec<u8>)> = h.environ.into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(got, pairs);
    }

    #[test]
    fn response_head_roundtrips(pairs in pairs_strategy(), seq in any::<u64>(), status in 100u16..1000, reason in prop::collection::vec(any::<u8>(), 0..50)) {
        let mut out = Vec::new();
        encode_response_head(&mut out, seq, status, &reason, pairs.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
        let Frame::ResponseHead(h) = roundtrip_one(&out) else { panic!("kind") };
        prop_assert_eq!(h.seq, seq);
        prop_assert_eq!(h.status, status);
        prop_assert_eq!(h.reason, &reason[..]);
        prop_assert_eq!(h.headers.len(), pairs.len());
    }

    #[test]
    fn frame_sequences_roundtrip(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..5000), 0..10), seq in any::<u64>(), max in 1u32.., offset in 0u64..1 << 62, length in 1u64..1 << 62) {
        let mut out = Vec::new();
        encode_read_body(&mut out, seq, max);
        for c in &chunks { encode_body(&mut out, c).unwrap(); }
        encode_body_end(&mut out);
        encode_error(&mut out, seq, b"boom");
        encode_retry(&mut out, seq);
        encode_timeout(&mut out, seq, b"late");
        encode_forbidden(&mut out, seq, b"not yours");
        encode_response_end(&mut out, seq);
        encode_body_file(&mut out, offset, length);
        let mut r = FrameReader::new(&out[..]);
        let first = matches!(r.read_frame().unwrap(), Some(Frame::ReadBody { seq: s, max: m }) if m == max && s == seq);
        prop_assert!(first);
        for c in &chunks {
            let ok = matches!(r.read_frame().unwrap(), Some(Frame::Body(b)) if b == &c[..]);
            prop_assert!(ok);
        }
        prop_assert!(matches!(r.read_frame().unwrap(), Some(Frame::BodyEnd)));
        let ok1 = matches!(r.read_frame().unwrap(), Some(Frame::Error { seq: s, message: b"boom" }) if s == seq);
        prop_assert!(ok1);
        let ok2 = matches!(r.read_frame().unwrap(), Some(Frame::Retry { seq: s }) if s == seq);
        prop_assert!(ok2);
        let ok3 = matches!(r.read_frame().unwrap(), Some(Frame::Timeout { seq: s, message: b"late" }) if s == seq);
        prop_assert!(ok3);
        let forbidden = matches!(r.read_frame().unwrap(), Some(f @ Frame::Forbidden { message: b"not yours", .. }) if f.seq() == Some(seq));
        prop_assert!(forbidden);
        let ok4 = matches!(r.read_frame().unwrap(), Some(f @ Frame::ResponseEnd { .. }) if f.seq() == Some(seq));
        prop_assert!(ok4);
        let file = matches!(r.read_frame().unwrap(), Some(Frame::BodyFile { offset: o, length: l }) if o == offset && l == length);
        prop_assert!(file);
        prop_assert!(r.read_frame().unwrap().is_none());
    }

    /// Reading in pieces yields the same frames, with each body's bytes split over one or
    /// more `Body` frames, whatever sizes the reads come in.
    #[test]
    fn body_pieces_reassemble(bodies in prop::collection::vec(0usize..200_000, 1..6), sizes in prop::collection::vec(1usize..100_000, 1..8)) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, len) in bodies.iter().enumerate() {
            let body: Vec<u8> = (0..*len).map(|j| (i * 7 + j) as u8).collect();
            encode_body(&mut wire, &body).unwrap();
            encode_retry(&mut wire, 1);
            expected.push(body);
        }
        let mut r = FrameReader::new(Uneven { data: wire, at: 0, sizes, turn: 0 });
        for body in &expected {
            let mut got = Vec::new();
            loop {
                match r.read_frame_in_pieces().unwrap() {
                    Some(Frame::Body(b)) => got.extend_from_slice(b),
                    Some(Frame::Retry { .. }) => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            prop_assert!(!r.in_body());
            prop_assert!(&got == body);
        }
        prop_assert!(r.read_frame_in_pieces().unwrap().is_none());
    }

    /// Every cut of a request head's payload (the header patched to the shorter length, so the
    /// frame is complete) is refused as truncated, and one extra byte as trailing.
    #[test]
    fn cut_request_heads_are_refused(fields in prop::array::uniform4(prop::collection::vec(any::<u8>(), 0..40)), pairs in pairs_strategy(), start in any::<u64>()) {
        let meta = RequestMeta { script: &fields[0], callable: &fields[1], request_id: &fields[2], request_start: start, application_group: &fields[3] };
        let mut out = Vec::new();
        encode_request_head(&mut out, 1, BodyKind::Chunked, &meta, pairs.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
        for cut in HEADER_LEN..out.len() {
            let e = decode(&with_payload(&out[..cut])).unwrap_err();
            prop_assert_eq!(e, DecodeError::Truncated, "cut at {}", cut);
        }
        let mut long = out.clone();
        long.push(0);
        prop_assert_eq!(decode(&with_payload(&long)).unwrap_err(), DecodeError::TrailingBytes(1));
    }

    /// Arbitrary bytes never panic the decoder and never claim more than they hold.
    #[test]
    fn decoder_survives_garbage(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        if let Ok(Some((_, used))) = decode(&bytes) {
            prop_assert!(used <= bytes.len());
        }
    }
}

#[test]
fn request_seq_is_patched_in_place() {
    let mut out = Vec::new();
    encode_request_head(&mut out, 1, BodyKind::None, &META, [(&b"A"[..], &b"b"[..])]).unwrap();
    assert!(set_request_seq(&mut out, 41));
    assert!(matches!(roundtrip_one(&out), Frame::RequestHead(h) if h.seq == 41));
    let mut body = Vec::new();
    encode_body(&mut body, &[0; 20]).unwrap();
    let before = body.clone();
    assert!(
        !set_request_seq(&mut body, 41),
        "only a RequestHead has its seq patched"
    );
    assert_eq!(body, before);
}

#[test]
fn read_bytes_takes_a_handshake_then_frames() {
    let mut wire = b"0123456789".to_vec();
    encode_retry(&mut wire, 9);
    let mut r = FrameReader::new(&wire[..]);
    assert_eq!(r.read_bytes(10).unwrap(), Some(&b"0123456789"[..]));
    assert!(matches!(
        r.read_frame().unwrap(),
        Some(Frame::Retry { seq: 9 })
    ));
    let mut empty = FrameReader::new(&b""[..]);
    assert!(empty.read_bytes(4).unwrap().is_none());
    let mut short = FrameReader::new(&b"ab"[..]);
    assert!(matches!(short.read_bytes(4), Err(ReadError::Truncated)));
}

/// `frame` (a header and some payload) with its length patched to the payload it has.
fn with_payload(frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    let len = (f.len() - HEADER_LEN) as u32;
    f[1..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    f
}

#[test]
fn request_head_fields_are_bounded() {
    // Where each length-prefixed field's length sits in the payload of a head with empty
    // fields: after seq (8), the body kind (1) and the request start (8).
    let mut empty = Vec::new();
    encode_request_head(&mut empty, 1, BodyKind::None, &RequestMeta::default(), []).unwrap();
    let first = HEADER_LEN + SEQ_LEN + 1 + 8;
    for (i, field) in ["script", "callable", "request id", "application group"]
        .into_iter()
        .enumerate()
    {
        let at = first + 4 * i;
        // Over any frame's cap: refused as too large, whatever follows.
        let mut big = empty.clone();
        big[at..at + 4].copy_from_slice(&((MAX_HEAD + 1) as u32).to_le_bytes());
        assert_eq!(
            decode(&big).unwrap_err(),
            DecodeError::FieldTooLarge {
                field,
                len: MAX_HEAD + 1,
                max: MAX_HEAD
            }
        );
        big[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&big),
            Err(DecodeError::FieldTooLarge { len, .. }) if len == u32::MAX as usize
        ));
        // Within the cap but past the payload's end: truncated.
        let mut long = empty.clone();
        long[at..at + 4].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            decode(&long).unwrap_err(),
            DecodeError::Truncated,
            "{field}"
        );
    }
    // The encoder refuses a field over the cap before copying it, and leaves nothing.
    let huge = vec![b'/'; MAX_HEAD + 1];
    let mut out = b"kept".to_vec();
    let meta = RequestMeta {
        request_id: &huge,
        ..META
    };
    assert_eq!(
        encode_request_head(&mut out, 1, BodyKind::None, &meta, []),
        Err(EncodeError::FieldTooLarge {
            field: "request id",
            len: MAX_HEAD + 1,
            max: MAX_HEAD
        })
    );
    assert_eq!(out, b"kept");
    // Fields that fit one by one but not together: the frame's cap refuses them.
    let half = vec![b'x'; MAX_HEAD / 2 + 1];
    let meta = RequestMeta {
        script: &half,
        callable: &half,
        ..META
    };
    let err = encode_request_head(&mut out, 1, BodyKind::None, &meta, []);
    assert!(matches!(err, Err(EncodeError::TooLarge { .. })), "{err:?}");
    assert_eq!(out, b"kept");
}

#[test]
fn typed_fields_stand_for_environ_keys() {
    let mut text = String::new();
    let pairs = META.environ(&mut text);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, meta::KEYS);
    assert!(pairs.contains(&(meta::SCRIPT_FILENAME, &b"/srv/app/wsgi.py"[..])));
    assert!(pairs.contains(&(meta::REQUEST_ID, &b"aGk5cQ"[..])));
    assert!(pairs.contains(&(carriers::REQUEST_START_US, &b"1700000000123456"[..])));
    assert!(meta::KEYS.iter().all(|k| RequestMeta::is_key(k.as_bytes())));
    assert!(!RequestMeta::is_key(b"mod_wsgi.process_group"));
}
