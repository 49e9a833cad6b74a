//! The cost of many nodes (SPEC M1-M4), side by side in one run: one `with_session`
//! increment and one HTTP write (a request with the browser's cookies that changes a key, and
//! its commit), on
//!
//! * one process with the in-memory store (`LiveStore`, in-memory mapping and locks);
//! * one process with `RedisStore` (sessions in Redis; mapping and locks in memory);
//! * a node of many (`RedisNodes`: sessions, mapping, lease and notices in Redis).
//!
//! ```sh
//! cargo bench --bench nodes --features redis
//! ```
//!
//! Needs a Redis on 127.0.0.1:6379 (`bash .ci/setup` starts one); without it the bench fails.
//! Loopback Redis: each figure is mostly round trips (see the README's table).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use session_bridge::SessionBridge;

const URL: &str = "redis://127.0.0.1:6379/";

fn builder() -> session_bridge::SessionBridgeBuilder {
    SessionBridge::builder().key("app.sid").keys([[9u8; 32]])
}

/// The cookie header of a browser whose session holds `n = 0`.
async fn browser(bridge: &SessionBridge) -> http::HeaderMap {
    let ctx = bridge.begin_request(&http::HeaderMap::new());
    ctx.session().insert("n", 0).await.expect("insert");
    let mut out = http::HeaderMap::new();
    ctx.commit(&mut out).await.expect("commit");
    let cookie = out
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, cookie.parse().expect("ascii cookies"));
    headers
}

/// Runs `iters` calls of `call` in one task on the runtime (as a server's handlers run), and
/// times them there.
fn timed<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, call: F) -> Duration
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.block_on(rt.spawn(async move {
        let started = std::time::Instant::now();
        for _ in 0..iters {
            call().await;
        }
        started.elapsed()
    }))
    .expect("the bench task")
}

fn bench_bridge(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    bridge: SessionBridge,
) {
    let headers = rt.block_on(browser(&bridge));
    let socket = rt.block_on(bridge.bind_socket(&headers)).expect("bind");
    let mut g = c.benchmark_group(name);
    g.bench_function("with_session increment", |b| {
        b.iter_custom(|iters| {
            let socket = socket.clone();
            timed(rt, iters, move || {
                let socket = socket.clone();
                async move {
                    socket
                        .with_session(async |ctx| {
                            let n = ctx.get::<u64>("n").ok().flatten().unwrap_or(0) + 1;
                            ctx.insert("n", n)
                        })
                        .await
                        .expect("with_session")
                        .expect("insert");
                }
            })
        })
    });
    g.bench_function("HTTP write + commit", |b| {
        b.iter_custom(|iters| {
            let (bridge, headers) = (bridge.clone(), headers.clone());
            timed(rt, iters, move || {
                let (bridge, headers) = (bridge.clone(), headers.clone());
                async move {
                    let ctx = bridge.begin_request(&headers);
                    let n = ctx
                        .session()
                        .get::<u64>("http")
                        .await
                        .expect("get")
                        .unwrap_or(0);
                    ctx.session().insert("http", n + 1).await.expect("insert");
                    ctx.commit(&mut http::HeaderMap::new())
                        .await
                        .expect("commit");
                }
            })
        })
    });
    g.finish();
}

fn nodes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    bench_bridge(
        c,
        &rt,
        "one process, LiveStore",
        builder().build().expect("bridge"),
    );

    let store = rt
        .block_on(session_bridge::store::RedisStore::connect(
            URL,
            session_bridge::store::RedisOptions::default().prefix("bench-nodes:single:"),
        ))
        .expect("a Redis on 127.0.0.1:6379 (bash .ci/setup)");
    bench_bridge(
        c,
        &rt,
        "one process, RedisStore",
        builder().store(store).build().expect("bridge"),
    );

    let nodes = rt
        .block_on(session_bridge::nodes::redis::RedisNodes::connect(
            URL,
            session_bridge::nodes::redis::RedisNodesOptions::new("bench-nodes"),
        ))
        .expect("a Redis on 127.0.0.1:6379 (bash .ci/setup)");
    bench_bridge(
        c,
        &rt,
        "node of many, RedisNodes",
        builder().nodes(nodes).build().expect("bridge"),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).sample_size(30);
    targets = nodes
}
criterion_main!(benches);
