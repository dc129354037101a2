//! [`MergingIterator`]: merges several [`InternalIterator`]s into one ordered stream, in
//! both directions.
//!
//! The children are few (memtables, L0 files, one per deeper level), so the smallest (or
//! largest) child is found by a linear scan: simple, and cheap at this size.
//!
//! Order between equal internal keys in different children (which the engine's unique
//! seqnums rule out, but a bug should not turn into a skip) is by child index: the stream is
//! ordered by `(internal key, child index)` both ways, and direction switches respect that.

use std::cmp::Ordering;
use std::fmt;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::InternalComparator;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Forward,
    Reverse,
}

/// Merges children by [`InternalComparator`] order.
///
/// Invariant: when positioned forward, every child other than the current one sits at its
/// first entry after the current position (in `(key, child index)` order); in reverse, at
/// its last entry before it. A direction switch re-seeks the other children to restore this.
pub struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    cmp: InternalComparator,
    current: Option<usize>,
    dir: Direction,
}

impl fmt::Debug for MergingIterator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergingIterator")
            .field("children", &self.children.len())
            .field("current", &self.current)
            .field("dir", &self.dir)
            .finish()
    }
}

impl MergingIterator {
    /// Merges `children`. Their order only breaks ties between equal keys.
    pub fn new(children: Vec<Box<dyn InternalIterator>>, cmp: InternalComparator) -> Self {
        MergingIterator { children, cmp, current: None, dir: Direction::Forward }
    }

    /// Runs `op` on every child; on the first error the iterator becomes invalid.
    fn for_each_child(
        &mut self,
        mut op: impl FnMut(&mut dyn InternalIterator) -> Result<()>,
    ) -> Result<()> {
        for child in &mut self.children {
            if let Err(e) = op(child.as_mut()) {
                self.current = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Points `current` at the smallest valid child (lowest index among equals).
    fn find_smallest(&mut self) {
        let mut best: Option<usize> = None;
        for (i, child) in self.children.iter().enumerate() {
            if !child.valid() {
                continue;
            }
            best = match best {
                Some(b)
                    if self.cmp.compare(child.key(), self.children[b].key()) != Ordering::Less =>
                {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        self.current = best;
        self.dir = Direction::Forward;
    }

    /// Points `current` at the largest valid child (highest index among equals).
    fn find_largest(&mut self) {
        let mut best: Option<usize> = None;
        for (i, child) in self.children.iter().enumerate() {
            if !child.valid() {
                continue;
            }
            best = match best {
                Some(b)
                    if self.cmp.compare(child.key(), self.children[b].key()) == Ordering::Less =>
                {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        self.current = best;
        self.dir = Direction::Reverse;
    }

    fn fail<T>(&mut self, e: crate::Error) -> Result<T> {
        self.current = None;
        Err(e)
    }

    /// Moves every non-current child to its first entry after `(key, cur)`.
    fn switch_to_forward(&mut self, cur: usize) -> Result<()> {
        let key = crate::key::KeyBuf::from_slice(self.children[cur].key());
        for (i, child) in self.children.iter_mut().enumerate() {
            if i == cur {
                continue;
            }
            let step = (|| {
                child.seek_ge(&key)?;
                // `(key, i)` with `i < cur` comes before the current position: already seen.
                if i < cur
                    && child.valid()
                    && self.cmp.compare(child.key(), &key) == Ordering::Equal
                {
                    child.next()?;
                }
                Ok(())
            })();
            if let Err(e) = step {
                self.current = None;
                return Err(e);
            }
        }
        self.dir = Direction::Forward;
        Ok(())
    }

    /// Moves every non-current child to its last entry before `(key, cur)`.
    fn switch_to_reverse(&mut self, cur: usize) -> Result<()> {
        let key = crate::key::KeyBuf::from_slice(self.children[cur].key());
        for (i, child) in self.children.iter_mut().enumerate() {
            if i == cur {
                continue;
            }
            let step = (|| {
                if i > cur {
                    // `(key, i)` comes after the current position: stop strictly below `key`.
                    return child.seek_lt(&key);
                }
                // `(key, i)` with `i < cur` is before the current position: land on the last
                // entry `<= key`.
                child.seek_ge(&key)?;
                if !child.valid() {
                    child.last()
                } else if self.cmp.compare(child.key(), &key) != Ordering::Equal {
                    child.prev()
                } else {
                    Ok(())
                }
            })();
            if let Err(e) = step {
                self.current = None;
                return Err(e);
            }
        }
        self.dir = Direction::Reverse;
        Ok(())
    }
}

impl InternalIterator for MergingIterator {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.for_each_child(|c| c.seek_ge(target))?;
        self.find_smallest();
        Ok(())
    }

    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.for_each_child(|c| c.seek_lt(target))?;
        self.find_largest();
        Ok(())
    }

    fn first(&mut self) -> Result<()> {
        self.for_each_child(|c| c.first())?;
        self.find_smallest();
        Ok(())
    }

    fn last(&mut self) -> Result<()> {
        self.for_each_child(|c| c.last())?;
        self.find_largest();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let cur = self.current.expect("next on an invalid MergingIterator");
        if self.dir == Direction::Reverse {
            self.switch_to_forward(cur)?;
        }
        if let Err(e) = self.children[cur].next() {
            return self.fail(e);
        }
        self.find_smallest();
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        let cur = self.current.expect("prev on an invalid MergingIterator");
        if self.dir == Direction::Forward {
            self.switch_to_reverse(cur)?;
        }
        if let Err(e) = self.children[cur].prev() {
            return self.fail(e);
        }
        self.find_largest();
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        let cur = self.current.expect("key on an invalid MergingIterator");
        self.children[cur].key()
    }

    fn value(&self) -> &[u8] {
        let cur = self.current.expect("value on an invalid MergingIterator");
        self.children[cur].value()
    }
}
