//! Test helpers shared by the integration tests and the Gherkin runner: a cookie-following
//! "browser" that drives real `http::Request` / `http::Response` values through the bridge,
//! and a store wrapper that counts calls and can be told to fail. Beside them: the example
//! binaries and Node scripts run as processes (`examples`), a private `redis-server`
//! (`redis`), the Node scripts' closing line (`pass_line`), a tracing capture (`capture`).
#![allow(dead_code)]

pub mod capture;
pub mod examples;
pub mod pass_line;
pub mod redis;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::{HeaderMap, HeaderValue, Request, Response, header};
use session_bridge::{Error, LiveStore, Record, Session, SessionBridge, Store};

/// A browser's cookie jar, following `Set-Cookie` like a user agent (name -> value).
#[derive(Debug, Default, Clone)]
pub struct Browser {
    pub jar: BTreeMap<String, String>,
}

/// What one request produced.
#[derive(Debug)]
pub struct Exchange<T> {
    pub value: T,
    pub response: Response<()>,
}

impl<T> Exchange<T> {
    /// The `Set-Cookie` headers of the response, as text.
    pub fn set_cookies(&self) -> Vec<String> {
        set_cookies(self.response.headers())
    }

    /// The `Set-Cookie` header for cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii Set-Cookie").to_owned())
        .collect()
}

impl Browser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The request this browser would send now.
    pub fn build_request(&self) -> Request<()> {
        let mut builder = Request::builder().uri("/api/session");
        if !self.jar.is_empty() {
            let cookie = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            builder = builder.header(header::COOKIE, cookie);
        }
        builder.body(()).expect("valid request")
    }

    /// Applies a response's `Set-Cookie` headers to the jar.
    pub fn absorb(&mut self, headers: &HeaderMap) {
        for raw in set_cookies(headers) {
            let c = cookie::Cookie::parse(raw).expect("server sends parseable cookies");
            let expired = c.max_age().is_some_and(|d| d.is_zero() || d.is_negative());
            if expired {
                self.jar.remove(c.name());
            } else {
                self.jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }

    /// One request through the bridge: begin, run `handler` on the session, commit, follow
    /// the cookies. Panics on a commit error (use `try_request` to see it).
    pub async fn request<F, Fut, T>(&mut self, bridge: &SessionBridge, handler: F) -> Exchange<T>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = T>,
    {
        self.try_request(bridge, handler)
            .await
            .unwrap_or_else(|e| panic!("commit failed: {e}"))
    }

    /// Like `request`, returning the commit error instead of panicking.
    pub async fn try_request<F, Fut, T>(
        &mut self,
        bridge: &SessionBridge,
        handler: F,
    ) -> Result<Exchange<T>, Error>
    where
        F: FnOnce(Session) -> Fut,
        Fut: Future<Output = T>,
    {
        let request = self.build_request();
        let ctx = bridge.begin_request(request.headers());
        let value = handler(ctx.session().clone()).await;
        let mut response = Response::new(());
        ctx.commit(response.headers_mut()).await?;
        self.absorb(response.headers());
        Ok(Exchange { value, response })
    }

    /// A request whose handler never touches the session.
    pub async fn visit(&mut self, bridge: &SessionBridge) -> Exchange<()> {
        self.request(bridge, |_| async {}).await
    }

    /// Sets a raw cookie in the jar (to forge, copy or corrupt one).
    pub fn set(&mut self, name: &str, value: &str) {
        self.jar.insert(name.to_owned(), value.to_owned());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }
}

/// A request carrying exactly these raw `Cookie` header values.
pub fn headers_with_cookies(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(
            header::COOKIE,
            HeaderValue::from_bytes(v).expect("header bytes"),
        );
    }
    h
}

/// Wraps a store: counts calls, fails on demand.
#[derive(Clone, Default)]
pub struct Probe<S = LiveStore> {
    pub inner: S,
    pub gets: Arc<AtomicUsize>,
    pub writes: Arc<AtomicUsize>,
    pub destroys: Arc<AtomicUsize>,
    pub fail: Arc<AtomicBool>,
}

impl<S: Store> Probe<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            gets: Arc::default(),
            writes: Arc::default(),
            destroys: Arc::default(),
            fail: Arc::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
            + self.writes.load(Ordering::SeqCst)
            + self.destroys.load(Ordering::SeqCst)
    }

    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn check(&self, op: &'static str) -> Result<(), Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::store(op, std::io::Error::other("injected failure")));
        }
        Ok(())
    }
}

impl Probe<LiveStore> {
    /// Plants `record` under `sid` whatever is stored there (`LiveStore::put`): a record a
    /// test makes by hand (old, foreign, broken). Not counted as a bridge write.
    pub async fn set(&self, sid: &str, record: Record) -> Result<bool, Error> {
        self.inner.put(sid, record);
        Ok(true)
    }
}

impl<S: Store> Store for Probe<S> {
    async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.check("get")?;
        self.inner.get(sid).await
    }
    async fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.check("create")?;
        self.inner.create(sid, record).await
    }
    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.check("update")?;
        self.inner.update(sid, record, expected).await
    }
    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
        self.destroys.fetch_add(1, Ordering::SeqCst);
        self.check("destroy")?;
        self.inner.destroy(sid, expected).await
    }
    async fn list(&self) -> Result<Vec<String>, Error> {
        self.check("list")?;
        self.inner.list().await
    }
    async fn optimize(&self, cleared: usize) -> Result<(), Error> {
        self.inner.optimize(cleared).await
    }
}

pub const KEY_A: [u8; 32] = [0xA1; 32];
pub const KEY_B: [u8; 32] = [0xB2; 32];

/// One write that reached a store: the operation, the session id and the session text
/// (empty for `destroy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub op: &'static str,
    pub sid: String,
    pub session: String,
}

/// Wraps a store and journals every write and destroy that reached it, in order.
#[derive(Clone, Default)]
pub struct Journal<S = LiveStore> {
    pub inner: S,
    pub log: Arc<std::sync::Mutex<Vec<Entry>>>,
}

impl<S: Store> Journal<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            log: Arc::default(),
        }
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.log.lock().unwrap().clone()
    }

    fn push(&self, op: &'static str, sid: &str, session: &str) {
        self.log.lock().unwrap().push(Entry {
            op,
            sid: sid.to_owned(),
            session: session.to_owned(),
        });
    }
}

impl<S: Store> Store for Journal<S> {
    async fn get(&self, sid: &str) -> Result<Option<Record>, Error> {
        self.inner.get(sid).await
    }
    async fn create(&self, sid: &str, record: Record) -> Result<bool, Error> {
        self.push("create", sid, &record.session);
        self.inner.create(sid, record).await
    }
    async fn update(&self, sid: &str, record: Record, expected: u64) -> Result<bool, Error> {
        self.push("update", sid, &record.session);
        self.inner.update(sid, record, expected).await
    }
    async fn destroy(&self, sid: &str, expected: u64) -> Result<bool, Error> {
        self.push("destroy", sid, "");
        self.inner.destroy(sid, expected).await
    }
    async fn list(&self) -> Result<Vec<String>, Error> {
        self.inner.list().await
    }
    async fn optimize(&self, cleared: usize) -> Result<(), Error> {
        self.inner.optimize(cleared).await
    }
}

/// Polls `fut` once with a waker that does nothing: `Some` when it completed.
pub fn poll_once<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

// -- The world most HTTP-side tests start from: a bridge on a manual clock over a probed
// -- LiveStore, with fixed keys and a max age of one day.

pub const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

pub struct World {
    pub bridge: SessionBridge,
    pub clock: session_bridge::clock::ManualClock,
    pub store: Arc<Probe<LiveStore>>,
}

pub fn world_with(
    f: impl FnOnce(session_bridge::SessionBridgeBuilder) -> session_bridge::SessionBridgeBuilder,
) -> World {
    let clock = session_bridge::clock::ManualClock::new(1_700_000_000_000);
    let store = Arc::new(Probe::new(LiveStore::with_clock(clock.clone())));
    let builder = SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .max_age(DAY)
        .clock(clock.clone())
        .store(Arc::clone(&store));
    World {
        bridge: f(builder).build().expect("valid options"),
        clock,
        store,
    }
}

pub fn world() -> World {
    world_with(|b| b)
}

/// The session's `n` as browser `b` reads it over HTTP.
pub async fn read_n(b: &mut Browser, bridge: &SessionBridge) -> Option<u64> {
    b.request(bridge, |s| async move { s.get::<u64>("n").await.unwrap() })
        .await
        .value
}

pub async fn count(b: &mut Browser, bridge: &SessionBridge) -> u64 {
    b.request(bridge, |s| async move {
        let n = s.get::<u64>("n").await.unwrap().unwrap_or(0) + 1;
        s.insert("n", n).await.unwrap();
        n
    })
    .await
    .value
}
