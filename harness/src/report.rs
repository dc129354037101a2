//! Nightly reports: the summary.json data model, failure grouping by triage signature, the
//! JUnit XML rendering for CI dashboards, and `merge-reports`, which combines shard summaries.
//!
//! junit.xml is always rendered from a summary, so a merged junit.xml is the merged summary
//! rendered again: the two files cannot disagree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Bumped when summary.json changes incompatibly; `merge-reports` refuses other versions.
pub const SUMMARY_FORMAT: u32 = 1;

/// Everything one nightly run (or a merge of shard runs) found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub format: u32,
    pub base_seed: u64,
    /// Where the base seed came from: `--base-seed`, `git <commit>`, or `default`.
    pub base_seed_source: String,
    /// The shards that contributed: one for a nightly run, several after a merge.
    pub shards: Vec<ShardInfo>,
    pub settings: NightlySettings,
    pub totals: Totals,
    /// Per-seed results, ordered by derivation position (`i*N + K`).
    pub seeds: Vec<SeedResult>,
    /// Failures grouped by triage signature (the key, see [`Signature::key`]).
    pub signatures: BTreeMap<String, SignatureGroup>,
}

/// The generation settings every shard of one nightly must share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NightlySettings {
    pub ops: usize,
    pub configs: String,
    pub random_configs: usize,
    pub swarm: bool,
    pub error_rate: f64,
    pub plant: Option<String>,
}

/// One shard's run: `index` of `count`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: u64,
    pub count: u64,
    pub seeds_run: u64,
    /// Wall time, for speed figures only.
    pub elapsed_ms: u64,
    /// The directory this shard's report was read from (set by `merge-reports`).
    pub source: Option<String>,
}

pub use crate::runner::FaultTally;

/// Sums over all seeds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub seeds_run: u64,
    pub seeds_failed: u64,
    pub failures: u64,
    pub signatures: u64,
    pub ops_executed: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub errors_injected: u64,
    /// Wall time of the longest shard, for speed figures only.
    pub elapsed_ms: u64,
    /// Fault-model counters and coverage over all seeds.
    #[serde(default)]
    pub faults: FaultTally,
    /// Expected fault classes that no seed reached: what this campaign did not test.
    #[serde(default)]
    pub never_hit: Vec<String>,
}

/// What one seed did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The derivation position `i*N + K`: seed = `derive(base, position)`.
    pub position: u64,
    pub shard: u64,
    pub seed: u64,
    pub passed: bool,
    pub ops_executed: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub errors_injected: u64,
    #[serde(default)]
    pub faults: FaultTally,
    /// Wall time, for the JUnit `time` attribute only.
    pub elapsed_ms: u64,
    pub failures: Vec<FailureRecord>,
    /// The saved failure directory, relative to the summary's directory.
    pub dir: Option<String>,
    /// One line that replays this seed from scratch.
    pub replay: String,
    /// The reduced failure directory, when reduction succeeded within its budget.
    pub reduced: Option<String>,
    /// A threaded config failed on OS threads (a build without the `shuttle` feature): the
    /// seed may not replay exactly; rerun it in a shuttle build (`sched.rs`).
    #[serde(default)]
    pub may_not_replay: bool,
    /// Each threaded config that failed on OS threads, rerun under a shuttle build of tumbler
    /// (`nightly --shuttle-bin`): whether the seeded model scheduler reproduced it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shuttle_retries: Vec<ShuttleRetry>,
}

/// One threaded failure seen on OS threads, retried under the shuttle build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShuttleRetry {
    pub config: String,
    /// The shuttle run failed too (any oracle): its case replays exactly in a shuttle build.
    pub reproduced: bool,
    /// What the shuttle run found, first failure only (empty when it passed).
    pub finding: String,
    /// The shuttle run's saved case (relative to the summary's directory) when reproduced.
    pub dir: Option<String>,
}

/// One failed check of one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub oracle: String,
    pub config: String,
    pub op_index: Option<usize>,
    /// The kind of the first divergent op (`put`, `crash`, ...), when the oracle names one.
    pub op_kind: Option<String>,
    pub message: String,
    pub signature: String,
}

/// What makes two failures "the same bug" for triage.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Signature {
    pub oracle: String,
    /// The reduced case's op shape (`crash+write`) when the failure was reduced; otherwise the
    /// first divergent op's kind, or `-` when the oracle does not name an op.
    pub op_kind: String,
    /// The config knob that matters. Until the reducer reports a minimal knob, the failing
    /// config's name.
    pub knob: String,
}

impl Signature {
    /// `oracle/op_kind/knob`, the key failures group under.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.oracle, self.op_kind, self.knob)
    }
}

/// All failures with one signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignatureGroup {
    pub signature: Signature,
    /// Failures with this signature (a seed may count more than once).
    pub count: u64,
    /// The seeds that showed it, ascending, each once.
    pub seeds: Vec<u64>,
    /// The replay command of the first seed (by position) that showed it.
    pub example_replay: String,
}

impl Summary {
    /// Builds a summary from per-seed results; computes totals and signature groups.
    pub fn new(
        base_seed: u64,
        base_seed_source: String,
        shards: Vec<ShardInfo>,
        settings: NightlySettings,
        mut seeds: Vec<SeedResult>,
        signature_of: &dyn Fn(&FailureRecord) -> Signature,
    ) -> Summary {
        seeds.sort_by_key(|s| s.position);
        let mut signatures: BTreeMap<String, SignatureGroup> = BTreeMap::new();
        for s in &seeds {
            for f in &s.failures {
                let sig = signature_of(f);
                let g = signatures.entry(sig.key()).or_insert_with(|| SignatureGroup {
                    signature: sig,
                    count: 0,
                    seeds: Vec::new(),
                    example_replay: s.replay.clone(),
                });
                g.count += 1;
                g.seeds.push(s.seed);
            }
        }
        for g in signatures.values_mut() {
            g.seeds.sort_unstable();
            g.seeds.dedup();
        }
        let totals = Totals {
            seeds_run: seeds.len() as u64,
            seeds_failed: seeds.iter().filter(|s| !s.passed).count() as u64,
            failures: seeds.iter().map(|s| s.failures.len() as u64).sum(),
            signatures: signatures.len() as u64,
            ops_executed: seeds.iter().map(|s| s.ops_executed).sum(),
            crashes: seeds.iter().map(|s| s.crashes).sum(),
            restarts: seeds.iter().map(|s| s.restarts).sum(),
            errors_injected: seeds.iter().map(|s| s.errors_injected).sum(),
            elapsed_ms: shards.iter().map(|s| s.elapsed_ms).max().unwrap_or(0),
            faults: FaultTally::default(),
            never_hit: Vec::new(),
        };
        let mut totals = totals;
        for s in &seeds {
            totals.faults.add(&s.faults);
        }
        totals.never_hit = totals.faults.never_hit();
        Summary {
            format: SUMMARY_FORMAT,
            base_seed,
            base_seed_source,
            shards,
            settings,
            totals,
            seeds,
            signatures,
        }
    }

    /// True when no seed failed.
    pub fn passed(&self) -> bool {
        self.totals.seeds_failed == 0
    }

    /// Reads `dir/summary.json`.
    pub fn load(dir: &Path) -> anyhow::Result<Summary> {
        let path = dir.join("summary.json");
        let text = crate::input::read_input(&path, "report")?;
        let summary: Summary =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if summary.format != SUMMARY_FORMAT {
            bail!(
                "{}: summary format {} (this tumbler reads {SUMMARY_FORMAT})",
                path.display(),
                summary.format
            );
        }
        Ok(summary)
    }

    /// Writes `dir/summary.json` and `dir/junit.xml`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("summary.json"), serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}/summary.json", dir.display()))?;
        std::fs::write(dir.join("junit.xml"), junit_xml(self))
            .with_context(|| format!("writing {}/junit.xml", dir.display()))?;
        Ok(())
    }
}

/// The signature recorded in each failure (what `merge-reports` regroups by).
pub fn recorded_signature(f: &FailureRecord) -> Signature {
    let mut parts = f.signature.splitn(3, '/');
    let mut next = || parts.next().unwrap_or("-").to_string();
    Signature { oracle: next(), op_kind: next(), knob: next() }
}

/// Renders JUnit XML: one testsuite per shard, one testcase per seed, a `<failure>` per failed
/// seed with every failure message and the replay commands.
pub fn junit_xml(s: &Summary) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"tumbler nightly\" tests=\"{}\" failures=\"{}\" time=\"{}\">",
        s.totals.seeds_run,
        s.totals.seeds_failed,
        secs(s.totals.elapsed_ms)
    );
    let mut by_shard: BTreeMap<u64, Vec<&SeedResult>> = BTreeMap::new();
    for r in &s.seeds {
        by_shard.entry(r.shard).or_default().push(r);
    }
    for shard in &s.shards {
        let seeds = by_shard.remove(&shard.index).unwrap_or_default();
        write_suite(&mut x, s, &format!("{}/{}", shard.index, shard.count), &seeds);
    }
    // Seeds of a shard the header does not list (a hand-edited summary): still reported.
    for (index, seeds) in by_shard {
        write_suite(&mut x, s, &format!("{index}/?"), &seeds);
    }
    x.push_str("</testsuites>\n");
    x
}

fn write_suite(x: &mut String, s: &Summary, shard: &str, seeds: &[&SeedResult]) {
    let failed = seeds.iter().filter(|r| !r.passed).count();
    let ms: u64 = seeds.iter().map(|r| r.elapsed_ms).sum();
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{}\">",
        xml_escape(&format!("tumbler.nightly.shard-{shard}")),
        seeds.len(),
        secs(ms)
    );
    let _ = writeln!(
        x,
        "    <properties><property name=\"base_seed\" value=\"{}\"/>\
         <property name=\"base_seed_source\" value=\"{}\"/></properties>",
        s.base_seed,
        xml_escape(&s.base_seed_source)
    );
    for r in seeds {
        let _ = write!(
            x,
            "    <testcase classname=\"tumbler.nightly\" name=\"seed-{}\" time=\"{}\"",
            r.seed,
            secs(r.elapsed_ms)
        );
        if r.passed {
            x.push_str("/>\n");
            continue;
        }
        x.push_str(">\n");
        let first = r.failures.first();
        let message = match first {
            Some(f) => format!("[{}] config {}: {}", f.oracle, f.config, f.message),
            None => "failed".to_string(),
        };
        let mut body = String::new();
        for f in &r.failures {
            let op = f.op_index.map(|i| format!(" op {i}")).unwrap_or_default();
            let kind = f.op_kind.as_deref().map(|k| format!(" ({k})")).unwrap_or_default();
            let _ = writeln!(
                body,
                "[{}] config {}{op}{kind}: {}\n  signature: {}",
                f.oracle, f.config, f.message, f.signature
            );
        }
        let _ = writeln!(body, "replay: {}", r.replay);
        if let Some(dir) = &r.dir {
            let _ = writeln!(body, "saved: {dir} (tumbler replay {dir})");
        }
        if let Some(red) = &r.reduced {
            let _ = writeln!(body, "reduced: {red} (tumbler replay {red})");
        }
        let _ = writeln!(
            x,
            "      <failure type=\"{}\" message=\"{}\">{}</failure>",
            xml_escape(first.map(|f| f.oracle.as_str()).unwrap_or("failure")),
            xml_escape(&message),
            xml_escape_text(&body)
        );
        let _ =
            writeln!(x, "      <system-out>replay: {}</system-out>", xml_escape_text(&r.replay));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n");
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Escapes text for an XML attribute value. Characters XML 1.0 cannot hold at all (most
/// control characters) become U+FFFD, so a binary key in a message cannot break the file.
pub fn xml_escape(s: &str) -> String {
    escape(s, true)
}

/// Escapes text for XML element content (line breaks stay literal, for readable logs).
pub fn xml_escape_text(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' if !attribute => out.push(c),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept literally in content, but attribute normalisation would turn them into
            // spaces, so they are written as character references.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Merges shard summaries. All parts must come from one nightly: same base seed, shard count
/// and settings, and no shard twice.
pub fn merge(parts: Vec<(String, Summary)>) -> anyhow::Result<Summary> {
    let Some((_, first)) = parts.first() else {
        bail!("nothing to merge");
    };
    let (base_seed, base_source, settings) =
        (first.base_seed, first.base_seed_source.clone(), first.settings.clone());
    let mut shards: Vec<ShardInfo> = Vec::new();
    let mut seeds = Vec::new();
    for (source, part) in parts {
        if part.base_seed != base_seed {
            bail!(
                "{source}: base seed {} differs from {base_seed} (reports of different nightlies)",
                part.base_seed
            );
        }
        if part.settings != settings {
            bail!("{source}: settings {:?} differ from {settings:?}", part.settings);
        }
        for mut sh in part.shards {
            if let Some(other) = shards.first() {
                if other.count != sh.count {
                    bail!("{source}: shard count {} differs from {}", sh.count, other.count);
                }
            }
            if let Some(dup) = shards.iter().find(|o| o.index == sh.index) {
                bail!(
                    "{source}: shard {}/{} already merged from {}",
                    sh.index,
                    sh.count,
                    dup.source.as_deref().unwrap_or("?")
                );
            }
            sh.source = Some(sh.source.unwrap_or_else(|| source.clone()));
            shards.push(sh);
        }
        for mut r in part.seeds {
            // Keep saved directories reachable from the merged report's point of view.
            r.dir = r.dir.map(|d| join_label(&source, &d));
            r.reduced = r.reduced.map(|d| join_label(&source, &d));
            seeds.push(r);
        }
    }
    shards.sort_by_key(|s| s.index);
    Ok(Summary::new(base_seed, base_source, shards, settings, seeds, &recorded_signature))
}

fn join_label(source: &str, rel: &str) -> String {
    if source.is_empty() || Path::new(rel).is_absolute() {
        rel.to_string()
    } else {
        format!("{}/{rel}", source.trim_end_matches('/'))
    }
}

/// `tumbler merge-reports`: reads each `dir/summary.json`, writes the merged summary.json and
/// junit.xml to `out`, prints totals. Returns true when no seed failed.
pub fn merge_dirs(dirs: &[PathBuf], out: &Path) -> anyhow::Result<bool> {
    let mut parts = Vec::new();
    for d in dirs {
        parts.push((d.display().to_string(), Summary::load(d).map_err(crate::input::input_error)?));
    }
    let merged = merge(parts).map_err(crate::input::input_error)?;
    merged.write(out)?;
    print_totals(&merged);
    println!("summary: {}", out.join("summary.json").display());
    Ok(merged.passed())
}

/// Prints the totals and one line per signature group.
pub fn print_totals(s: &Summary) {
    let t = &s.totals;
    let shards: Vec<String> = s.shards.iter().map(|x| format!("{}/{}", x.index, x.count)).collect();
    println!(
        "{} seeds (shards {}, base seed {} from {}): {} failed, {} failures, {} signatures; \
         {} ops executed, {} crashes, {} restarts, {} injected errors",
        t.seeds_run,
        shards.join(" "),
        s.base_seed,
        s.base_seed_source,
        t.seeds_failed,
        t.failures,
        t.signatures,
        t.ops_executed,
        t.crashes,
        t.restarts,
        t.errors_injected
    );
    let f = &t.faults;
    println!(
        "  faults: {} ENOSPC, {} short writes, {} corrupt reads, {} rotted sectors ({} rotted reads)",
        f.storage_full_errors, f.short_writes, f.corrupt_reads, f.rotted_sectors, f.rot_reads
    );
    if !t.never_hit.is_empty() {
        println!("  fault classes never hit: {}", t.never_hit.join(", "));
    }
    const SHOWN: usize = 20;
    if s.signatures.len() > SHOWN {
        println!("  (the {SHOWN} most frequent of {} signatures)", s.signatures.len());
    }
    let mut groups: Vec<(&String, &SignatureGroup)> = s.signatures.iter().collect();
    groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
    for (key, g) in groups.into_iter().take(SHOWN) {
        let seeds: Vec<String> = g.seeds.iter().take(5).map(u64::to_string).collect();
        let more = if g.seeds.len() > 5 { " ..." } else { "" };
        println!(
            "  {key}: {} failure(s) in {} seed(s) [{}{more}]; e.g. {}",
            g.count,
            g.seeds.len(),
            seeds.join(" "),
            g.example_replay
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> NightlySettings {
        NightlySettings {
            ops: 10,
            configs: "configs/standard".into(),
            random_configs: 0,
            swarm: false,
            error_rate: 0.0,
            plant: None,
        }
    }

    fn seed(position: u64, shard: u64, failed: bool) -> SeedResult {
        let failures = if failed {
            vec![FailureRecord {
                oracle: "model".into(),
                config: "tiny".into(),
                op_index: Some(3),
                op_kind: Some("get".into()),
                message: "get(\"a<b>&'c'\") = x\u{1}\ty\n".into(),
                signature: "model/get/tiny".into(),
            }]
        } else {
            Vec::new()
        };
        SeedResult {
            position,
            shard,
            seed: 1000 + position,
            passed: !failed,
            ops_executed: 5,
            crashes: 1,
            restarts: 0,
            errors_injected: 0,
            faults: FaultTally::default(),
            elapsed_ms: 1234,
            failures,
            dir: failed.then(|| format!("failures/seed-{}", 1000 + position)),
            replay: format!("tumbler run --seed {} --ops 10", 1000 + position),
            reduced: None,
            may_not_replay: false,
            shuttle_retries: Vec::new(),
        }
    }

    fn shard_summary(k: u64, n: u64, positions: &[u64], failed: &[u64]) -> Summary {
        let seeds = positions.iter().map(|&p| seed(p, k, failed.contains(&p))).collect();
        let shard = ShardInfo { index: k, count: n, seeds_run: 0, elapsed_ms: 10, source: None };
        Summary::new(7, "--base-seed".into(), vec![shard], settings(), seeds, &recorded_signature)
    }

    #[test]
    fn junit_escapes_special_characters_and_parses() {
        let s = shard_summary(0, 1, &[0, 1, 2], &[1]);
        let xml = junit_xml(&s);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed junit.xml");
        let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
        assert_eq!(cases.len(), 3);
        let failure = doc.descendants().find(|n| n.has_tag_name("failure")).expect("failure");
        let msg = failure.attribute("message").expect("message");
        assert_eq!(msg, "[model] config tiny: get(\"a<b>&'c'\") = x\u{FFFD}\ty\n");
        let body = failure.text().expect("body");
        assert!(body.contains("replay: tumbler run --seed 1001 --ops 10"), "{body}");
        assert!(body.contains("saved: failures/seed-1001"), "{body}");
    }

    #[test]
    fn signatures_group_failures_across_seeds() {
        let s = shard_summary(0, 1, &[0, 1, 2, 3], &[1, 3]);
        assert_eq!(s.totals.seeds_failed, 2);
        assert_eq!(s.totals.signatures, 1);
        let g = &s.signatures["model/get/tiny"];
        assert_eq!(g.count, 2);
        assert_eq!(g.seeds, vec![1001, 1003]);
        assert_eq!(g.example_replay, "tumbler run --seed 1001 --ops 10");
    }

    #[test]
    fn merge_orders_seeds_and_rejects_mismatches() {
        let a = shard_summary(0, 2, &[0, 2, 4], &[]);
        let b = shard_summary(1, 2, &[1, 3], &[3]);
        let m = merge(vec![("b".into(), b.clone()), ("a".into(), a.clone())]).expect("merge");
        let positions: Vec<u64> = m.seeds.iter().map(|s| s.position).collect();
        assert_eq!(positions, vec![0, 1, 2, 3, 4]);
        assert_eq!(m.totals.seeds_failed, 1);
        assert_eq!(m.seeds[3].dir.as_deref(), Some("b/failures/seed-1003"));
        assert_eq!(m.shards.len(), 2);
        assert!(merge(vec![("a".into(), a.clone()), ("a2".into(), a.clone())]).is_err());
        let mut other = b.clone();
        other.base_seed = 8;
        assert!(merge(vec![("a".into(), a.clone()), ("b".into(), other)]).is_err());
        let three = shard_summary(1, 3, &[1], &[]);
        assert!(merge(vec![("a".into(), a), ("c".into(), three)]).is_err());
        // JSON round trip keeps everything.
        let text = serde_json::to_string(&m).expect("serialize");
        assert_eq!(serde_json::from_str::<Summary>(&text).expect("parse"), m);
    }
}
