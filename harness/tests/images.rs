//! Crossversion images (`harness/src/image.rs`): every image in `corpus/images/`, written by an
//! earlier commit, must open under this build with every write its model holds and carry on
//! through its second stretch of ops; damaged or malformed images fail clearly, never panic.

use std::path::{Path, PathBuf};

use tumbler::config::EngineConfig;
use tumbler::image;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tumbler-image-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn images() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("corpus/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("image.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_saved_image_continues_under_this_build() {
    let dirs = images();
    assert!(dirs.len() >= 3, "corpus/images holds {} images", dirs.len());
    for dir in dirs {
        let run = image::continue_image(&dir).unwrap();
        assert!(run.failure.is_none(), "{}: {:?}", dir.display(), run.failure);
        assert!(run.stats.ops_executed > 0, "{}: ran no ops", dir.display());
        assert!(
            run.history.iter().any(|l| l.starts_with("# started from an image")),
            "{}: did not start from the image",
            dir.display()
        );
    }
}

#[test]
fn a_saved_image_continues_and_is_never_overwritten() {
    let dir = temp_dir("roundtrip");
    let config = EngineConfig::default();
    image::save(&dir, 5, 300, 300, &config).unwrap();
    let run = image::continue_image(&dir).unwrap();
    assert!(run.failure.is_none(), "{:?}", run.failure);
    let again = image::save(&dir, 5, 300, 300, &config).unwrap_err();
    assert!(format!("{again:#}").contains("never overwritten"), "{again:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A flipped byte in the middle of a table: the engine must say corruption when it meets it,
/// and the continuation fail with that, never pass with wrong data or panic.
#[test]
fn a_damaged_image_fails_the_continuation() {
    let src = images().into_iter().next().expect("an image");
    let dir = temp_dir("damaged");
    copy_dir(&src, &dir);
    let db = dir.join("files/db");
    let mut tables: Vec<PathBuf> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    tables.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    let table = tables.first().expect("the image has a table");
    let mut bytes = std::fs::read(table).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x5a;
    std::fs::write(table, bytes).unwrap();
    let run = image::continue_image(&dir).unwrap();
    let failure = run.failure.expect("a damaged table must not pass");
    assert!(
        failure.message.to_lowercase().contains("corrupt") || failure.message.contains("checksum"),
        "{failure:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_images_are_clear_errors() {
    let src = images().into_iter().next().expect("an image");
    let dir = temp_dir("malformed");
    copy_dir(&src, &dir);
    std::fs::write(dir.join("image.json"), "{ not json").unwrap();
    let e = image::continue_image(&dir).unwrap_err();
    assert!(format!("{e:#}").contains("image.json"), "{e:#}");

    copy_dir(&src, &dir);
    let text = std::fs::read_to_string(dir.join("image.json")).unwrap();
    std::fs::write(dir.join("image.json"), text.replacen("\"format\": 1", "\"format\": 99", 1))
        .unwrap();
    let e = image::continue_image(&dir).unwrap_err();
    assert!(format!("{e:#}").contains("image format 99"), "{e:#}");

    let e = image::continue_image(&dir.join("missing")).unwrap_err();
    assert!(format!("{e:#}").contains("missing"), "{e:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
