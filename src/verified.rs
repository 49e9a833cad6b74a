//! A bounded memo of signed cookie values that verified (C2).
//!
//! A browser sends the same two signed cookies on every request, and checking their HMACs is
//! the largest single cost of a request that never touches its session (two SHA-256 blocks
//! per cookie). The memo keeps the exact bytes of values that verified, with which cookie
//! they verified for and whether an older key signed them; a request that sends one of them
//! again skips the MAC. It is sound because:
//!
//! - only values that verified are ever kept, so a value the memo knows is a value the key
//!   ring accepts (the ring is fixed when the bridge is built);
//! - a value is matched on all its bytes and on the cookie it verified for, so a value moved
//!   to the other cookie's name (C1) still goes through the MAC and fails;
//! - the comparison runs over the whole slot whatever the bytes, so its time says nothing
//!   about how much of a guess matched; a miss costs exactly the MAC it saved;
//! - it is bounded: a fixed number of slots, chosen from the value's last bytes (its
//!   signature), each holding one value; a newer value evicts the older one.
//!
//! Values longer than [`MAX_VALUE`] bytes (ids from a custom [`IdGen`](crate::id::IdGen)
//! longer than 52 characters) are always verified.

use std::sync::{Mutex, OnceLock, PoisonError};

/// The longest cookie value the memo keeps: a 52-character id, the dot, a 43-character MAC.
pub(crate) const MAX_VALUE: usize = 96;

/// Values remembered per bridge by default (about 430 KB once full).
pub(crate) const DEFAULT_SLOTS: usize = 4096;

/// The largest memo the builder accepts.
pub(crate) const MAX_SLOTS: usize = 1 << 20;

/// Which cookie a value verified for (the MAC binds the cookie's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CookieKind {
    Client = 1,
    Session = 2,
}

/// One remembered value; `kind == 0` is an empty slot.
struct Slot {
    kind: u8,
    len: u8,
    stale: bool,
    value: [u8; MAX_VALUE],
}

impl Slot {
    const EMPTY: Slot = Slot {
        kind: 0,
        len: 0,
        stale: false,
        value: [0; MAX_VALUE],
    };
}

/// The memo of one bridge (shared by its clones of the cookie codec).
pub(crate) struct VerifiedCache {
    /// Allocated at the first value kept: a bridge that never sees a cookie costs nothing.
    slots: OnceLock<Box<[Mutex<Slot>]>>,
    /// A power of two, or 0: the memo is off.
    len: usize,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("slots", &self.len)
            .finish_non_exhaustive()
    }
}

/// The value padded into a slot-sized buffer, or `None` when it cannot be kept.
fn padded(value: &str) -> Option<(u8, [u8; MAX_VALUE])> {
    let bytes = value.as_bytes();
    let len = u8::try_from(bytes.len()).ok()?;
    let mut out = [0u8; MAX_VALUE];
    out.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some((len, out))
}

/// Equal in time that does not depend on where the buffers differ.
fn same(a: &[u8; MAX_VALUE], b: &[u8; MAX_VALUE]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl VerifiedCache {
    /// A memo of `slots` values (rounded up to a power of two; 0 turns it off).
    pub(crate) fn new(slots: usize) -> Self {
        let len = if slots == 0 {
            0
        } else {
            slots.min(MAX_SLOTS).next_power_of_two()
        };
        Self {
            slots: OnceLock::new(),
            len,
        }
    }

    /// How many values it can hold (0: off).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.len
    }

    /// The slot of `value`: its last 8 bytes (the end of its MAC, for a signed value).
    fn index(&self, value: &str) -> usize {
        let bytes = value.as_bytes();
        let mut tail = [0u8; 8];
        let start = bytes.len().saturating_sub(8);
        for (t, b) in tail.iter_mut().zip(&bytes[start..]) {
            *t = *b;
        }
        let mixed = u64::from_le_bytes(tail).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // `len` is a power of two: the top bits of the product pick the slot.
        let bits = self.len.trailing_zeros();
        if bits == 0 {
            0
        } else {
            // A guard only (x < len): its `^` mutant, len - 1 - x, is equivalent (a bijection).
            usize::try_from(mixed >> (64 - bits)).unwrap_or(0) & (self.len - 1)
        }
    }

    /// `Some(stale)` when `value` verified for `kind` before (`stale`: with an older key).
    pub(crate) fn lookup(&self, kind: CookieKind, value: &str) -> Option<bool> {
        if self.len == 0 {
            return None;
        }
        let slots = self.slots.get()?;
        let (len, wanted) = padded(value)?;
        let slot = slots
            .get(self.index(value))?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Every field is compared whatever the others say (no early exit on the bytes).
        let hit = same(&slot.value, &wanted) & (slot.len == len) & (slot.kind == kind as u8);
        hit.then_some(slot.stale)
    }

    /// Keeps `value`, which has just verified for `kind`.
    pub(crate) fn remember(&self, kind: CookieKind, value: &str, stale: bool) {
        if self.len == 0 {
            return;
        }
        let Some((len, bytes)) = padded(value) else {
            return;
        };
        let slots = self.slots.get_or_init(|| {
            (0..self.len)
                .map(|_| Mutex::new(Slot::EMPTY))
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        if let Some(slot) = slots.get(self.index(value)) {
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            *slot = Slot {
                kind: kind as u8,
                len,
                stale,
                value: bytes,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str =
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

    #[test]
    fn a_value_is_known_only_after_it_verified() {
        let cache = VerifiedCache::new(16);
        assert_eq!(cache.lookup(CookieKind::Client, VALUE), None);
        cache.remember(CookieKind::Client, VALUE, false);
        assert_eq!(cache.lookup(CookieKind::Client, VALUE), Some(false));
    }

    #[test]
    fn a_value_is_known_only_for_the_cookie_it_verified_for() {
        let cache = VerifiedCache::new(16);
        cache.remember(CookieKind::Client, VALUE, false);
        assert_eq!(
            cache.lookup(CookieKind::Session, VALUE),
            None,
            "C1: name bound"
        );
    }

    #[test]
    fn every_byte_counts() {
        let cache = VerifiedCache::new(1); // one slot: every value lands in it
        cache.remember(CookieKind::Session, VALUE, true);
        for i in 0..VALUE.len() {
            let mut other = VALUE.as_bytes().to_vec();
            other[i] = if other[i] == b'B' { b'C' } else { b'B' };
            let other = String::from_utf8(other).unwrap();
            assert_eq!(cache.lookup(CookieKind::Session, &other), None, "byte {i}");
        }
        assert_eq!(
            cache.lookup(CookieKind::Session, &VALUE[..VALUE.len() - 1]),
            None,
            "a prefix is another value"
        );
        assert_eq!(
            cache.lookup(CookieKind::Session, VALUE),
            Some(true),
            "stale kept"
        );
    }

    /// C2: the bytes' differences are OR-ed, not XOR-ed: two positions that differ by the same
    /// bits (`A`->`B` twice: 0x03 each) cancel under XOR, and the memo would then answer for a
    /// value that never verified.
    #[test]
    fn c2_two_differences_that_cancel_under_xor_still_miss() {
        let twice = |i: usize, j: usize| {
            let mut other = VALUE.as_bytes().to_vec();
            assert_eq!((other[i], other[j]), (b'A', b'A'));
            other[i] = b'B';
            other[j] = b'B';
            String::from_utf8(other).unwrap()
        };
        let (mine, theirs) = (padded(VALUE).unwrap().1, padded(&twice(0, 1)).unwrap().1);
        assert_eq!(
            mine.iter()
                .zip(&theirs)
                .fold(0u8, |acc, (x, y)| acc ^ (x ^ y)),
            0,
            "the differences cancel under XOR"
        );
        assert!(!same(&mine, &theirs));
        assert!(same(&mine, &mine));
        let cache = VerifiedCache::new(1); // one slot: both values land in it
        cache.remember(CookieKind::Client, VALUE, false);
        for (i, j) in [(0, 1), (0, 31), (7, 20)] {
            assert_eq!(
                cache.lookup(CookieKind::Client, &twice(i, j)),
                None,
                "{i},{j}"
            );
        }
        assert_eq!(cache.lookup(CookieKind::Client, VALUE), Some(false));
    }

    #[test]
    fn a_newer_value_evicts_the_older_one_of_its_slot() {
        let cache = VerifiedCache::new(1);
        let newer = VALUE.replace('A', "B");
        cache.remember(CookieKind::Client, VALUE, false);
        cache.remember(CookieKind::Client, &newer, false);
        assert_eq!(cache.lookup(CookieKind::Client, VALUE), None);
        assert_eq!(cache.lookup(CookieKind::Client, &newer), Some(false));
    }

    #[test]
    fn long_values_and_a_cache_that_is_off_keep_nothing() {
        let long = format!("{}.{}", "A".repeat(60), &VALUE[33..]);
        let cache = VerifiedCache::new(16);
        cache.remember(CookieKind::Client, &long, false);
        assert_eq!(cache.lookup(CookieKind::Client, &long), None);
        let off = VerifiedCache::new(0);
        off.remember(CookieKind::Client, VALUE, false);
        assert_eq!(off.lookup(CookieKind::Client, VALUE), None);
        assert_eq!(off.capacity(), 0);
        assert_eq!(VerifiedCache::new(1000).capacity(), 1024);
    }

    /// L1: the memo's `Debug` shows its size, never a value it holds.
    #[test]
    fn l1_the_memo_debugs_its_size_never_a_value() {
        let cache = VerifiedCache::new(16);
        cache.remember(CookieKind::Client, VALUE, false);
        let text = format!("{cache:?}");
        assert_eq!(text, "VerifiedCache { slots: 16, .. }");
        assert!(!text.contains(&VALUE[..10]));
    }

    #[test]
    fn slots_spread_over_the_table() {
        let cache = VerifiedCache::new(64);
        let mut seen = std::collections::HashSet::new();
        for i in 0..256u32 {
            seen.insert(cache.index(&format!("{VALUE}{i:08}")));
        }
        assert!(seen.len() > 48, "only {} of 64 slots used", seen.len());
    }
}
