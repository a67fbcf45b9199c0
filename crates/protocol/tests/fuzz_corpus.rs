//! Replays the committed fuzz corpora (`fuzz/corpus/frame_decode`, `fuzz/corpus/frame_stream`,
//! `fuzz/corpus/handshake`)
//! through the same checks the fuzz targets run, so a regression is caught by `cargo test`
//! without a fuzzer. One test in this binary: the allocation tracker is process-wide.

#[path = "props/alloc.rs"]
mod alloc;
#[path = "props/frames.rs"]
mod frames;
#[path = "props/handshake.rs"]
mod handshake;

#[global_allocator]
static ALLOC: alloc::PeakAlloc = alloc::PeakAlloc;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/").to_string() + target;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{dir} is empty");
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn fuzz_corpora_replay() {
    for (target, check) in [
        ("frame_decode", frames::check_decode as fn(&[u8])),
        ("frame_stream", frames::check_stream),
        ("handshake", handshake::check),
    ] {
        for (name, data) in corpus(target) {
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{name} fails the {target} checks");
        }
    }
}
