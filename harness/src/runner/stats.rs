//! What a run counts: per-config counters, the fault tally (where faults and crashes
//! landed, by fault, file kind and call) and the fault classes a campaign is meant to reach.

/// Counters of one config's run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub ops_executed: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub unsynced_bytes_dropped: u64,
    pub dir_entries_dropped: u64,
    pub torn_writes: u64,
    pub errors_injected: u64,
    pub fault_reopens: u64,
    pub writes_lost: u64,
    /// ENOSPC, short writes, corrupt reads, rot, and where faults and crashes struck.
    pub faults: FaultTally,
}

impl RunStats {
    /// Adds another run's counters.
    pub fn add(&mut self, o: &RunStats) {
        self.ops_executed += o.ops_executed;
        self.crashes += o.crashes;
        self.restarts += o.restarts;
        self.unsynced_bytes_dropped += o.unsynced_bytes_dropped;
        self.dir_entries_dropped += o.dir_entries_dropped;
        self.torn_writes += o.torn_writes;
        self.errors_injected += o.errors_injected;
        self.fault_reopens += o.fault_reopens;
        self.writes_lost += o.writes_lost;
        self.faults.add(&o.faults);
    }
}

/// The fault-model counters of one seed or of a whole campaign, and where faults landed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FaultTally {
    pub storage_full_errors: u64,
    pub short_writes: u64,
    pub corrupt_reads: u64,
    pub rotted_sectors: u64,
    pub rot_reads: u64,
    /// `"<what>/<file kind>/<call>"` -> count (`"error/wal/sync"`, `"crash/sst/append"`, `"crash/boundary/-"`).
    pub coverage: std::collections::BTreeMap<String, u64>,
}

impl FaultTally {
    /// Adds another tally.
    pub fn add(&mut self, o: &FaultTally) {
        self.storage_full_errors += o.storage_full_errors;
        self.short_writes += o.short_writes;
        self.corrupt_reads += o.corrupt_reads;
        self.rotted_sectors += o.rotted_sectors;
        self.rot_reads += o.rot_reads;
        for (k, v) in &o.coverage {
            *self.coverage.entry(k.clone()).or_default() += v;
        }
    }

    /// The expected fault classes ([`EXPECTED_COVERAGE`]) never hit.
    pub fn never_hit(&self) -> Vec<String> {
        EXPECTED_COVERAGE
            .iter()
            .filter(|k| !self.coverage.contains_key(**k))
            .map(|k| k.to_string())
            .collect()
    }
}

/// The fault classes a campaign is meant to reach, `"<what>/<file kind>/<call>"` as in
/// [`FaultTally::coverage`]: a nightly lists those it never hit.
pub const EXPECTED_COVERAGE: &[&str] = &[
    "error/wal/append",
    "error/wal/sync",
    "error/sst/append",
    "error/sst/sync",
    "error/sst/read",
    "error/manifest/append",
    "error/manifest/sync",
    "error/temp/sync",
    "error/dir/sync dir",
    "error/current/rename",
    "enospc/wal/append",
    "enospc/sst/append",
    "short-write/wal/append",
    "corrupt-read/sst/read",
    "rot-read/sst/read",
    "crash/wal/append",
    "crash/wal/sync",
    "crash/sst/append",
    "crash/sst/sync",
    "crash/manifest/append",
    "crash/manifest/sync",
    "crash/temp/sync",
    "crash/current/rename",
    "crash/dir/sync dir",
    "crash/boundary/-",
    "failed-sync-all/manifest/sync",
    "failed-sync-part/wal/sync",
    "failed-sync-part/dir/sync dir",
    "poison/-/reopen",
    "poison/-/resume",
    "poison/-/crash-keep",
    "poison/-/crash-torn",
    "poison/-/crash-drop",
    "close-race/-/close",
];

/// The kind of database file a path names, for coverage.
pub fn file_kind(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".log") {
        "wal"
    } else if name.ends_with(".sst") {
        "sst"
    } else if name.starts_with("MANIFEST-") {
        "manifest"
    } else if name == "CURRENT" {
        "current"
    } else if name.ends_with(".dbtmp") {
        "temp"
    } else if name == "LOCK" {
        "lock"
    } else if !name.contains('.') {
        "dir"
    } else {
        "other"
    }
}
