//! Model test of the key-level merge (`Changes::diff` then `Changes::apply`), the rule that keeps
//! an HTTP request and sockets from erasing each other's changes (crate docs "Concurrency",
//! S3, H12): keys we changed take our value (a removal removes), keys we did not touch keep the
//! fresh record's value, and a replacement (`clear`, `replace`) writes our object whole.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::Changes;

/// Few keys and few values, so that before, after and fresh collide often; `null` is a value
/// like any other (setting a key to null is not removing it).
fn map() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        Just(Value::Null),
        (0..3i64).prop_map(Value::from),
        Just(json!({"nested": 1})),
        Just(json!({"nested": 2})),
        Just(json!([1])),
    ];
    prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "c", "d", "e"]),
        value,
        0..5,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn keys<'a>(maps: &[&'a Map<String, Value>]) -> BTreeSet<&'a String> {
    maps.iter().flat_map(|m| m.keys()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ours_where_we_changed_fresh_elsewhere(before in map(), after in map(), fresh in map()) {
        let changes = Changes::diff(&before, &after);
        prop_assert!(!changes.replaced);
        let mut merged = fresh.clone();
        changes.apply(&after, &mut merged);
        for k in keys(&[&before, &after, &fresh, &merged]) {
            if before.get(k) != after.get(k) {
                prop_assert_eq!(merged.get(k), after.get(k), "we changed {:?}", k);
            } else {
                prop_assert_eq!(merged.get(k), fresh.get(k), "we did not touch {:?}", k);
            }
        }
        // The recorded keys are exactly the ones we changed.
        let changed: BTreeSet<&String> = keys(&[&before, &after])
            .into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        prop_assert_eq!(changes.keys.keys().collect::<BTreeSet<_>>(), changed);
        prop_assert_eq!(changes.is_empty(), before == after);
        // Applying the same changes again changes nothing more.
        let mut twice = merged.clone();
        changes.apply(&after, &mut twice);
        prop_assert_eq!(twice, merged);
    }

    #[test]
    fn unchanged_fresh_gives_exactly_ours(before in map(), after in map()) {
        // Nobody else wrote: the merge is our object.
        let mut merged = before.clone();
        Changes::diff(&before, &after).apply(&after, &mut merged);
        prop_assert_eq!(merged, after);
    }

    #[test]
    fn a_replacement_writes_ours_whole(ours in map(), fresh in map(), before in map()) {
        let mut changes = Changes::diff(&before, &ours);
        changes.replaced = true;
        prop_assert!(!changes.is_empty());
        let mut merged = fresh;
        changes.apply(&ours, &mut merged);
        prop_assert_eq!(merged, ours);
    }
}
