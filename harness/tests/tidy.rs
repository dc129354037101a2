//! Tidy checks over the source tree, as ordinary tests (rust-analyzer's `tidy.rs`): every `.rs`
//! file under `engine/`, `harness/` and `fuzz/` opens with a `//!` line saying what lives
//! there, and every exemption from the determinism bans of `clippy.toml` is an
//! `#[expect(clippy::disallowed_*, reason = "...")]`.
//!
//! Why `expect` and not `allow`: an `expect` whose lint no longer fires fails the build
//! (`unfulfilled_lint_expectations`), so a stale exemption cannot outlive the code it excused.
//! An `allow` is accepted only where `expect` cannot work (say, inside a macro that expands
//! both with and without the banned call), with the reason on the attribute and a comment
//! `// tidy: allow, not expect: WHY` on the line above it. Every `#[expect(...)]`, whatever
//! its lint, carries a reason too.

use std::fs;
use std::path::{Path, PathBuf};

/// The comment that lets an `allow` stand where `expect` cannot work.
const ALLOW_MARKER: &str = "// tidy: allow, not expect:";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the harness is in the workspace").into()
}

/// Every `.rs` file under the checked trees, as paths relative to the root, sorted.
fn source_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for tree in ["engine", "harness", "fuzz"] {
        walk(&root.join(tree), &mut files);
    }
    files.into_iter().map(|p| p.strip_prefix(root).expect("under the root").to_path_buf()).collect()
}

/// An attribute starting at `line` (1-based): its text, whitespace collapsed, through the
/// bracket that closes it.
struct Attribute {
    line: usize,
    text: String,
}

/// The outer and inner attributes of `source` that start a line, each with a comment that
/// follows it on its last line (often the only reason given). Brackets inside string literals
/// do not count.
fn attributes(source: &str) -> Vec<Attribute> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let start = line.trim_start();
        if !(start.starts_with("#[") || start.starts_with("#![")) {
            continue;
        }
        let mut text = String::new();
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        'lines: for l in &lines[i..] {
            let l = l.trim();
            for (at, c) in l.char_indices() {
                text.push(c);
                if in_string {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match c {
                    '"' => in_string = true,
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            let rest = l[at + 1..].trim();
                            if rest.starts_with("//") {
                                text.push(' ');
                                text.push_str(rest);
                            }
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
            text.push(' ');
        }
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        found.push(Attribute { line: i + 1, text });
    }
    found
}

/// What is wrong with `attr`, if anything. `above` is the line before it.
fn attribute_problem(attr: &Attribute, above: &str) -> Option<String> {
    let body = attr.text.trim_start_matches("#!").trim_start_matches('#');
    let is_expect = body.starts_with("[expect(");
    let is_allow = body.starts_with("[allow(");
    let bans = attr.text.contains("clippy::disallowed_");
    let has_reason = attr.text.contains("reason = \"");
    if is_expect && !has_reason {
        return Some("`#[expect(...)]` without `reason = \"...\"`".to_string());
    }
    if is_allow && bans {
        if !has_reason {
            return Some(
                "an exemption from a determinism ban without `reason = \"...\"`; write \
                 `#[expect(clippy::disallowed_..., reason = \"...\")]`"
                    .to_string(),
            );
        }
        if !above.trim_start().starts_with(ALLOW_MARKER) {
            return Some(format!(
                "`#[allow(clippy::disallowed_...)]`: write `#[expect(...)]` so a stale exemption \
                 fails the build, or say on the line above why expect cannot work \
                 (`{ALLOW_MARKER} ...`)"
            ));
        }
    }
    None
}

#[test]
fn every_source_file_opens_with_a_module_doc_line() {
    let root = root();
    let mut problems = Vec::new();
    for path in source_files(&root) {
        let source = fs::read_to_string(root.join(&path)).expect("a readable source file");
        let first = source.lines().next().unwrap_or_default();
        if !first.starts_with("//!") {
            problems.push(format!(
                "{}:1: does not open with a `//!` line saying what lives there",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_lint_exemption_is_an_expect_with_a_reason() {
    let root = root();
    let mut problems = Vec::new();
    for path in source_files(&root) {
        let source = fs::read_to_string(root.join(&path)).expect("a readable source file");
        let lines: Vec<&str> = source.lines().collect();
        let shown = path.to_string_lossy().replace('\\', "/");
        for attr in attributes(&source) {
            let above = if attr.line >= 2 { lines[attr.line - 2] } else { "" };
            if let Some(problem) = attribute_problem(&attr, above) {
                problems.push(format!("{shown}:{}: {problem}\n    {}", attr.line, attr.text));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The checker itself, on made-up source.
#[test]
fn the_attribute_checker_tells_good_from_bad() {
    let check = |source: &str| -> Vec<String> {
        let lines: Vec<&str> = source.lines().collect();
        attributes(source)
            .iter()
            .filter_map(|a| {
                let above = if a.line >= 2 { lines[a.line - 2] } else { "" };
                attribute_problem(a, above).map(|p| format!("{}: {p}", a.line))
            })
            .collect()
    };
    let good = "//! x\n#[expect(\n    clippy::disallowed_methods,\n    reason = \"a ] in a string\"\n)]\nfn f() {}\n#[allow(clippy::type_complexity)]\nfn g() {}\n";
    assert_eq!(check(good), Vec::<String>::new());
    let marked = "// tidy: allow, not expect: expands both ways\n#[allow(clippy::disallowed_methods, reason = \"r\")]\n";
    assert_eq!(check(marked), Vec::<String>::new());
    let bad = "#[expect(dead_code)]\nfn f() {}\n#[allow(clippy::disallowed_types)]\nstruct S;\n    #![allow(clippy::disallowed_methods, reason = \"r\")]\n";
    let problems = check(bad);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("1: `#[expect(...)]` without"), "{problems:#?}");
    assert!(problems[1].starts_with("3: an exemption"), "{problems:#?}");
    assert!(problems[2].starts_with("5: `#[allow(clippy::disallowed_...)]`"), "{problems:#?}");
}
