//! The code table, `docs/errors.md` and the sources agree; every code is asserted by a test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::Code;

/// The repository's root (this crate is `crates/protocol`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `RSWSGI` + 4 digits in `text`.
fn literals(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("RSWSGI") {
        let tail = &rest[at + 6..];
        let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
        if digits.len() == 4 {
            found.push(format!("RSWSGI{digits}"));
        }
        rest = tail;
    }
    found
}

/// The `.rs` files under `dir`, recursively (none when it does not exist).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tests")
        || path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "tests.rs" || n.ends_with("_tests.rs"))
}

/// The codes a test file asserts: `RSWSGI` + 4 digits, and (in the unit tests of the sources,
/// which produce lines through the real code) `Code::Name`.
fn asserted_in(text: &str) -> Vec<String> {
    let mut found = literals(text);
    for c in Code::ALL {
        let name = format!("Code::{c:?}");
        let whole = text.match_indices(&name).any(|(at, _)| {
            !text[at + name.len()..].starts_with(|ch: char| ch.is_alphanumeric() || ch == '_')
        });
        if whole {
            found.push(c.to_string());
        }
    }
    found
}

fn table() -> BTreeSet<String> {
    Code::ALL.iter().map(Code::to_string).collect()
}

#[test]
fn codes_are_unique_and_in_range() {
    let numbers: BTreeSet<u16> = Code::ALL.iter().map(|c| c.number()).collect();
    assert_eq!(numbers.len(), Code::ALL.len(), "two codes share a number");
    for c in Code::ALL {
        assert!((101..=699).contains(&c.number()), "{c:?}");
        assert_eq!(Code::parse(&c.to_string()), Some(*c));
    }
    assert_eq!(Code::RelayClosed.to_string(), "RSWSGI0102");
    assert_eq!(Code::parse("RSWSGI9999"), None);
    assert_eq!(Code::parse("RSWSGI102"), None);
}

#[test]
fn docs_list_exactly_the_codes() {
    let doc = std::fs::read_to_string(root().join("docs/errors.md")).expect("docs/errors.md");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .flat_map(literals)
        .collect();
    assert_eq!(
        documented,
        table(),
        "docs/errors.md's `### RSWSGI…` sections and the Code table differ"
    );
}

#[test]
fn sources_name_codes_only_through_the_table() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["src", "crates", "express/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let known = table();
    let own = root.join("crates/protocol/src/codes");
    for path in files.iter().filter(|p| !p.starts_with(&own)) {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for lit in literals(&text) {
            assert!(
                is_test_file(path),
                "{}: writes {lit} as a literal; use rswsgi_protocol::Code",
                path.display()
            );
            assert!(
                known.contains(&lit),
                "{}: unknown code {lit}",
                path.display()
            );
        }
    }
}

/// Codes no test produces yet, each with why (the test files of `tests/`, `crates/*/tests/`
/// and the sources' unit tests are scanned). A code that a test comes to assert must leave
/// this list (the test below fails until it does).
const NOT_YET_PRODUCED: &[(&str, &str)] = &[
    ("RSWSGI0114", "unreachable: the secret is set before the supervisor's start can fail, and a \
        failed start (RSWSGI0210) makes post_config fail, so httpd exits and serves no request"),
    ("RSWSGI0115", "a safety net: the time a request waits in the socket's queue or inside a \
        daemon does not count against connect-timeout, and no daemon declines at once for that long"),
    ("RSWSGI0124", "a panic in the module is a bug: nothing a test sends provokes one"),
    ("RSWSGI0304", "a panic while reading a directive is a bug: not provokable"),
    ("RSWSGI0409", "a panic in the daemon's request handler is a bug: not provokable"),
];

#[test]
fn every_code_is_asserted_by_a_test() {
    let root = root();
    let mut files = Vec::new();
    for dir in ["tests", "src", "crates", "express"] {
        rust_files(&root.join(dir), &mut files);
    }
    let own = root.join("crates/protocol/src/codes");
    let mut asserted = BTreeSet::new();
    for path in files
        .iter()
        .filter(|p| is_test_file(p) && !p.starts_with(&own))
    {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        asserted.extend(asserted_in(&text));
    }
    let known = table();
    for lit in &asserted {
        assert!(known.contains(lit), "a test asserts unknown code {lit}");
    }
    let pending: BTreeSet<String> = NOT_YET_PRODUCED
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    for code in &known {
        match (asserted.contains(code), pending.contains(code)) {
            (true, true) => panic!("{code} is asserted now: take it out of NOT_YET_PRODUCED"),
            (false, false) => panic!("no test asserts {code}"),
            _ => {}
        }
    }
}

#[test]
fn request_tags_escape_what_could_forge_a_line() {
    assert_eq!(super::request_tag(b"YhqX@-12"), "[request YhqX@-12] ");
    assert_eq!(
        super::request_tag(b"a]\n b\x1b"),
        "[request a\\x5d\\x0a\\x20b\\x1b] "
    );
}

#[test]
fn module_lines_stay_one_line() {
    assert_eq!(super::one_line("plain\ttab"), "plain\ttab");
    assert_eq!(
        super::one_line("boom\n[Wed] [rswsgi:error] forged\r\u{1b}"),
        "boom\\x0a[Wed] [rswsgi:error] forged\\x0d\\x1b"
    );
}
