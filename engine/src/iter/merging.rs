//! [`MergingIterator`]: merges several [`InternalIterator`]s into one ordered stream, in
//! both directions.
//!
//! The valid children sit in a binary heap, so a step costs about `2 log n` key comparisons
//! for `n` children, not `n`: a compaction or a read view may merge dozens of L0 tables.
//!
//! Order between equal internal keys in different children (which the engine's unique
//! seqnums rule out, but a bug should not turn into a skip) is by child index: the stream is
//! ordered by `(internal key, child index)` both ways, and direction switches respect that.

use std::cmp::Ordering;
use std::fmt;

use smallvec::SmallVec;

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
/// Invariants:
/// - `heap` holds exactly the valid children, as a binary heap on `(key, child index)`: a
///   min-heap when `dir` is forward, a max-heap in reverse. Its root is the current child.
/// - Positioned forward, every child other than the current one sits at its first entry after
///   the current position (in `(key, child index)` order); in reverse, at its last entry
///   before it. A direction switch re-seeks the other children to restore this.
pub struct MergingIterator {
    children: Vec<Box<dyn InternalIterator>>,
    cmp: InternalComparator,
    /// Inline for the usual few children, so opening an iterator allocates no heap for it.
    heap: SmallVec<[usize; 8]>,
    dir: Direction,
}

impl fmt::Debug for MergingIterator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergingIterator")
            .field("children", &self.children.len())
            .field("current", &self.current())
            .field("dir", &self.dir)
            .finish()
    }
}

impl MergingIterator {
    /// Merges `children`. Their order only breaks ties between equal keys.
    pub fn new(children: Vec<Box<dyn InternalIterator>>, cmp: InternalComparator) -> Self {
        MergingIterator { children, cmp, heap: SmallVec::new(), dir: Direction::Forward }
    }

    fn current(&self) -> Option<usize> {
        self.heap.first().copied()
    }

    /// Runs `op` on every child; on the first error the iterator becomes invalid.
    fn for_each_child(
        &mut self,
        mut op: impl FnMut(&mut dyn InternalIterator) -> Result<()>,
    ) -> Result<()> {
        for child in &mut self.children {
            if let Err(e) = op(child.as_mut()) {
                self.heap.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether child `a` comes out of the heap before child `b`: it is smaller in `(key,
    /// child index)` order going forward, larger in reverse.
    fn before(&self, a: usize, b: usize) -> bool {
        let order =
            self.cmp.compare(self.children[a].key(), self.children[b].key()).then(a.cmp(&b));
        match self.dir {
            Direction::Forward => order == Ordering::Less,
            Direction::Reverse => order == Ordering::Greater,
        }
    }

    /// Rebuilds the heap from every valid child, ordered for `dir`.
    fn build_heap(&mut self, dir: Direction) {
        self.dir = dir;
        let mut heap = std::mem::take(&mut self.heap);
        heap.clear();
        heap.extend((0..self.children.len()).filter(|&i| self.children[i].valid()));
        self.heap = heap;
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    /// Restores the heap below slot `i`, whose child may have moved on.
    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut first = i;
            if l < len && self.before(self.heap[l], self.heap[first]) {
                first = l;
            }
            if r < len && self.before(self.heap[r], self.heap[first]) {
                first = r;
            }
            if first == i {
                return;
            }
            self.heap.swap(i, first);
            i = first;
        }
    }

    /// After the current child stepped: keeps it in place if still valid, else drops it.
    fn fix_root(&mut self) {
        let cur = self.heap[0];
        if !self.children[cur].valid() {
            self.heap.swap_remove(0);
        }
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
    }

    fn fail<T>(&mut self, e: crate::Error) -> Result<T> {
        self.heap.clear();
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
                self.heap.clear();
                return Err(e);
            }
        }
        self.build_heap(Direction::Forward);
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
                self.heap.clear();
                return Err(e);
            }
        }
        self.build_heap(Direction::Reverse);
        Ok(())
    }
}

impl InternalIterator for MergingIterator {
    fn seek_ge(&mut self, target: &[u8]) -> Result<()> {
        self.for_each_child(|c| c.seek_ge(target))?;
        self.build_heap(Direction::Forward);
        Ok(())
    }

    fn seek_lt(&mut self, target: &[u8]) -> Result<()> {
        self.for_each_child(|c| c.seek_lt(target))?;
        self.build_heap(Direction::Reverse);
        Ok(())
    }

    fn first(&mut self) -> Result<()> {
        self.for_each_child(|c| c.first())?;
        self.build_heap(Direction::Forward);
        Ok(())
    }

    fn last(&mut self) -> Result<()> {
        self.for_each_child(|c| c.last())?;
        self.build_heap(Direction::Reverse);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let cur = self.current().expect("next on an invalid MergingIterator");
        if self.dir == Direction::Reverse {
            // The switch rebuilds the heap with `cur` at its root: it is the smallest, since
            // every other child now sits after it.
            self.switch_to_forward(cur)?;
        }
        if let Err(e) = self.children[cur].next() {
            return self.fail(e);
        }
        self.fix_root();
        Ok(())
    }

    fn prev(&mut self) -> Result<()> {
        let cur = self.current().expect("prev on an invalid MergingIterator");
        if self.dir == Direction::Forward {
            self.switch_to_reverse(cur)?;
        }
        if let Err(e) = self.children[cur].prev() {
            return self.fail(e);
        }
        self.fix_root();
        Ok(())
    }

    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn key(&self) -> &[u8] {
        let cur = self.current().expect("key on an invalid MergingIterator");
        self.children[cur].key()
    }

    fn value(&self) -> &[u8] {
        let cur = self.current().expect("value on an invalid MergingIterator");
        self.children[cur].value()
    }
}
