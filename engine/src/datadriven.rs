//! A small datadriven (golden-file) test runner in the style of Pebble's `datadriven` package.
//!
//! A test file is a sequence of cases:
//!
//! ```text
//! # comment
//! command arg1 key=value key=(v1,v2)
//! input line 1
//! input line 2
//! ----
//! expected output
//! <blank line>
//! ```
//!
//! The handler gets a [`TestCase`] and returns the actual output. Set `REWRITE=1` to rewrite
//! the expected outputs in place instead of comparing them.

use std::path::Path;

/// One case from a datadriven file.
#[derive(Debug, Clone)]
pub(crate) struct TestCase {
    pub cmd: String,
    pub args: Vec<(String, Vec<String>)>,
    pub input: String,
    pub line: usize,
}

impl TestCase {
    /// The values of argument `key`, if present.
    pub fn arg(&self, key: &str) -> Option<&[String]> {
        self.args.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// The single value of `key` parsed as `T`, or `default`.
    pub fn arg_or<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        match self.arg(key) {
            Some([v]) => v.parse().unwrap_or_else(|_| {
                panic!("line {}: argument {key}={v} does not parse", self.line)
            }),
            Some(_) => panic!("line {}: argument {key} needs one value", self.line),
            None => default,
        }
    }

    /// True when the bare argument `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.arg(key).is_some()
    }
}

fn parse_args(line: &str) -> (String, Vec<(String, Vec<String>)>) {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for ch in line.chars() {
        match ch {
            '(' => {
                depth += 1;
                cur.push(ch)
            }
            ')' => {
                depth -= 1;
                cur.push(ch)
            }
            ' ' | '\t' if depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut iter = words.into_iter();
    let cmd = iter.next().unwrap_or_default();
    let args = iter
        .map(|w| match w.split_once('=') {
            Some((k, v)) => {
                let vals = match v.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
                    Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
                    None => vec![v.to_string()],
                };
                (k.to_string(), vals)
            }
            None => (w, Vec::new()),
        })
        .collect();
    (cmd, args)
}

/// Runs every case of the file at `path` (relative to the engine crate) through `handler`.
pub(crate) fn run(path: &str, mut handler: impl FnMut(&TestCase) -> String) {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("reading {}: {e}", full.display()));
    let rewrite = std::env::var_os("REWRITE").is_some();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut failures = Vec::new();
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            i += 1;
            continue;
        }
        let start = i + 1;
        let (cmd, args) = parse_args(line);
        out.push_str(line);
        out.push('\n');
        i += 1;
        let mut input = String::new();
        while i < lines.len() && lines[i] != "----" {
            input.push_str(lines[i]);
            input.push('\n');
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
        }
        assert!(i < lines.len(), "{}:{start}: missing ---- separator", full.display());
        i += 1;
        let mut expected = String::new();
        while i < lines.len() && !lines[i].is_empty() {
            expected.push_str(lines[i]);
            expected.push('\n');
            i += 1;
        }
        let case = TestCase { cmd, args, input, line: start };
        let mut actual = handler(&case);
        if !actual.is_empty() && !actual.ends_with('\n') {
            actual.push('\n');
        }
        out.push_str("----\n");
        out.push_str(&actual);
        if actual != expected {
            failures.push(format!(
                "{}:{start}: {line}\nexpected:\n{expected}actual:\n{actual}",
                full.display()
            ));
        }
    }
    if rewrite {
        std::fs::write(&full, out).expect("rewrite golden file");
    } else if !failures.is_empty() {
        panic!("{} case(s) differ:\n{}", failures.len(), failures.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runner_parses_commands_args_and_input() {
        super::run("testdata/datadriven", |case| match case.cmd.as_str() {
            "echo" => {
                let mut out = String::new();
                for (k, v) in &case.args {
                    out.push_str(&format!("{k}={v:?}\n"));
                }
                out.push_str(&format!("n={}\n", case.arg_or("n", 0u32)));
                out.push_str(&case.input.to_uppercase());
                out
            }
            other => panic!("unknown command {other}"),
        });
    }
}
