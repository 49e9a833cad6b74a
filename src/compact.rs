//! The compact tables behind the in-memory store and mapping: ids kept inline (no heap string
//! per id), entries side by side in one `Vec`, hash indexes that hold only `u32` positions,
//! and an incremental sweep cursor instead of a sorted expiry index. A small session then
//! costs its entry, its JSON text and a few bytes of index (`cargo bench --bench memory`).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Ids up to this many bytes are stored inline (the default ids have 32; owner tags 22).
const INLINE: usize = 38;

/// An id (or tag) stored without a heap allocation when it is short.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Id {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl Id {
    pub(crate) fn new(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Id::Inline { len, bytes }
            }
            _ => Id::Heap(text.into()),
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Id::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Id::Heap(text) => text.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Always valid: the bytes were copied from a `&str`.
            Id::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Id::Heap(text) => text,
        }
    }

    /// Whether this is the id `text`.
    pub(crate) fn is(&self, text: &str) -> bool {
        self.as_bytes() == text.as_bytes()
    }
}

/// A hash index of positions in a `Vec` of entries, by one key of the entry.
pub(crate) struct Index {
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl Index {
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The position whose key (per `key_of`) is `key`.
    pub(crate) fn find<'a>(&self, key: &[u8], key_of: impl Fn(u32) -> &'a [u8]) -> Option<u32> {
        self.table
            .find(self.hash(key), |&pos| key_of(pos) == key)
            .copied()
    }

    /// Indexes `pos` under `key` (not indexed yet).
    pub(crate) fn insert<'a>(&mut self, key: &[u8], pos: u32, key_of: impl Fn(u32) -> &'a [u8]) {
        let hasher = &self.hasher;
        self.table
            .insert_unique(hasher.hash_one(key), pos, |&p| hasher.hash_one(key_of(p)));
    }

    /// Drops position `pos`, indexed under `key`.
    pub(crate) fn remove(&mut self, key: &[u8], pos: u32) {
        if let Ok(entry) = self.table.find_entry(self.hash(key), |&p| p == pos) {
            entry.remove();
        }
    }

    /// The entry under `key` moved from position `from` to `to`.
    pub(crate) fn moved(&mut self, key: &[u8], from: u32, to: u32) {
        if let Some(slot) = self.table.find_mut(self.hash(key), |&p| p == from) {
            *slot = to;
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    pub(crate) fn shrink<'a>(&mut self, key_of: impl Fn(u32) -> &'a [u8]) {
        let hasher = &self.hasher;
        self.table.shrink_to_fit(|&p| hasher.hash_one(key_of(p)));
    }
}

/// Where a sweep goes on: a position that wraps around the entries.
#[derive(Default)]
pub(crate) struct Cursor(std::sync::atomic::AtomicUsize);

impl Cursor {
    /// The next `n` positions of a table of `len` entries (fewer when it is smaller), and
    /// moves on past them.
    pub(crate) fn next(&self, len: usize, n: usize) -> impl Iterator<Item = usize> + use<> {
        use std::sync::atomic::Ordering;
        let n = n.min(len);
        let start = if len == 0 {
            0
        } else {
            self.0.fetch_add(n, Ordering::Relaxed) % len
        };
        (0..n).map(move |i| (start + i) % len.max(1))
    }
}

/// Whether a table of `len` entries with room for `capacity` should give memory back.
pub(crate) fn should_shrink(len: usize, capacity: usize) -> bool {
    capacity > 64 && len < capacity / 4
}

/// A position as the indexes store it. Tables are bounded far below 2^32 entries by memory.
pub(crate) fn pos(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_inline_and_on_the_heap() {
        for text in ["", "abc", &"x".repeat(38), &"y".repeat(39), "ünï"] {
            let id = Id::new(text);
            assert_eq!(id.as_str(), text);
            assert!(id.is(text));
            assert!(!id.is("other"));
        }
        assert!(matches!(Id::new(&"x".repeat(38)), Id::Inline { .. }));
        assert!(matches!(Id::new(&"x".repeat(39)), Id::Heap(_)));
        assert!(std::mem::size_of::<Id>() <= 40);
    }

    #[test]
    fn an_index_finds_moves_and_forgets_positions() {
        let keys = ["a", "b", "c"];
        let key_of = |p: u32| keys[p as usize].as_bytes();
        let mut index = Index::default();
        for (i, k) in keys.iter().enumerate() {
            index.insert(k.as_bytes(), pos(i), key_of);
        }
        assert_eq!(index.find(b"b", key_of), Some(1));
        index.remove(b"b", 1);
        assert_eq!(index.find(b"b", key_of), None);
        index.moved(b"c", 2, 1);
        let moved = ["a", "c"];
        assert_eq!(
            index.find(b"c", |p: u32| moved[p as usize].as_bytes()),
            Some(1)
        );
    }

    #[test]
    fn the_cursor_wraps() {
        let cursor = Cursor::default();
        assert_eq!(cursor.next(3, 2).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(cursor.next(3, 2).collect::<Vec<_>>(), vec![2, 0]);
        assert_eq!(cursor.next(0, 2).count(), 0);
    }
}
