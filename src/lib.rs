#![doc = include_str!("docs/crate.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The façade and what it is made of (data flows down this list, never up).
mod bridge;
mod builder;
mod by_id;
mod changes;
mod cleanup;
mod compact;
mod cookies;
mod engine;
mod events;
mod gateway;
mod http_flow;
mod locks;
mod mapping;
pub mod nodes;
mod origin;
mod record;
mod session;
mod socket_flow;
pub mod store;
mod verified;
// Leaves every layer uses.
pub mod clock;
pub mod error;
pub mod id;
// Framework glue and test support.
pub mod integrations;
pub mod testing;

pub use bridge::SessionBridge;
pub use builder::SessionBridgeBuilder;
pub use cookie::SameSite;
pub use cookies::Key;
pub use error::{Error, Result};
pub use events::{BridgeEvent, EndReason, EventFilter, EventStream};
pub use http_flow::RequestContext;
pub use id::{ClientId, SessionId};
pub use record::Record;
pub use session::Session;
pub use socket_flow::{SessionContext, SocketSession};
pub use store::{LiveStore, Store, SyncStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::{RedisOptions, RedisStore};

// The README's code blocks are compiled and run as doc tests.
#[cfg(all(doctest, feature = "socketioxide"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
