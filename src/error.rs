//! The one error type of the crate.
//!
//! Messages never carry a session id, a client id, a cookie or session data: where an error must
//! point at a record it names it by an [`IdTag`](crate::id::IdTag), a short keyed hash that is useless to
//! an attacker but lets a log line be matched with another one.

use std::borrow::Cow;

/// A boxed error from a store backend, kept as the `source` of [`Error::Store`].
///
/// ```
/// use session_bridge::{Error, error::BoxError};
/// let backend: BoxError = std::io::Error::other("connection refused").into();
/// let err = Error::store("get", backend);
/// assert_eq!(err.to_string(), "session store failed during get");
/// ```
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in session-bridge.
///
/// The enum is `#[non_exhaustive]`: match the variants you care about and keep a fallback arm.
///
/// ```
/// use session_bridge::Error;
/// let e = Error::SessionTooLarge { size: 70_000, limit: 65_536 };
/// assert_eq!(e.to_string(), "session is 70000 bytes of JSON, over the limit of 65536");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store backend failed (I/O, network, ...). The backend's own error is the source.
    #[error("session store failed during {op}")]
    Store {
        /// The store operation that failed (`get`, `set`, `destroy`, ...).
        op: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The session's JSON is over the configured size limit (SPEC X3). Nothing was written.
    #[error("session is {size} bytes of JSON, over the limit of {limit}")]
    SessionTooLarge {
        /// Size of the serialized session in bytes.
        size: usize,
        /// The configured limit (`max_session_bytes`).
        limit: usize,
    },
    /// A value could not be turned into JSON, or a stored value is not of the requested type.
    /// Only the kind of failure is kept: serde_json's own message quotes the offending
    /// value, which may be session data.
    #[error("session value does not convert to or from JSON ({kind} error)")]
    Json {
        /// `data` (wrong type or shape), `syntax`, `eof` or `io`.
        kind: &'static str,
    },
    /// An option of the builder is out of range (SPEC O2).
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name as in the builder.
        option: &'static str,
        /// What is accepted.
        reason: Cow<'static, str>,
    },
    /// The store does not implement an optional operation (`list` is needed by cleanup).
    #[error("the session store does not support `{0}`")]
    Unsupported(&'static str),
    /// `set_by_id` / `set_by_client_id` on an id with no mapping: this path never creates sessions (B2).
    #[error("no session is mapped to this id; sessions are only created over HTTP")]
    NotMapped,
    /// A socket asked for its session and there is none (SPEC S4, default `on_missing`).
    #[error("session is missing for this socket")]
    SessionMissing,
    /// A socket handshake came from an `Origin` that is neither same-origin nor allowed.
    #[error("origin not allowed")]
    ForbiddenOrigin,
    /// The session of a socket kept moving while `with_session` waited for its lock (SPEC S3).
    #[error("session id kept changing while waiting for its lock ({attempts} attempts)")]
    Contention {
        /// How many times the lock was taken and the binding found stale.
        attempts: u32,
    },
    /// A `with_session` handler asked for the lock of the session it is already holding
    /// (the lock is not re-entrant). Work on the handler's `ctx.session` instead.
    #[error("this session's lock is already held by the calling handler")]
    Reentrant,
    /// A concurrent writer (another node) kept changing the record between read and write (ST5).
    #[error("session record kept changing under a concurrent writer ({attempts} attempts)")]
    Conflict {
        /// How many compare-and-set attempts were made.
        attempts: u32,
    },
    /// H12: this request read a key and wrote it, and another writer changed that key in
    /// between; nothing of the request was committed (the glue answers 409). Read-modify-write
    /// of shared keys belongs in [`Session::update`](crate::Session::update).
    #[error("a session key this request read and wrote was changed by another writer meanwhile")]
    ReadConflict,
    /// M2: a `with_session` handler ran past its nodes' lease (it lapsed while the handler
    /// ran) and another node wrote the session meanwhile; the handler's changes were not
    /// saved (the record's version fences the late holder).
    #[error("this node's lease on the session lapsed and another node wrote it; nothing was saved")]
    LeaseLost,
}

/// Lets infallible conversions (a [`Key`](crate::Key) into itself) feed the builder.
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        use serde_json::error::Category;
        Error::Json {
            kind: match e.classify() {
                Category::Io => "io",
                Category::Syntax => "syntax",
                Category::Data => "data",
                Category::Eof => "eof",
            },
        }
    }
}

impl Error {
    /// The HTTP status the glue answers this error with, always with an empty body (nothing
    /// internal reaches a client): 409 for [`Error::Conflict`], [`Error::ReadConflict`] and
    /// [`Error::LeaseLost`], 403 for
    /// [`Error::ForbiddenOrigin`], 500 for everything else.
    ///
    /// ```
    /// use session_bridge::Error;
    /// assert_eq!(Error::Conflict { attempts: 4 }.status(), http::StatusCode::CONFLICT);
    /// assert_eq!(Error::store("get", "down").status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn status(&self) -> http::StatusCode {
        match self {
            Error::Conflict { .. } | Error::ReadConflict | Error::LeaseLost => {
                http::StatusCode::CONFLICT
            }
            Error::ForbiddenOrigin => http::StatusCode::FORBIDDEN,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Wraps a backend error as [`Error::Store`].
    ///
    /// ```
    /// use session_bridge::Error;
    /// let io = std::io::Error::other("disk full");
    /// let e = Error::store("set", io);
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn store(op: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Store {
            op,
            source: source.into(),
        }
    }

    pub(crate) fn option(option: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Error::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}

/// `Result` with this crate's [`Error`].
///
/// ```
/// use session_bridge::{Result, Session};
///
/// async fn count_visit(session: &Session) -> Result<u64> {
///     let n = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
///     session.insert("visits", n).await?;
///     Ok(n)
/// }
/// # let bridge = session_bridge::SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).build()?;
/// # let request = bridge.begin_request(&http::HeaderMap::new());
/// assert_eq!(futures::executor::block_on(count_visit(request.session()))?, 1);
/// # Ok::<(), session_bridge::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
