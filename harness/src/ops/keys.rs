//! The key manager: makes `prefix@suffix` keys that collide often, and tracks per key whether a
//! `single_delete` is still a valid use.
//!
//! SingleDelete validity (SEMANTICS.md, "SingleDelete"), made conservative: a key may be
//! single-deleted only while, counting every write ever issued for it (direct or in a batch,
//! committed, pending, aborted or lost in a crash alike):
//! - it was put at most once,
//! - it was never deleted, single-deleted or merged,
//! - no range delete ever covered it (even one issued before the key first appeared),
//! - no batch holds a pending single_delete of it.
//!
//! Counting writes when they are *issued* rather than when they commit over-counts, which is
//! safe. The one ordering hazard left is a pending single_delete: the writes issued after it but
//! committed before it would end up beneath it. So a pending single_delete *locks* its key: no
//! other write to that key, and no range delete over it, is issued until its batch commits or
//! aborts (or a restart or crash ends the batch).

use std::collections::BTreeMap;
use std::ops::Bound;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::BatchId;

/// What the manager knows about one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyState {
    /// Puts issued (direct or batched).
    pub puts: u32,
    /// Ever deleted, single-deleted or merged.
    pub tainted: bool,
    /// Position in creation order.
    created: u32,
}

/// Tracks keys, prefixes and single_delete validity, and draws keys.
#[derive(Debug, Default)]
pub struct KeyManager {
    keys: BTreeMap<Vec<u8>, KeyState>,
    /// Known prefixes (the part before `@`), in creation order so draws are stable.
    prefixes: Vec<Vec<u8>>,
    /// Every key, in creation order (the map above is for lookups).
    order: Vec<Vec<u8>>,
    /// Every range delete ever issued, `[start, end)`.
    range_deletes: Vec<(Vec<u8>, Vec<u8>)>,
    /// Creation positions, ascending, of the keys put exactly once that are still valid
    /// single_delete targets: never tainted and never under a range delete. Each condition
    /// only ever turns false, and a lock implies a taint, so membership changes at a put, a
    /// taint or a range delete, and `draw_single_delete_key` need not scan every key.
    put_once: Vec<u32>,
    /// Keys with a pending single_delete, and the batch holding it.
    locks: BTreeMap<Vec<u8>, BatchId>,
}

impl KeyManager {
    /// An empty manager.
    pub fn new() -> KeyManager {
        KeyManager::default()
    }

    /// The state of `key`, if the manager has seen it.
    pub fn state(&self, key: &[u8]) -> Option<&KeyState> {
        self.keys.get(key)
    }

    /// Every key seen so far, in creation order.
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.order
    }

    /// Every key seen so far, in key order.
    pub fn sorted_keys(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.keys.keys()
    }

    /// True when a `single_delete(key)` issued now is a valid use.
    pub fn can_single_delete(&self, key: &[u8]) -> bool {
        let state_ok = self.keys.get(key).is_none_or(|s| !s.tainted && s.puts <= 1);
        state_ok && !self.is_locked(key) && !self.ever_range_deleted(key)
    }

    /// True when a batch holds a pending single_delete of `key`: nothing else may write it.
    pub fn is_locked(&self, key: &[u8]) -> bool {
        self.locks.contains_key(key)
    }

    /// True when `[start, end)` covers a locked key.
    pub fn range_hits_lock(&self, start: &[u8], end: &[u8]) -> bool {
        self.locks.range(start.to_vec()..).next().is_some_and(|(k, _)| k.as_slice() < end)
    }

    fn ever_range_deleted(&self, key: &[u8]) -> bool {
        self.range_deletes.iter().any(|(s, e)| s.as_slice() <= key && key < e.as_slice())
    }

    fn entry(&mut self, key: &[u8]) -> &mut KeyState {
        if !self.keys.contains_key(key) {
            self.learn(key);
        }
        self.keys.get_mut(key).expect("learned above")
    }

    /// Records a key (and its prefix) without a write, e.g. one read or seeked to.
    fn learn(&mut self, key: &[u8]) {
        if self.keys.contains_key(key) {
            return;
        }
        let created = u32::try_from(self.order.len()).expect("fewer than 2^32 keys");
        self.keys.insert(key.to_vec(), KeyState { created, ..KeyState::default() });
        self.order.push(key.to_vec());
        if let Some(at) = key.iter().position(|&b| b == b'@') {
            let prefix = &key[..at];
            if !self.prefixes.iter().any(|p| p.as_slice() == prefix) {
                self.prefixes.push(prefix.to_vec());
            }
        }
    }

    /// Records a put of `key`.
    pub fn on_put(&mut self, key: &[u8]) {
        assert!(!self.is_locked(key), "write to a key with a pending single_delete");
        let state = self.entry(key);
        state.puts += 1;
        let (puts, tainted, created) = (state.puts, state.tainted, state.created);
        match puts {
            1 if !tainted && !self.ever_range_deleted(key) => self.set_put_once(created, true),
            2 => self.set_put_once(created, false),
            _ => {}
        }
    }

    /// Marks `key` deleted, single-deleted or merged: no longer a single_delete target.
    fn taint(&mut self, key: &[u8]) {
        let state = self.entry(key);
        state.tainted = true;
        let created = state.created;
        self.set_put_once(created, false);
    }

    fn set_put_once(&mut self, created: u32, member: bool) {
        match (self.put_once.binary_search(&created), member) {
            (Err(at), true) => self.put_once.insert(at, created),
            (Ok(at), false) => {
                self.put_once.remove(at);
            }
            _ => {}
        }
    }

    /// Records a delete or a merge of `key`.
    pub fn on_delete_or_merge(&mut self, key: &[u8]) {
        assert!(!self.is_locked(key), "write to a key with a pending single_delete");
        self.taint(key);
    }

    /// Records a single_delete of `key`, pending in `batch` when it is batched.
    pub fn on_single_delete(&mut self, key: &[u8], batch: Option<BatchId>) {
        assert!(self.can_single_delete(key), "invalid single_delete generated");
        self.taint(key);
        if let Some(b) = batch {
            self.locks.insert(key.to_vec(), b);
        }
    }

    /// Records a range delete of `[start, end)` (issued only when it covers no locked key).
    pub fn on_delete_range(&mut self, start: &[u8], end: &[u8]) {
        assert!(!self.range_hits_lock(start, end), "range delete over a pending single_delete");
        if start < end {
            self.range_deletes.push((start.to_vec(), end.to_vec()));
            let mut covered = Vec::new();
            for (_, state) in
                self.keys.range_mut::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            {
                state.tainted = true;
                covered.push(state.created);
            }
            for created in covered {
                self.set_put_once(created, false);
            }
        }
    }

    /// True when `batch` holds a pending single_delete.
    pub fn holds_lock(&self, batch: BatchId) -> bool {
        self.locks.values().any(|b| *b == batch)
    }

    /// A batch committed or aborted: its single_deletes are no longer pending.
    pub fn on_batch_end(&mut self, batch: BatchId) {
        self.locks.retain(|_, b| *b != batch);
    }

    /// A restart or crash ended every batch.
    pub fn on_all_batches_end(&mut self) {
        self.locks.clear();
    }

    /// Draws a key: usually an existing one (so ops collide), sometimes a new key under an
    /// existing prefix, sometimes a new prefix. The key is learned, not written.
    pub fn draw_key(&mut self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let roll = rng.gen_range(0..100);
        let key = if roll < 65 && !self.order.is_empty() {
            self.order[rng.gen_range(0..self.order.len())].clone()
        } else if roll < 90 && !self.prefixes.is_empty() {
            let prefix = self.prefixes[rng.gen_range(0..self.prefixes.len())].clone();
            with_suffix(prefix, rng)
        } else {
            with_suffix(new_prefix(rng), rng)
        };
        self.learn(&key);
        key
    }

    /// Draws a key that is not locked (for a write), falling back to a brand-new key.
    pub fn draw_writable_key(&mut self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        for _ in 0..8 {
            let k = self.draw_key(rng);
            if !self.is_locked(&k) {
                return k;
            }
        }
        self.fresh_key(rng)
    }

    /// A key never seen before (and so never locked, and single-deletable unless a past range
    /// delete covers it).
    pub fn fresh_key(&mut self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        loop {
            let prefix = if !self.prefixes.is_empty() && rng.gen_bool(0.7) {
                self.prefixes[rng.gen_range(0..self.prefixes.len())].clone()
            } else {
                new_prefix(rng)
            };
            let key = with_suffix(prefix, rng);
            if !self.keys.contains_key(&key) {
                self.learn(&key);
                return key;
            }
        }
    }

    /// Draws a key for a valid single_delete, preferring keys put exactly once (the use that
    /// matters), or `None` when no candidate turns up.
    pub fn draw_single_delete_key(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<u8>> {
        if !self.put_once.is_empty() && rng.gen_bool(0.85) {
            let created = self.put_once[rng.gen_range(0..self.put_once.len())];
            let key = &self.order[created as usize];
            debug_assert!(self.keys[key].puts == 1 && self.can_single_delete(key));
            return Some(key.clone());
        }
        for _ in 0..4 {
            let k = self.fresh_key(rng);
            if self.can_single_delete(&k) {
                return Some(k);
            }
        }
        None
    }

    /// A range `[start, end)` above every key known so far: it covers no key, so a range
    /// delete of it is valid whatever is locked, and a table holding only that tombstone
    /// overlaps no other table.
    pub fn range_past_all_keys(&self) -> (Vec<u8>, Vec<u8>) {
        let mut start = self.keys.keys().next_back().cloned().unwrap_or_default();
        start.push(0xff);
        let mut end = start.clone();
        end.push(0x01);
        (start, end)
    }

    /// Draws a pair `start <= end` for a range delete, compaction or bounds: mostly around
    /// existing keys and prefixes, so ranges cover something.
    pub fn draw_range(&mut self, rng: &mut ChaCha8Rng) -> (Vec<u8>, Vec<u8>) {
        let a = self.draw_bound(rng);
        let b = if rng.gen_bool(0.1) { a.clone() } else { self.draw_bound(rng) };
        if a <= b {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// A seek target or bound: an existing key, a bare `prefix@`, a `prefix@\xff` past the
    /// prefix, or a new key.
    pub fn draw_bound(&mut self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        match rng.gen_range(0..10) {
            0..=4 => self.draw_key(rng),
            5..=7 if !self.prefixes.is_empty() => {
                let mut p = self.prefixes[rng.gen_range(0..self.prefixes.len())].clone();
                p.push(b'@');
                if rng.gen_bool(0.3) {
                    p.push(0xff);
                }
                p
            }
            _ => with_suffix(new_prefix(rng), rng),
        }
    }
}

impl KeyManager {
    /// A prefix to pin an iterator to: mostly a known one, sometimes one no key has.
    pub fn draw_prefix(&mut self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        if !self.prefixes.is_empty() && rng.gen_bool(0.9) {
            self.prefixes[rng.gen_range(0..self.prefixes.len())].clone()
        } else {
            new_prefix(rng)
        }
    }
}

/// A new prefix: mostly one or two letters (few prefixes, many collisions), rarely long.
fn new_prefix(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let len = match rng.gen_range(0..100) {
        0..=59 => 1,
        60..=89 => 2,
        90..=98 => rng.gen_range(3..12),
        _ => rng.gen_range(64..300),
    };
    (0..len).map(|_| b'a' + rng.gen_range(0..8u8)).collect()
}

/// `prefix@suffix` with a short numeric suffix, sometimes empty, rarely long or binary.
fn with_suffix(mut prefix: Vec<u8>, rng: &mut ChaCha8Rng) -> Vec<u8> {
    prefix.push(b'@');
    match rng.gen_range(0..100) {
        0..=4 => {}
        5..=84 => prefix.extend_from_slice(rng.gen_range(0..200u32).to_string().as_bytes()),
        85..=97 => prefix.extend((0..rng.gen_range(1..6)).map(|_| rng.gen::<u8>())),
        _ => prefix.extend((0..rng.gen_range(32..512)).map(|_| b'0' + rng.gen_range(0..10u8))),
    }
    prefix
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn single_delete_validity_rules() {
        let mut m = KeyManager::new();
        assert!(m.can_single_delete(b"a@1"), "a never-written key");
        m.on_put(b"a@1");
        assert!(m.can_single_delete(b"a@1"), "put once");
        m.on_put(b"a@1");
        assert!(!m.can_single_delete(b"a@1"), "put twice");

        m.on_put(b"b@1");
        m.on_delete_or_merge(b"b@1");
        assert!(!m.can_single_delete(b"b@1"), "deleted");
        m.on_put(b"b@2");
        m.on_single_delete(b"b@2", None);
        assert!(!m.can_single_delete(b"b@2"), "single-deleted already");

        m.on_delete_range(b"c@", b"c@5");
        assert!(!m.can_single_delete(b"c@1"), "a key created after a range delete over it");
        assert!(m.can_single_delete(b"c@5"), "end is exclusive");
        m.on_delete_range(b"d@", b"d@");
        assert!(m.can_single_delete(b"d@"), "empty range covers nothing");
    }

    #[test]
    fn pending_single_delete_locks_the_key() {
        let mut m = KeyManager::new();
        m.on_put(b"a@1");
        m.on_single_delete(b"a@1", Some(BatchId(3)));
        assert!(m.is_locked(b"a@1"));
        assert!(m.range_hits_lock(b"a@", b"b@"));
        assert!(!m.range_hits_lock(b"a@2", b"b@"));
        assert!(!m.range_hits_lock(b"a@", b"a@1"));
        m.on_batch_end(BatchId(4));
        assert!(m.is_locked(b"a@1"));
        m.on_batch_end(BatchId(3));
        assert!(!m.is_locked(b"a@1"));
        m.on_put(b"b@1");
        m.on_single_delete(b"b@1", Some(BatchId(5)));
        m.on_all_batches_end();
        assert!(!m.is_locked(b"b@1"));
    }

    #[test]
    fn drawn_keys_collide_and_have_prefixes() {
        let mut m = KeyManager::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let drawn: Vec<Vec<u8>> = (0..500).map(|_| m.draw_key(&mut rng)).collect();
        assert!(drawn.iter().all(|k| k.contains(&b'@')));
        let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
        assert!(distinct.len() < 300, "keys repeat: {} distinct of 500", distinct.len());
        for _ in 0..100 {
            let (a, b) = m.draw_range(&mut rng);
            assert!(a <= b);
        }
    }

    /// The put-once set kept by `on_*` equals the definition: every key put exactly once
    /// that a single_delete may target now, in creation order.
    #[test]
    fn put_once_set_matches_a_scan_of_every_key() {
        for seed in 0..20 {
            let mut m = KeyManager::new();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for step in 0..400 {
                match rng.gen_range(0..10) {
                    0..=3 => {
                        let k = m.draw_writable_key(&mut rng);
                        m.on_put(&k);
                    }
                    4 => {
                        let k = m.draw_writable_key(&mut rng);
                        m.on_delete_or_merge(&k);
                    }
                    5 | 6 => {
                        if let Some(k) = m.draw_single_delete_key(&mut rng) {
                            let batch = rng.gen_bool(0.5).then(|| BatchId(rng.gen_range(0..3)));
                            m.on_single_delete(&k, batch);
                        }
                    }
                    7 => {
                        let (a, b) = m.draw_range(&mut rng);
                        if !m.range_hits_lock(&a, &b) {
                            m.on_delete_range(&a, &b);
                        }
                    }
                    8 => m.on_batch_end(BatchId(rng.gen_range(0..3))),
                    _ => m.on_all_batches_end(),
                }
                let scanned: Vec<&Vec<u8>> = m
                    .order
                    .iter()
                    .filter(|k| m.keys[k.as_slice()].puts == 1 && m.can_single_delete(k))
                    .collect();
                let kept: Vec<&Vec<u8>> =
                    m.put_once.iter().map(|&i| &m.order[i as usize]).collect();
                assert_eq!(kept, scanned, "seed {seed} step {step}");
            }
        }
    }
}
