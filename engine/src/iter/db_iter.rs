//! [`DbIterator`], the user-facing iterator, and [`get_from_iter`], the reference point read.
//!
//! Both walk a merged [`InternalIterator`], hide versions newer than the snapshot, and hand
//! the versions of each user key to [`resolve`](fn@crate::iter::resolve), so an iterator and a `get` at the same
//! snapshot always agree.

use crate::sync::Arc;
use std::cmp::Ordering;
use std::fmt;

use crate::error::{Error, Result};
use crate::iter::rangedel::Fragments;
use crate::iter::resolve::{ends_walk, VersionBuf};
use crate::iter::InternalIterator;
use crate::key::{self, InternalComparator, SEQNUM_MAX};
use crate::merge::MergeOperator;
use crate::options::PrefixExtractor;

fn parse(ikey: &[u8]) -> Result<key::ParsedKey<'_>> {
    key::parse(ikey).ok_or_else(|| {
        Error::corruption(
            format!("malformed internal key ({} bytes)", ikey.len()),
            "db iterator source",
        )
    })
}

/// Reads one user key at `snapshot_seq` from `iter`: the reference point read.
///
/// `fragments` must hold the range tombstones visible at `snapshot_seq`. Seeks to
/// `key::seek_key(user_key, snapshot_seq)`, collects the key's versions newest first and
/// resolves them exactly as [`DbIterator`] does.
pub fn get_from_iter(
    iter: &mut dyn InternalIterator,
    user_key: &[u8],
    snapshot_seq: u64,
    fragments: &Fragments,
    merge_op: &dyn MergeOperator,
    cmp: &InternalComparator,
) -> Result<Option<Vec<u8>>> {
    let range_del_seq = fragments.max_covering_seq(user_key);
    let mut buf = VersionBuf::default();
    iter.seek_ge(&key::seek_key(user_key, snapshot_seq))?;
    while iter.valid() {
        let p = parse(iter.key())?;
        if cmp.compare_user(p.user_key, user_key) != Ordering::Equal {
            break;
        }
        // The seek already skipped newer versions; the check guards against a source that
        // positions loosely.
        if p.seq <= snapshot_seq {
            buf.push(p.seq, p.kind, iter.value());
            if ends_walk(p.seq, p.kind, range_del_seq) {
                break;
            }
        }
        iter.next()?;
    }
    Ok(buf.resolve(user_key, false, range_del_seq, merge_op).into_vec())
}

/// Where a `*_with_limit` call left the iterator (Pebble's `IterValidityState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IterState {
    /// On a key inside the limit: `key()` and `value()` are its.
    Valid,
    /// Stopped at the limit: the walk met a key past it. The iterator is not on a key but
    /// parked at the limit: `next` goes on with the first key at or after it, `prev` with
    /// the last key before it (each with a limit of its own or none).
    AtLimit,
    /// The walk ended (the data or a bound) before reaching the limit. Parked at the limit
    /// as with `AtLimit`, which it can only be told from by what lay past the limit: deleted
    /// keys there may stop a walk at the limit that would otherwise have run out.
    Exhausted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// `inner` is at the first entry after the current user key (or invalid).
    Forward,
    /// `inner` is at the last entry before the current user key (or invalid).
    Reverse,
}

/// What an iterator knows of key prefixes: the extractor (for `next_prefix`), whether the
/// comparator is bytewise (only then may it seek by prefix), and the one prefix it is pinned
/// to, if any.
#[derive(Clone, Debug)]
pub struct PrefixSpec {
    pub extractor: Arc<dyn PrefixExtractor>,
    pub bytewise: bool,
    pub pinned: Option<Vec<u8>>,
}

impl PrefixSpec {
    /// Bounds every key with the pinned prefix lies within: `[prefix, successor)` under the
    /// bytewise comparator (a prefix is a leading part of its keys), nothing otherwise.
    fn clamp(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match &self.pinned {
            Some(p) if self.bytewise => (Some(p.clone()), bytewise_successor(p)),
            _ => (None, None),
        }
    }

    /// False when the iterator is pinned to a prefix that `user_key` does not have.
    fn admits(&self, user_key: &[u8]) -> bool {
        self.pinned.as_deref().is_none_or(|p| self.extractor.prefix(user_key) == Some(p))
    }
}

/// The smallest byte string above every string starting with `p`, or `None` when `p` is all
/// `0xff` (nothing is above them).
pub fn bytewise_successor(p: &[u8]) -> Option<Vec<u8>> {
    let i = p.iter().rposition(|&b| b != 0xff)?;
    let mut s = p[..=i].to_vec();
    s[i] += 1;
    Some(s)
}

/// Iterates the user keys visible at a snapshot, within bounds, with resolved values.
///
/// Positioning calls return `Ok(true)` when the iterator lands on a key. After an error the
/// iterator is invalid and only a seek (`first`, `last`, `seek_ge`, `seek_lt`) repositions
/// it. `next`/`prev` on an invalid iterator return `Ok(false)`: walking off either end
/// needs a seek to come back, as in RocksDB.
pub struct DbIterator {
    inner: Box<dyn InternalIterator>,
    fragments: Fragments,
    snapshot_seq: u64,
    merge_op: Arc<dyn MergeOperator>,
    cmp: InternalComparator,
    /// The bounds as the user set them.
    bounds: (Option<Vec<u8>>, Option<Vec<u8>>),
    prefix: Option<PrefixSpec>,
    /// Inclusive; the user's lower bound, raised to the pinned prefix.
    lower: Option<Vec<u8>>,
    /// Exclusive; the user's upper bound, lowered to the pinned prefix's successor.
    upper: Option<Vec<u8>>,
    dir: Direction,
    valid: bool,
    key: Vec<u8>,
    value: Vec<u8>,
    buf: VersionBuf,
    /// The limit of the walk under way (`*_with_limit`), and whether the walk stopped there.
    walk_limit: Option<Vec<u8>>,
    hit_limit: bool,
    /// Not on a key but parked at this limit (after a `*_with_limit` call that found no key
    /// inside it). With `dir` Forward, `inner` is at the first entry at or past the limit
    /// (or past the upper bound, or invalid); with Reverse, at the last entry before it.
    parked: Option<Vec<u8>>,
}

impl fmt::Debug for DbIterator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbIterator")
            .field("snapshot_seq", &self.snapshot_seq)
            .field("valid", &self.valid)
            .field("dir", &self.dir)
            .field("key", &String::from_utf8_lossy(&self.key))
            .finish()
    }
}

impl DbIterator {
    /// Builds an iterator over `inner` (all sources merged) at `snapshot_seq`. `fragments`
    /// must hold the range tombstones visible at `snapshot_seq`. Bounds: `lower` inclusive,
    /// `upper` exclusive. The iterator starts unpositioned.
    pub fn new(
        inner: Box<dyn InternalIterator>,
        fragments: Fragments,
        snapshot_seq: u64,
        merge_op: Arc<dyn MergeOperator>,
        cmp: InternalComparator,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> DbIterator {
        DbIterator {
            inner,
            fragments,
            snapshot_seq,
            merge_op,
            cmp,
            bounds: (lower.clone(), upper.clone()),
            prefix: None,
            lower,
            upper,
            dir: Direction::Forward,
            valid: false,
            key: Vec::new(),
            value: Vec::new(),
            buf: VersionBuf::default(),
            walk_limit: None,
            hit_limit: false,
            parked: None,
        }
    }

    /// Gives the iterator a prefix extractor (for `next_prefix`) and, when `spec.pinned`,
    /// limits it to the keys with that prefix.
    pub fn with_prefix(mut self, spec: PrefixSpec) -> DbIterator {
        self.prefix = Some(spec);
        let (lower, upper) = self.bounds.clone();
        self.set_bounds(lower, upper);
        self
    }

    /// Replaces the bounds and leaves the iterator unpositioned: seek again. A `lower` above
    /// `upper` makes an empty range. A pinned prefix stays and narrows them further.
    pub fn set_bounds(&mut self, lower: Option<Vec<u8>>, upper: Option<Vec<u8>>) {
        self.bounds = (lower.clone(), upper.clone());
        let (lo, hi) = self.prefix.as_ref().map(PrefixSpec::clamp).unwrap_or_default();
        let cmp = self.cmp.clone();
        let pick = |a: Option<Vec<u8>>, b: Option<Vec<u8>>, want: Ordering| match (a, b) {
            (Some(a), Some(b)) => Some(if cmp.compare_user(&a, &b) == want { a } else { b }),
            (a, b) => a.or(b),
        };
        self.lower = pick(lower, lo, Ordering::Greater);
        self.upper = pick(upper, hi, Ordering::Less);
        self.valid = false;
        self.parked = None;
    }

    /// The bounds as last set by the user (without the pinned prefix's narrowing).
    pub fn bounds(&self) -> (Option<&[u8]>, Option<&[u8]>) {
        (self.bounds.0.as_deref(), self.bounds.1.as_deref())
    }

    /// The prefix the iterator is pinned to, if any.
    pub fn pinned_prefix(&self) -> Option<&[u8]> {
        self.prefix.as_ref().and_then(|p| p.pinned.as_deref())
    }

    /// Moves to the first key after the current one whose prefix differs from the current
    /// key's (to the next key when the current one has no prefix). Seeks past the prefix
    /// when the extractor knows where it ends under the bytewise comparator, else steps.
    /// `Ok(false)` at the end or when not positioned; `InvalidArgument` without an extractor.
    pub fn next_prefix(&mut self) -> Result<bool> {
        let Some(spec) = self.prefix.clone() else {
            return Err(Error::InvalidArgument("next_prefix needs a prefix extractor".into()));
        };
        if !self.valid {
            return Ok(false);
        }
        let Some(current) = spec.extractor.prefix(&self.key).map(<[u8]>::to_vec) else {
            return self.next();
        };
        if spec.bytewise {
            if let Some(end) = spec.extractor.prefix_end(&current) {
                return self.seek_ge(&end);
            }
        }
        while self.next()? {
            if spec.extractor.prefix(&self.key) != Some(current.as_slice()) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// False when a pinned prefix rules out the current key.
    fn admits_current(&self) -> bool {
        self.prefix.as_ref().is_none_or(|p| p.admits(&self.key))
    }

    /// True when positioned on a key.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current user key. Panics when not valid.
    pub fn key(&self) -> &[u8] {
        assert!(self.valid, "key() on an invalid DbIterator");
        &self.key
    }

    /// The current value. Panics when not valid.
    pub fn value(&self) -> &[u8] {
        assert!(self.valid, "value() on an invalid DbIterator");
        &self.value
    }

    /// Positions at the first key (at or after `lower`).
    pub fn first(&mut self) -> Result<bool> {
        match self.lower.clone() {
            Some(lower) => self.seek_ge_unclamped(&lower),
            None => {
                let r = self.inner.first();
                self.forward_from(r)
            }
        }
    }

    /// Positions at the last key (before `upper`).
    pub fn last(&mut self) -> Result<bool> {
        match self.upper.clone() {
            Some(upper) => self.seek_lt_unclamped(&upper),
            None => {
                let r = self.inner.last();
                self.reverse_from(r)
            }
        }
    }

    /// Positions at the first key `>= user_key` (clamped up to `lower`).
    pub fn seek_ge(&mut self, user_key: &[u8]) -> Result<bool> {
        match &self.lower {
            Some(lower) if self.cmp.compare_user(user_key, lower) == Ordering::Less => {
                let lower = lower.clone();
                self.seek_ge_unclamped(&lower)
            }
            _ => self.seek_ge_unclamped(user_key),
        }
    }

    /// Positions at the last key `< user_key` (clamped down to `upper`).
    pub fn seek_lt(&mut self, user_key: &[u8]) -> Result<bool> {
        match &self.upper {
            Some(upper) if self.cmp.compare_user(user_key, upper) == Ordering::Greater => {
                let upper = upper.clone();
                self.seek_lt_unclamped(&upper)
            }
            _ => self.seek_lt_unclamped(user_key),
        }
    }

    /// Moves to the next key. `Ok(false)` at the end or when not positioned.
    // A positioned cursor that can fail, walking both ways: not a `std::iter::Iterator`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<bool> {
        if let Some(at) = self.parked.take() {
            return self.leave_park_forward(&at);
        }
        if !self.valid {
            return Ok(false);
        }
        if self.dir == Direction::Reverse {
            // `inner` is before the current key: move it past all of the current key's
            // entries.
            let r = self.seek_past_current();
            return self.forward_from(r);
        }
        self.forward_from(Ok(()))
    }

    /// Moves to the previous key. `Ok(false)` at the start or when not positioned.
    pub fn prev(&mut self) -> Result<bool> {
        if let Some(at) = self.parked.take() {
            return self.leave_park_reverse(&at);
        }
        if !self.valid {
            return Ok(false);
        }
        if self.dir == Direction::Forward {
            // `inner` is after the current key: put it on the last entry of a smaller key.
            let r = self.inner.seek_lt(&key::seek_key(&self.key, SEQNUM_MAX));
            return self.reverse_from(r);
        }
        self.reverse_from(Ok(()))
    }

    /// Leaves the park at `at` forward: `inner` already sits at the first entry at or past
    /// it when the iterator parked walking forward; otherwise seek there.
    fn leave_park_forward(&mut self, at: &[u8]) -> Result<bool> {
        if self.dir == Direction::Forward {
            return self.forward_from(Ok(()));
        }
        self.seek_ge(at)
    }

    /// Leaves the park at `at` backward (see `leave_park_forward`).
    fn leave_park_reverse(&mut self, at: &[u8]) -> Result<bool> {
        if self.dir == Direction::Reverse {
            return self.reverse_from(Ok(()));
        }
        self.seek_lt(at)
    }

    /// `seek_ge(user_key)`, stopping at `limit` (exclusive): `Valid` on the first key
    /// `>= user_key` when it is below `limit`, else parked at `limit` (see [`IterState`]).
    /// `InvalidArgument` when `limit < user_key`.
    pub fn seek_ge_with_limit(&mut self, user_key: &[u8], limit: &[u8]) -> Result<IterState> {
        self.check_limit(limit, user_key, Ordering::Less, "seek_ge")?;
        self.with_limit(limit, |it| it.seek_ge(user_key))
    }

    /// `seek_lt(user_key)`, stopping at `limit` (inclusive): `Valid` on the last key
    /// `< user_key` when it is at or above `limit`, else parked at `limit`.
    /// `InvalidArgument` when `limit > user_key`.
    pub fn seek_lt_with_limit(&mut self, user_key: &[u8], limit: &[u8]) -> Result<IterState> {
        self.check_limit(limit, user_key, Ordering::Greater, "seek_lt")?;
        self.with_limit(limit, |it| it.seek_lt(user_key))
    }

    /// `next`, stopping at `limit` (exclusive), so that a walk over many deleted keys ends
    /// at the limit instead of the next live key. The limit must lie past the position:
    /// above the current key, or at or above the limit the iterator is parked at
    /// (`InvalidArgument` otherwise; the iterator stays where it was). Not positioned: as
    /// `next`, `Exhausted`, and not parked.
    pub fn next_with_limit(&mut self, limit: &[u8]) -> Result<IterState> {
        match (&self.parked, self.valid) {
            (Some(at), _) => {
                let at = at.clone();
                self.check_limit(limit, &at, Ordering::Less, "next")?;
            }
            (None, true) => {
                let key = self.key.clone();
                self.check_limit(limit, &key, Ordering::Equal, "next")?;
            }
            (None, false) => return Ok(IterState::Exhausted),
        }
        self.with_limit(limit, DbIterator::next)
    }

    /// `prev`, stopping at `limit` (inclusive). The limit must lie at or before the position:
    /// at or below the current key or the limit the iterator is parked at.
    pub fn prev_with_limit(&mut self, limit: &[u8]) -> Result<IterState> {
        let at = match (&self.parked, self.valid) {
            (Some(at), _) => at.clone(),
            (None, true) => self.key.clone(),
            (None, false) => return Ok(IterState::Exhausted),
        };
        self.check_limit(limit, &at, Ordering::Greater, "prev")?;
        self.with_limit(limit, DbIterator::prev)
    }

    /// `InvalidArgument` when `limit` compares to `at` as `bad` (or equal, for `Equal`:
    /// `next`'s limit must be strictly above the current key).
    fn check_limit(&self, limit: &[u8], at: &[u8], bad: Ordering, what: &str) -> Result<()> {
        let c = self.cmp.compare_user(limit, at);
        if c == bad || (bad == Ordering::Equal && c == Ordering::Less) {
            return Err(Error::InvalidArgument(format!(
                "{what}_with_limit: the limit is on the wrong side of the position"
            )));
        }
        Ok(())
    }

    /// Runs a positioning call with `limit` bounding its walk; parks at `limit` when it
    /// lands on no key.
    fn with_limit(
        &mut self,
        limit: &[u8],
        step: impl FnOnce(&mut DbIterator) -> Result<bool>,
    ) -> Result<IterState> {
        self.walk_limit = Some(limit.to_vec());
        let r = step(self);
        self.walk_limit = None;
        if r? {
            return Ok(IterState::Valid);
        }
        self.parked = Some(limit.to_vec());
        Ok(if self.hit_limit { IterState::AtLimit } else { IterState::Exhausted })
    }

    /// Puts `inner` on the first entry after every entry of the current key. `last_key` is
    /// the largest possible internal key of it, so `seek_ge` lands past the key except on a
    /// seqnum-0 entry, which the loop steps over.
    fn seek_past_current(&mut self) -> Result<()> {
        self.inner.seek_ge(&key::last_key(&self.key))?;
        while self.inner.valid() {
            let p = parse(self.inner.key())?;
            if self.cmp.compare_user(p.user_key, &self.key) != Ordering::Equal {
                break;
            }
            self.inner.next()?;
        }
        Ok(())
    }

    fn seek_ge_unclamped(&mut self, user_key: &[u8]) -> Result<bool> {
        // Entries of `user_key` newer than the snapshot sort before this target.
        let r = self.inner.seek_ge(&key::seek_key(user_key, self.snapshot_seq));
        self.forward_from(r)
    }

    fn seek_lt_unclamped(&mut self, user_key: &[u8]) -> Result<bool> {
        let r = self.inner.seek_lt(&key::seek_key(user_key, SEQNUM_MAX));
        self.reverse_from(r)
    }

    /// After repositioning `inner` (with result `r`), finds the next visible key forward.
    fn forward_from(&mut self, r: Result<()>) -> Result<bool> {
        self.dir = Direction::Forward;
        self.valid = false;
        self.parked = None;
        self.hit_limit = false;
        r?;
        let found = self.find_next_forward()?;
        self.valid = found;
        Ok(found)
    }

    /// After repositioning `inner` (with result `r`), finds the previous visible key.
    fn reverse_from(&mut self, r: Result<()>) -> Result<bool> {
        self.dir = Direction::Reverse;
        self.valid = false;
        self.parked = None;
        self.hit_limit = false;
        r?;
        let found = self.find_prev_reverse()?;
        self.valid = found;
        Ok(found)
    }

    /// From `inner` at the first entry of some user key (or at a newer-than-snapshot
    /// entry), resolves keys until one is found; leaves `inner` after that key's entries.
    fn find_next_forward(&mut self) -> Result<bool> {
        while self.inner.valid() {
            let p = parse(self.inner.key())?;
            if let Some(upper) = &self.upper {
                if self.cmp.compare_user(p.user_key, upper) != Ordering::Less {
                    return Ok(false);
                }
            }
            if let Some(limit) = &self.walk_limit {
                if self.cmp.compare_user(p.user_key, limit) != Ordering::Less {
                    self.hit_limit = true;
                    return Ok(false);
                }
            }
            if p.seq > self.snapshot_seq {
                self.inner.next()?;
                continue;
            }
            self.key.clear();
            self.key.extend_from_slice(p.user_key);
            let below_lower = self
                .lower
                .as_ref()
                .is_some_and(|l| self.cmp.compare_user(&self.key, l) == Ordering::Less);
            let range_del_seq = self.fragments.max_covering_seq(&self.key);
            self.buf.clear();
            let mut done = below_lower;
            // Versions follow newest first, so past the first visible one all are visible;
            // the seq check only guards against a misordered source.
            loop {
                if !done {
                    let p = parse(self.inner.key())?;
                    if p.seq <= self.snapshot_seq {
                        self.buf.push(p.seq, p.kind, self.inner.value());
                        done = ends_walk(p.seq, p.kind, range_del_seq);
                    }
                }
                self.inner.next()?;
                if !self.inner.valid() {
                    break;
                }
                let p = parse(self.inner.key())?;
                if self.cmp.compare_user(p.user_key, &self.key) != Ordering::Equal {
                    break;
                }
            }
            if below_lower || !self.admits_current() {
                // Below `lower` only a source that ignores the seek target gets here; skip,
                // never return.
                continue;
            }
            let resolved =
                self.buf.resolve(&self.key, false, range_del_seq, self.merge_op.as_ref());
            if resolved.store(&mut self.value) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// From `inner` at the last entry of some user key, resolves keys backwards until one is
    /// found; leaves `inner` at the last entry of the key before it.
    fn find_prev_reverse(&mut self) -> Result<bool> {
        while self.inner.valid() {
            let p = parse(self.inner.key())?;
            if let Some(lower) = &self.lower {
                if self.cmp.compare_user(p.user_key, lower) == Ordering::Less {
                    return Ok(false);
                }
            }
            if let Some(limit) = &self.walk_limit {
                if self.cmp.compare_user(p.user_key, limit) == Ordering::Less {
                    self.hit_limit = true;
                    return Ok(false);
                }
            }
            self.key.clear();
            self.key.extend_from_slice(p.user_key);
            let above_upper = self
                .upper
                .as_ref()
                .is_some_and(|u| self.cmp.compare_user(&self.key, u) != Ordering::Less);
            let range_del_seq = self.fragments.max_covering_seq(&self.key);
            self.buf.clear();
            // Versions come oldest first. One that ends the newest-first walk makes every
            // older one irrelevant, so drop those to keep the buffer short.
            loop {
                let p = parse(self.inner.key())?;
                if p.seq <= self.snapshot_seq && !above_upper {
                    if ends_walk(p.seq, p.kind, range_del_seq) {
                        self.buf.clear();
                    }
                    self.buf.push(p.seq, p.kind, self.inner.value());
                }
                self.inner.prev()?;
                if !self.inner.valid() {
                    break;
                }
                let p = parse(self.inner.key())?;
                if self.cmp.compare_user(p.user_key, &self.key) != Ordering::Equal {
                    break;
                }
            }
            if above_upper || !self.admits_current() {
                continue;
            }
            let resolved = self.buf.resolve(&self.key, true, range_del_seq, self.merge_op.as_ref());
            if resolved.store(&mut self.value) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
