//! The properties the module's fuzz targets check (`fuzz/fuzz_targets/directives.rs`,
//! `fuzz/fuzz_targets/environ.rs`). The targets compile `config`, `environ` and this module
//! into the fuzz binary with `#[path]` (the module crate itself is a cdylib that needs
//! httpd's symbols), and the unit tests below replay the committed corpora through the same
//! checks, so `cargo test` catches a regression without a fuzzer.

pub mod directives;
pub mod environ;

#[cfg(test)]
mod tests {
    fn replay(target: &str, check: fn(&[u8])) {
        let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{} fails the {target} checks", path.display());
            n += 1;
        }
        assert!(n > 0, "{dir} is empty");
    }

    #[test]
    fn directives_corpus_replays() {
        replay("directives", super::directives::check);
    }

    #[test]
    fn environ_corpus_replays() {
        replay("environ", super::environ::check);
    }
}
