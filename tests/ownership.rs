//! The pair is the credential (issue 18): the attacks of the second security review, each a
//! regression test in-process with the test browser. Nothing moves a session or a socket
//! through a client cookie alone (SPEC H2, H8, S1, S2, C4, C6, ST2). The two-node versions of
//! attacks 1 and 3 are in `tests/e2e/two_nodes.mjs`; attack 2 is in `tests/socket_flow.rs`
//! (`s1_the_client_cookie_alone_never_yields_the_session_of_the_handshake`).

mod common;

use std::sync::Arc;

use common::{Browser, DAY, KEY_A, count, headers_with_cookies, world, world_with};
use futures::executor::block_on;
use futures::future::BoxFuture;
use http::HeaderMap;
use serde_json::json;
use session_bridge::nodes::{ClientMap, MemoryMap};
use session_bridge::{Error, Result, SessionBridge, Store};

const CLIENT: &str = "app.sid.cid";
const SESSION: &str = "app.sid";

/// The id of a signed cookie value `<id>.<sig>`.
fn id_of(value: &str) -> &str {
    value.split_once('.').map_or(value, |(id, _)| id)
}

/// A browser that logged in as `who`: its session holds `who`.
async fn logged_in(bridge: &SessionBridge, who: &'static str) -> Browser {
    let mut b = Browser::new();
    b.request(
        bridge,
        |s| async move { s.insert("who", who).await.unwrap() },
    )
    .await;
    b
}

/// Attack 1: capture through the mapping. The victim has a session and an open socket; an
/// attacker holding only the victim's client cookie calls a route that writes the session.
/// Before: a new session was created for the victim's client id and the mapping moved to it,
/// so the victim's socket silently switched into the attacker's session. Now (H2): the
/// attacker's request gets a new client id, and the victim's session and socket are untouched.
#[test]
fn h2_creation_never_moves_a_held_client_attack_1() {
    block_on(async {
        let w = world();
        let mut victim = logged_in(&w.bridge, "victim").await;
        let victim_cid = victim.get(CLIENT).unwrap().to_owned();
        let victim_sid = victim
            .request(&w.bridge, |s| async move { s.session_id().await.unwrap() })
            .await
            .value;
        let socket = w
            .bridge
            .bind_socket(victim.build_request().headers())
            .await
            .unwrap();

        // The attacker: only the victim's client cookie.
        let mut attacker = Browser::new();
        attacker.set(CLIENT, &victim_cid);
        let planted = attacker
            .request(&w.bridge, |s| async move {
                s.insert("who", "planted").await.unwrap();
            })
            .await;
        let new_client = planted
            .set_cookie(CLIENT)
            .expect("H2: the attacker's request is answered with a client cookie");
        assert!(
            !new_client.starts_with(&format!("{CLIENT}={victim_cid};")),
            "H2: the attacker's new session went to the victim's client id"
        );
        assert_ne!(attacker.get(CLIENT), Some(victim_cid.as_str()));

        // The victim's socket still reads and writes the victim's session.
        let (sid, who) = socket
            .with_session(async |ctx| {
                ctx.insert("ws", 1).unwrap();
                (ctx.session_id().clone(), ctx.get::<String>("who").unwrap())
            })
            .await
            .expect("the victim's socket still has a session");
        assert_eq!(Some(sid), victim_sid, "the victim's socket moved session");
        assert_eq!(who.as_deref(), Some("victim"));
        // What the victim's socket wrote is the victim's, never the attacker's.
        let seen_by_attacker = attacker
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(seen_by_attacker.get("who"), Some(&json!("planted")));
        assert!(!seen_by_attacker.contains_key("ws"), "{seen_by_attacker:?}");
        let mine = victim
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(mine.get("who"), Some(&json!("victim")));
        assert_eq!(mine.get("ws"), Some(&json!(1)));
        // The victim's own client id is not retired: its cookie is still re-sent (H1).
        let again = victim.visit(&w.bridge).await;
        assert!(
            again
                .set_cookie(CLIENT)
                .is_some_and(|c| c.starts_with(&format!("{CLIENT}={victim_cid};"))),
            "{:?}",
            again.set_cookies()
        );
    });
}

/// A [`MemoryMap`] on which another request attaches `other` to a client at the very moment
/// a creation links that client (between the creation's check and its link).
struct RacingMap {
    inner: MemoryMap,
    race: std::sync::Mutex<Option<(String, String)>>,
}

impl ClientMap for RacingMap {
    fn session_id<'a>(&'a self, cid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.inner.session_id(cid)
    }
    fn client_id<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.inner.client_id(sid)
    }
    fn attach<'a>(&'a self, cid: &'a str, sid: &'a str, at: u64) -> BoxFuture<'a, Result<()>> {
        self.inner.attach(cid, sid, at)
    }
    fn attach_if_unclaimed<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        at: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        self.inner.attach_if_unclaimed(cid, sid, at)
    }
    fn attach_new<'a>(
        &'a self,
        cid: &'a str,
        sid: &'a str,
        at: u64,
        expected: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let race = self.race.lock().unwrap().take();
            if let Some((client, other)) = race.filter(|(client, _)| client == cid) {
                self.inner.attach(&client, &other, at).await?;
            }
            self.inner.attach_new(cid, sid, at, expected).await
        })
    }
    fn touch<'a>(&'a self, sid: &'a str, at: u64) -> BoxFuture<'a, Result<Option<String>>> {
        self.inner.touch(sid, at)
    }
    fn detach<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        self.inner.detach(sid)
    }
    fn retire_client<'a>(
        &'a self,
        cid: &'a str,
        until: u64,
        now: u64,
    ) -> BoxFuture<'a, Result<()>> {
        self.inner.retire_client(cid, until, now)
    }
    fn is_retired_client<'a>(&'a self, cid: &'a str, now: u64) -> BoxFuture<'a, Result<bool>> {
        self.inner.is_retired_client(cid, now)
    }
}

/// H2 under a race: another request attaches a session to the client between the creation's
/// check and its link (a shared map written by another node). The creating request must not
/// move the client: its session goes to a fresh client id, and the record it had written for
/// the old one is removed.
#[test]
fn h2_a_creation_racing_another_attach_goes_to_a_fresh_client() {
    block_on(async {
        let map = Arc::new(RacingMap {
            inner: MemoryMap::default(),
            race: std::sync::Mutex::new(None),
        });
        let shared: Arc<dyn ClientMap> = Arc::clone(&map) as Arc<dyn ClientMap>;
        let w = world_with(|b| b.client_map(Arc::clone(&shared)));
        let mut b = Browser::new();
        b.visit(&w.bridge).await;
        let cookie = b.get(CLIENT).unwrap().to_owned();
        let cid = id_of(&cookie).to_owned();
        let other = "elsewhere-session-id-000000";
        *map.race.lock().unwrap() = Some((cid.clone(), other.to_owned()));
        let ex = b
            .request(&w.bridge, |s| async move {
                s.insert("who", "first").await.unwrap();
            })
            .await;
        assert!(map.race.lock().unwrap().is_none(), "the race was run");
        assert_eq!(
            map.session_id(&cid).await.unwrap().as_deref(),
            Some(other),
            "the client was moved by a creation"
        );
        assert_ne!(b.get(CLIENT), Some(cookie.as_str()), "a fresh client id");
        assert!(ex.set_cookie(SESSION).is_some());
        let who = b
            .request(&w.bridge, |s| async move {
                s.get::<String>("who").await.unwrap()
            })
            .await
            .value;
        assert_eq!(who.as_deref(), Some("first"));
        assert_eq!(
            w.store.inner.len(),
            1,
            "the record written for the old client is gone"
        );
    });
}

/// The ordinary flows keep working: a browser that destroys its own session (it proved it)
/// and writes again gets a new session on the same client id (H8: destroy keeps the client
/// id by default), and a socket that proved its pair follows it (S1).
#[test]
fn h2_a_session_replaced_by_its_own_browser_keeps_the_client_id() {
    block_on(async {
        let w = world();
        let mut b = logged_in(&w.bridge, "ada").await;
        let cid = b.get(CLIENT).unwrap().to_owned();
        let socket = w
            .bridge
            .bind_socket(b.build_request().headers())
            .await
            .unwrap();
        b.request(&w.bridge, |s| async move {
            s.destroy().await.unwrap();
            s.insert("who", "again").await.unwrap();
        })
        .await;
        assert_eq!(b.get(CLIENT), Some(cid.as_str()));
        let who = socket
            .with_session(async |ctx| ctx.get::<String>("who").unwrap())
            .await
            .unwrap();
        assert_eq!(who.as_deref(), Some("again"));
        // A session whose record died may be replaced without proof.
        w.clock.advance(DAY * 2);
        count(&mut b, &w.bridge).await;
        assert_eq!(b.get(CLIENT), Some(cid.as_str()));
    });
}

/// Attack 3: two complete valid pairs. A sibling subdomain plants the attacker's own logged-in
/// pair so the browser sends it first. Before: the first pair in header order won, so the
/// victim's HTTP requests and sockets ran inside the attacker's session (login CSRF). Now
/// (C4): two different pairs that both belong together trust neither session cookie.
#[test]
fn c4_two_tied_pairs_trust_neither_attack_3() {
    block_on(async {
        let w = world();
        let attacker = logged_in(&w.bridge, "mallory").await;
        let victim = logged_in(&w.bridge, "victim").await;
        let line = format!(
            "{CLIENT}={}; {SESSION}={}; {CLIENT}={}; {SESSION}={}",
            attacker.get(CLIENT).unwrap(),
            attacker.get(SESSION).unwrap(),
            victim.get(CLIENT).unwrap(),
            victim.get(SESSION).unwrap(),
        );
        let headers = headers_with_cookies(&[line.as_bytes()]);
        // After a restart in which only the attacker came back, this process's mapping ties
        // the attacker's pair alone; the records' owners tie both.
        let after_restart = restarted(&w);
        let back = attacker
            .clone()
            .request(&after_restart, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(back.get("who"), Some(&json!("mallory")));
        for bridge in [&w.bridge, &after_restart, &restarted(&w)] {
            // HTTP: no session, and what the victim writes goes to no one's session.
            let ctx = bridge.begin_request(&headers);
            let seen = ctx.session().data().await.unwrap();
            assert!(seen.is_empty(), "C4: served from a planted pair: {seen:?}");
            ctx.session().insert("secret", "victim's").await.unwrap();
            ctx.commit(&mut HeaderMap::new()).await.unwrap();
            // The socket: bound to no session.
            let socket = bridge.bind_socket(&headers).await.unwrap();
            let read = socket.with_session(async |ctx| ctx.data().clone()).await;
            assert!(matches!(read, Err(Error::SessionMissing)), "{read:?}");
            // The attacker's session got nothing.
            let mut a = attacker.clone();
            let theirs = a
                .request(bridge, |s| async move { s.data().await.unwrap() })
                .await
                .value;
            assert_eq!(theirs.get("who"), Some(&json!("mallory")));
            assert!(!theirs.contains_key("secret"), "{theirs:?}");
        }
        // Control: one pair alone (either) is served.
        let mut v = victim.clone();
        let mine = v
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(mine.get("who"), Some(&json!("victim")));
    });
}

/// A bridge on the same store and clock with an empty mapping (a restart): pairs tie only
/// through the records' owner tags.
fn restarted(w: &common::World) -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .max_age(DAY)
        .clock(w.clock.clone())
        .store(Arc::clone(&w.store))
        .build()
        .unwrap()
}

/// Attack 4: tossing lockout. Eight junk `app.sid=` values before the real one hid it (the
/// cap of 8 candidates was counted before the cheap shape check). Now (C6) only candidates of
/// the right shape count, and the victim stays logged in, over HTTP and on a socket.
#[test]
fn c6_junk_session_cookies_cannot_hide_the_real_one_attack_4() {
    block_on(async {
        let w = world();
        let victim = logged_in(&w.bridge, "victim").await;
        let junk = [
            "x",
            "",
            "a.b",
            "not-a-session-cookie",
            "....",
            "AAAA.BBBB",
            "%00%00",
            "{}",
            "x.y.z",
            "toolongtoolongtoolongtoolongtoolongtoolongtoolongtoolongtoolongtoolong",
        ];
        let mut line = String::new();
        for j in junk {
            line.push_str(&format!("{SESSION}={j}; {CLIENT}={j}; "));
        }
        line.push_str(&format!(
            "{CLIENT}={}; {SESSION}={}",
            victim.get(CLIENT).unwrap(),
            victim.get(SESSION).unwrap()
        ));
        let headers = headers_with_cookies(&[line.as_bytes()]);
        let ctx = w.bridge.begin_request(&headers);
        let seen = ctx.session().data().await.unwrap();
        assert_eq!(seen.get("who"), Some(&json!("victim")), "C6: {seen:?}");
        let socket = w.bridge.bind_socket(&headers).await.unwrap();
        let who = socket
            .with_session(async |ctx| ctx.get::<String>("who").unwrap())
            .await
            .expect("C6: the socket lost its session to junk cookies");
        assert_eq!(who.as_deref(), Some("victim"));
    });
}

/// Attack 5: ownerless records. A record without an owner tag (format 1, or written with
/// `Record::new`) was adopted by anyone who presented its signed id (H2 b). Now (ST2) it is
/// never adopted; its mapped client keeps it, and gives it its owner tag at its first write.
#[test]
fn st2_h2b_a_record_without_an_owner_is_never_adopted_attack_5() {
    block_on(async {
        let map = Arc::new(MemoryMap::default());
        let shared: Arc<dyn ClientMap> = Arc::clone(&map) as Arc<dyn ClientMap>;
        let w = world_with(|b| b.client_map(Arc::clone(&shared)));
        let mut owner = logged_in(&w.bridge, "owner").await;
        let sid = owner
            .request(&w.bridge, |s| async move { s.session_id().await.unwrap() })
            .await
            .value
            .unwrap();
        // The record loses its owner tag, as a format-1 record has none.
        let mut record = w.store.get(sid.as_str()).await.unwrap().unwrap();
        record.owner = None;
        w.store.set(sid.as_str(), record).await.unwrap();
        // Nobody holds it (the mapping entry is gone, as after a restart of one process).
        map.detach(sid.as_str()).await.unwrap();

        // Someone with a valid cookie of that id and a client of its own is not given it.
        let mut thief = Browser::new();
        thief.visit(&w.bridge).await;
        thief.set(SESSION, owner.get(SESSION).unwrap());
        let stolen = thief
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert!(
            stolen.is_empty(),
            "ST2: an ownerless record was adopted: {stolen:?}"
        );
        let socket = w
            .bridge
            .bind_socket(thief.build_request().headers())
            .await
            .unwrap();
        let read = socket.with_session(async |ctx| ctx.data().clone()).await;
        assert!(matches!(read, Err(Error::SessionMissing)), "{read:?}");
        assert_eq!(map.client_id(sid.as_str()).await.unwrap(), None);

        // Its mapped client keeps it, and its first write gives the record its owner.
        let cid = id_of(owner.get(CLIENT).unwrap()).to_owned();
        map.attach(&cid, sid.as_str(), u64::MAX / 2).await.unwrap();
        count(&mut owner, &w.bridge).await;
        let data = owner
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(data.get("who"), Some(&json!("owner")));
        let tagged = w.store.get(sid.as_str()).await.unwrap().unwrap();
        assert!(
            tagged.owner.is_some(),
            "ST2: the mapped client's write tags it"
        );
    });
}

/// Attack 6: logout keeps the client id (the default, H8), so a stolen client cookie, and a
/// socket that proved its pair before the logout, follow the browser's next session. With
/// `rotate_client_on_destroy(true)` the logout gives the browser a new client id: neither the
/// proved socket nor a socket opened with the stolen client cookie after the logout ever sees
/// the next session. The default is checked too (the seed's promise: the proved socket follows).
#[test]
fn h8_rotate_client_on_destroy_ends_what_a_stolen_client_cookie_follows_attack_6() {
    block_on(async {
        for rotate in [false, true] {
            let w = world_with(|b| b.rotate_client_on_destroy(rotate));
            let mut victim = logged_in(&w.bridge, "victim").await;
            let stolen = victim.get(CLIENT).unwrap().to_owned();
            let proved = w
                .bridge
                .bind_socket(victim.build_request().headers())
                .await
                .unwrap();
            victim
                .request(&w.bridge, |s| async move { s.destroy().await.unwrap() })
                .await;
            // The thief's socket, opened while the browser is anonymous.
            let mut thief = Browser::new();
            thief.set(CLIENT, &stolen);
            let spy = w
                .bridge
                .bind_socket(thief.build_request().headers())
                .await
                .unwrap();
            // The browser's next session, without a login (no regenerate).
            victim
                .request(
                    &w.bridge,
                    |s| async move { s.insert("cart", 1).await.unwrap() },
                )
                .await;
            assert_eq!(victim.get(CLIENT) == Some(stolen.as_str()), !rotate);
            let seen = |socket: session_bridge::SocketSession| async move {
                socket
                    .with_session_or_else(async |ctx| ctx.get::<u64>("cart").unwrap(), || None)
                    .await
                    .unwrap()
            };
            let (by_proved, by_spy) = (seen(proved).await, seen(spy).await);
            if rotate {
                assert_eq!(
                    by_proved, None,
                    "H8: the proved socket followed across a rotation"
                );
                assert_eq!(
                    by_spy, None,
                    "H8: the stolen client cookie followed the next session"
                );
            } else {
                assert_eq!(
                    by_proved,
                    Some(1),
                    "S1: a proved socket follows (the default)"
                );
                // The residual risk README names: anonymous, the stolen cookie follows.
                assert_eq!(by_spy, Some(1));
            }
        }
    });
}

/// `sockets_follow_client(false)`: a socket sees only the session it proved at its handshake,
/// so a client cookie stolen while the browser was anonymous reaches nothing through a socket,
/// and a proved socket does not follow the next session either (README, Security).
#[test]
fn s1_sockets_that_do_not_follow_see_only_the_session_they_proved() {
    block_on(async {
        let w = world_with(|b| b.sockets_follow_client(false));
        let mut victim = Browser::new();
        victim.visit(&w.bridge).await;
        let spy = w
            .bridge
            .bind_socket(victim.clone().build_request().headers())
            .await
            .unwrap();
        count(&mut victim, &w.bridge).await;
        let proved = w
            .bridge
            .bind_socket(victim.build_request().headers())
            .await
            .unwrap();
        let n = |socket: &session_bridge::SocketSession| {
            let socket = socket.clone();
            async move {
                socket
                    .with_session_or_else(async |ctx| ctx.get::<u64>("n").unwrap(), || None)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            n(&spy).await,
            None,
            "an anonymous page's socket does not follow"
        );
        assert_eq!(n(&proved).await, Some(1), "the proved session is seen");
        victim
            .request(&w.bridge, |s| async move {
                s.destroy().await.unwrap();
                s.insert("n", 7).await.unwrap();
            })
            .await;
        assert_eq!(n(&proved).await, None, "not the next session");
        let fresh = w
            .bridge
            .bind_socket(victim.build_request().headers())
            .await
            .unwrap();
        assert_eq!(
            n(&fresh).await,
            Some(7),
            "a new handshake proves the new pair"
        );
    });
}
