//! The memtable: recent writes in two skiplists (point entries, range tombstones) sharing one
//! fixed-size arena that is allocated up front and accounted in a shared memory counter.
//!
//! Invariant: a memtable never allocates after [`Memtable::new`]. When an entry does not fit,
//! [`Memtable::add`] returns [`ArenaFull`] and the DB rotates to a new memtable (a dedicated
//! larger one for an entry bigger than a whole arena).
//!
//! Concurrency: one writer at a time (callers serialize `add`; an always-on check panics if two
//! overlap), any number of lock-free readers, including while the writer inserts.
//!
//! Size: over 600 lines: the arena skiplist's `unsafe` and the invariants that make it sound stay
//! in one file, to be reviewed together.

mod arena;
mod skiplist;

use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Arc, Mutex, PoisonError};
use std::fmt;

use crate::error::Result;
use crate::iter::{InternalIterator, PinSource, PinnedValue, TombstoneSet};
use crate::key::{self, InternalComparator, Kind, RangeTombstone, TRAILER_LEN};

use self::arena::Arena;
use self::skiplist::{Node, Skiplist, MAX_HEIGHT};

/// An entry did not fit in the memtable's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArenaFull;

impl fmt::Display for ArenaFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memtable arena full")
    }
}

impl std::error::Error for ArenaFull {}

/// Seed of the tower-height generator. Fixed, so that the same sequence of adds builds the
/// same list in every run (simulation replays exactly); heights only affect speed.
const HEIGHT_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// An in-memory sorted table of internal keys. `Send + Sync`; share it with `Arc`.
pub struct Memtable {
    arena: Arc<Arena>,
    points: Skiplist,
    range_dels: Skiplist,
    /// xorshift64* state for tower heights; only the (single) writer touches it.
    rng: AtomicU64,
    /// Set while an `add` runs, to catch overlapping writers.
    writing: AtomicBool,
    /// The largest seqnum added (0 while empty): a bound point reads use to stop early.
    max_seq: AtomicU64,
    /// The range tombstones fragmented, built by the first read that needs them and dropped
    /// by the next range delete (see [`Memtable::range_del_set`]).
    range_del_set: Mutex<Option<Arc<TombstoneSet>>>,
    cmp: InternalComparator,
}

impl fmt::Debug for Memtable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memtable")
            .field("arena", &self.arena)
            .field("points", &self.points)
            .field("range_dels", &self.range_dels)
            .finish()
    }
}

/// Marks a writer inside `add`; panics if another one already is.
struct WriterGuard<'a>(&'a AtomicBool);

impl<'a> WriterGuard<'a> {
    fn enter(flag: &'a AtomicBool) -> WriterGuard<'a> {
        let was = flag.swap(true, Ordering::Acquire);
        assert!(!was, "Memtable::add called concurrently; callers must serialize writers");
        WriterGuard(flag)
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Memtable {
    /// A memtable with an arena of exactly `capacity` bytes, allocated now and added to
    /// `mem_counter` until the memtable (and every iterator holding it) is dropped.
    ///
    /// Panics if `capacity > u32::MAX` (arena offsets are 32-bit).
    pub fn new(capacity: usize, cmp: InternalComparator, mem_counter: Arc<AtomicU64>) -> Memtable {
        let arena = Arc::new(Arena::new(capacity, mem_counter));
        Memtable {
            points: Skiplist::new(arena.clone(), cmp.clone()),
            range_dels: Skiplist::new(arena.clone(), cmp.clone()),
            arena,
            rng: AtomicU64::new(HEIGHT_SEED),
            writing: AtomicBool::new(false),
            max_seq: AtomicU64::new(0),
            range_del_set: Mutex::new(None),
            cmp,
        }
    }

    /// An upper bound on the arena bytes one entry takes (node header, tallest tower, internal
    /// key, value, alignment padding), so the DB can check that a whole batch fits before
    /// applying any of it. Saturates instead of overflowing.
    pub fn entry_size_bound(user_key_len: usize, value_len: usize) -> usize {
        skiplist::node_size_bound(user_key_len.saturating_add(TRAILER_LEN), value_len)
    }

    /// Adds `user_key#seq,kind -> value`. A `Kind::RangeDelete` entry is the tombstone
    /// `[user_key, value)` and goes to the range-deletion list.
    ///
    /// Callers must not call `add` concurrently with itself (it panics if they do); readers
    /// may run meanwhile. Fails with `ArenaFull`, changing nothing, when the entry does not
    /// fit. Panics if the internal key is already present (seqnums are unique).
    pub fn add(
        &self,
        seq: u64,
        kind: Kind,
        user_key: &[u8],
        value: &[u8],
    ) -> Result<(), ArenaFull> {
        assert!(seq <= key::SEQNUM_MAX, "seqnum {seq} out of range");
        let _writer = WriterGuard::enter(&self.writing);
        let height = self.random_height();
        let list = if kind == Kind::RangeDelete { &self.range_dels } else { &self.points };
        list.insert(height, user_key, key::trailer(seq, kind as u8), value)?;
        if kind == Kind::RangeDelete {
            // After the insert: a set built from now on walks a list that holds it.
            *self.range_del_set.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
        // Before the write is published (the DB publishes under its lock), so a reader's view
        // that includes the entry also sees the bound.
        self.max_seq.fetch_max(seq, Ordering::Release);
        Ok(())
    }

    /// The largest seqnum added so far: no entry or tombstone of the memtable is above it.
    pub fn max_seq(&self) -> u64 {
        self.max_seq.load(Ordering::Acquire)
    }

    /// A tower height: 1, then each further level with probability 1/4.
    fn random_height(&self) -> usize {
        // Only the writer (serialized by `WriterGuard`) uses the state, so load/store suffices.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        // The high bits of the xorshift64* product are the well-mixed ones.
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        let mut height = 1;
        while height < MAX_HEIGHT && (r >> (2 * (height - 1))) & 3 == 0 {
            height += 1;
        }
        height
    }

    /// An iterator over the point entries (not the range tombstones). It holds the memtable,
    /// and sees entries added after its creation if it reaches them.
    pub fn iter(self: &Arc<Self>) -> MemtableIter {
        MemtableIter { mt: self.clone(), node: None }
    }

    /// Every range tombstone, in internal-key order of its start.
    pub fn range_tombstones(&self) -> Vec<RangeTombstone> {
        let mut out = Vec::with_capacity(self.range_dels.len());
        self.for_each_range_tombstone(|start, end, seq| {
            out.push(RangeTombstone { start: start.to_vec(), end: end.to_vec(), seq });
        });
        out
    }

    /// The range tombstones fragmented ([`TombstoneSet`]), `None` when there are none;
    /// built once and reused until the next range delete.
    ///
    /// A read sees every tombstone its view holds: the tombstone was added (and the cache
    /// cleared) before the write was published, and a set stored after that clearing was
    /// built by a walk begun after it (both under the cache's lock); a set stored before it
    /// is cleared by it.
    pub fn range_del_set(&self) -> Option<Arc<TombstoneSet>> {
        if self.range_dels.len() == 0 {
            return None;
        }
        let mut cached = self.range_del_set.lock().unwrap_or_else(PoisonError::into_inner);
        let set = cached.get_or_insert_with(|| {
            Arc::new(TombstoneSet::new(&self.range_tombstones(), &self.cmp))
        });
        Some(set.clone())
    }

    /// Calls `f(start, end, seq)` for every range tombstone, in internal-key order of its
    /// start, without copying them.
    pub fn for_each_range_tombstone(&self, mut f: impl FnMut(&[u8], &[u8], u64)) {
        let mut n = self.range_dels.first();
        while let Some(node) = n {
            // SAFETY: `node` came from `self.range_dels`.
            let (k, v) = unsafe { (self.range_dels.key(node), self.range_dels.value(node)) };
            f(key::user_key(k), v, key::trailer_of(k) >> 8);
            // SAFETY: `node` came from `self.range_dels`.
            n = unsafe { self.range_dels.next(node) };
        }
    }

    /// The arena size in bytes.
    pub fn capacity(&self) -> usize {
        self.arena.capacity()
    }

    /// Arena bytes taken so far (padding included).
    pub fn used_bytes(&self) -> usize {
        self.arena.used()
    }

    /// True when nothing (neither point entry nor range tombstone) was added.
    pub fn is_empty(&self) -> bool {
        self.entry_count() == 0
    }

    /// Entries added: point entries plus range tombstones.
    pub fn entry_count(&self) -> usize {
        self.points.len() + self.range_dels.len()
    }
}

/// A pinned entry's token is its node in `points`: only `MemtableIter::value_pin` makes one,
/// from its own memtable and current node.
impl PinSource for Memtable {
    unsafe fn pinned_bytes(&self, token: u32) -> &[u8] {
        let node = Node::from_token(token).expect("a pin token is a node, never 0");
        // SAFETY: the caller passes a token this memtable handed out, a node of `self.points`
        // (`PinSource`'s contract); the arena lives as long as `self`, and value bytes never
        // change once published.
        unsafe { self.points.value(node) }
    }
}

/// A cursor over a memtable's point entries. Keys and values are slices into the arena,
/// which the iterator keeps alive.
pub struct MemtableIter {
    mt: Arc<Memtable>,
    /// The current node of `mt.points`, `None` when not positioned.
    node: Option<Node>,
}

impl fmt::Debug for MemtableIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cur = self.valid().then(|| key::parse(self.key()));
        f.debug_struct("MemtableIter").field("current", &cur).finish()
    }
}

impl MemtableIter {
    fn current(&self) -> Node {
        self.node.expect("memtable iterator used while not valid")
    }
}

// Every `Node` in `self.node` came from `self.mt.points`, which is what the unsafe calls below
// require.
impl InternalIterator for MemtableIter {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.node = self.mt.points.seek_ge(target);
        Ok(())
    }

    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.node = self.mt.points.seek_lt(target);
        Ok(())
    }

    fn first(&mut self) -> Result<()> {
        self.node = self.mt.points.first();
        Ok(())
    }

    fn last(&mut self) -> Result<()> {
        self.node = self.mt.points.last();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        // SAFETY: the node came from `self.mt.points`.
        self.node = unsafe { self.mt.points.next(self.current()) };
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        // SAFETY: the node came from `self.mt.points`.
        self.node = unsafe { self.mt.points.prev(self.current()) };
        Ok(())
    }

    fn valid(&self) -> bool {
        self.node.is_some()
    }

    fn key(&self) -> &[u8] {
        // SAFETY: the node came from `self.mt.points`; the arena lives as long as `self.mt`.
        unsafe { self.mt.points.key(self.current()) }
    }

    fn value(&self) -> &[u8] {
        // SAFETY: the node came from `self.mt.points`; the arena lives as long as `self.mt`.
        unsafe { self.mt.points.value(self.current()) }
    }

    fn value_pin(&self) -> Option<PinnedValue> {
        let source: Arc<dyn PinSource> = self.mt.clone();
        // SAFETY: the token is the current node of `self.mt.points`, and `source` is `self.mt`.
        Some(unsafe { PinnedValue::in_source(source, self.current().to_token()) })
    }
}

#[cfg(test)]
mod tests {
    use crate::sync::atomic::AtomicUsize;
    use std::cmp::Ordering as CmpOrdering;
    use std::collections::BTreeMap;
    use std::ops::Bound;

    use proptest::prelude::*;

    use super::*;
    use crate::comparator::Bytewise;
    use crate::datadriven::{self, TestCase};

    fn bytewise() -> InternalComparator {
        InternalComparator::new(Arc::new(Bytewise))
    }

    fn new_mt(capacity: usize) -> Arc<Memtable> {
        Arc::new(Memtable::new(capacity, bytewise(), Arc::new(AtomicU64::new(0))))
    }

    const KIND_NAMES: [(&str, u8); 6] = [
        ("DEL", Kind::Delete as u8),
        ("SET", Kind::Set as u8),
        ("MERGE", Kind::Merge as u8),
        ("SINGLEDEL", Kind::SingleDelete as u8),
        ("RANGEDEL", Kind::RangeDelete as u8),
        ("MAX", Kind::MAX),
    ];

    /// Parses `user#seq,KIND` into an encoded internal key.
    fn parse_ikey(s: &str) -> Vec<u8> {
        let (user, rest) = s.rsplit_once('#').unwrap_or_else(|| panic!("no '#' in {s}"));
        let (seq, kind) = rest.split_once(',').unwrap_or_else(|| panic!("no ',' in {s}"));
        let kind =
            KIND_NAMES.iter().find(|(n, _)| *n == kind).unwrap_or_else(|| panic!("kind {kind}")).1;
        let mut out = Vec::new();
        key::append(&mut out, user.as_bytes(), seq.parse().expect("seqnum"), kind);
        out
    }

    fn fmt_ikey(k: &[u8]) -> String {
        let t = key::trailer_of(k);
        let kind = KIND_NAMES.iter().find(|(_, b)| u64::from(*b) == t & 0xff).expect("kind").0;
        format!("{}#{},{kind}", String::from_utf8_lossy(key::user_key(k)), t >> 8)
    }

    fn fmt_pos(it: &MemtableIter) -> String {
        if it.valid() {
            format!("{}: {}", fmt_ikey(it.key()), String::from_utf8_lossy(it.value()))
        } else {
            ".".to_string()
        }
    }

    fn run_case(mt: &mut Arc<Memtable>, case: &TestCase) -> String {
        let mut out = String::new();
        match case.cmd.as_str() {
            "new" => {
                *mt = new_mt(case.arg_or("capacity", 1 << 16));
                out.push_str(&format!("capacity={}\n", mt.capacity()));
            }
            "add" => {
                // Lines: `user#seq,KIND [value]`; a RANGEDEL's value is the end key.
                for line in case.input.lines() {
                    let (k, v) = line.split_once(' ').unwrap_or((line, ""));
                    let ikey = parse_ikey(k);
                    let p = key::parse(&ikey).expect("valid key");
                    let bound = Memtable::entry_size_bound(p.user_key.len(), v.len());
                    let before = mt.used_bytes();
                    match mt.add(p.seq, p.kind, p.user_key, v.as_bytes()) {
                        Ok(()) => assert!(mt.used_bytes() - before <= bound),
                        Err(ArenaFull) => out.push_str(&format!("{k}: arena full\n")),
                    }
                }
                out.push_str(&format!("entries={} used={}\n", mt.entry_count(), mt.used_bytes()));
            }
            "iter" => {
                let mut it = mt.iter();
                for line in case.input.lines() {
                    let mut words = line.split_whitespace();
                    let op = words.next().expect("op");
                    let arg = words.next();
                    match op {
                        "first" => it.first(),
                        "last" => it.last(),
                        "next" => it.next(),
                        "prev" => it.prev(),
                        "seek-ge" => it.seek_ge(&parse_ikey(arg.expect("target"))),
                        "seek-lt" => it.seek_lt(&parse_ikey(arg.expect("target"))),
                        _ => panic!("line {}: unknown iter op {op}", case.line),
                    }
                    .expect("memtable iterators do not fail");
                    out.push_str(&format!("{line}: {}\n", fmt_pos(&it)));
                }
            }
            "scan" => {
                let mut it = mt.iter();
                if case.has("reverse") {
                    it.last().unwrap();
                } else {
                    it.first().unwrap();
                }
                while it.valid() {
                    out.push_str(&fmt_pos(&it));
                    out.push('\n');
                    if case.has("reverse") {
                        it.prev().unwrap();
                    } else {
                        it.next().unwrap();
                    }
                }
            }
            "range-tombstones" => {
                for t in mt.range_tombstones() {
                    out.push_str(&format!("{t:?}\n"));
                }
            }
            "stats" => {
                out.push_str(&format!(
                    "entries={} empty={} used={} capacity={}\n",
                    mt.entry_count(),
                    mt.is_empty(),
                    mt.used_bytes(),
                    mt.capacity()
                ));
            }
            other => panic!("line {}: unknown command {other}", case.line),
        }
        out
    }

    #[test]
    fn datadriven_memtable() {
        let mut mt = new_mt(1 << 16);
        datadriven::run("testdata/memtable", |case| run_case(&mut mt, case));
    }

    /// A pinned value reads its entry's bytes in the arena, and keeps the memtable alive
    /// after every other holder and later writes (Miri checks the token's unsafe read).
    #[test]
    fn pinned_values_outlive_the_iterator_and_the_memtable_handle() {
        let mt = new_mt(1 << 16);
        let values: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'a' + i; usize::from(i)]).collect();
        for (i, v) in values.iter().enumerate() {
            mt.add(i as u64 + 1, Kind::Set, format!("k{i:02}").as_bytes(), v).unwrap();
        }
        let mut it = mt.iter();
        it.first().unwrap();
        let mut pins = Vec::new();
        while it.valid() {
            pins.push(it.value_pin().expect("a memtable pins its values"));
            it.next().unwrap();
        }
        mt.add(100, Kind::Set, b"k99", b"later").unwrap();
        drop(it);
        drop(mt);
        assert_eq!(pins.len(), values.len());
        for (pin, want) in pins.iter().zip(&values) {
            assert!(pin.is_pinned());
            assert_eq!(&pin[..], &want[..]);
        }
    }

    /// The cached fragments answer as the tombstones do, and a range delete added after
    /// they were cached is seen by the next read.
    #[test]
    fn cached_range_del_set_follows_every_range_delete() {
        let mt = new_mt(1 << 16);
        assert!(mt.range_del_set().is_none());
        mt.add(1, Kind::Set, b"b", b"v").unwrap();
        mt.add(2, Kind::RangeDelete, b"a", b"c").unwrap();
        let first = mt.range_del_set().expect("one tombstone");
        assert!(Arc::ptr_eq(&first, &mt.range_del_set().unwrap()), "cached, not rebuilt");
        assert_eq!(first.max_covering_at(b"b", 10), Some(2));
        assert_eq!(first.max_covering_at(b"d", 10), None);
        mt.add(3, Kind::RangeDelete, b"b", b"e").unwrap();
        let second = mt.range_del_set().unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "the new tombstone dropped the cache");
        assert_eq!(second.max_covering_at(b"b", 10), Some(3));
        assert_eq!(second.max_covering_at(b"b", 2), Some(2), "read at a snapshot");
        assert_eq!(second.max_covering_at(b"d", 10), Some(3));
        // A point write keeps the cache.
        mt.add(4, Kind::Set, b"z", b"v").unwrap();
        assert!(Arc::ptr_eq(&second, &mt.range_del_set().unwrap()));
    }

    #[test]
    fn send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Memtable>();
        fn check_send<T: Send>() {}
        check_send::<MemtableIter>();
    }

    #[test]
    fn memory_counter_returns_to_zero_after_last_holder_drops() {
        let counter = Arc::new(AtomicU64::new(0));
        let a = Arc::new(Memtable::new(1000, bytewise(), counter.clone()));
        let b = Memtable::new(24, bytewise(), counter.clone());
        assert_eq!(counter.load(Ordering::SeqCst), 1024);
        a.add(1, Kind::Set, b"k", b"v").unwrap();
        let mut it = a.iter();
        drop(a);
        drop(b);
        // The iterator still holds the first memtable, and its bytes.
        assert_eq!(counter.load(Ordering::SeqCst), 1000);
        it.first().unwrap();
        assert_eq!((it.key(), it.value()), (&key::encode(b"k", 1, Kind::Set)[..], &b"v"[..]));
        drop(it);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn entry_larger_than_arena_fails_without_panicking() {
        let mt = new_mt(64);
        assert_eq!(mt.add(1, Kind::Set, &[b'x'; 100], b""), Err(ArenaFull));
        assert_eq!(mt.add(2, Kind::RangeDelete, b"a", &[b'z'; 100]), Err(ArenaFull));
        assert!(mt.is_empty());
        assert_eq!(mt.used_bytes(), 0);
        // The bound saturates rather than overflowing on absurd lengths.
        assert_eq!(Memtable::entry_size_bound(usize::MAX, usize::MAX), usize::MAX);
        mt.add(3, Kind::Set, b"a", b"b").unwrap();
        assert_eq!(mt.entry_count(), 1);
    }

    #[test]
    #[should_panic(expected = "called concurrently")]
    fn overlapping_writers_panic() {
        let mt = new_mt(1024);
        // Stands in for a second writer that is inside `add` right now.
        let _other = WriterGuard::enter(&mt.writing);
        let _ = mt.add(1, Kind::Set, b"a", b"");
    }

    #[test]
    fn heights_are_deterministic_and_bounded() {
        let a = new_mt(0);
        let b = new_mt(0);
        let ha: Vec<usize> = (0..1000).map(|_| a.random_height()).collect();
        let hb: Vec<usize> = (0..1000).map(|_| b.random_height()).collect();
        assert_eq!(ha, hb);
        assert!(ha.iter().all(|h| (1..=MAX_HEIGHT).contains(h)));
        // Roughly 3/4 of towers have height 1.
        let ones = ha.iter().filter(|&&h| h == 1).count();
        assert!((650..850).contains(&ones), "{ones} towers of height 1");
        assert!(ha.iter().any(|&h| h >= 4));
    }

    /// A model key ordered like `InternalComparator` over `Bytewise`.
    type ModelKey = (Vec<u8>, std::cmp::Reverse<u64>);

    fn model_key(ikey: &[u8]) -> ModelKey {
        (key::user_key(ikey).to_vec(), std::cmp::Reverse(key::trailer_of(ikey)))
    }

    fn model_ikey(k: &ModelKey) -> Vec<u8> {
        let mut out = k.0.clone();
        out.extend_from_slice(&k.1 .0.to_le_bytes());
        out
    }

    #[derive(Debug, Clone)]
    enum IterOp {
        First,
        Last,
        Next,
        Prev,
        SeekGe(Vec<u8>),
        SeekLt(Vec<u8>),
    }

    fn user_key_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(b"abc".to_vec()), 0..4)
    }

    fn ikey_strategy() -> impl Strategy<Value = Vec<u8>> {
        (user_key_strategy(), 0..12u64, 0..=Kind::MAX).prop_map(|(u, s, k)| {
            let mut out = Vec::new();
            key::append(&mut out, &u, s, k);
            out
        })
    }

    fn iter_op_strategy() -> impl Strategy<Value = IterOp> {
        prop_oneof![
            1 => Just(IterOp::First),
            1 => Just(IterOp::Last),
            3 => Just(IterOp::Next),
            3 => Just(IterOp::Prev),
            2 => ikey_strategy().prop_map(IterOp::SeekGe),
            2 => ikey_strategy().prop_map(IterOp::SeekLt),
        ]
    }

    fn entry_strategy() -> impl Strategy<Value = (Vec<u8>, u64, u8, Vec<u8>)> {
        (user_key_strategy(), 0..12u64, 0..4u8, prop::collection::vec(any::<u8>(), 0..6))
    }

    fn proptest_config() -> ProptestConfig {
        if cfg!(miri) {
            ProptestConfig { cases: 3, failure_persistence: None, ..ProptestConfig::default() }
        } else {
            ProptestConfig { cases: 256, ..ProptestConfig::default() }
        }
    }

    const MAX_ENTRIES: usize = if cfg!(miri) { 20 } else { 200 };
    const MAX_OPS: usize = if cfg!(miri) { 20 } else { 200 };

    proptest! {
        #![proptest_config(proptest_config())]

        #[test]
        fn matches_btreemap(
            entries in prop::collection::vec(entry_strategy(), 0..MAX_ENTRIES),
            ops in prop::collection::vec(iter_op_strategy(), 0..MAX_OPS),
            capacity in prop_oneof![0..2048usize, Just(1usize << 16)],
        ) {
            let mt = new_mt(capacity);
            let mut model: BTreeMap<ModelKey, Vec<u8>> = BTreeMap::new();
            for (user, seq, kind, value) in entries {
                let kind = Kind::from_u8(kind).expect("point kind");
                let ikey = key::encode(&user, seq, kind);
                // Internal keys are unique in the engine (seqnums are); skip repeats.
                if model.keys().any(|k| k.0 == user && k.1 .0 >> 8 == seq) {
                    continue;
                }
                let before = mt.used_bytes();
                let bound = Memtable::entry_size_bound(user.len(), value.len());
                match mt.add(seq, kind, &user, &value) {
                    Ok(()) => {
                        prop_assert!(mt.used_bytes() - before <= bound);
                        model.insert(model_key(&ikey), value);
                    }
                    Err(ArenaFull) => {
                        prop_assert!(before + bound > capacity);
                        prop_assert_eq!(mt.used_bytes(), before);
                    }
                }
            }
            prop_assert_eq!(mt.entry_count(), model.len());
            prop_assert_eq!(mt.is_empty(), model.is_empty());

            // Full scans both ways.
            let want: Vec<(Vec<u8>, Vec<u8>)> =
                model.iter().map(|(k, v)| (model_ikey(k), v.clone())).collect();
            let mut it = mt.iter();
            let mut got = Vec::new();
            it.first().unwrap();
            while it.valid() {
                got.push((it.key().to_vec(), it.value().to_vec()));
                it.next().unwrap();
            }
            prop_assert_eq!(&got, &want);
            got.clear();
            it.last().unwrap();
            while it.valid() {
                got.push((it.key().to_vec(), it.value().to_vec()));
                it.prev().unwrap();
            }
            got.reverse();
            prop_assert_eq!(&got, &want);

            // Random positioning against the model's cursor.
            let mut pos: Option<ModelKey> = None;
            for op in ops {
                let found = match &op {
                    IterOp::First => {
                        it.first().unwrap();
                        model.keys().next()
                    }
                    IterOp::Last => {
                        it.last().unwrap();
                        model.keys().next_back()
                    }
                    IterOp::Next => {
                        let Some(cur) = pos.clone() else { continue };
                        it.next().unwrap();
                        model.range((Bound::Excluded(cur), Bound::Unbounded)).next().map(|e| e.0)
                    }
                    IterOp::Prev => {
                        let Some(cur) = pos.clone() else { continue };
                        it.prev().unwrap();
                        model.range(..cur).next_back().map(|e| e.0)
                    }
                    IterOp::SeekGe(t) => {
                        it.seek_ge(t).unwrap();
                        model.range(model_key(t)..).next().map(|e| e.0)
                    }
                    IterOp::SeekLt(t) => {
                        it.seek_lt(t).unwrap();
                        model.range(..model_key(t)).next_back().map(|e| e.0)
                    }
                };
                pos = found.cloned();
                prop_assert_eq!(it.valid(), pos.is_some(), "after {:?}", op);
                if let Some(k) = &pos {
                    prop_assert_eq!(it.key(), &model_ikey(k)[..], "after {:?}", op);
                    prop_assert_eq!(it.value(), &model[k][..], "after {:?}", op);
                }
            }
        }

        #[test]
        fn range_tombstones_sorted_and_separate(
            dels in prop::collection::vec((user_key_strategy(), user_key_strategy(), 0..50u64), 0..MAX_ENTRIES),
        ) {
            let mt = new_mt(1 << 16);
            let mut model: BTreeMap<ModelKey, Vec<u8>> = BTreeMap::new();
            for (start, end, seq) in dels {
                let ikey = key::encode(&start, seq, Kind::RangeDelete);
                if model.contains_key(&model_key(&ikey)) {
                    continue;
                }
                mt.add(seq, Kind::RangeDelete, &start, &end).unwrap();
                model.insert(model_key(&ikey), end);
            }
            let want: Vec<RangeTombstone> = model
                .iter()
                .map(|(k, v)| RangeTombstone { start: k.0.clone(), end: v.clone(), seq: k.1 .0 >> 8 })
                .collect();
            prop_assert_eq!(mt.range_tombstones(), want);
            prop_assert_eq!(mt.entry_count(), model.len());
            // Range deletes never show up among point entries.
            let mut it = mt.iter();
            it.first().unwrap();
            prop_assert!(!it.valid());
        }
    }

    /// One writer inserts while readers scan both ways: every scan is strictly ordered and
    /// contains at least every entry whose insertion finished before the scan began.
    #[test]
    #[expect(clippy::disallowed_methods, reason = "concurrent readers are what this test is about")]
    fn concurrent_readers_see_ordered_prefixes() {
        const N: usize = if cfg!(miri) { 40 } else { 5000 };
        const READERS: usize = 2;
        // Spread keys so inserts land all over the list, not only at its end.
        let user_key = |i: usize| format!("{:08}", (i * 7919) % N).into_bytes();
        let mt = new_mt(N * Memtable::entry_size_bound(8, 8));
        let done_count = AtomicUsize::new(0);
        let cmp = bytewise();
        crate::sync::thread::scope(|s| {
            for r in 0..READERS {
                let (mt, done_count, cmp) = (&mt, &done_count, &cmp);
                s.spawn(move || {
                    let mut it = mt.iter();
                    loop {
                        let done = done_count.load(Ordering::Acquire);
                        let mut seen = Vec::new();
                        let mut last: Option<Vec<u8>> = None;
                        let reverse = r % 2 == 1;
                        let want = if reverse { CmpOrdering::Greater } else { CmpOrdering::Less };
                        if reverse {
                            it.last().unwrap()
                        } else {
                            it.first().unwrap()
                        }
                        while it.valid() {
                            let k = it.key().to_vec();
                            let i: usize =
                                std::str::from_utf8(it.value()).unwrap().parse().unwrap();
                            assert_eq!(k, key::encode(&user_key(i), i as u64 + 1, Kind::Set));
                            if let Some(last) = &last {
                                assert_eq!(cmp.compare(last, &k), want);
                            }
                            seen.push(i);
                            last = Some(k);
                            if reverse {
                                it.prev().unwrap()
                            } else {
                                it.next().unwrap()
                            }
                        }
                        seen.sort_unstable();
                        assert!(seen.len() >= done);
                        // Every entry finished before the scan started was seen.
                        for i in 0..done {
                            assert!(seen.binary_search(&i).is_ok(), "entry {i} missing");
                        }
                        if done == N {
                            break;
                        }
                        // Random-access reads too.
                        if done > 0 {
                            let i = done - 1;
                            it.seek_ge(&key::seek_key(&user_key(i), key::SEQNUM_MAX)).unwrap();
                            assert!(it.valid());
                            assert_eq!(it.value(), format!("{i}").as_bytes());
                        }
                    }
                });
            }
            for i in 0..N {
                mt.add(i as u64 + 1, Kind::Set, &user_key(i), format!("{i}").as_bytes()).unwrap();
                done_count.store(i + 1, Ordering::Release);
            }
        });
        assert_eq!(mt.entry_count(), N);
    }
}
