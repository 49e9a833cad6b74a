//! `get` and versioned `update` of one small session on each built-in store, side by side in
//! one run (issue "stores": the figures beside LiveStore in the README):
//!
//! ```sh
//! cargo bench --bench stores --all-features
//! ```
//!
//! RedisStore needs a Redis on 127.0.0.1:6379 (`.ci/run` starts one); without it the Redis
//! group says so and is left out. FileStore writes to a fresh temporary directory (fsync per
//! write: its figure is the disk's).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use session_bridge::{LiveStore, Record, Store};

const SID: &str = "benchbenchbenchbenchbenchbench01";

fn record(version: u64) -> Record {
    let mut r = Record::new(r#"{"n":1,"user":"ada"}"#, 4_102_444_800_000, 86_400_000);
    r.version = version;
    r
}

/// Benches `get` and `update` on `store`, driving each future with `run`.
fn bench_store<S: Store>(c: &mut Criterion, name: &str, store: &S, run: &dyn Fn(&mut dyn FnMut())) {
    let mut version = 0;
    run(&mut || {
        futures::executor::block_on(async {
            // A record left by an earlier run goes first, whatever its version.
            if let Ok(Some(old)) = store.get(SID).await {
                store.destroy(SID, old.version).await.ok();
            }
            store.create(SID, record(0)).await.expect("create");
        })
    });
    let mut g = c.benchmark_group(name);
    g.bench_function("get", |b| {
        b.iter(|| {
            run(&mut || {
                let got = futures::executor::block_on(store.get(SID)).expect("get");
                black_box(got);
            })
        })
    });
    g.bench_function("update (compare-and-set)", |b| {
        b.iter(|| {
            run(&mut || {
                let ok =
                    futures::executor::block_on(store.update(SID, record(version + 1), version))
                        .expect("update");
                assert!(ok, "the version matches");
                version += 1;
            })
        })
    });
    g.finish();
    run(&mut || {
        futures::executor::block_on(store.destroy(SID, version)).ok();
    });
}

fn stores(c: &mut Criterion) {
    let direct = |f: &mut dyn FnMut()| f();
    bench_store(c, "LiveStore", &LiveStore::new(), &direct);

    #[cfg(feature = "file")]
    {
        let dir = std::env::temp_dir().join(format!("sb-bench-{}", std::process::id()));
        match session_bridge::store::FileStore::open(&dir) {
            Ok(store) => bench_store(c, "FileStore", &store, &direct),
            Err(err) => eprintln!("FileStore left out: {err}"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(feature = "redis")]
    {
        let runtime = std::sync::Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a tokio runtime"),
        );
        let options = session_bridge::store::RedisOptions::default().prefix("sb-bench:");
        let connected = runtime.block_on(session_bridge::store::RedisStore::connect(
            "redis://127.0.0.1:6379",
            options,
        ));
        match connected {
            Ok(store) => {
                // The store runs its calls on the runtime it connected in; the bench thread
                // only waits for them.
                let rt = std::sync::Arc::clone(&runtime);
                let _guard = rt.enter();
                bench_store(c, "RedisStore", &store, &direct);
            }
            Err(err) => eprintln!("RedisStore left out (no Redis on 127.0.0.1:6379?): {err}"),
        }
    }
}

criterion_group!(benches, stores);
criterion_main!(benches);
