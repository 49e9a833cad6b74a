//! socket.io rooms across nodes (feature `redis-adapter`): a socketioxide adapter whose
//! messages travel over the pub/sub connection of [`RedisNodes`], which reconnects and
//! re-subscribes by itself after a Redis outage (M4). With it, a broadcast to a browser's
//! room ([`SessionBridge::client_room`](crate::SessionBridge::client_room)) reaches that
//! browser's sockets on every node, so the session-end and session-change forwarders of this
//! module's parent reach them wherever they are connected (S6 across nodes).
//!
//! The protocol is socketioxide-redis's (not the JavaScript `@socket.io/redis-adapter`'s):
//! every node must be a socketioxide server.
//!
//! ```no_run
//! # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
//! use session_bridge::SessionBridge;
//! use session_bridge::integrations::socketioxide::redis::NodesAdapter;
//! use session_bridge::nodes::redis::{RedisNodes, RedisNodesOptions};
//! use socketioxide::SocketIo;
//!
//! let nodes = RedisNodes::connect("redis://127.0.0.1:6379", RedisNodesOptions::new("myapp")).await?;
//! let adapter = nodes.socket_adapter();
//! let bridge = SessionBridge::builder().key("app.sid").keys([[7u8; 32]]).nodes(nodes).build()?;
//! let (layer, io) = SocketIo::builder()
//!     .with_state(bridge.clone())
//!     .with_adapter::<NodesAdapter<_>>(adapter)
//!     .build_layer();
//! io.ns("/", async || {}).await?; // a remote adapter's namespace is ready once awaited
//! # Ok(()) }
//! ```

use std::sync::Arc;

use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::Error;
use crate::nodes::redis::{PubSub, RedisNodes};

/// How many messages of one channel may wait for the adapter before new ones are dropped.
const CHANNEL_BUFFER: usize = 1024;

/// The adapter type to name in `SocketIo::builder().with_adapter::<NodesAdapter<_>>(..)`.
pub type NodesAdapter<E> = CustomRedisAdapter<E, NodesDriver>;

/// The socketioxide-redis [`Driver`] over the nodes' pub/sub connection.
#[derive(Clone)]
pub struct NodesDriver {
    pubsub: Arc<PubSub>,
}

impl std::fmt::Debug for NodesDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodesDriver").finish_non_exhaustive()
    }
}

impl RedisNodes {
    /// The socket.io adapter of these nodes (its channels are prefixed with the app name).
    pub fn socket_adapter(&self) -> RedisAdapterCtr<NodesDriver> {
        let config = RedisAdapterConfig::new().with_prefix(format!("{}:socket.io", self.app()));
        RedisAdapterCtr::new_with_driver(
            NodesDriver {
                pubsub: self.pubsub(),
            },
            config,
        )
    }
}

impl Driver for NodesDriver {
    type Error = Error;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), Error> {
        self.pubsub.publish(chan, val).await
    }

    async fn subscribe(&self, chan: String, size: usize) -> Result<MessageStream<ChanItem>, Error> {
        let (tx, rx) = tokio::sync::mpsc::channel(size.clamp(1, CHANNEL_BUFFER));
        self.pubsub
            .subscribe(
                chan,
                Arc::new(move |chan: &str, payload: &[u8]| {
                    if tx.try_send((chan.to_owned(), payload.to_vec())).is_err() {
                        tracing::warn!(
                            "a socket.io adapter message was dropped: its buffer is full"
                        );
                    }
                }),
            )
            .await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), Error> {
        self.pubsub.unsubscribe(chan).await
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, Error> {
        self.pubsub.subscribers(chan.to_owned()).await
    }
}
