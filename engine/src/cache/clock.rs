//! CLOCK-Pro replacement for one cache shard: a ring of hot, cold and ghost entries swept by
//! three hands.
//!
//! The policy follows the CLOCK-Pro paper (Jiang, Chen, Zhang, USENIX ATC 2005) and the shape
//! Pebble gives it, written afresh for an owner that must never free a pinned block:
//!
//! - Every entry sits in one circular list, and every hand moves the same way round it. A new
//!   entry goes just behind the cold hand, so the cold hand reaches it last: a block gets one
//!   full lap of the cold hand as probation. (Pebble and the paper insert at the list head,
//!   behind the hot hand; with pinned blocks skipped, that let the cold hand settle right in
//!   front of the head and evict each block two inserts after it arrived, while older cold
//!   blocks it had passed were never looked at again. Behind the cold hand, probation does not
//!   depend on where the hot hand happens to be.)
//! - A block enters **cold** (on probation). If it is read again before the cold hand comes by,
//!   the cold hand promotes it to **hot**; otherwise the cold hand evicts its bytes and leaves a
//!   **ghost** (key and charge only) behind.
//! - Inserting a key that still has a ghost means the block was evicted too early: it comes back
//!   hot, and the cold region's target grows by its charge. A ghost that the test hand retires
//!   unused shrinks the target again. The cold target is how CLOCK-Pro adapts between recency
//!   and frequency.
//! - The hot hand demotes unreferenced hot entries to cold whenever the hot region outgrows
//!   `capacity - cold_target`. A one-pass scan only ever creates cold entries and ghosts that
//!   are never hit, so it cannot push the hot region around: that is the scan resistance.
//! - Ghosts are bounded: their total charge never exceeds the capacity (the test hand removes
//!   them), so ghost metadata stays proportional to what the shard can hold.
//!
//! Pinning: an entry whose block is also held by a `CacheHandle` (its `Arc` count is above one)
//! is never evicted. The cold hand skips it, and to still make progress it lets the hot hand
//! demote one hot entry for each skip (the pinned block borrows room from the hot region).
//! Eviction effort per call is bounded, as in RocksDB's clock cache: a shard full of pinned
//! blocks stays over capacity rather than sweeping the ring over and over, and the owner
//! retries when a handle is released. Counting pins by `Arc::strong_count` under the shard lock
//! is exact enough: new handles to a resident block are only made under that same lock, so a
//! count of one means nobody can hold or take the block.

use crate::sync::Arc;
use std::collections::BTreeMap;

use super::handle::Block;

/// Where a block lives: which cache user, which table file, which offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CacheKey {
    pub id: u64,
    pub file_num: u64,
    pub offset: u64,
}

/// The CLOCK-Pro state of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Resident and proven useful; only the hot hand demotes it.
    Hot,
    /// Resident on probation; the cold hand promotes or evicts it.
    Cold,
    /// Evicted, remembered by key and charge so a quick return is recognised.
    Ghost,
}

#[derive(Debug)]
pub(crate) struct Node {
    key: CacheKey,
    /// Bytes the entry stands for: block length plus `ENTRY_OVERHEAD`.
    charge: usize,
    kind: Kind,
    /// Set by a read; cleared by the hand that acts on it.
    referenced: bool,
    /// `Some` exactly when `kind` is `Hot` or `Cold`.
    block: Option<Arc<Block>>,
    prev: usize,
    next: usize,
}

/// What one step of the cold hand did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColdStep {
    /// The ring is empty.
    Idle,
    /// The hand passed a hot entry or a ghost.
    Passed,
    /// A referenced cold entry became hot.
    Promoted,
    /// A cold entry was pinned by a handle and stayed.
    SkippedPinned,
    /// A cold entry's block was dropped; a ghost remains.
    Evicted,
}

/// One shard's replacement state. All methods run under the shard's mutex.
#[derive(Debug)]
pub(crate) struct Clock {
    capacity: usize,
    /// Adaptive target for resident cold bytes, within `[cold_min, capacity]`.
    cold_target: usize,
    /// Floor of `cold_target`, so new blocks always have some probation room and the cold hand
    /// finds unpinned victims without first demoting hot entries.
    cold_min: usize,
    /// Slab of ring nodes; `None` slots are on `free`.
    nodes: Vec<Option<Node>>,
    free: Vec<usize>,
    index: BTreeMap<CacheKey, usize>,
    hand_hot: Option<usize>,
    hand_cold: Option<usize>,
    hand_test: Option<usize>,
    hot_bytes: usize,
    cold_bytes: usize,
    ghost_bytes: usize,
    hot_count: usize,
    cold_count: usize,
    ghost_count: usize,
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
}

/// Counters and sizes of one shard, summed by `Cache::metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClockStats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    pub resident_bytes: usize,
    pub hot_count: usize,
    pub cold_count: usize,
    pub ghost_count: usize,
    pub ghost_bytes: usize,
}

impl Clock {
    pub fn new(capacity: usize) -> Clock {
        let cold_min = capacity / 64;
        Clock {
            capacity,
            // Start with a quarter for probation; ghost hits and expiries move it from here.
            cold_target: (capacity / 4).max(cold_min),
            cold_min,
            nodes: Vec::new(),
            free: Vec::new(),
            index: BTreeMap::new(),
            hand_hot: None,
            hand_cold: None,
            hand_test: None,
            hot_bytes: 0,
            cold_bytes: 0,
            ghost_bytes: 0,
            hot_count: 0,
            cold_count: 0,
            ghost_count: 0,
            hits: 0,
            misses: 0,
            inserts: 0,
            evictions: 0,
        }
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Charges of resident (hot and cold) entries.
    pub fn resident_bytes(&self) -> usize {
        self.hot_bytes + self.cold_bytes
    }

    pub fn is_over_capacity(&self) -> bool {
        self.resident_bytes() > self.capacity
    }

    pub fn stats(&self) -> ClockStats {
        ClockStats {
            hits: self.hits,
            misses: self.misses,
            inserts: self.inserts,
            evictions: self.evictions,
            resident_bytes: self.resident_bytes(),
            hot_count: self.hot_count,
            cold_count: self.cold_count,
            ghost_count: self.ghost_count,
            ghost_bytes: self.ghost_bytes,
        }
    }

    /// The resident block for `key`, marked referenced; `None` (a miss) for absent keys and
    /// ghosts. The returned `Arc` is the caller's pin: it is cloned under the lock on purpose.
    pub fn lookup(&mut self, key: &CacheKey) -> Option<Arc<Block>> {
        let found = match self.index.get(key) {
            Some(&i) => {
                let node = self.node_mut(i);
                let block = node.block.clone();
                if block.is_some() {
                    node.referenced = true;
                }
                block
            }
            None => None,
        };
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// Adds or replaces the block for `key`. The caller keeps its own clone of `block` (the
    /// handle it returns), so the new entry is pinned and survives the eviction that follows.
    /// A block whose charge exceeds the whole shard is not admitted: it would only flush
    /// everything else. Any older entry for the key is removed all the same, so a later read
    /// never sees stale bytes.
    pub fn insert(&mut self, key: CacheKey, block: Arc<Block>) {
        self.inserts += 1;
        let charge = block.charge();
        if charge > self.capacity {
            if let Some(&i) = self.index.get(&key) {
                self.remove(i);
            }
            return;
        }
        match self.index.get(&key).copied() {
            Some(i) if self.node(i).kind != Kind::Ghost => {
                // Replacing resident bytes: a pinned old block lives on in its handles, outside
                // the index, and is still counted in `Cache::usage` until they drop it.
                let node = self.node_mut(i);
                let (kind, old_charge) = (node.kind, node.charge);
                node.block = Some(block);
                node.charge = charge;
                node.referenced = true;
                self.sub_kind(kind, old_charge);
                self.add_kind(kind, charge);
            }
            Some(i) => {
                // A ghost hit: the block was evicted too early. Give probation more room and
                // bring the block back hot.
                self.remove(i);
                self.cold_target = self.cold_target.saturating_add(charge).min(self.capacity);
                self.push_behind_cold(key, charge, Kind::Hot, block);
            }
            None => self.push_behind_cold(key, charge, Kind::Cold, block),
        }
    }

    /// Removes every entry (resident or ghost) of one table. Pinned blocks leave the index but
    /// stay alive in their handles.
    pub fn remove_file(&mut self, id: u64, file_num: u64) {
        let lo = CacheKey { id, file_num, offset: 0 };
        let hi = CacheKey { id, file_num, offset: u64::MAX };
        let doomed: Vec<usize> = self.index.range(lo..=hi).map(|(_, &i)| i).collect();
        for i in doomed {
            self.remove(i);
        }
    }

    /// Evicts unpinned blocks until the resident charge fits the capacity, within a bounded
    /// effort. Returns true if the shard is still over capacity (everything left is pinned, or
    /// the effort ran out); the owner then retries when a handle is released.
    pub fn evict(&mut self) -> bool {
        // Two laps of the cold hand suffice when nothing is pinned (one to promote or evict
        // what is cold now, one for what the hot hand demoted meanwhile); pins get the rest.
        let mut effort = 4 * self.ring_len() + 16;
        while self.is_over_capacity() && effort > 0 {
            effort -= 1;
            match self.step_cold() {
                ColdStep::Idle => break,
                ColdStep::SkippedPinned => {
                    self.step_hot();
                }
                ColdStep::Passed | ColdStep::Promoted | ColdStep::Evicted => {}
            }
        }
        self.is_over_capacity()
    }

    fn ring_len(&self) -> usize {
        self.hot_count + self.cold_count + self.ghost_count
    }

    fn hot_target(&self) -> usize {
        self.capacity - self.cold_target
    }

    fn step_cold(&mut self) -> ColdStep {
        let Some(i) = self.hand_cold else { return ColdStep::Idle };
        self.hand_cold = Some(self.node(i).next);
        let node = self.node_mut(i);
        let step = if node.kind != Kind::Cold {
            ColdStep::Passed
        } else if node.referenced {
            node.referenced = false;
            self.retag(i, Kind::Hot);
            ColdStep::Promoted
        } else if node.block.as_ref().is_some_and(|b| Arc::strong_count(b) > 1) {
            ColdStep::SkippedPinned
        } else {
            node.block = None;
            self.retag(i, Kind::Ghost);
            self.evictions += 1;
            ColdStep::Evicted
        };
        if step == ColdStep::Evicted {
            while self.ghost_bytes > self.capacity {
                self.step_test();
            }
        }
        while self.hot_bytes > self.hot_target() {
            if !self.step_hot() {
                break;
            }
        }
        step
    }

    /// One step of the hot hand: a referenced hot entry gets a second chance, an unreferenced
    /// one is demoted to cold (pinned or not: demotion frees nothing). Returns false on an
    /// empty ring.
    fn step_hot(&mut self) -> bool {
        let Some(i) = self.hand_hot else { return false };
        self.hand_hot = Some(self.node(i).next);
        let node = self.node_mut(i);
        if node.kind == Kind::Hot {
            if node.referenced {
                node.referenced = false;
            } else {
                self.retag(i, Kind::Cold);
            }
        }
        true
    }

    /// One step of the test hand: a ghost it meets has outlived its test period unused, so
    /// probation was long enough: the cold target shrinks and the ghost goes.
    fn step_test(&mut self) {
        let Some(i) = self.hand_test else { return };
        self.hand_test = Some(self.node(i).next);
        if self.node(i).kind == Kind::Ghost {
            let charge = self.node(i).charge;
            self.cold_target = self.cold_target.saturating_sub(charge).max(self.cold_min);
            self.remove(i);
        }
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("ring and index only hold live slots")
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("ring and index only hold live slots")
    }

    fn add_kind(&mut self, kind: Kind, charge: usize) {
        match kind {
            Kind::Hot => {
                self.hot_bytes += charge;
                self.hot_count += 1;
            }
            Kind::Cold => {
                self.cold_bytes += charge;
                self.cold_count += 1;
            }
            Kind::Ghost => {
                self.ghost_bytes += charge;
                self.ghost_count += 1;
            }
        }
    }

    fn sub_kind(&mut self, kind: Kind, charge: usize) {
        match kind {
            Kind::Hot => {
                self.hot_bytes -= charge;
                self.hot_count -= 1;
            }
            Kind::Cold => {
                self.cold_bytes -= charge;
                self.cold_count -= 1;
            }
            Kind::Ghost => {
                self.ghost_bytes -= charge;
                self.ghost_count -= 1;
            }
        }
    }

    fn retag(&mut self, i: usize, kind: Kind) {
        let node = self.node_mut(i);
        let (old, charge) = (node.kind, node.charge);
        node.kind = kind;
        self.sub_kind(old, charge);
        self.add_kind(kind, charge);
    }

    /// Links a new entry just behind the cold hand, which will come to it last.
    fn push_behind_cold(&mut self, key: CacheKey, charge: usize, kind: Kind, block: Arc<Block>) {
        let node =
            Node { key, charge, kind, referenced: false, block: Some(block), prev: 0, next: 0 };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        match self.hand_cold {
            None => {
                let node = self.node_mut(i);
                node.prev = i;
                node.next = i;
                self.hand_hot = Some(i);
                self.hand_cold = Some(i);
                self.hand_test = Some(i);
            }
            Some(h) => {
                let p = self.node(h).prev;
                let node = self.node_mut(i);
                node.prev = p;
                node.next = h;
                self.node_mut(p).next = i;
                self.node_mut(h).prev = i;
            }
        }
        let replaced = self.index.insert(key, i);
        debug_assert!(replaced.is_none(), "push_behind_cold of a key already in the ring");
        self.add_kind(kind, charge);
    }

    /// Unlinks and frees slot `i`, moving any hand that points at it to its successor.
    fn remove(&mut self, i: usize) {
        let node = self.nodes[i].take().expect("removing a live slot");
        let alone = node.next == i;
        for hand in [&mut self.hand_hot, &mut self.hand_cold, &mut self.hand_test] {
            if *hand == Some(i) {
                *hand = if alone { None } else { Some(node.next) };
            }
        }
        if !alone {
            self.node_mut(node.prev).next = node.next;
            self.node_mut(node.next).prev = node.prev;
        }
        self.index.remove(&node.key);
        self.sub_kind(node.kind, node.charge);
        self.free.push(i);
    }

    /// The resident blocks, for tests that recount usage from first principles.
    #[cfg(test)]
    pub fn resident_blocks(&self) -> Vec<Arc<Block>> {
        self.index.values().filter_map(|&i| self.node(i).block.clone()).collect()
    }

    /// Recomputes every derived quantity and checks the ring; panics on a broken invariant.
    #[cfg(test)]
    pub fn check_invariants(&self) {
        let mut sums = [(0usize, 0usize); 3];
        for (key, &i) in &self.index {
            let node = self.node(i);
            assert_eq!(&node.key, key, "index points at the wrong node");
            assert_eq!(node.block.is_some(), node.kind != Kind::Ghost, "{key:?} residency");
            if let Some(block) = &node.block {
                assert_eq!(block.charge(), node.charge, "{key:?} charge");
            }
            let slot = match node.kind {
                Kind::Hot => 0,
                Kind::Cold => 1,
                Kind::Ghost => 2,
            };
            sums[slot].0 += node.charge;
            sums[slot].1 += 1;
        }
        assert_eq!(sums[0], (self.hot_bytes, self.hot_count), "hot totals");
        assert_eq!(sums[1], (self.cold_bytes, self.cold_count), "cold totals");
        assert_eq!(sums[2], (self.ghost_bytes, self.ghost_count), "ghost totals");
        assert!(self.ghost_bytes <= self.capacity, "ghosts exceed capacity");
        assert!(self.cold_min <= self.cold_target && self.cold_target <= self.capacity);
        assert_eq!(self.nodes.iter().filter(|n| n.is_some()).count(), self.index.len());
        assert_eq!(self.free.len() + self.index.len(), self.nodes.len());
        // The ring visits every live node exactly once, and every hand is on it.
        match self.hand_hot {
            None => {
                assert!(self.index.is_empty());
                assert!(self.hand_cold.is_none() && self.hand_test.is_none());
            }
            Some(start) => {
                let mut seen = 0;
                let mut i = start;
                loop {
                    let node = self.node(i);
                    assert_eq!(self.node(node.next).prev, i, "ring links");
                    seen += 1;
                    assert!(seen <= self.index.len(), "ring longer than the index");
                    i = node.next;
                    if i == start {
                        break;
                    }
                }
                assert_eq!(seen, self.index.len(), "ring shorter than the index");
                for hand in [self.hand_cold, self.hand_test] {
                    let hand = hand.expect("non-empty ring has all hands");
                    assert!(self.nodes[hand].is_some(), "hand on a free slot");
                }
            }
        }
    }

    /// The ring from the hot hand onwards, one entry a line, for golden tests.
    #[cfg(all(test, not(miri)))]
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        writeln!(
            out,
            "capacity={} cold_target={} hot={}/{} cold={}/{} ghost={}/{}",
            self.capacity,
            self.cold_target,
            self.hot_count,
            self.hot_bytes,
            self.cold_count,
            self.cold_bytes,
            self.ghost_count,
            self.ghost_bytes
        )
        .expect("writing to a String");
        let Some(start) = self.hand_hot else { return out };
        let mut i = start;
        loop {
            let node = self.node(i);
            let mut hands = String::new();
            for (hand, name) in
                [(self.hand_hot, "hot"), (self.hand_cold, "cold"), (self.hand_test, "test")]
            {
                if hand == Some(i) {
                    hands.push_str(" <");
                    hands.push_str(name);
                }
            }
            let kind = match node.kind {
                Kind::Hot => "hot",
                Kind::Cold => "cold",
                Kind::Ghost => "ghost",
            };
            let pinned = node.block.as_ref().is_some_and(|b| Arc::strong_count(b) > 1);
            writeln!(
                out,
                "  {}/{}/{} {kind}{}{} charge={}{hands}",
                node.key.id,
                node.key.file_num,
                node.key.offset,
                if node.referenced { " ref" } else { "" },
                if pinned { " pinned" } else { "" },
                node.charge
            )
            .expect("writing to a String");
            i = node.next;
            if i == start {
                break;
            }
        }
        out
    }
}
