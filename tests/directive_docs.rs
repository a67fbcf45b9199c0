//! Every directive the module registers has its page under `docs/directives/`, listed in the
//! index of `docs/directives.md`, and every page is of a registered directive.

mod common;

use common::repo_root;

/// The names in the module's directive table (`src/lib.rs`): each `c"NAME"` entry that
/// starts a `d::raw(`, `d::take1(`, `d::flag(` or `d::skipped_section(` call.
fn registered() -> Vec<String> {
    let table = std::fs::read_to_string(repo_root().join("src/lib.rs")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    let mut names: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0].trim_start().starts_with("d::"))
        .filter_map(|w| {
            let name = w[1].trim().strip_prefix("c\"")?.split('"').next()?;
            Some(name.trim_start_matches('<').to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_directive_has_a_page_in_the_index() {
    let names = registered();
    assert!(names.len() >= 50, "read {} names: {names:?}", names.len());
    let index = std::fs::read_to_string(repo_root().join("docs/directives.md")).unwrap();
    for name in &names {
        let page = repo_root().join(format!("docs/directives/{name}.md"));
        let text = std::fs::read_to_string(&page)
            .unwrap_or_else(|_| panic!("{name} has no page {}", page.display()));
        let heading = text.lines().next().unwrap_or_default();
        assert!(
            heading.starts_with("# ") && heading.contains(name.as_str()),
            "{name}: heading {heading:?}"
        );
        for field in [
            "**Syntax**",
            "**Context**",
            "**Status**",
            "## Differences from mod_wsgi",
        ] {
            assert!(text.contains(field), "{name}'s page has no {field}");
        }
        assert!(
            index.contains(&format!("(directives/{name}.md)")),
            "docs/directives.md does not link {name}'s page"
        );
    }
    for entry in std::fs::read_dir(repo_root().join("docs/directives")).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let name = file.trim_end_matches(".md");
        assert!(names.iter().any(|n| n == name), "{file}: no such directive");
    }
}
