//! Memory per session, counted by the allocator (exact, repeatable; RSS from outside is in
//! `benches/load/`): the live heap bytes that N small sessions add to a bridge with the
//! default in-memory store and mapping, split into the store's share and the mapping's, and
//! what is left once they expired and a cleanup ran (issue "performance": at most 0.4 KB per
//! small session, mapping included, freed when it expires).
//!
//! ```sh
//! cargo bench --bench memory
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use session_bridge::clock::ManualClock;
use session_bridge::{LiveStore, SessionBridge};

/// Live heap bytes (requested sizes; the allocator's own overhead comes on top).
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter moves.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Creates `n` sessions like the quick start's first `/api/session` (two small keys), each
/// from its own browser (no cookies: a new client id and a new session).
fn fill(bridge: &SessionBridge, n: usize) {
    futures::executor::block_on(async {
        for i in 0..n {
            let ctx = bridge.begin_request(&http::HeaderMap::new());
            let session = ctx.session();
            session
                .insert("createdAt", 1_733_000_000_000u64)
                .await
                .expect("insert");
            session
                .insert("httpCount", (i % 100) as u64)
                .await
                .expect("insert");
            ctx.commit(&mut http::HeaderMap::new())
                .await
                .expect("commit");
        }
    });
}

fn main() {
    // `cargo bench` passes `--bench`; this bench has no filters.
    let n: usize = std::env::var("SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let clock = ManualClock::new(1_733_000_000_000);
    let store = std::sync::Arc::new(LiveStore::with_clock(clock.clone()));
    let bridge = SessionBridge::builder()
        .key("app.sid")
        .keys([[3u8; 32]])
        .clock(clock.clone())
        .max_age(Duration::from_secs(3600))
        .store(std::sync::Arc::clone(&store))
        .build()
        .expect("bridge");
    // Warm up (first allocations of the maps), then measure.
    fill(&bridge, 10);
    let before = live();
    fill(&bridge, n);
    let after = live();
    let per_session = (after - before) as f64 / n as f64;
    assert_eq!(bridge.mapped_sessions(), n + 10);
    // The store's share: the same records in a bare LiveStore.
    let records: Vec<(String, session_bridge::Record)> = futures::executor::block_on(async {
        use session_bridge::Store;
        let mut out = Vec::new();
        for sid in store.list().await.expect("list") {
            if let Some(r) = store.get(&sid).await.expect("get") {
                out.push((sid, r));
            }
        }
        out
    });
    let copy_base = live();
    let copy = LiveStore::with_clock(clock.clone());
    for (sid, record) in &records {
        session_bridge::SyncStore::create(&copy, sid, record.clone()).expect("create");
    }
    let store_share = (live() - copy_base) as f64 / (n + 10) as f64;
    drop(copy);
    drop(records);

    clock.advance(Duration::from_secs(2 * 3600));
    let cleared = futures::executor::block_on(bridge.cleanup()).expect("cleanup");
    let left = live() - before;
    eprintln!(
        "after cleanup: store {} records, mapping {} pairs",
        store.len(),
        bridge.mapped_sessions()
    );
    println!(
        "| sessions | heap bytes per session (mapping included) | store's share | mapping and the rest | heap left after expiry + cleanup |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {n} | {per_session:.0} | {store_share:.0} | {:.0} | {left} bytes ({cleared} cleared) |",
        per_session - store_share
    );
}
