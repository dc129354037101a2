//! Checks on the engine's resources and progress, separate from its answers: the memory
//! budget after every op, and liveness once background work has drained.

use std::path::Path;

use cobble::{Db, Metrics, TableInfo};

use super::{Check, Oracle, DB_DIR};

/// The memory a config may hold, from its options, and what the harness currently pins.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    /// `memtable_size`.
    pub(super) memtable_size: u64,
    /// `memtable_stop_writes_threshold`: memtables alive at most (active plus immutable).
    pub(super) max_memtables: u64,
    /// The block cache's capacity.
    pub(super) cache_capacity: u64,
}

impl Budget {
    pub(super) fn new(opts: &cobble::Options) -> Budget {
        Budget {
            memtable_size: opts.memtable_size as u64,
            max_memtables: opts.memtable_stop_writes_threshold as u64,
            cache_capacity: opts.cache_size as u64,
        }
    }

    /// Checks the memory held after an op. The budget:
    ///
    /// - memtable arenas: `max_memtables` arenas of `arena` bytes each, where `arena` is
    ///   `memtable_size` or, when a single write was larger, that write's arena (the engine
    ///   gives one oversized write an arena of its own); plus, for every open iterator, the
    ///   arenas it pinned when it was created (at most `max_memtables` more each);
    /// - block cache: while an iterator is open (it pins its current blocks) or
    ///   `background_may_pin` (a background compaction pins the blocks it reads), no bound
    ///   beyond the arena's; otherwise resident bytes within the capacity and no bytes held by
    ///   handles beyond the resident ones.
    pub(super) fn check(
        &self,
        m: &Metrics,
        largest_write_arena: u64,
        open_iterators: u64,
        background_may_pin: bool,
    ) -> Result<(), String> {
        let arena = self.memtable_size.max(largest_write_arena);
        let mem_budget = arena * self.max_memtables * (1 + open_iterators);
        if m.memtable_bytes > mem_budget {
            return Err(format!(
                "memtable arenas hold {} bytes, over the budget of {mem_budget} ({} memtables \
                 of {arena} bytes, {open_iterators} iterators open; {} immutable now)",
                m.memtable_bytes, self.max_memtables, m.immutable_memtables
            ));
        }
        let c = &m.cache;
        let may_pin = open_iterators > 0 || background_may_pin;
        // A pinned block cannot be evicted, so residents may exceed the capacity only while
        // something may pin.
        if !may_pin && c.resident_bytes as u64 > self.cache_capacity {
            return Err(format!(
                "block cache holds {} resident bytes, over its capacity {}",
                c.resident_bytes, self.cache_capacity
            ));
        }
        // Ghosts (evicted blocks remembered by key) are metadata the budget must bound too.
        if c.ghost_bytes as u64 > self.cache_capacity {
            return Err(format!(
                "block cache ghosts stand for {} bytes ({} entries), over its capacity {}: \
                 ghost metadata grows without bound",
                c.ghost_bytes, c.ghost_entries, self.cache_capacity
            ));
        }
        if !may_pin && c.usage != c.resident_bytes {
            return Err(format!(
                "block cache usage {} != resident bytes {} with no iterator open: {} bytes \
                 pinned by handles nobody holds",
                c.usage,
                c.resident_bytes,
                c.usage.abs_diff(c.resident_bytes)
            ));
        }
        Ok(())
    }
}

/// How far over its target a level may be once compactions have drained: none (the picker
/// compacts every level whose score reaches 1, so a drained tree has every score below 1).
pub(super) const LEVEL_SLACK: f64 = 1.0;

/// The most L0 tables whose user-key ranges (bounds inclusive, bytewise) hold one key, worked
/// out here rather than taken from the engine. The count peaks at some table's smallest key,
/// so only those need trying.
fn l0_depth(tables: &[TableInfo]) -> usize {
    let l0: Vec<&TableInfo> = tables.iter().filter(|t| t.level == 0).collect();
    l0.iter()
        .map(|probe| {
            let k = &probe.smallest;
            l0.iter().filter(|t| t.smallest <= *k && *k <= t.largest).count()
        })
        .max()
        .unwrap_or(0)
}

/// Liveness after draining: nothing left to do, L0 below its compaction depth threshold, every level
/// L1..L5 below its target, no table reader open for a deleted table, no obsolete file in the
/// directory. `live` is what the engine says it needs; `on_disk` what the directory holds.
pub(super) fn check_drained(
    db: &Db,
    opts: &cobble::Options,
    on_disk: &[String],
) -> Result<(), String> {
    let work = db.pending_background_work();
    let m = db.metrics();
    let shape = || format!("LSM shape:\n{}", db.lsm_description());
    // The fields, not the engine's own `is_empty`: the oracle must not share its logic.
    if work.flushes > 0 || work.compactions > 0 {
        return Err(format!("background work left after draining: {work:?}\n{}", shape()));
    }
    // Counted apart from `pending_background_work`: a drain that returned before a switched
    // memtable was flushed leaves one here even if the engine's own work count misses it.
    if m.immutable_memtables > 0 {
        return Err(format!(
            "{} immutable memtable(s) left unflushed after draining\n{}",
            m.immutable_memtables,
            shape()
        ));
    }
    let depth = l0_depth(&db.tables());
    if depth >= opts.l0_compaction_threshold.max(1) {
        return Err(format!(
            "L0 is {depth} tables deep after draining, threshold {}\n{}",
            opts.l0_compaction_threshold,
            shape()
        ));
    }
    let mut target = opts.lbase_max_bytes.max(1);
    for level in 1..m.levels.len() - 1 {
        let bytes = m.levels[level].bytes;
        if bytes as f64 >= target as f64 * LEVEL_SLACK {
            return Err(format!(
                "L{level} holds {bytes} bytes after draining, target {target}\n{}",
                shape()
            ));
        }
        target = target.saturating_mul(opts.level_multiplier);
    }
    let live_tables: usize = m.levels.iter().map(|l| l.files).sum();
    if m.open_tables > live_tables {
        return Err(format!(
            "the table cache keeps {} readers open but only {live_tables} tables are live: \
             readers of deleted tables\n{}",
            m.open_tables,
            shape()
        ));
    }
    let live = db.live_files();
    let (extra, _) = file_difference(on_disk, &live, opts.disable_wal);
    if !extra.is_empty() {
        return Err(format!("obsolete files left after draining: {extra:?}\n{}", shape()));
    }
    Ok(())
}

/// The files on disk that the engine does not need (obsolete), and those it needs that are
/// missing (`LOCK` aside: released at close). With the WAL disabled no `.log` is needed.
pub(super) fn file_difference(
    on_disk: &[String],
    live: &[String],
    wal_disabled: bool,
) -> (Vec<String>, Vec<String>) {
    let needed = |n: &String| live.contains(n) && !(wal_disabled && n.ends_with(".log"));
    let extra = on_disk.iter().filter(|n| !needed(n)).cloned().collect();
    let missing = live
        .iter()
        .filter(|n| needed(n) && !on_disk.contains(n) && n.as_str() != "LOCK")
        .cloned()
        .collect();
    (extra, missing)
}

/// The names in the database directory, sorted.
pub(super) fn list_dir(fs: &crate::sim::SimFs, dir: &str) -> cobble::Result<Vec<String>> {
    let mut names = cobble::Fs::list(fs, Path::new(dir))?;
    names.sort();
    Ok(names)
}

impl super::Exec {
    /// The memory budget after an op (see `checks::Budget::check`).
    pub(super) fn check_memory(&self) -> Check<()> {
        self.check_memory_with(!self.deterministic)
    }

    pub(super) fn check_memory_with(&self, background_may_pin: bool) -> Check<()> {
        let Some(db) = &self.db else { return Ok(()) };
        let m = db.metrics();
        let iters = self.iters.len() as u64;
        if let Err(msg) = self.budget.check(&m, self.largest_write_arena, iters, background_may_pin)
        {
            return self.fail(Oracle::Memory, format!("{msg}; metrics: {m:?}"));
        }
        // With no iterator open and no background thread, nothing pins an old version between
        // ops: whatever replaced or released one has purged, so every open reader is of a live
        // table. (A poisoned database purges nothing: the next open decides.)
        if !background_may_pin && self.iters.is_empty() && !db.is_poisoned() {
            let live: usize = m.levels.iter().map(|l| l.files).sum();
            if m.open_tables > live {
                return self.fail(
                    Oracle::Liveness,
                    format!(
                        "between ops, with no iterator open, the table cache keeps {} readers \
                         but only {live} tables are live: readers of deleted tables\nLSM \
                         shape:\n{}",
                        m.open_tables,
                        db.lsm_description()
                    ),
                );
            }
        }
        Ok(())
    }

    /// Drains background work with faults off and checks liveness (see `checks`).
    pub(super) fn drain_and_check_liveness(&mut self) -> Check<()> {
        // Iterators pin versions, whose files are then not obsolete yet.
        self.end_objects();
        if self.db.is_none() {
            return Ok(());
        }
        self.fs.heal_rot();
        let drained = self.drain_past_read_faults();
        let db = self.db();
        match drained {
            Ok(cobble::Drained::Idle) => {}
            Ok(cobble::Drained::NotConverged) => {
                return self.fail(
                    Oracle::Liveness,
                    format!(
                        "background work does not converge: {:?} left\nLSM shape:\n{}",
                        db.pending_background_work(),
                        db.lsm_description()
                    ),
                )
            }
            Err(e) => return self.engine_error("draining background work", &e),
        }
        let on_disk = match list_dir(&self.fs, DB_DIR) {
            Ok(names) => names,
            Err(e) => return self.fail(Oracle::Engine, format!("listing the db dir: {e}")),
        };
        let opts = self.options();
        if let Err(msg) = check_drained(db, &opts, &on_disk) {
            return self.fail(Oracle::Liveness, msg);
        }
        // Drained, with no iterator open: nothing may pin a block now, under any scheduler.
        self.check_memory_with(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget { memtable_size: 4096, max_memtables: 2, cache_capacity: 1000 }
    }

    #[test]
    fn the_memory_budget_catches_arenas_and_cache_bytes_over_it() {
        let mut m = Metrics { memtable_bytes: 8192, ..Metrics::default() };
        m.cache.capacity = 1000;
        m.cache.usage = 900;
        m.cache.resident_bytes = 900;
        assert!(budget().check(&m, 0, 0, false).is_ok());
        // A third arena with no iterator to pin it: a leak.
        m.memtable_bytes = 3 * 4096;
        assert!(budget().check(&m, 0, 0, false).unwrap_err().contains("memtable arenas"));
        // An iterator may pin the old ones; one oversized write gets its own arena.
        assert!(budget().check(&m, 0, 1, false).is_ok());
        assert!(budget().check(&m, 6144, 0, false).is_ok());
        m.memtable_bytes = 4096;
        // Residents over capacity, or bytes held by handles nobody should hold.
        m.cache.resident_bytes = 1001;
        m.cache.usage = 1001;
        assert!(budget().check(&m, 0, 0, false).unwrap_err().contains("capacity"));
        m.cache.resident_bytes = 500;
        assert!(budget().check(&m, 0, 0, false).unwrap_err().contains("pinned"));
        assert!(budget().check(&m, 0, 0, true).is_ok());
        // Ghost metadata is bounded whatever is pinned.
        m.cache.ghost_bytes = 1001;
        assert!(budget().check(&m, 0, 0, true).unwrap_err().contains("ghosts"));
    }
}
