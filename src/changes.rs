//! The key-level merge both flows use: what a request or a socket handler changed, applied
//! onto the record as it is in the store at commit time, so writers of different keys never
//! erase each other (the "no lost update" core).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// What one writer changed, key by key (`None`: removed), or "the whole object".
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes {
    /// The whole object was replaced (`clear`, `replace`, `set_by_id`): write ours as is.
    replaced: bool,
    keys: BTreeMap<String, Option<Value>>,
}

impl Changes {
    /// "Ours replaces the stored object whole."
    pub(crate) fn replacement() -> Self {
        Self {
            replaced: true,
            keys: BTreeMap::new(),
        }
    }

    /// Records that `key` now holds `value` (`None`: removed).
    pub(crate) fn record(&mut self, key: &str, value: Option<Value>) {
        self.keys.insert(key.to_owned(), value);
    }

    /// Whether this writer wrote `key` (or replaced the whole object).
    pub(crate) fn touches(&self, key: &str) -> bool {
        self.replaced || self.keys.contains_key(key)
    }

    /// Takes `later`'s key changes on top of these (a replacement stays a replacement).
    pub(crate) fn absorb(&mut self, later: Changes) {
        if later.replaced {
            *self = later;
        } else {
            self.keys.extend(later.keys);
        }
    }

    /// H12: whether a key this writer both read (with the value in `reads`) and wrote holds
    /// something else in `fresh`, the record as it is now: another writer changed it in
    /// between, and writing ours would lose that change silently.
    pub(crate) fn conflicts(
        &self,
        reads: &BTreeMap<String, Option<Value>>,
        fresh: &Map<String, Value>,
    ) -> bool {
        reads
            .iter()
            .any(|(key, seen)| self.touches(key) && fresh.get(key) != seen.as_ref())
    }

    /// Whether a key these changes touch holds something in `fresh` other than in `before`,
    /// the record the writer saw: another writer changed it in between.
    pub(crate) fn moved(&self, before: &Map<String, Value>, fresh: &Map<String, Value>) -> bool {
        if self.replaced {
            return before != fresh;
        }
        self.keys.keys().any(|k| before.get(k) != fresh.get(k))
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.replaced && self.keys.is_empty()
    }

    /// The key-level changes that turn `before` into `after`.
    pub(crate) fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Self {
        let mut keys = BTreeMap::new();
        for (k, v) in after {
            if before.get(k) != Some(v) {
                keys.insert(k.clone(), Some(v.clone()));
            }
        }
        for k in before.keys() {
            if !after.contains_key(k) {
                keys.insert(k.clone(), None);
            }
        }
        Self {
            replaced: false,
            keys,
        }
    }

    /// Applies these changes onto `fresh`; `ours` is the writer's full view.
    pub(crate) fn apply(&self, ours: &Map<String, Value>, fresh: &mut Map<String, Value>) {
        if self.replaced {
            *fresh = ours.clone();
            return;
        }
        for (k, v) in &self.keys {
            match v {
                Some(v) => {
                    fresh.insert(k.clone(), v.clone());
                }
                None => {
                    fresh.remove(k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn diff_then_apply_merges_onto_a_fresher_record() {
        let before = obj(json!({"a": 1, "b": 1, "gone": true}));
        let after = obj(json!({"a": 2, "b": 1, "new": "x"}));
        let changes = Changes::diff(&before, &after);
        assert_eq!(changes.keys.len(), 3);
        // Someone else changed `b` and added `c` meanwhile: both survive.
        let mut fresh = obj(json!({"a": 1, "b": 5, "c": 7, "gone": true}));
        changes.apply(&after, &mut fresh);
        assert_eq!(fresh, obj(json!({"a": 2, "b": 5, "c": 7, "new": "x"})));
        assert!(Changes::diff(&after, &after).is_empty());
    }

    #[test]
    fn a_replacement_wins_whole() {
        let ours = obj(json!({"only": 1}));
        let mut fresh = obj(json!({"other": 2}));
        Changes::replacement().apply(&ours, &mut fresh);
        assert_eq!(fresh, ours);
    }
}

#[cfg(test)]
mod model_tests;
