//! What the bridge costs per request and per socket call, side by side with the store work
//! that cannot be avoided (a `LiveStore` read + versioned update), in one run:
//!
//! ```sh
//! cargo bench --bench bridge
//! ```
//!
//! Read the figures as ratios to `store_baseline` of the same group.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use http::HeaderMap;
use session_bridge::{LiveStore, Record, SessionBridge, SocketSession, SyncStore};

fn bridge() -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([[7u8; 32]])
        .build()
        .expect("valid options")
}

/// The Cookie header of a browser that has a session with `{"n": 0, "user": "ada"}`.
fn browser_with_session(bridge: &SessionBridge) -> HeaderMap {
    let mut browser = common::Browser::new();
    block_on(browser.request(bridge, |s| async move {
        s.insert("n", 0).await.expect("insert");
        s.insert("user", "ada").await.expect("insert");
    }));
    browser.build_request().headers().clone()
}

fn store_baseline(c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let store = LiveStore::new();
    let mut record = Record::new(r#"{"n":0,"user":"ada"}"#, u64::MAX, 86_400_000);
    store.create("sid", record.clone()).expect("create");
    c.bench_function("store_baseline (get + update)", |b| {
        b.iter(|| {
            let current = store.get(black_box("sid")).expect("get").expect("present");
            record.version = current.version + 1;
            store
                .update("sid", record.clone(), current.version)
                .expect("update")
        })
    });
}

fn http(c: &mut Criterion) {
    let mut g = c.benchmark_group("http");
    store_baseline(&mut g);
    let bridge = bridge();
    let cookies = browser_with_session(&bridge);
    g.bench_function("untouched_request", |b| {
        b.iter(|| {
            let ctx = bridge.begin_request(black_box(&cookies));
            let mut out = HeaderMap::new();
            block_on(ctx.commit(&mut out)).expect("commit");
            out
        })
    });
    g.bench_function("read_request", |b| {
        b.iter(|| {
            let ctx = bridge.begin_request(black_box(&cookies));
            let n: Option<u64> = block_on(ctx.session().get("n")).expect("get");
            let mut out = HeaderMap::new();
            block_on(ctx.commit(&mut out)).expect("commit");
            (n, out)
        })
    });
    g.bench_function("write_request", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let ctx = bridge.begin_request(black_box(&cookies));
            block_on(ctx.session().insert("n", i)).expect("insert");
            let mut out = HeaderMap::new();
            block_on(ctx.commit(&mut out)).expect("commit");
            out
        })
    });
    g.finish();
}

fn socket(c: &mut Criterion) {
    let mut g = c.benchmark_group("socket");
    store_baseline(&mut g);
    let bridge = bridge();
    let cookies = browser_with_session(&bridge);
    let socket: SocketSession = block_on(bridge.bind_socket(&cookies)).expect("bind");
    g.bench_function("with_session_read", |b| {
        b.iter(|| {
            block_on(socket.with_session(async |ctx| ctx.get::<u64>("n"))).expect("with_session")
        })
    });
    g.bench_function("with_session_increment", |b| {
        b.iter(|| {
            block_on(socket.with_session(async |ctx| {
                let n = ctx.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
                ctx.insert_value("n", n.into());
                n
            }))
            .expect("with_session")
        })
    });
    g.finish();
}

criterion_group!(benches, http, socket);
criterion_main!(benches);
