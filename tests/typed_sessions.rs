//! The typed-session pattern (a serde struct as the session's typed view over HTTP and
//! sockets), as documented in the crate docs, "Typed sessions": read, update, and a value of
//! the wrong shape as an error, never a silent `None`.

mod common;

use common::{Browser, world};
use futures::executor::block_on;
use serde::{Deserialize, Serialize};
use session_bridge::{Error, Session, SocketSession};

/// The app's typed view: one struct under one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    visits: u32,
}

const KEY: &str = "profile";

/// A typed wrapper over the HTTP session, the way tower-sessions' guide does it.
struct ProfileSession<'a>(&'a Session);

impl ProfileSession<'_> {
    async fn get(&self) -> session_bridge::Result<Option<Profile>> {
        self.0.get(KEY).await
    }

    /// Read-modify-write at once under the session's lock (H12): concurrent visits all count.
    async fn visit(&self) -> session_bridge::Result<u32> {
        self.0
            .update(|data| {
                let mut profile: Profile = data
                    .get(KEY)
                    .and_then(|v| Profile::deserialize(v).ok())
                    .unwrap_or_default();
                profile.visits += 1;
                let visits = profile.visits;
                data.insert(
                    KEY.into(),
                    serde_json::to_value(profile).unwrap_or_default(),
                );
                visits
            })
            .await
    }
}

async fn socket_profile(socket: &SocketSession) -> session_bridge::Result<Option<Profile>> {
    socket
        .with_session(async |ctx| ctx.get::<Profile>(KEY))
        .await?
}

#[test]
fn a_serde_struct_is_the_sessions_typed_view_on_both_sides() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        b.request(&w.bridge, |s| async move {
            let profile = Profile {
                name: "ada".into(),
                visits: 0,
            };
            s.insert(KEY, profile).await.unwrap();
        })
        .await;
        let visits = b
            .request(&w.bridge, |s| async move {
                ProfileSession(&s).visit().await.unwrap()
            })
            .await
            .value;
        assert_eq!(visits, 1);

        let socket = w
            .bridge
            .bind_socket(&{
                let mut h = b.build_request().headers().clone();
                h.insert(http::header::HOST, "localhost".parse().unwrap());
                h
            })
            .await
            .unwrap();
        let seen = socket_profile(&socket).await.unwrap();
        assert_eq!(
            seen,
            Some(Profile {
                name: "ada".into(),
                visits: 1
            })
        );
        // A socket updates the same typed value; HTTP reads it back.
        socket
            .with_session(async |ctx| {
                let mut p: Profile = ctx.get(KEY)?.unwrap_or_default();
                p.name = "grace".into();
                ctx.insert(KEY, p)
            })
            .await
            .unwrap()
            .unwrap();
        let back = b
            .request(&w.bridge, |s| async move {
                ProfileSession(&s).get().await.unwrap()
            })
            .await
            .value;
        assert_eq!(back.map(|p| p.name).as_deref(), Some("grace"));
    });
}

#[test]
fn a_stored_value_of_the_wrong_shape_is_an_error_not_a_silent_none() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        b.request(&w.bridge, |s| async move {
            s.insert(KEY, serde_json::json!({"name": 7})).await.unwrap()
        })
        .await;
        let http = b
            .request(&w.bridge, |s| async move { ProfileSession(&s).get().await })
            .await
            .value;
        assert!(matches!(http, Err(Error::Json { .. })), "{http:?}");
        let socket = w
            .bridge
            .bind_socket(&{
                let mut h = b.build_request().headers().clone();
                h.insert(http::header::HOST, "localhost".parse().unwrap());
                h
            })
            .await
            .unwrap();
        let ws = socket_profile(&socket).await;
        assert!(matches!(ws, Err(Error::Json { .. })), "{ws:?}");
        // An absent key is `Ok(None)`: only a present value of the wrong shape is an error.
        let absent = socket
            .with_session(async |ctx| ctx.get::<Profile>("nothing"))
            .await
            .unwrap();
        assert!(matches!(absent, Ok(None)));
    });
}
