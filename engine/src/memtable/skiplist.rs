//! A skiplist of encoded internal keys whose nodes live in an [`Arena`]: one writer at a time,
//! any number of lock-free readers.
//!
//! Node layout (offsets from the node's start, which is 4-aligned):
//!
//! ```text
//! 0    key_len    u32, native endian
//! 4    value_len  u32
//! 8    height     u32, in 1..=MAX_HEIGHT
//! 12   tower      height x AtomicU32: the next node at each level (0 = end of list)
//! ..   key        key_len bytes: an encoded internal key
//! ..   value      value_len bytes
//! ```
//!
//! The tower sits before the key so that a node takes only the levels it uses. The list head
//! is not in the arena: it is a full tower in [`Skiplist`] itself, so even an arena too small
//! for any entry makes a valid (empty) list.
//!
//! Publication: the writer fills a fresh node completely (header, key, value, tower) and only
//! then links it in, with Release stores into its predecessors from level 0 upward. Readers
//! follow links with Acquire loads, so every node they reach is fully written. After that, only
//! the tower changes, and only through atomics; header, key and value never change again,
//! which is why readers may hold `&[u8]` into them.
//!
//! Reverse steps search from the top (`O(log n)`) instead of keeping prev links: with one
//! writer and no back links there is no window in which a reader going backwards could see a
//! half-linked node.

use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::raw_atomic::AtomicU32;
use crate::sync::Arc;
use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::num::NonZeroU32;

use super::arena::Arena;
use super::ArenaFull;
use crate::key::{self, InternalComparator, TRAILER_LEN};

/// Tallest tower. With a 1/4 chance of growing each level, 12 levels keep searches
/// logarithmic up to about 4^12 = 16M entries and degrade gently beyond.
pub(crate) const MAX_HEIGHT: usize = 12;

const HEADER_LEN: usize = 12;
const LINK_LEN: usize = 4;
const NODE_ALIGN: usize = 4;

/// Most bytes an entry with an internal key of `key_len` bytes can take in the arena.
pub(crate) fn node_size_bound(key_len: usize, value_len: usize) -> usize {
    (NODE_ALIGN - 1 + HEADER_LEN + LINK_LEN * MAX_HEIGHT)
        .saturating_add(key_len)
        .saturating_add(value_len)
}

/// A node of a list: its offset in the arena, never 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Node(NonZeroU32);

impl Node {
    fn from_link(off: u32) -> Option<Node> {
        NonZeroU32::new(off).map(Node)
    }

    fn offset(self) -> usize {
        self.0.get() as usize
    }

    /// The node as a pin token (see `iter::PinSource`).
    pub(crate) fn to_token(self) -> u32 {
        self.0.get()
    }

    /// The node a pin token names; `None` for 0, which no node is.
    pub(crate) fn from_token(token: u32) -> Option<Node> {
        Node::from_link(token)
    }
}

/// The predecessor (`None` = head) and successor (`None` = end) of a key at every level.
struct Splice {
    preds: [Option<Node>; MAX_HEIGHT],
    succs: [Option<Node>; MAX_HEIGHT],
}

/// One sorted list over a shared arena.
pub(crate) struct Skiplist {
    arena: Arc<Arena>,
    cmp: InternalComparator,
    /// The head tower: the first node at each level.
    head: [AtomicU32; MAX_HEIGHT],
    /// Levels in use. Readers may see a stale value: a lower one only costs steps, and levels
    /// above it hold nothing but null links or fully linked nodes.
    height: AtomicUsize,
    len: AtomicUsize,
}

impl fmt::Debug for Skiplist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Skiplist")
            .field("len", &self.len())
            .field("height", &self.height.load(Ordering::Relaxed))
            .finish()
    }
}

impl Skiplist {
    /// An empty list whose nodes will live in `arena`.
    pub(crate) fn new(arena: Arc<Arena>, cmp: InternalComparator) -> Skiplist {
        Skiplist {
            arena,
            cmp,
            head: std::array::from_fn(|_| AtomicU32::new(0)),
            height: AtomicUsize::new(1),
            len: AtomicUsize::new(0),
        }
    }

    /// Number of nodes linked in.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The node's `i`-th header word.
    ///
    /// # Safety
    /// `node` was returned by a list over this list's arena (so it is published or our own).
    unsafe fn header(&self, node: Node, i: usize) -> usize {
        // SAFETY: header words are written before publication and never again (caller).
        let b = unsafe { self.arena.slice(node.offset() + 4 * i, 4) };
        u32::from_ne_bytes(b.try_into().expect("4 bytes")) as usize
    }

    /// Where the node's key starts.
    ///
    /// # Safety
    /// As for [`Skiplist::header`].
    unsafe fn key_offset(&self, node: Node) -> usize {
        // SAFETY: forwarded contract.
        let height = unsafe { self.header(node, 2) };
        node.offset() + HEADER_LEN + LINK_LEN * height
    }

    /// The node's encoded internal key; valid as long as the arena.
    ///
    /// # Safety
    /// `node` was returned by a list over this list's arena.
    pub(crate) unsafe fn key(&self, node: Node) -> &[u8] {
        // SAFETY: forwarded contract; key bytes are written before publication, never again.
        unsafe {
            let len = self.header(node, 0);
            self.arena.slice(self.key_offset(node), len)
        }
    }

    /// The node's value; valid as long as the arena.
    ///
    /// # Safety
    /// `node` was returned by a list over this list's arena.
    pub(crate) unsafe fn value(&self, node: Node) -> &[u8] {
        // SAFETY: forwarded contract; value bytes are written before publication, never again.
        unsafe {
            let key_len = self.header(node, 0);
            let len = self.header(node, 1);
            self.arena.slice(self.key_offset(node) + key_len, len)
        }
    }

    /// The link out of `node` (`None` = the head) at `level`.
    ///
    /// # Safety
    /// `node` is `None` or was returned by a list over this arena, and `level` is below its
    /// height.
    unsafe fn link(&self, node: Option<Node>, level: usize) -> &AtomicU32 {
        match node {
            None => &self.head[level],
            Some(n) => {
                // SAFETY: forwarded contract.
                debug_assert!(level < unsafe { self.header(n, 2) });
                // SAFETY: tower words are only ever accessed through this atomic view.
                unsafe { self.arena.atomic_u32(n.offset() + HEADER_LEN + LINK_LEN * level) }
            }
        }
    }

    /// The node after `node` (`None` = the head) at `level`.
    ///
    /// # Safety
    /// As for [`Skiplist::link`].
    unsafe fn next_at(&self, node: Option<Node>, level: usize) -> Option<Node> {
        // SAFETY: forwarded contract. Acquire pairs with the writer's Release link store, so
        // the node we get back is fully written.
        Node::from_link(unsafe { self.link(node, level) }.load(Ordering::Acquire))
    }

    /// Descends from level `top - 1` to 0 towards `target`: returns the last node `< target`
    /// (`None` = head) and the first node `>= target` (`None` = end). Fills `splice` on the way.
    fn find(
        &self,
        target: &[u8],
        top: usize,
        mut splice: Option<&mut Splice>,
    ) -> (Option<Node>, Option<Node>) {
        let mut pred: Option<Node> = None;
        let mut succ: Option<Node> = None;
        // The first node found `>= target` at a higher level; when a lower level reaches it
        // again it need not be compared a second time.
        let mut known_ge: Option<Node> = None;
        for level in (0..top).rev() {
            loop {
                // SAFETY: `pred` is the head or was reached by a link at a level >= `level`,
                // so its tower has `level`.
                succ = unsafe { self.next_at(pred, level) };
                let Some(n) = succ else { break };
                if known_ge == Some(n) {
                    break;
                }
                // SAFETY: `n` was loaded from a link of this list.
                if self.cmp.compare(unsafe { self.key(n) }, target) == CmpOrdering::Less {
                    pred = succ;
                } else {
                    known_ge = succ;
                    break;
                }
            }
            if let Some(s) = splice.as_deref_mut() {
                s.preds[level] = pred;
                s.succs[level] = succ;
            }
        }
        (pred, succ)
    }

    /// Links in a new node `user_key ++ trailer -> value` with a tower of `height` levels.
    ///
    /// Callers must not call this concurrently (the memtable serializes writers); readers
    /// may run at any time. Panics if the internal key is already in the list.
    pub(crate) fn insert(
        &self,
        height: usize,
        user_key: &[u8],
        trailer: u64,
        value: &[u8],
    ) -> Result<(), ArenaFull> {
        assert!((1..=MAX_HEIGHT).contains(&height), "tower height {height}");
        let key_len = user_key.len().checked_add(TRAILER_LEN).ok_or(ArenaFull)?;
        let key_len32 = u32::try_from(key_len).map_err(|_| ArenaFull)?;
        let value_len32 = u32::try_from(value.len()).map_err(|_| ArenaFull)?;
        let size = (HEADER_LEN + LINK_LEN * height)
            .checked_add(key_len)
            .and_then(|s| s.checked_add(value.len()))
            .ok_or(ArenaFull)?;
        let off = self.arena.alloc(size, NODE_ALIGN)?;
        let key_off = off + HEADER_LEN + LINK_LEN * height;
        // SAFETY: `[off, off + size)` was just allocated to this thread and is not linked
        // anywhere yet, so nobody else can read it. Tower words stay untouched here (they are
        // zero from the arena and set atomically below).
        unsafe {
            self.arena.write(off, &key_len32.to_ne_bytes());
            self.arena.write(off + 4, &value_len32.to_ne_bytes());
            self.arena.write(off + 8, &(height as u32).to_ne_bytes());
            self.arena.write(key_off, user_key);
            self.arena.write(key_off + user_key.len(), &trailer.to_le_bytes());
            self.arena.write(key_off + key_len, value);
        }
        let node = Node(
            NonZeroU32::new(u32::try_from(off).expect("arena offsets fit u32"))
                .expect("the arena never hands out offset 0"),
        );
        // SAFETY: our own node, fully written above.
        let ikey = unsafe { self.key(node) };

        let list_height = self.height.load(Ordering::Relaxed);
        let mut splice = Splice { preds: [None; MAX_HEIGHT], succs: [None; MAX_HEIGHT] };
        let (_, succ) = self.find(ikey, list_height.max(height), Some(&mut splice));
        if let Some(s) = succ {
            // SAFETY: `s` was loaded from a link of this list.
            let existing = unsafe { self.key(s) };
            assert!(
                self.cmp.compare(existing, ikey) != CmpOrdering::Equal,
                "duplicate internal key {:?} in memtable",
                key::parse(ikey)
            );
        }

        for level in 0..height {
            let next = splice.succs[level].map_or(0, |n| n.0.get());
            // SAFETY: our own node, whose tower has `height` levels. Relaxed: the node is not
            // reachable yet; the Release stores below publish these values with it.
            unsafe { self.link(Some(node), level) }.store(next, Ordering::Relaxed);
        }
        for level in 0..height {
            // SAFETY: a predecessor found at `level` is the head or has a tower reaching it.
            let link = unsafe { self.link(splice.preds[level], level) };
            // Only this writer changes links, so the successor found by `find` is still there.
            debug_assert_eq!(
                link.load(Ordering::Relaxed),
                splice.succs[level].map_or(0, |n| n.0.get())
            );
            link.store(node.0.get(), Ordering::Release);
        }
        if height > list_height {
            self.height.store(height, Ordering::Relaxed);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn top(&self) -> usize {
        self.height.load(Ordering::Relaxed)
    }

    /// The first node.
    pub(crate) fn first(&self) -> Option<Node> {
        // SAFETY: the head has every level.
        unsafe { self.next_at(None, 0) }
    }

    /// The last node.
    pub(crate) fn last(&self) -> Option<Node> {
        let mut node = None;
        for level in (0..self.top()).rev() {
            // SAFETY: `node` is the head or was reached at a level >= `level`.
            while let Some(n) = unsafe { self.next_at(node, level) } {
                node = Some(n);
            }
        }
        node
    }

    /// The first node `>= target`.
    pub(crate) fn seek_ge(&self, target: &[u8]) -> Option<Node> {
        self.find(target, self.top(), None).1
    }

    /// The last node `< target`.
    pub(crate) fn seek_lt(&self, target: &[u8]) -> Option<Node> {
        self.find(target, self.top(), None).0
    }

    /// The node after `node`.
    ///
    /// # Safety
    /// `node` was returned by this list.
    pub(crate) unsafe fn next(&self, node: Node) -> Option<Node> {
        // SAFETY: forwarded contract; every node has level 0.
        unsafe { self.next_at(Some(node), 0) }
    }

    /// The node before `node`.
    ///
    /// # Safety
    /// `node` was returned by this list.
    pub(crate) unsafe fn prev(&self, node: Node) -> Option<Node> {
        // SAFETY: forwarded contract.
        let k = unsafe { self.key(node) };
        self.seek_lt(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::comparator::Bytewise;
    use crate::key::{trailer, Kind};
    use crate::sync::atomic::AtomicU64;

    fn list(capacity: usize) -> Skiplist {
        let arena = Arc::new(Arena::new(capacity, Arc::new(AtomicU64::new(0))));
        Skiplist::new(arena, InternalComparator::new(Arc::new(Bytewise)))
    }

    fn keys(l: &Skiplist) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut n = l.first();
        while let Some(node) = n {
            // SAFETY: nodes come from `l`.
            unsafe {
                out.push(l.key(node).to_vec());
                n = l.next(node);
            }
        }
        out
    }

    #[test]
    fn every_height_links_in_order() {
        let l = list(4096);
        // Insert descending with all heights so every level and splice position is used.
        for i in (0..24u64).rev() {
            let h = (i as usize % MAX_HEIGHT) + 1;
            l.insert(h, format!("k{i:02}").as_bytes(), trailer(1, Kind::Set as u8), b"v").unwrap();
        }
        let got = keys(&l);
        let want: Vec<Vec<u8>> =
            (0..24).map(|i| key::encode(format!("k{i:02}").as_bytes(), 1, Kind::Set)).collect();
        assert_eq!(got, want);
        assert_eq!(l.len(), 24);
        // SAFETY: nodes come from `l`.
        unsafe {
            let last = l.last().unwrap();
            assert_eq!(l.key(last), &want[23][..]);
            assert_eq!(l.value(last), b"v");
            let p = l.prev(last).unwrap();
            assert_eq!(l.key(p), &want[22][..]);
            assert_eq!(l.prev(l.first().unwrap()), None);
        }
    }

    #[test]
    #[should_panic(expected = "duplicate internal key")]
    fn duplicate_internal_key_panics() {
        let l = list(1024);
        l.insert(1, b"a", trailer(5, Kind::Set as u8), b"x").unwrap();
        l.insert(2, b"a", trailer(5, Kind::Set as u8), b"y").unwrap();
    }

    #[test]
    fn empty_list_positions_nowhere() {
        let l = list(0);
        assert_eq!(l.first(), None);
        assert_eq!(l.last(), None);
        assert_eq!(l.seek_ge(b"a\0\0\0\0\0\0\0\0"), None);
        assert_eq!(l.seek_lt(b"a\0\0\0\0\0\0\0\0"), None);
        assert_eq!(l.insert(1, b"a", 0, b""), Err(ArenaFull));
    }
}
