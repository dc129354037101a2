//! The planted-bug catalogue stays usable: every patch in `scripts/planted-bugs` carries its
//! header (what it breaks, the real bug class it resembles) and still applies to the engine,
//! so `scripts/hunt.sh` measures every bug and not a patch that silently stopped applying.

use std::path::Path;
use std::process::Command;

#[test]
fn every_planted_bug_has_its_header_and_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("scripts/planted-bugs");
    let mut patches: Vec<_> = std::fs::read_dir(&dir)
        .expect("scripts/planted-bugs")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    patches.sort();
    assert!(patches.len() >= 25, "{} patches", patches.len());
    let mut broken = Vec::new();
    for p in &patches {
        let text = std::fs::read_to_string(p).expect("a patch");
        let name = p.file_stem().and_then(|s| s.to_str()).expect("a name");
        for field in [&format!("Planted bug {name}")[..], "Layer: ", "Breaks: ", "Resembles: "] {
            assert!(text.lines().any(|l| l.starts_with(field)), "{name}: no `{field}` line");
        }
        let out = Command::new("git")
            .current_dir(&root)
            .args(["apply", "--check"])
            .arg(p)
            .output()
            .expect("git runs");
        if !out.status.success() {
            broken.push(format!("{name}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
    }
    assert!(broken.is_empty(), "planted bugs that no longer apply:\n{}", broken.join("\n"));
}
