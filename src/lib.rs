#![doc = include_str!("docs/crate.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bridge;
mod clock;
mod cookies;
mod engine;
mod error;
mod events;
mod gateway;
mod http_flow;
mod id;
pub mod integrations;
mod locks;
mod mapping;
mod origin;
mod record;
mod session;
mod socket_flow;
pub mod store;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use bridge::{SessionBridge, SessionBridgeBuilder};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use cookie::SameSite;
pub use cookies::{Key, MIN_KEY_LEN};
pub use error::{BoxError, Error, Result};
pub use events::{BridgeEvent, EventStream};
pub use http_flow::RequestContext;
pub use id::{ID_LEN, IdGen, IdTag, RandomIdGen, SequentialIdGen};
pub use record::{RECORD_FORMAT, Record};
pub use session::Session;
pub use socket_flow::{OnMissing, SessionContext, SessionGuard, SocketSession};
pub use store::{LiveStore, Store, SyncStore};

// The README's code blocks are compiled and run as doc tests.
#[cfg(all(doctest, feature = "socketioxide"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
