//! The harness's fuzz targets on stable Rust: every file of `fuzz/corpus/ops_parse/`, then a
//! few thousand seeded mutations of them, through `tumbler::fuzz`. Also the generator of that
//! seed corpus: run with `REWRITE=1` to write it again (after an ops format change, say).

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tumbler::fuzz;
use tumbler::ops::{self, Weights};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

/// The files of a corpus, sorted by name (so mutations are reproducible).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("readable corpus dir").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable corpus file"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "seed corpus {} is empty", dir.display());
    files
}

/// Every ops syntax form, written by hand (the example of `ops::format`'s docs, and more).
const HANDWRITTEN: &str = r#"# tumbler ops v1
# generator: 1
# seed: 42
put "a@3" "v1" sync
merge "a@3" gen(1048576,7)
batch.new b1
batch.delete_range b1 "a@" "b@"
batch.commit b1 sync
iter.new i1 s2 "a@" -
iter.seek_ge i1 "b@"
compact_range - "z"
put "\x00\xff\"\\" "" # a trailing comment
crash torn within 12
"#;

/// Every seed: `(file name, text)`. Files named `valid*` must parse.
fn seed_files() -> Vec<(&'static str, String)> {
    let weights = Weights::default();
    let damaged = HANDWRITTEN.replace("batch.commit b1 sync", "batch.commit b1 synk");
    vec![
        ("valid_handwritten", HANDWRITTEN.to_string()),
        ("valid_generated_1", ops::print(&ops::generate_file(1, 60, &weights))),
        ("valid_generated_swarm", ops::print(&ops::generate_file(2, 60, &weights.swarm(2)))),
        ("bad_word", damaged),
        ("no_header", "put \"a\" \"b\"\n".to_string()),
    ]
}

#[test]
fn seed_corpus_generator() {
    let rewrite = std::env::var_os("REWRITE").is_some();
    for (name, text) in seed_files() {
        let path = corpus_dir("ops_parse").join(name);
        if rewrite {
            std::fs::create_dir_all(corpus_dir("ops_parse")).expect("create corpus dir");
            std::fs::write(&path, text).expect("write corpus file");
        } else {
            assert!(path.exists(), "{} missing: run with REWRITE=1", path.display());
        }
    }
}

#[test]
fn valid_seeds_still_parse_and_the_others_do_not() {
    for (name, bytes) in corpus("ops_parse") {
        let text = String::from_utf8(bytes).expect("seeds are text");
        let parsed = ops::parse(&text);
        assert_eq!(parsed.is_ok(), name.starts_with("valid"), "ops_parse/{name}: {parsed:?}");
    }
}

#[test]
fn every_seed_runs_through_its_target() {
    for (_, bytes) in corpus("ops_parse") {
        fuzz::ops_parse(&bytes);
    }
}

/// Line-level and byte-level edits, of the kinds a fuzzer makes, from a fixed seed.
#[test]
fn seeded_mutations_of_the_seeds_run_through_their_targets() {
    let seeds = corpus("ops_parse");
    let mut rng = ChaCha8Rng::seed_from_u64(0x0b5_9a55);
    let tokens: [&[u8]; 10] =
        [b"\"", b"\\x", b"\\", b"gen(", b",", b")", b" - ", b"\n", b"#", b"18446744073709551616"];
    for _ in 0..3000 {
        let mut input = seeds[rng.gen_range(0..seeds.len())].1.clone();
        for _ in 0..rng.gen_range(1..=3) {
            let len = input.len();
            let at = rng.gen_range(0..=len);
            match rng.gen_range(0..5) {
                0 if len > 0 => input[at.min(len - 1)] = rng.gen(),
                1 => {
                    let token = tokens[rng.gen_range(0..tokens.len())];
                    input.splice(at..at, token.iter().copied());
                }
                2 => input.truncate(at),
                3 => {
                    let end = (at + rng.gen_range(1..40)).min(len);
                    input.drain(at..end);
                }
                _ => {
                    // Duplicate a line somewhere else.
                    let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
                    let line = lines[rng.gen_range(0..lines.len())].to_vec();
                    input.splice(at..at, line.into_iter().chain([b'\n']));
                }
            }
        }
        fuzz::ops_parse(&input);
    }
}

/// The `metamorphic` target over its seed corpus, then over a few seeded inputs.
#[test]
fn metamorphic_seed_corpus_and_seeded_inputs_pass() {
    let dir = corpus_dir("metamorphic");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("metamorphic corpus")
        .map(|e| e.expect("dir entry").path())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for path in names {
        fuzz::metamorphic(&std::fs::read(&path).expect("read corpus file"));
    }
    for seed in 0..8u64 {
        let mut input = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes().to_vec();
        input.push(120);
        input.push(3);
        fuzz::metamorphic(&input);
    }
}
