//! The takeover paths of the security review, each as a regression test in-process with the
//! test browser (SPEC S1, H2 b, H8, C4, C6, ST2). Each test says which attack it stops.

mod common;

use common::{Browser, count, headers_with_cookies, world};
use futures::executor::block_on;
use serde_json::json;
use session_bridge::ClientId;

/// Attack 3: a tossed, unheld session cookie. The attacker logs in (session S), then sends one
/// request with only its client cookie, which gives it a new session and leaves S live but held
/// by no client. A victim request carrying its own cookies plus S in front must never be
/// served from S (H2 b adopts only for the record's owner, ST2), and the attacker must never
/// read what the victim wrote.
#[test]
fn h2b_a_tossed_unheld_session_cookie_never_moves_a_victim_into_the_attackers_session() {
    block_on(async {
        let w = world();
        let mut attacker = Browser::new();
        attacker
            .request(&w.bridge, |s| async move {
                s.insert("who", "mallory").await.unwrap()
            })
            .await;
        let tossed = attacker.get("app.sid").unwrap().to_owned();
        // One request with only the client cookie: a new session, S now unheld.
        let mut client_only = attacker.clone();
        client_only.jar.remove("app.sid");
        count(&mut client_only, &w.bridge).await;

        let mut victim = Browser::new();
        victim
            .request(&w.bridge, |s| async move {
                s.insert("who", "alice").await.unwrap()
            })
            .await;
        let own = victim.get("app.sid").unwrap().to_owned();
        let victim_client = victim.get("app.sid.cid").unwrap().to_owned();
        // The victim's browser sends the tossed cookie first (a sibling subdomain set it).
        let line = format!("app.sid.cid={victim_client}; app.sid={tossed}; app.sid={own}");
        let ctx = w
            .bridge
            .begin_request(&headers_with_cookies(&[line.as_bytes()]));
        let seen = ctx.session().data().await.unwrap();
        assert_ne!(seen.get("who"), Some(&json!("mallory")), "served from S");
        ctx.session().insert("secret", "alice's").await.unwrap();
        ctx.commit(&mut http::HeaderMap::new()).await.unwrap();

        // The attacker presents S again: nothing of the victim's is there.
        let back = attacker
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert!(
            !back.contains_key("secret"),
            "the victim's write landed in S: {back:?}"
        );
    });
}

/// H2 b still re-attaches the owner's own session after a restart (ST2: the owner is in the
/// record, under a key the ring still has).
#[test]
fn h2b_the_owner_is_reattached_after_a_restart_and_nobody_else_is() {
    block_on(async {
        let w = world();
        let mut alice = Browser::new();
        alice
            .request(&w.bridge, |s| async move {
                s.insert("who", "alice").await.unwrap()
            })
            .await;
        let restarted = session_bridge::SessionBridge::builder()
            .key("app.sid")
            .keys([common::KEY_A])
            .max_age(common::DAY)
            .clock(w.clock.clone())
            .store(std::sync::Arc::clone(&w.store))
            .build()
            .unwrap();
        // Mallory presents Alice's session cookie with her own client cookie first.
        let mut mallory = Browser::new();
        mallory.visit(&restarted).await;
        mallory.set("app.sid", alice.get("app.sid").unwrap());
        let stolen = mallory
            .request(&restarted, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert!(
            stolen.is_empty(),
            "another client's record was adopted: {stolen:?}"
        );
        // Alice herself is re-attached.
        let mine = alice
            .request(&restarted, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(mine.get("who"), Some(&json!("alice")));
    });
}

/// Attack 2: a client cookie planted before login. Mallory plants her own client cookie in the
/// victim's browser and keeps a socket open with it; the victim logs in (the login calls
/// `regenerate`, H8). Neither Mallory's open socket nor a new socket with the planted cookie
/// reads the victim's session.
#[test]
fn h8_s1_a_client_cookie_planted_before_login_does_not_follow_the_login() {
    block_on(async {
        let w = world();
        let mut mallory = Browser::new();
        mallory.visit(&w.bridge).await;
        let planted = mallory.get("app.sid.cid").unwrap().to_owned();
        let open_socket = w
            .bridge
            .bind_socket(&mallory.build_request().headers().clone())
            .await
            .unwrap();

        let mut victim = Browser::new();
        victim.set("app.sid.cid", &planted);
        victim
            .request(&w.bridge, |s| async move {
                s.regenerate().await.unwrap();
                s.insert("user", "alice").await.unwrap();
            })
            .await;
        assert_ne!(
            victim.get("app.sid.cid"),
            Some(planted.as_str()),
            "a new client id at login"
        );

        let missing = open_socket
            .with_session(async |ctx| ctx.data().clone())
            .await;
        assert!(
            missing.is_err(),
            "Mallory's open socket reads the login: {missing:?}"
        );
        let new_socket = w
            .bridge
            .bind_socket(&mallory.build_request().headers().clone())
            .await
            .unwrap();
        assert_eq!(new_socket.session_id().await.expect("mapping"), None);
        let planted_id = ClientId::from(planted.rsplit_once('.').unwrap().0);
        assert_eq!(
            w.bridge.get_session_id(&planted_id).await.expect("mapping"),
            None
        );
    });
}

/// Attack 4: one non-ASCII byte anywhere in the Cookie header made the whole line ignored, so
/// the browser got a new client id and its session became unreachable. Only the bad pair is
/// skipped (C6).
#[test]
fn c6_one_bad_pair_in_the_cookie_line_skips_only_that_pair() {
    block_on(async {
        let w = world();
        let mut alice = Browser::new();
        count(&mut alice, &w.bridge).await;
        let line = format!(
            "x=\u{e9}; app.sid.cid={}; broken; app.sid={}; y=\"\u{fc}\"",
            alice.get("app.sid.cid").unwrap(),
            alice.get("app.sid").unwrap()
        );
        let ctx = w
            .bridge
            .begin_request(&headers_with_cookies(&[line.as_bytes()]));
        let n = ctx.session().get::<u64>("n").await.unwrap();
        assert_eq!(n, Some(1), "the good pairs of the line still count");
        let cid = ctx.client_id();
        assert!(
            w.bridge
                .get_session_id(&cid)
                .await
                .expect("mapping")
                .is_some(),
            "same client id"
        );
    });
}

/// Attack 6a: no absolute timeout, so activity kept a session alive forever. With
/// `absolute_timeout`, a session is dead that long after its creation whatever rolling did,
/// its cookie never outlives that instant, and a regenerate does not restart the count (H9).
#[test]
fn h9_the_absolute_timeout_ends_a_session_that_rolling_kept_alive() {
    block_on(async {
        let w = common::world_with(|b| {
            b.rolling(true)
                .max_age(std::time::Duration::from_secs(3600))
                .absolute_timeout(std::time::Duration::from_secs(3 * 3600))
        });
        let mut alice = Browser::new();
        assert_eq!(count(&mut alice, &w.bridge).await, 1);
        for n in 2..=5 {
            // Active every 40 minutes: rolling alone would keep the session forever.
            w.clock.advance(std::time::Duration::from_secs(40 * 60));
            let ex = alice
                .request(&w.bridge, |s| async move {
                    let n = s.get::<u64>("n").await.unwrap().unwrap_or(0) + 1;
                    s.insert("n", n).await.unwrap();
                    n
                })
                .await;
            assert_eq!(ex.value, n, "alive at {} min", (n - 1) * 40);
            let max_age = ex
                .set_cookie("app.sid")
                .expect("rolling re-sends the cookie");
            let secs: u64 = max_age
                .split("Max-Age=")
                .nth(1)
                .and_then(|v| v.split(';').next())
                .and_then(|v| v.parse().ok())
                .unwrap();
            let left = 3 * 3600 - (n - 1) * 40 * 60;
            assert_eq!(secs, left.min(3600), "the cookie never outlives the limit");
        }
        // 160 min: a regenerate (a login) moves the session, not its creation time.
        alice
            .request(&w.bridge, |s| async move { s.regenerate().await.unwrap() })
            .await;
        w.clock.advance(std::time::Duration::from_secs(20 * 60 + 1)); // past 180 min
        let after = alice
            .request(
                &w.bridge,
                |s| async move { s.get::<u64>("n").await.unwrap() },
            )
            .await
            .value;
        assert_eq!(
            after, None,
            "dead at the absolute limit, whatever refreshed it"
        );
        assert_eq!(w.store.inner.len(), 0, "and destroyed, never resurrected");
    });
}

/// Attack 5: the glue committed session changes after the handler answered 5xx. A 5xx
/// response commits nothing of the session by default (H10); the option turns it back on.
#[test]
fn h10_a_5xx_response_commits_nothing_unless_the_option_says_so() {
    block_on(async {
        for (commit_on_error, stored) in [(false, 0), (true, 1)] {
            let w = common::world_with(|b| b.commit_on_server_error(commit_on_error));
            let mut alice = Browser::new();
            count(&mut alice, &w.bridge).await;
            let ctx = w.bridge.begin_request(alice.build_request().headers());
            ctx.session().insert("half", "written").await.unwrap();
            let mut out = http::HeaderMap::new();
            ctx.commit_response(http::StatusCode::BAD_GATEWAY, &mut out)
                .await
                .unwrap();
            let data = alice
                .request(&w.bridge, |s| async move { s.data().await.unwrap() })
                .await
                .value;
            assert_eq!(
                usize::from(data.contains_key("half")),
                stored,
                "commit_on_server_error({commit_on_error})"
            );
            // A 4xx still commits: only server errors are failures of the request.
            let ctx = w.bridge.begin_request(alice.build_request().headers());
            ctx.session().insert("four", 4).await.unwrap();
            ctx.commit_response(http::StatusCode::NOT_FOUND, &mut http::HeaderMap::new())
                .await
                .unwrap();
            let four = alice
                .request(
                    &w.bridge,
                    |s| async move { s.get::<u64>("four").await.unwrap() },
                )
                .await
                .value;
            assert_eq!(four, Some(4));
        }
    });
}

/// Attack 6b: missing signing keys were generated at run time with only a warning. They are
/// a build error naming the option, unless the app asks for ephemeral development keys (O1).
#[test]
fn o1_missing_keys_are_a_build_error_unless_ephemeral_keys_are_asked_for() {
    let missing = session_bridge::SessionBridge::builder()
        .key("app.sid")
        .build();
    assert!(
        matches!(
            missing,
            Err(session_bridge::Error::InvalidOption { option: "keys", .. })
        ),
        "{missing:?}"
    );
    let dev = session_bridge::SessionBridge::builder()
        .key("app.sid")
        .ephemeral_keys(true)
        .build();
    assert!(dev.is_ok());
}

/// M1: a shared mapping is never trusted over the record. A forged (or stale) entry that maps
/// the attacker's client id to the victim's session — a tampered Redis, a bug in a custom
/// `ClientMap` — must not hand the victim's session to the attacker's socket, nor move the
/// attacker's HTTP requests into it: the record's owner tag names the victim.
#[test]
fn m1_a_forged_mapping_entry_never_hands_a_session_to_another_browser() {
    use session_bridge::nodes::{ClientMap, MemoryMap};
    use std::sync::Arc;
    block_on(async {
        let map = Arc::new(MemoryMap::default());
        let shared: Arc<dyn ClientMap> = Arc::clone(&map) as Arc<dyn ClientMap>;
        let w = common::world_with(|b| b.client_map(shared));
        let mut victim = Browser::new();
        let victim_sid = victim
            .request(&w.bridge, |s| async move {
                s.insert("who", "alice").await.unwrap();
                s.session_id().await.unwrap().unwrap()
            })
            .await
            .value;
        let mut attacker = Browser::new();
        count(&mut attacker, &w.bridge).await;
        let attacker_cid = attacker
            .request(&w.bridge, |s| async move { s.client_id() })
            .await
            .value;
        let socket = w
            .bridge
            .bind_socket(attacker.build_request().headers())
            .await
            .unwrap();
        // The forgery: the attacker's client id now points at the victim's session.
        map.attach(attacker_cid.as_str(), victim_sid.as_str(), u64::MAX / 2)
            .await
            .unwrap();
        let seen = socket
            .with_session_or_else(async |ctx| ctx.data().clone(), Default::default)
            .await
            .unwrap();
        assert_ne!(
            seen.get("who"),
            Some(&json!("alice")),
            "the socket read the victim's session"
        );
        let wrote = socket
            .with_session_or_else(async |ctx| ctx.insert("pwned", true).is_ok(), || false)
            .await
            .unwrap();
        let victim_data = victim
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert!(
            !victim_data.contains_key("pwned"),
            "the socket wrote the victim's session (wrote: {wrote})"
        );
        assert_eq!(victim_data.get("who"), Some(&json!("alice")));
    });
}
