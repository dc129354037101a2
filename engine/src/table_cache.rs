//! The table cache: open table readers kept by file number, least recently used first out,
//! bounded by `max_open_files`.
//!
//! It is generic over the reader type so it depends on nothing but `Arc`. Recency is a logical
//! clock (a counter bumped on every use), kept in a `BTreeMap`, so eviction order depends only
//! on the sequence of calls. Evicting a reader only drops the cache's `Arc`: readers still held
//! elsewhere stay usable and close when their last holder lets go.

use crate::sync::{Arc, Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::fmt;

use crate::Result;

/// Counters of a [`TableCache`], cumulative since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCacheMetrics {
    /// `get_or_open` calls served by an open reader.
    pub hits: u64,
    /// `get_or_open` calls that had to open the table.
    pub misses: u64,
    /// Readers dropped to stay within `max_open_files` (not counting `evict`).
    pub evictions: u64,
    /// Readers open now.
    pub open: usize,
}

struct Slot<T> {
    reader: Arc<T>,
    /// Logical time of the last use; the key of this file in `State::by_use`.
    last_use: u64,
}

struct State<T> {
    by_file: BTreeMap<u64, Slot<T>>,
    /// Last-use time to file number; the first entry is the least recently used.
    by_use: BTreeMap<u64, u64>,
    now: u64,
    metrics: TableCacheMetrics,
}

impl<T> State<T> {
    fn tick(&mut self) -> u64 {
        self.now += 1;
        self.now
    }

    /// Marks `file_num` used now and returns its reader, if open.
    fn touch(&mut self, file_num: u64) -> Option<Arc<T>> {
        let now = self.tick();
        let slot = self.by_file.get_mut(&file_num)?;
        self.by_use.remove(&slot.last_use);
        slot.last_use = now;
        self.by_use.insert(now, file_num);
        Some(Arc::clone(&slot.reader))
    }

    fn remove(&mut self, file_num: u64) -> Option<Slot<T>> {
        let slot = self.by_file.remove(&file_num)?;
        self.by_use.remove(&slot.last_use);
        Some(slot)
    }
}

/// Open readers of type `T`, at most `max_open_files` of them.
pub struct TableCache<T> {
    state: Mutex<State<T>>,
    max_open_files: usize,
}

impl<T> fmt::Debug for TableCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableCache")
            .field("max_open_files", &self.max_open_files)
            .field("open", &self.len())
            .finish_non_exhaustive()
    }
}

impl<T> TableCache<T> {
    /// A cache keeping up to `max_open_files` readers open; 0 is taken as 1, since the reader
    /// just opened must be kept somewhere while it is used.
    pub fn new(max_open_files: usize) -> TableCache<T> {
        TableCache {
            state: Mutex::new(State {
                by_file: BTreeMap::new(),
                by_use: BTreeMap::new(),
                now: 0,
                metrics: TableCacheMetrics::default(),
            }),
            max_open_files: max_open_files.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // `open` (user code: the `Fs`) never runs under the lock, and every update under it
        // leaves the maps consistent between statements, so a poisoned lock is still sound;
        // close evicts through here and must not panic in turn.
        self.state.lock().unwrap_or_else(crate::sync::PoisonError::into_inner)
    }

    /// The reader of `file_num`, opening it with `open` if it is not open. An error from `open`
    /// is returned as is and nothing is cached, so the next call tries again.
    ///
    /// `open` runs without the lock held, so one slow open does not stall readers of other
    /// files. If two callers open the same file at once, the first reader to arrive is kept
    /// and returned to both; the other is dropped.
    pub fn get_or_open(
        &self,
        file_num: u64,
        open: impl FnOnce() -> Result<Arc<T>>,
    ) -> Result<Arc<T>> {
        {
            let mut state = self.lock();
            if let Some(reader) = state.touch(file_num) {
                state.metrics.hits += 1;
                return Ok(reader);
            }
            state.metrics.misses += 1;
        }
        let opened = open()?;
        let mut state = self.lock();
        if let Some(reader) = state.touch(file_num) {
            return Ok(reader);
        }
        let now = state.tick();
        state.by_file.insert(file_num, Slot { reader: Arc::clone(&opened), last_use: now });
        state.by_use.insert(now, file_num);
        while state.by_file.len() > self.max_open_files {
            let (_, victim) = state.by_use.pop_first().expect("more files open than recorded uses");
            state.by_file.remove(&victim);
            state.metrics.evictions += 1;
        }
        Ok(opened)
    }

    /// Drops the cache's reader of `file_num` (the table was deleted). Holders keep theirs.
    pub fn evict(&self, file_num: u64) {
        self.lock().remove(file_num);
    }

    /// Number of readers open in the cache.
    pub fn len(&self) -> usize {
        self.lock().by_file.len()
    }

    /// True when no reader is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `file_num` has an open reader (does not count as a use).
    pub fn contains(&self, file_num: u64) -> bool {
        self.lock().by_file.contains_key(&file_num)
    }

    /// The bound on open readers (at least 1).
    pub fn max_open_files(&self) -> usize {
        self.max_open_files
    }

    /// Counters since creation.
    pub fn metrics(&self) -> TableCacheMetrics {
        let state = self.lock();
        TableCacheMetrics { open: state.by_file.len(), ..state.metrics }
    }

    /// Open file numbers, least recently used first.
    pub fn files_by_recency(&self) -> Vec<u64> {
        self.lock().by_use.values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use proptest::prelude::*;

    /// A reader that remembers which file it was opened for.
    #[derive(Debug, PartialEq, Eq)]
    struct FakeReader(u64);

    fn open_counting(
        file_num: u64,
        opens: &mut Vec<u64>,
    ) -> impl FnOnce() -> Result<Arc<FakeReader>> + '_ {
        move || {
            opens.push(file_num);
            Ok(Arc::new(FakeReader(file_num)))
        }
    }

    #[test]
    fn hit_does_not_reopen() {
        let cache = TableCache::new(4);
        let mut opens = Vec::new();
        let a = cache.get_or_open(7, open_counting(7, &mut opens)).unwrap();
        let b = cache.get_or_open(7, open_counting(7, &mut opens)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(opens, vec![7]);
        assert_eq!(
            cache.metrics(),
            TableCacheMetrics { hits: 1, misses: 1, evictions: 0, open: 1 }
        );
    }

    #[test]
    fn evicts_least_recently_used() {
        let cache = TableCache::new(3);
        let mut opens = Vec::new();
        for f in [1, 2, 3] {
            cache.get_or_open(f, open_counting(f, &mut opens)).unwrap();
        }
        // Use 1 again, so 2 is now the oldest.
        cache.get_or_open(1, open_counting(1, &mut opens)).unwrap();
        cache.get_or_open(4, open_counting(4, &mut opens)).unwrap();
        assert_eq!(cache.files_by_recency(), vec![3, 1, 4]);
        assert!(!cache.contains(2));
        cache.get_or_open(2, open_counting(2, &mut opens)).unwrap();
        assert_eq!(cache.files_by_recency(), vec![1, 4, 2]);
        assert_eq!(opens, vec![1, 2, 3, 4, 2]);
        assert_eq!(cache.metrics().evictions, 2);
    }

    #[test]
    fn max_open_files_zero_means_one() {
        for max in [0, 1] {
            let cache = TableCache::new(max);
            assert_eq!(cache.max_open_files(), 1);
            let mut opens = Vec::new();
            let a = cache.get_or_open(1, open_counting(1, &mut opens)).unwrap();
            let b = cache.get_or_open(2, open_counting(2, &mut opens)).unwrap();
            assert_eq!(cache.len(), 1);
            assert_eq!(cache.files_by_recency(), vec![2]);
            // The evicted reader stays usable for whoever holds it.
            assert_eq!(*a, FakeReader(1));
            assert_eq!(*b, FakeReader(2));
            cache.get_or_open(2, open_counting(2, &mut opens)).unwrap();
            assert_eq!(opens, vec![1, 2]);
        }
    }

    #[test]
    fn open_error_is_returned_and_not_cached() {
        let cache: TableCache<FakeReader> = TableCache::new(2);
        let err = cache
            .get_or_open(5, || Err(Error::corruption("bad footer", "000005.sst")))
            .unwrap_err();
        assert!(err.is_corruption());
        assert!(cache.is_empty());
        let r = cache.get_or_open(5, || Ok(Arc::new(FakeReader(5)))).unwrap();
        assert_eq!(*r, FakeReader(5));
        assert_eq!(cache.metrics().misses, 2);
    }

    #[test]
    fn evict_drops_only_the_cache_reference() {
        let cache = TableCache::new(2);
        let r = cache.get_or_open(9, || Ok(Arc::new(FakeReader(9)))).unwrap();
        assert_eq!(Arc::strong_count(&r), 2);
        cache.evict(9);
        cache.evict(9); // evicting an absent file is a no-op
        assert!(cache.is_empty());
        assert_eq!(Arc::strong_count(&r), 1);
        assert_eq!(*r, FakeReader(9));
        let again = cache.get_or_open(9, || Ok(Arc::new(FakeReader(9)))).unwrap();
        assert!(!Arc::ptr_eq(&r, &again), "reopened after eviction");
    }

    #[test]
    #[expect(clippy::disallowed_methods, reason = "concurrent users are what this test is about")]
    fn concurrent_users_share_readers() {
        let cache = TableCache::new(3);
        crate::sync::thread::scope(|s| {
            for t in 0..4u64 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..200u64 {
                        let f = (i * 7 + t) % 6;
                        let r = cache.get_or_open(f, || Ok(Arc::new(FakeReader(f)))).unwrap();
                        assert_eq!(*r, FakeReader(f));
                    }
                });
            }
        });
        assert!(cache.len() <= 3);
        let m = cache.metrics();
        assert_eq!(m.hits + m.misses, 800);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Get(u64),
        Evict(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![4 => (0u64..8).prop_map(Op::Get), 1 => (0u64..8).prop_map(Op::Evict)]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            // Miri's isolation has no working directory to persist failures in.
            failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
            ..ProptestConfig::default()
        })]

        /// The cache matches a plain LRU list model: same open set, same order, same opens.
        #[test]
        fn matches_lru_model(max in 0usize..5, ops in proptest::collection::vec(op(), 0..60)) {
            let cache = TableCache::new(max);
            let max = max.max(1);
            let mut model: Vec<u64> = Vec::new(); // least recently used first
            let mut opens = Vec::new();
            let mut model_opens = Vec::new();
            for op in ops {
                match op {
                    Op::Get(f) => {
                        let r = cache.get_or_open(f, open_counting(f, &mut opens)).unwrap();
                        prop_assert_eq!(&*r, &FakeReader(f));
                        if let Some(pos) = model.iter().position(|&g| g == f) {
                            model.remove(pos);
                        } else {
                            model_opens.push(f);
                        }
                        model.push(f);
                        if model.len() > max {
                            model.remove(0);
                        }
                    }
                    Op::Evict(f) => {
                        cache.evict(f);
                        model.retain(|&g| g != f);
                    }
                }
                prop_assert_eq!(cache.files_by_recency(), model.clone());
                prop_assert_eq!(cache.len(), model.len());
            }
            prop_assert_eq!(opens, model_opens);
        }
    }
}
