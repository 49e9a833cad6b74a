//! The builder of a [`SessionBridge`]: every option of SPEC O1 with its default, checked
//! once by [`SessionBridgeBuilder::build`] (O2), which then assembles the engine.

use std::sync::Arc;
use std::time::Duration;

use cookie::SameSite;

use crate::bridge::SessionBridge;
use crate::cleanup::{CleanupSchedule, default_interval};
use crate::clock::{Clock, SystemClock, millis};
use crate::cookies::{
    CookieAttrs, CookieConfig, Key, KeyRing, is_valid_attribute, is_valid_cookie_name,
};
use crate::engine::{Engine, Policy, Shared};
use crate::error::{Error, Result};
use crate::gateway::Gateway;
use crate::id::{IdGen, RandomIdGen};
use crate::mapping::Mapping;
use crate::nodes::{ClientMap, Exclusion, NoticeBus};
use crate::origin::OriginPolicy;
use crate::session::checked_max_age;
use crate::store::{DynStore, LiveStore, Store};

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;
const YEAR: u64 = 365 * DAY;

/// Builder of a [`SessionBridge`]; every option is checked by [`build`](Self::build) (O2).
///
/// | option | default |
/// |---|---|
/// | `key` | random `sb.<id>` (with a warning: cookies die on restart) |
/// | `keys` | none: a build error, unless [`ephemeral_keys`](SessionBridgeBuilder::ephemeral_keys) asks for random development keys |
/// | `signed` | `true` |
/// | `store` | [`LiveStore`] |
/// | `max_age` | 30 days (1 minute ..= 1 year) |
/// | `browser_session` | `false` |
/// | `rolling`, `renew` | `false` |
/// | `http_only` | `true` |
/// | `secure` | `true` |
/// | `same_site` | `Lax` |
/// | `path` | `/` |
/// | `client_key` | `"{key}.cid"` |
/// | `client_max_age` | 1 year (1 minute ..= 400 days) |
/// | `client_always_roll` | `true` |
/// | `auto_cleanup` | `false`; interval `max_age / 4` clamped to 1 minute ..= 1 day |
/// | `max_session_bytes` | 64 KiB |
/// | `event_buffer` | 1024 events per subscriber |
/// | `allowed_origins` | none: sockets only from same-origin pages (or without `Origin`) |
/// | `absolute_timeout` | none (1 minute ..= 400 days): a session dies that long after its creation, whatever refreshed it |
/// | `commit_on_server_error` | `false`: a 5xx response commits nothing |
/// | `rotate_client_on_destroy` | `false`: a destroyed session's browser keeps its client id |
/// | `sockets_follow_client` | `true`: a socket follows its client's later sessions (S1) |
/// | `last_writer_wins` | `false`: a commit whose read key changed meanwhile is a 409 (H12) |
/// | `verified_cookie_memo` | 4096 values (0 ..= 2^20; 0: every cookie's MAC is checked on every request) |
///
/// ```
/// use session_bridge::{SameSite, SessionBridge};
/// use std::time::Duration;
/// let bridge = SessionBridge::builder()
///     .key("app.sid")
///     .keys(["newest secret, at least 32 bytes!", "previous secret, still verifies!!"])
///     .max_age(Duration::from_secs(7 * 24 * 3600))
///     .same_site(Some(SameSite::Strict))
///     .rolling(true)
///     .build()?;
/// assert_eq!(bridge.mapped_sessions(), 0);
/// # Ok::<(), session_bridge::Error>(())
/// ```
#[must_use]
pub struct SessionBridgeBuilder {
    key: Option<String>,
    keys: Vec<Result<Key>>,
    signed: bool,
    store: Option<Arc<dyn DynStore>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    max_age: Duration,
    browser_session: bool,
    rolling: bool,
    renew: bool,
    http_only: bool,
    secure: bool,
    same_site: Option<SameSite>,
    path: String,
    domain: Option<String>,
    client_key: Option<String>,
    client_max_age: Duration,
    client_always_roll: bool,
    verified_cookie_memo: usize,
    auto_cleanup: bool,
    auto_cleanup_interval: Option<Duration>,
    max_session_bytes: usize,
    event_buffer: usize,
    allowed_origins: Vec<String>,
    ephemeral_keys: bool,
    absolute_timeout: Option<Duration>,
    commit_on_server_error: bool,
    rotate_client_on_destroy: bool,
    sockets_follow_client: bool,
    last_writer_wins: bool,
    client_map: Option<Arc<dyn ClientMap>>,
    exclusion: Option<Arc<dyn Exclusion>>,
    notices: Option<Arc<dyn NoticeBus>>,
}

impl Default for SessionBridgeBuilder {
    fn default() -> Self {
        Self {
            key: None,
            keys: Vec::new(),
            signed: true,
            store: None,
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIdGen),
            max_age: Duration::from_millis(30 * DAY),
            browser_session: false,
            rolling: false,
            renew: false,
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Lax),
            path: "/".into(),
            domain: None,
            client_key: None,
            client_max_age: Duration::from_millis(YEAR),
            client_always_roll: true,
            verified_cookie_memo: crate::verified::DEFAULT_SLOTS,
            auto_cleanup: false,
            auto_cleanup_interval: None,
            max_session_bytes: 64 * 1024,
            event_buffer: 1024,
            allowed_origins: Vec::new(),
            ephemeral_keys: false,
            absolute_timeout: None,
            commit_on_server_error: false,
            rotate_client_on_destroy: false,
            sockets_follow_client: true,
            last_writer_wins: false,
            client_map: None,
            exclusion: None,
            notices: None,
        }
    }
}

impl SessionBridgeBuilder {
    /// Sign cookies (default `true`). `false` sends bare ids: only for tests and trusted
    /// networks, since anyone can then forge any id (SPEC C3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .signed(false)
    ///     .build()?;
    /// let [_, session] = set_cookies(&bridge);
    /// // The bare id, no signature.
    /// let value = session.split(';').next().unwrap_or_default();
    /// assert_eq!(value.len(), "app.sid=".len() + session_bridge::id::ID_LEN);
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn signed(mut self, value: bool) -> Self {
        self.signed = value;
        self
    }

    /// Session TTL and cookie max-age (1 minute ..= 1 year).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// use std::time::Duration;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .max_age(Duration::from_secs(3600))
    ///     .build()?;
    /// let [_, session] = set_cookies(&bridge);
    /// assert!(session.contains("Max-Age=3600"));
    /// let one_second = SessionBridge::builder().max_age(Duration::from_secs(1)).build();
    /// assert!(one_second.is_err(), "1 minute at least");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn max_age(mut self, value: Duration) -> Self {
        self.max_age = value;
        self
    }

    /// Send the session cookie without `Max-Age`, so it ends with the browser session
    /// (the record still lives `max_age`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .browser_session(true)
    ///     .build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(!session.contains("Max-Age"));
    /// assert!(client.contains("Max-Age"), "the client cookie keeps its own max-age");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn browser_session(mut self, value: bool) -> Self {
        self.browser_session = value;
        self
    }

    /// Re-send the session cookie and refresh the TTL on every response that loaded it.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .rolling(true)
    ///     .build()?;
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// // `cookie`: the `Cookie` header of a browser that has a session. A later request
    /// // that only reads the session still re-sends the session cookie.
    /// let request = bridge.begin_request(&cookie);
    /// assert_eq!(request.session().get::<String>("user").await?.as_deref(), Some("ada"));
    /// let mut headers = http::HeaderMap::new();
    /// request.commit(&mut headers).await?;
    /// let cookies = headers.get_all("set-cookie");
    /// assert!(cookies.iter().any(|c| c.as_bytes().starts_with(b"app.sid=")));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn rolling(mut self, value: bool) -> Self {
        self.rolling = value;
        self
    }

    /// Refresh cookie and TTL when less than half the TTL is left.
    ///
    /// ```
    /// # use session_bridge::{SessionBridge, clock::ManualClock};
    /// # use std::time::Duration;
    /// # futures::executor::block_on(async {
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .clock(clock.clone())
    ///     .max_age(Duration::from_secs(3600))
    ///     .renew(true)
    ///     .build()?;
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// clock.advance(Duration::from_secs(31 * 60)); // less than half the TTL left
    /// // `cookie`: the `Cookie` header of a browser that has a session.
    /// let request = bridge.begin_request(&cookie);
    /// assert!(!request.session().is_empty().await?);
    /// let mut headers = http::HeaderMap::new();
    /// request.commit(&mut headers).await?;
    /// let cookies = headers.get_all("set-cookie");
    /// assert!(cookies.iter().any(|c| c.as_bytes().starts_with(b"app.sid=")));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn renew(mut self, value: bool) -> Self {
        self.renew = value;
        self
    }

    /// `HttpOnly` on both cookies (default `true`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .http_only(false)
    ///     .build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(!client.contains("HttpOnly") && !session.contains("HttpOnly"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn http_only(mut self, value: bool) -> Self {
        self.http_only = value;
        self
    }

    /// `Secure` on both cookies (default `true`; turn off only for plain-http development).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// // Plain-http development only.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .secure(false)
    ///     .build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(!client.contains("Secure") && !session.contains("Secure"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn secure(mut self, value: bool) -> Self {
        self.secure = value;
        self
    }

    /// `SameSite` on both cookies (default `Lax`; `None` omits the attribute).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// use session_bridge::SameSite;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .same_site(Some(SameSite::Strict))
    ///     .build()?;
    /// let [_, session] = set_cookies(&bridge);
    /// assert!(session.contains("SameSite=Strict"));
    /// // Browsers reject `SameSite=None` without `Secure`, so the builder does too.
    /// let insecure = SessionBridge::builder().same_site(Some(SameSite::None)).secure(false);
    /// assert!(insecure.build().is_err());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn same_site(mut self, value: Option<SameSite>) -> Self {
        self.same_site = value;
        self
    }

    /// Client cookie max-age (1 minute ..= 400 days).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// use std::time::Duration;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .client_max_age(Duration::from_secs(30 * 24 * 3600))
    ///     .build()?;
    /// let [client, _] = set_cookies(&bridge);
    /// assert!(client.contains("Max-Age=2592000"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn client_max_age(mut self, value: Duration) -> Self {
        self.client_max_age = value;
        self
    }

    /// Re-send the client cookie on every response (default `true`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .client_always_roll(false)
    ///     .build()?;
    /// # let mut browser = session_bridge::testing::Browser::new();
    /// # let client_id = browser.request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// # let cookie = browser.headers();
    /// // A returning browser (`cookie`: its `Cookie` header) whose request changes nothing
    /// // gets no cookie at all.
    /// let mut headers = http::HeaderMap::new();
    /// bridge.begin_request(&cookie).commit(&mut headers).await?;
    /// assert!(headers.get("set-cookie").is_none());
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn client_always_roll(mut self, value: bool) -> Self {
        self.client_always_roll = value;
        self
    }

    /// How many signed cookie values that verified are remembered, so a browser's next
    /// request skips their MACs (default 4096, about 430 KB once full; `0` checks every MAC
    /// on every request).
    ///
    /// Only values that verified are kept, matched on every byte in constant time and on
    /// the cookie they verified for; the key ring never changes after `build`, so a
    /// remembered value is one the ring accepts. Values longer than 96 bytes (ids of a custom
    /// generator longer than 52 characters) are always verified.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .verified_cookie_memo(0) // every request pays its MACs
    ///     .build();
    /// assert!(bridge.is_ok());
    /// let too_big = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .verified_cookie_memo(1 << 21)
    ///     .build();
    /// assert!(too_big.is_err());
    /// ```
    pub fn verified_cookie_memo(mut self, values: usize) -> Self {
        self.verified_cookie_memo = values;
        self
    }

    /// Run periodic cleanup from the start (needs `auto_cleanup_worker` spawned).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup(true)
    ///     .build()?;
    /// // Spawn the loop once on your runtime: `tokio::spawn(bridge.auto_cleanup_worker());`
    /// assert!(bridge.stop_auto_cleanup(), "it was on from the start");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn auto_cleanup(mut self, value: bool) -> Self {
        self.auto_cleanup = value;
        self
    }

    /// Largest session JSON accepted, in bytes (SPEC X3).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// use session_bridge::Error;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .max_session_bytes(64)
    ///     .build()?;
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// request.session().insert("blob", "x".repeat(100)).await?;
    /// let result = request.commit(&mut http::HeaderMap::new()).await;
    /// assert!(matches!(result, Err(Error::SessionTooLarge { limit: 64, .. })));
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn max_session_bytes(mut self, value: usize) -> Self {
        self.max_session_bytes = value;
        self
    }

    /// Events buffered per slow subscriber before the oldest are dropped.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// use session_bridge::BridgeEvent;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .event_buffer(2)
    ///     .build()?;
    /// let mut events = bridge.events();
    /// (1..=3).for_each(|n| bridge.notify_store_cleanup(n));
    /// assert_eq!(events.missed(), 1); // the oldest was dropped
    /// assert_eq!(events.try_next(), Some(BridgeEvent::Cleanup(2)));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn event_buffer(mut self, value: usize) -> Self {
        self.event_buffer = value;
        self
    }

    /// Session cookie name.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(session.starts_with("app.sid="));
    /// assert!(client.starts_with("app.sid.cid="));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    ///
    /// In production prefer a `__Host-` name (`__Host-app.sid`): browsers then keep the cookie
    /// only if it is `Secure`, has path `/` and no domain, so a sibling subdomain cannot plant
    /// or toss it (C5). The builder refuses a `__Host-` or `__Secure-` name whose attributes
    /// break the prefix's rules.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// let strict = SessionBridge::builder().key("__Host-app.sid").keys([[7u8; 32]]).build();
    /// assert!(strict.is_ok());
    /// let broken = SessionBridge::builder().key("__Host-app.sid").keys([[7u8; 32]])
    ///     .domain("example.com")
    ///     .build();
    /// assert!(broken.is_err());
    /// ```
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.key = Some(name.into());
        self
    }

    /// Client cookie name (default `"{key}.cid"`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .client_key("app.browser")
    ///     .build()?;
    /// let [client, _] = set_cookies(&bridge);
    /// assert!(client.starts_with("app.browser="));
    /// let same = SessionBridge::builder().key("app.sid").client_key("app.sid").build();
    /// assert!(same.is_err(), "must differ from `key`");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn client_key(mut self, name: impl Into<String>) -> Self {
        self.client_key = Some(name.into());
        self
    }

    /// Signing keys, newest first: the first signs, all verify (C2). Each at least 32 bytes.
    ///
    /// ```
    /// use session_bridge::{Error, SessionBridge};
    /// // Rotation: sign with the new key, still accept cookies signed with the old one.
    /// let bridge = SessionBridge::builder()
    ///     .key("app.sid")
    ///     .keys(["new secret, at least 32 bytes long!", "old secret, at least 32 bytes long!"])
    ///     .build()?;
    /// let short = SessionBridge::builder().key("app.sid").keys(["too short"]).build();
    /// assert!(matches!(short, Err(Error::InvalidOption { option: "keys", .. })));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn keys<K, I>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: TryInto<Key>,
        K::Error: Into<Error>,
    {
        self.keys = keys
            .into_iter()
            .map(|k| k.try_into().map_err(Into::into))
            .collect();
        self
    }

    /// Cookie `Path` (default `/`).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .path("/app")
    ///     .build()?;
    /// let [client, session] = set_cookies(&bridge);
    /// assert!(client.contains("Path=/app") && session.contains("Path=/app"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Cookie `Domain` (default none: host-only).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # fn set_cookies(bridge: &session_bridge::SessionBridge) -> [String; 2] {
    /// #     futures::executor::block_on(async {
    /// #         let request = bridge.begin_request(&http::HeaderMap::new());
    /// #         request.session().insert("user", "ada").await.unwrap();
    /// #         let mut headers = http::HeaderMap::new();
    /// #         request.commit(&mut headers).await.unwrap();
    /// #         let all = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned());
    /// #         all.collect::<Vec<_>>().try_into().unwrap()
    /// #     })
    /// # }
    /// // `set_cookies`: the [client, session] `Set-Cookie` values of a first response.
    /// // Share the cookies with every subdomain of example.com.
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .domain("example.com")
    ///     .build()?;
    /// let [_, session] = set_cookies(&bridge);
    /// assert!(session.contains("Domain=example.com"));
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The client id <-> session id mapping (default: [`MemoryMap`](crate::nodes::MemoryMap),
    /// this process's memory). Nodes of one app behind a load balancer share one (M1):
    /// see [`nodes`](Self::nodes) for Redis.
    ///
    /// ```
    /// use session_bridge::nodes::MemoryMap;
    /// use session_bridge::SessionBridge;
    /// use std::sync::Arc;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .client_map(Arc::new(MemoryMap::default()))
    ///     .build()?;
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn client_map(mut self, map: Arc<dyn ClientMap>) -> Self {
        self.client_map = Some(map);
        self
    }

    /// Per-session exclusion across nodes (M2), taken inside the bridge's own per-session
    /// lock by every `with_session`, HTTP commit, by-id write and cleanup step. Default: none
    /// (one process: its own locks exclude).
    pub fn exclusion(mut self, exclusion: Arc<dyn Exclusion>) -> Self {
        self.exclusion = Some(exclusion);
        self
    }

    /// The bus that carries session ends and mapping moves to the other nodes (M3); their
    /// notices arrive as [`BridgeEvent::Remote`](crate::BridgeEvent::Remote). Default: none.
    pub fn notices(mut self, notices: Arc<dyn NoticeBus>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// Many nodes on one Redis (M1-M4) in one call: the store, the mapping, the exclusion and
    /// the notices of `nodes`.
    ///
    /// ```no_run
    /// # async fn doc() -> session_bridge::Result<()> {
    /// use session_bridge::nodes::redis::{RedisNodes, RedisNodesOptions};
    /// use session_bridge::SessionBridge;
    /// let nodes = RedisNodes::connect("redis://127.0.0.1:6379", RedisNodesOptions::new("myapp")).await?;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .nodes(nodes)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn nodes(self, nodes: crate::nodes::redis::RedisNodes) -> Self {
        let parts = nodes.into_parts();
        self.store(parts.store)
            .client_map(parts.map)
            .exclusion(parts.exclusion)
            .notices(parts.notices)
    }

    /// The session store (default [`LiveStore`] on the bridge's clock).
    ///
    /// ```
    /// use session_bridge::{LiveStore, SessionBridge};
    /// use std::sync::Arc;
    /// # futures::executor::block_on(async {
    /// // Keep a handle on the store (any `Store` works, `Arc<S>` included).
    /// let store = Arc::new(LiveStore::new());
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .store(Arc::clone(&store))
    ///     .build()?;
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// assert_eq!(store.len(), 1);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The clock (default [`SystemClock`]); tests use [`ManualClock`](crate::clock::ManualClock).
    ///
    /// ```
    /// use session_bridge::{SessionBridge, clock::ManualClock};
    /// use std::time::Duration;
    /// # futures::executor::block_on(async {
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .clock(clock.clone())
    ///     .max_age(Duration::from_secs(60))
    ///     .build()?;
    /// # let client_id = session_bridge::testing::Browser::new().request(&bridge, async |s| s.insert("user", "ada").await.map(|()| s.client_id())).await??;
    /// clock.advance(Duration::from_secs(60)); // no sleeping in tests
    /// // The session of browser `client_id` has expired.
    /// assert_eq!(bridge.get_by_client_id(&client_id).await?, None);
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The id generator (default [`RandomIdGen`]); tests use
    /// [`SequentialIdGen`](crate::id::SequentialIdGen). [`build`](Self::build) draws one id to
    /// check that the generator accepts its own ids (else no cookie would ever come back).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// use session_bridge::id::SequentialIdGen;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .ids(SequentialIdGen::new("test"))
    ///     .build()?; // drew ...0001 for its check
    /// let request = bridge.begin_request(&http::HeaderMap::new());
    /// assert_eq!(request.client_id(), "test0000000000000000000000000002");
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn ids(mut self, ids: impl IdGen) -> Self {
        self.ids = Arc::new(ids);
        self
    }

    /// Origins (`scheme://host[:port]`) allowed to open sockets besides same-origin pages.
    /// By default only same-origin handshakes and handshakes without `Origin` are accepted.
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// # futures::executor::block_on(async {
    /// use http::{HeaderMap, HeaderValue, header};
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .allowed_origins(["https://app.example"])
    ///     .build()?;
    /// let mut handshake = HeaderMap::new();
    /// handshake.insert(header::HOST, HeaderValue::from_static("api.example"));
    /// handshake.insert(header::ORIGIN, HeaderValue::from_static("https://app.example"));
    /// assert!(bridge.bind_socket(&handshake).await.is_ok());
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn allowed_origins<I, O>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// Interval of periodic cleanup (1 second ..= 1 day).
    ///
    /// ```
    /// # use session_bridge::SessionBridge;
    /// use std::time::Duration;
    /// let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup(true)
    ///     .auto_cleanup_interval(Duration::from_secs(300))
    ///     .build()?;
    /// let too_often = SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .auto_cleanup_interval(Duration::from_millis(10))
    ///     .build();
    /// assert!(too_often.is_err());
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn auto_cleanup_interval(mut self, interval: Duration) -> Self {
        self.auto_cleanup_interval = Some(interval);
        self
    }

    /// Without [`keys`](Self::keys), sign with random keys made at start (O1): for development
    /// only, since every restart then logs every browser out. A warning is logged at every
    /// start. Without this and without keys, [`build`](Self::build) fails.
    ///
    /// ```
    /// # use session_bridge::{Error, SessionBridge};
    /// let dev = SessionBridge::builder().key("app.sid").ephemeral_keys(true).build();
    /// assert!(dev.is_ok());
    /// let missing = SessionBridge::builder().key("app.sid").build();
    /// assert!(matches!(missing, Err(Error::InvalidOption { option: "keys", .. })));
    /// ```
    pub fn ephemeral_keys(mut self, on: bool) -> Self {
        self.ephemeral_keys = on;
        self
    }

    /// H9: a session dies `timeout` after its creation, whatever rolling, renew, socket
    /// activity or `regenerate` did (1 minute ..= 400 days; off by default). Its cookie's
    /// `Max-Age` never passes that instant either.
    ///
    /// ```
    /// use std::time::Duration;
    /// let bridge = session_bridge::SessionBridge::builder().key("app.sid").keys([[7u8; 32]])
    ///     .rolling(true)
    ///     .absolute_timeout(Duration::from_secs(12 * 3600)) // a working day, then log in again
    ///     .build()?;
    /// # Ok::<(), session_bridge::Error>(())
    /// ```
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.absolute_timeout = Some(timeout);
        self
    }

    /// H10: whether a response with a 5xx status still commits the handler's session changes
    /// (default `false`: a failed request changes nothing; the client cookie may still be
    /// sent). Applies to [`RequestContext::commit_response`](crate::RequestContext::commit_response),
    /// which the poem and salvo glue use.
    pub fn commit_on_server_error(mut self, on: bool) -> Self {
        self.commit_on_server_error = on;
        self
    }

    /// H12: whether an HTTP commit may overwrite a key that another writer changed after this
    /// request read it (default `false`: such a commit fails with
    /// [`Error::ReadConflict`](crate::Error::ReadConflict), a 409, and commits nothing).
    /// `true` restores last-writer-wins, where concurrent read-modify-writes lose updates.
    pub fn last_writer_wins(mut self, on: bool) -> Self {
        self.last_writer_wins = on;
        self
    }

    /// H8: whether destroying a session also gives the browser a new client id (default
    /// `false`, as in the original: an open socket then follows the browser's next session).
    ///
    /// `true` also ends what a stolen client cookie can reach after a logout: a socket (even
    /// one that proved its pair) never follows the browser's next session, and the browser's
    /// next session never lands on the stolen id. The page reconnects its socket after a
    /// logout to see the next session.
    pub fn rotate_client_on_destroy(mut self, on: bool) -> Self {
        self.rotate_client_on_destroy = on;
        self
    }

    /// S1, S2: whether a socket follows its client's later sessions (default `true`, the
    /// original's promise: a session created or re-created over HTTP after the page opened its
    /// socket is seen by that socket). A socket follows only if it proved its (client,
    /// session) pair at the handshake, or its client held no live session then.
    ///
    /// `false`: a socket sees only the session it proved with both cookies at its handshake,
    /// never a later one, so a client cookie stolen while the browser was anonymous reaches
    /// no session through a socket. The page reconnects its socket to see a new session (the
    /// socketioxide glue's `session:ended` and `session:changed` pushes tell it when).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// let bridge = session_bridge::SessionBridge::builder()
    ///     .key("app.sid")
    ///     .keys([[7u8; 32]])
    ///     .sockets_follow_client(false)
    ///     .build()?;
    /// let mut browser = session_bridge::testing::Browser::new();
    /// let socket = browser.socket(&bridge).await?; // an anonymous page's socket
    /// browser.request(&bridge, async |s| s.insert("cart", [1]).await).await??;
    /// assert_eq!(socket.session_id().await?, None, "not the session created after it");
    /// assert!(browser.socket(&bridge).await?.session_id().await?.is_some(), "a new socket sees it");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn sockets_follow_client(mut self, on: bool) -> Self {
        self.sockets_follow_client = on;
        self
    }

    /// Checks every option and builds the bridge.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the option and the accepted range.
    ///
    /// ```
    /// use session_bridge::{Error, SessionBridge};
    /// use std::time::Duration;
    /// let err = SessionBridge::builder().max_age(Duration::from_secs(1)).build().unwrap_err();
    /// assert!(matches!(err, Error::InvalidOption { option: "max_age", .. }));
    /// ```
    pub fn build(self) -> Result<SessionBridge> {
        let max_age = checked_max_age(self.max_age)?;
        let client_max_age = millis(self.client_max_age);
        if !(MINUTE..=400 * DAY).contains(&client_max_age) {
            return Err(Error::option(
                "client_max_age",
                "must be between 1 minute and 400 days",
            ));
        }
        let interval = match self.auto_cleanup_interval {
            Some(d) => {
                let v = millis(d);
                if !(1_000..=DAY).contains(&v) {
                    return Err(Error::option(
                        "auto_cleanup_interval",
                        "must be between 1 second and 1 day",
                    ));
                }
                v
            }
            None => default_interval(max_age),
        };
        if self.max_session_bytes < 2 {
            return Err(Error::option(
                "max_session_bytes",
                "must be at least 2 (`{}`)",
            ));
        }
        if self.event_buffer == 0 {
            return Err(Error::option("event_buffer", "must be at least 1"));
        }
        let key = match self.key {
            Some(k) => k,
            None => {
                let k = format!("sb.{}", &RandomIdGen.generate()[..8]);
                tracing::warn!(
                    "no session cookie name (`key`) set: using a random one, so cookies will not survive a restart"
                );
                k
            }
        };
        if !is_valid_cookie_name(&key) {
            return Err(Error::option(
                "key",
                "must be a non-empty cookie name token",
            ));
        }
        let client_name = self.client_key.unwrap_or_else(|| format!("{key}.cid"));
        if !is_valid_cookie_name(&client_name) {
            return Err(Error::option(
                "client_key",
                "must be a non-empty cookie name token",
            ));
        }
        if client_name == key {
            return Err(Error::option("client_key", "must differ from `key`"));
        }
        // C5: browsers only store prefixed cookies that keep the prefix's promise; refuse a
        // configuration whose every cookie the browser would drop.
        for (option, name) in [("key", &key), ("client_key", &client_name)] {
            if name.starts_with("__Host-")
                && (!self.secure || self.path != "/" || self.domain.is_some())
            {
                return Err(Error::option(
                    option,
                    "a `__Host-` cookie needs `secure(true)`, path `/` and no `domain`",
                ));
            }
            if name.starts_with("__Secure-") && !self.secure {
                return Err(Error::option(
                    option,
                    "a `__Secure-` cookie needs `secure(true)`",
                ));
            }
        }
        if !self.path.starts_with('/') || !is_valid_attribute(&self.path) {
            return Err(Error::option(
                "path",
                "must start with `/` and hold only visible ASCII, no `;`",
            ));
        }
        if let Some(d) = &self.domain
            && (d.is_empty() || d.contains(' ') || !is_valid_attribute(d))
        {
            return Err(Error::option("domain", "must be a host name"));
        }
        if self.same_site == Some(SameSite::None) && !self.secure {
            return Err(Error::option(
                "same_site",
                "`SameSite=None` requires `secure(true)`; browsers reject it otherwise",
            ));
        }
        // An id the generator's own check rejects would never come back from a cookie:
        // every request would silently start a new session.
        let probe = self.ids.generate();
        if !self.ids.is_valid(&probe) || probe.contains('.') || probe.is_empty() {
            return Err(Error::option(
                "ids",
                "the id generator makes ids its own `is_valid` rejects (or ids with a `.`)",
            ));
        }
        if self.verified_cookie_memo > crate::verified::MAX_SLOTS {
            return Err(Error::option(
                "verified_cookie_memo",
                format!("at most {} values", crate::verified::MAX_SLOTS),
            ));
        }
        let mut keys = Vec::with_capacity(self.keys.len());
        for k in self.keys {
            keys.push(k?);
        }
        if keys.is_empty() {
            if !self.ephemeral_keys {
                return Err(Error::option(
                    "keys",
                    "no signing keys: set `keys` (newest first), or `ephemeral_keys(true)` for development",
                ));
            }
            tracing::warn!(
                "ephemeral signing keys: every restart logs every browser out (development only)"
            );
            keys.push(Key::generate());
        }
        let absolute_timeout = match self.absolute_timeout {
            Some(d) => {
                let ms = millis(d);
                if !(MINUTE..=400 * DAY).contains(&ms) {
                    return Err(Error::option(
                        "absolute_timeout",
                        "must be between 1 minute and 400 days",
                    ));
                }
                Some(ms)
            }
            None => None,
        };
        let keys = KeyRing::new(keys).ok_or_else(|| Error::option("keys", "must not be empty"))?;
        let store = match self.store {
            Some(s) => s,
            None => Arc::new(LiveStore::with_clock(ClockRef(Arc::clone(&self.clock)))),
        };
        let tag_key = keys.newest().keyed().clone();
        let attrs = CookieAttrs::new(
            self.http_only,
            self.secure,
            self.same_site,
            self.path,
            self.domain,
        );
        let cookies = CookieConfig::new(
            key,
            client_name,
            attrs,
            self.signed,
            keys,
            Arc::clone(&self.ids),
        )
        .browser_session(self.browser_session)
        .client_cookie(client_max_age, self.client_always_roll)
        .verified_slots(self.verified_cookie_memo);
        let gateway = Gateway::new(store, self.clock, max_age, self.max_session_bytes, tag_key)
            .absolute_timeout(absolute_timeout);
        let engine = Engine::new(
            gateway,
            cookies,
            self.ids,
            Policy::new(self.rolling, self.renew)
                .commit_on_server_error(self.commit_on_server_error)
                .rotate_client_on_destroy(self.rotate_client_on_destroy)
                .sockets_follow_client(self.sockets_follow_client)
                .last_writer_wins(self.last_writer_wins),
            OriginPolicy::new(self.allowed_origins).https(self.secure),
            self.event_buffer,
            Shared {
                mapping: match self.client_map {
                    Some(map) => Mapping::Shared(map),
                    None => Mapping::default(),
                },
                exclusion: self.exclusion,
                notices: self.notices,
            },
        );
        let bridge = SessionBridge::new(engine, CleanupSchedule::new(interval, self.auto_cleanup));
        if let Some(bus) = bridge.engine().notices() {
            let engine = Arc::downgrade(bridge.engine());
            bus.listen(Box::new(move |notice| {
                if let Some(engine) = engine.upgrade() {
                    engine.receive(notice);
                }
            }));
        }
        Ok(bridge)
    }
}

struct ClockRef(Arc<dyn Clock>);

impl Clock for ClockRef {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    fn sleep(&self, duration: Duration) -> crate::clock::Sleep {
        self.0.sleep(duration)
    }
}

/// Redacting (SPEC L1): the signing keys show as a count and the store, clock and id generator
/// not at all (a test id generator's state is the next id); cookie names, attributes and
/// origins are configuration the browser sees anyway.
impl std::fmt::Debug for SessionBridgeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBridgeBuilder")
            .field("key", &self.key)
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("signed", &self.signed)
            .field("custom_store", &self.store.is_some())
            .field("max_age", &self.max_age)
            .field("browser_session", &self.browser_session)
            .field("rolling", &self.rolling)
            .field("renew", &self.renew)
            .field("http_only", &self.http_only)
            .field("secure", &self.secure)
            .field("same_site", &self.same_site)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("client_key", &self.client_key)
            .field("client_max_age", &self.client_max_age)
            .field("client_always_roll", &self.client_always_roll)
            .field("verified_cookie_memo", &self.verified_cookie_memo)
            .field("auto_cleanup", &self.auto_cleanup)
            .field("auto_cleanup_interval", &self.auto_cleanup_interval)
            .field("max_session_bytes", &self.max_session_bytes)
            .field("event_buffer", &self.event_buffer)
            .field("allowed_origins", &self.allowed_origins)
            .field("rotate_client_on_destroy", &self.rotate_client_on_destroy)
            .field("sockets_follow_client", &self.sockets_follow_client)
            .field("shared_client_map", &self.client_map.is_some())
            .field("exclusion", &self.exclusion.is_some())
            .field("notices", &self.notices.is_some())
            .finish_non_exhaustive()
    }
}
