//! A cookie-following test browser: the one set-up that tests and doc examples share.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue, header};

use crate::bridge::SessionBridge;
use crate::error::Result;
use crate::session::Session;
use crate::socket_flow::SocketSession;

/// A bridge with fixed test keys (`key("app.sid")`, one 32-byte key of 7s): the bridge of the
/// doc examples. Never use fixed keys in production.
///
/// ```
/// let bridge = session_bridge::testing::test_bridge();
/// assert_eq!(bridge.mapped_sessions(), 0);
/// ```
pub fn test_bridge() -> SessionBridge {
    match SessionBridge::builder()
        .key("app.sid")
        .keys([[7u8; 32]])
        .build()
    {
        Ok(bridge) => bridge,
        // The options above are constants that `build` accepts.
        Err(err) => unreachable!("test bridge options are valid: {err}"),
    }
}

/// A browser's cookie jar that follows `Set-Cookie` like a user agent, so a test (or a doc
/// example) can run requests and open sockets as one browser would.
///
/// ```
/// use session_bridge::testing::{Browser, test_bridge};
/// # futures::executor::block_on(async {
/// let bridge = test_bridge();
/// let mut browser = Browser::new();
/// browser.request(&bridge, async |s| s.insert("user", "ada").await).await??;
/// let socket = browser.socket(&bridge).await?;
/// let user = socket.with_session(async |ctx| ctx.get::<String>("user")).await??;
/// assert_eq!(user.as_deref(), Some("ada"));
/// # Ok::<_, session_bridge::Error>(())
/// # }).unwrap();
/// ```
#[derive(Default, Clone)]
pub struct Browser {
    jar: BTreeMap<String, String>,
}

/// Cookie names only: the values are credentials.
impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("cookies", &self.jar.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of cookie `name` in the jar.
    ///
    /// ```
    /// # use session_bridge::testing::{Browser, test_bridge};
    /// # futures::executor::block_on(async {
    /// let mut browser = Browser::new();
    /// browser.request(&test_bridge(), async |_| ()).await?;
    /// assert!(browser.cookie("app.sid.cid").is_some(), "the client cookie");
    /// assert!(browser.cookie("app.sid").is_none(), "no session yet");
    /// # Ok::<_, session_bridge::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    /// Sets cookie `name` by hand (a planted or copied cookie).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.insert(name.to_owned(), value.to_owned());
    }

    /// The request headers this browser sends now (its `Cookie` header).
    ///
    /// ```
    /// # use session_bridge::testing::Browser;
    /// let mut browser = Browser::new();
    /// browser.set_cookie("theme", "dark");
    /// assert_eq!(browser.headers()["cookie"], "theme=dark");
    /// ```
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self.jar.is_empty() {
            return headers;
        }
        let line = self
            .jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if let Ok(value) = HeaderValue::from_str(&line) {
            headers.insert(header::COOKIE, value);
        }
        headers
    }

    /// Applies a response's `Set-Cookie` headers (a `Max-Age=0` removes the cookie).
    pub fn follow(&mut self, response: &HeaderMap) {
        for set in response.get_all(header::SET_COOKIE) {
            let Ok(text) = set.to_str() else { continue };
            let Some((pair, attrs)) = text.split_once(';').or(Some((text, ""))) else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = attrs
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                self.jar.remove(name.trim());
            } else {
                self.jar
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    /// Runs one HTTP request through `bridge`: `handler` gets the request's session, then the
    /// request commits and the browser follows the response's cookies. Returns the handler's
    /// value.
    ///
    /// # Errors
    /// The commit's error (a store error, a refused write).
    pub async fn request<R>(
        &mut self,
        bridge: &SessionBridge,
        handler: impl AsyncFnOnce(&Session) -> R,
    ) -> Result<R> {
        let request = bridge.begin_request(&self.headers());
        let value = handler(request.session()).await;
        let mut response = HeaderMap::new();
        request.commit(&mut response).await?;
        self.follow(&response);
        Ok(value)
    }

    /// Opens a socket as this browser: its handshake carries the jar's cookies (S1).
    ///
    /// # Errors
    /// As [`SessionBridge::bind_socket`].
    pub async fn socket(&self, bridge: &SessionBridge) -> Result<SocketSession> {
        bridge.bind_socket(&self.headers()).await
    }
}
