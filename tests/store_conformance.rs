//! ST1 / ST5 / ST3: the public conformance suite (`session_bridge::testing`) must
//! reject a store whose `create` is not atomic. A store author's first try is often
//! get-then-write (the trait had such a default once, ST5 removed it); the suite has to be
//! able to say it is not safe under concurrent creates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::executor::block_on;
use session_bridge::{Error, LiveStore, Record, Store, testing};

/// A store whose `create`, `update` and `destroy` read, then write, without holding anything
/// in between. Its `get` yields the thread after reading, as a network round-trip would, so
/// two creates released together can both see "nothing there".
#[derive(Default)]
struct GetThenSet(Mutex<HashMap<String, Record>>);

impl Store for GetThenSet {
    async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
        let found = self.0.lock().unwrap().get(sid).cloned();
        std::thread::yield_now();
        Ok(found)
    }
    async fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
        if self.get(sid).await?.is_some() {
            return Ok(false);
        }
        self.0.lock().unwrap().insert(sid.to_owned(), record);
        Ok(true)
    }
    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
        if self.get(sid).await?.is_none_or(|r| r.version != expected) {
            return Ok(false);
        }
        self.0.lock().unwrap().insert(sid.to_owned(), record);
        Ok(true)
    }
    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
        if self.get(sid).await?.is_none_or(|r| r.version != expected) {
            return Ok(false);
        }
        Ok(self.0.lock().unwrap().remove(sid).is_some())
    }
    async fn list(&self) -> Result<Vec<String>, Error> {
        Ok(self.0.lock().unwrap().keys().cloned().collect())
    }
}

#[test]
fn st5_the_suite_rejects_a_store_whose_create_is_get_then_set() {
    let failure = block_on(testing::conformance(&GetThenSet::default()))
        .expect_err("a non-atomic create must fail the conformance suite");
    assert_eq!(failure.check, "concurrent creates", "{failure}");
}

#[test]
fn st3_the_built_in_store_passes_the_threaded_suite() {
    let store = Arc::new(LiveStore::new());
    let report = block_on(testing::conformance(&store)).unwrap();
    assert!(report.supports_list);
    assert!(store.is_empty(), "the suite cleans up after itself");
}

/// ST1: a synchronous store plugs in through the `SyncStore` blanket adapter and keeps the
/// whole contract, including an atomic create done under its one lock.
#[test]
fn st1_a_sync_store_with_atomic_writes_passes_the_suite() {
    use session_bridge::SyncStore;
    #[derive(Default)]
    struct Locked(Mutex<HashMap<String, Record>>);
    impl SyncStore for Locked {
        fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
            Ok(self.0.lock().unwrap().get(sid).cloned())
        }
        fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
            let mut map = self.0.lock().unwrap();
            if map.get(sid).is_none_or(|r| r.version != expected) {
                return Ok(false);
            }
            Ok(map.remove(sid).is_some())
        }
        fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
            let mut map = self.0.lock().unwrap();
            if map.contains_key(sid) {
                return Ok(false);
            }
            map.insert(sid.to_owned(), record);
            Ok(true)
        }
        fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
            let mut map = self.0.lock().unwrap();
            match map.get(sid) {
                Some(old) if old.version == expected => {
                    map.insert(sid.to_owned(), record);
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
    }
    let report = block_on(testing::conformance(&Locked::default())).unwrap();
    assert!(
        !report.supports_list,
        "no `list`: cleanup is reported unsupported"
    );
}
