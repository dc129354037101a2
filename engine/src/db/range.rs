//! `Db::range` and `Db::prefix`: the keys of a range as a double-ended
//! `std::iter::Iterator` of `Result<(key, value)>`, the idiomatic face of the cursor
//! ([`Cursor`]) for code that wants `for`, `rev()` and adapters.
//!
//! Two cursors over one view walk from either end; each hands out a key only while it lies
//! strictly between the last keys the two ends handed out, so the ends meet without a key
//! twice. The first error is yielded once and ends the iteration.

use std::cmp::Ordering;
use std::ops::{Bound, RangeBounds};

use super::IndexedBatch;
use super::{Cursor, Db, ReadOptions};
use crate::comparator::{Bytewise, Comparator};
use crate::error::Result;
use crate::iter::bytewise_successor;
use crate::sync::Arc;

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The keys of a range at one view, from either end: see [`Db::range`].
pub struct Range {
    front: Cursor,
    back: Cursor,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    /// `Db::prefix`: only keys starting with these bytes.
    prefix: Option<Vec<u8>>,
    cmp: Arc<dyn Comparator>,
    /// The last key each end handed out (`None` before its first).
    front_last: Option<Vec<u8>>,
    back_last: Option<Vec<u8>>,
    done: bool,
}

impl std::fmt::Debug for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Range").field("done", &self.done).finish_non_exhaustive()
    }
}

/// `range`'s bounds as owned keys.
pub(super) fn owned_bounds<K: AsRef<[u8]>>(
    range: &impl RangeBounds<K>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let owned = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (owned(range.start_bound()), owned(range.end_bound()))
}

impl Db {
    /// The keys within `range` at `ro.snapshot` (or now), as a double-ended iterator of
    /// `Result<(key, value)>`, at one view. `ro`'s bounds and prefix narrow it further.
    ///
    /// ```
    /// # use cobble::{Db, MemFs, Options, ReadOptions, WriteOptions};
    /// # let opts = Options { fs: std::sync::Arc::new(MemFs::new()), ..Options::default() };
    /// let db = Db::open(opts, "/db")?;
    /// for k in ["a", "b", "c", "d"] {
    ///     db.put(k.as_bytes(), b"v", &WriteOptions::default())?;
    /// }
    /// let keys: Vec<Vec<u8>> = db
    ///     .range(&ReadOptions::default(), &b"b"[..]..=&b"c"[..])?
    ///     .rev()
    ///     .map(|kv| kv.map(|(k, _)| k))
    ///     .collect::<cobble::Result<_>>()?;
    /// assert_eq!(keys, [b"c".to_vec(), b"b".to_vec()]);
    /// # Ok::<(), cobble::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]>>(
        &self,
        ro: &ReadOptions,
        range: impl RangeBounds<K>,
    ) -> Result<Range> {
        let (start, end) = owned_bounds(&range);
        self.range_of(ro, start, end, None, None)
    }

    /// The keys starting with the bytes `prefix` (as fjall's `prefix`; no extractor needed),
    /// as [`Db::range`] gives them.
    pub fn prefix(&self, ro: &ReadOptions, prefix: impl AsRef<[u8]>) -> Result<Range> {
        let p = prefix.as_ref().to_vec();
        let bytewise = self.inner.opts.comparator.name() == Bytewise.name();
        // Under the bytewise comparator the keys with the prefix are one range; under another
        // they are found by the filter alone.
        let (start, end) = match bytewise {
            true => (
                Bound::Included(p.clone()),
                bytewise_successor(&p).map_or(Bound::Unbounded, Bound::Excluded),
            ),
            false => (Bound::Unbounded, Bound::Unbounded),
        };
        self.range_of(ro, start, end, Some(p), None)
    }

    /// A range over the database, or over `batch` applied over it.
    pub(super) fn range_of(
        &self,
        ro: &ReadOptions,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        prefix: Option<Vec<u8>>,
        batch: Option<&IndexedBatch>,
    ) -> Result<Range> {
        let front = match batch {
            Some(b) => b.iter(self, ro)?,
            None => self.iter(ro)?,
        };
        let back = front.try_clone()?;
        Ok(Range {
            front,
            back,
            start,
            end,
            prefix,
            cmp: self.inner.opts.comparator.clone(),
            front_last: None,
            back_last: None,
            done: false,
        })
    }
}

impl Range {
    /// True when `key` is within the range's bounds and prefix.
    fn admits(&self, key: &[u8]) -> bool {
        self.after_start(key)
            && self.before_end(key)
            && self.prefix.as_ref().is_none_or(|p| key.starts_with(p))
    }

    /// Positions the front cursor on its first candidate or steps it on.
    fn step_front(&mut self) -> Result<bool> {
        if self.front_last.is_some() {
            return self.front.next();
        }
        match &self.start {
            Bound::Included(s) => self.front.seek_ge(&s.clone()),
            Bound::Excluded(s) => {
                let s = s.clone();
                let valid = self.front.seek_ge(&s)?;
                if valid && self.cmp.compare(self.front.key(), &s) == Ordering::Equal {
                    return self.front.next();
                }
                Ok(valid)
            }
            Bound::Unbounded => self.front.first(),
        }
    }

    /// Positions the back cursor on its first candidate or steps it back.
    fn step_back(&mut self) -> Result<bool> {
        if self.back_last.is_some() {
            return self.back.prev();
        }
        match &self.end {
            Bound::Excluded(e) => self.back.seek_lt(&e.clone()),
            Bound::Included(e) => {
                let e = e.clone();
                if self.back.seek_ge(&e)?
                    && self.cmp.compare(self.back.key(), &e) == Ordering::Equal
                {
                    return Ok(true);
                }
                self.back.seek_lt(&e)
            }
            Bound::Unbounded => self.back.last(),
        }
    }

    /// The next key of one end: `front` walks up, the other end down.
    fn advance(&mut self, front: bool) -> Option<Result<KeyValue>> {
        if self.done {
            return None;
        }
        loop {
            let stepped = if front { self.step_front() } else { self.step_back() };
            let valid = match stepped {
                Ok(v) => v,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            let cursor = if front { &self.front } else { &self.back };
            if !valid {
                self.done = true;
                return None;
            }
            let key = cursor.key().to_vec();
            // Past the other end's last key: the ends met.
            let other = if front { &self.back_last } else { &self.front_last };
            let toward = if front { Ordering::Less } else { Ordering::Greater };
            if other.as_ref().is_some_and(|o| self.cmp.compare(&key, o) != toward) {
                self.done = true;
                return None;
            }
            let value = cursor.value().to_vec();
            let admitted = self.admits(&key);
            let last = if front { &mut self.front_last } else { &mut self.back_last };
            *last = Some(key.clone());
            if admitted {
                return Some(Ok((key, value)));
            }
            // Outside the bounds on this end's side is the end of the range; a key failing
            // only the prefix filter is skipped.
            let beyond = match front {
                true => !matches!(&self.end, Bound::Unbounded) && !self.before_end(&key),
                false => !matches!(&self.start, Bound::Unbounded) && !self.after_start(&key),
            };
            if beyond {
                self.done = true;
                return None;
            }
        }
    }

    fn before_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(e) => self.cmp.compare(key, e) != Ordering::Greater,
            Bound::Excluded(e) => self.cmp.compare(key, e) == Ordering::Less,
            Bound::Unbounded => true,
        }
    }

    fn after_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Included(s) => self.cmp.compare(key, s) != Ordering::Less,
            Bound::Excluded(s) => self.cmp.compare(key, s) == Ordering::Greater,
            Bound::Unbounded => true,
        }
    }
}

impl std::iter::Iterator for Range {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Result<KeyValue>> {
        self.advance(true)
    }
}

impl DoubleEndedIterator for Range {
    fn next_back(&mut self) -> Option<Result<KeyValue>> {
        self.advance(false)
    }
}

impl std::iter::FusedIterator for Range {}
