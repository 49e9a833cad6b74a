//! The HTTP flow (SPEC H1-H8) driven with real `http` requests and responses, following
//! cookies like a browser. Each test names the rules it checks; the Gherkin scenarios in
//! `features/http_flow.feature` cover the rest of the family.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Browser, DAY, KEY_A, count, read_n, world, world_with};
use futures::executor::block_on;
use session_bridge::{
    BridgeEvent, Error, LiveStore, SessionBridge, clock::ManualClock, id::SequentialIdGen,
};

#[test]
fn h3_untouched_request_costs_no_store_call_and_sets_only_the_client_cookie() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        let ex = b.visit(&w.bridge).await;
        assert_eq!(w.store.calls(), 0);
        let cookies = ex.set_cookies();
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        assert!(cookies[0].starts_with("app.sid.cid="));
        // H8: the client cookie is signed and has the session cookie's attributes.
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=31536000",
        ] {
            assert!(cookies[0].contains(attr), "{} lacks {attr}", cookies[0]);
        }
        assert!(b.get("app.sid.cid").unwrap().contains('.'));
    });
}

#[test]
fn h1_client_id_is_stable_and_rolled_on_every_response() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        let first = b.request(&w.bridge, |s| async move { s.client_id() }).await;
        let second = b.request(&w.bridge, |s| async move { s.client_id() }).await;
        assert_eq!(first.value, second.value);
        assert!(
            second.set_cookie("app.sid.cid").is_some(),
            "client_always_roll"
        );

        let w = world_with(|b| b.client_always_roll(false));
        let mut b = Browser::new();
        b.visit(&w.bridge).await;
        let again = b.visit(&w.bridge).await;
        assert!(again.set_cookies().is_empty());
    });
}

#[test]
fn h4_h6_new_session_gets_its_id_at_first_write_and_fires_set_at_that_commit() {
    block_on(async {
        let w = world();
        let mut events = w.bridge.events();
        let mut b = Browser::new();
        let ex = b
            .request(&w.bridge, |s| async move {
                assert_eq!(
                    s.session_id().await.unwrap(),
                    None,
                    "no id before the first write"
                );
                s.insert("user", "ada").await.unwrap();
                (
                    s.client_id(),
                    s.session_id().await.unwrap().expect("id at first write"),
                )
            })
            .await;
        assert!(ex.set_cookie("app.sid").is_some());
        let (cid, sid) = ex.value;
        assert_eq!(
            w.bridge.get_session_id(&cid).await.expect("mapping"),
            Some(sid.clone())
        );
        assert_eq!(
            w.bridge.get_client_id(&sid).await.expect("mapping"),
            Some(cid.clone())
        );
        assert_eq!(
            events.try_next(),
            Some(BridgeEvent::SessionSet {
                client_id: Some(cid),
                session_id: sid,
                is_new: true,
                is_init: true
            })
        );
        assert_eq!(events.try_next(), None);
    });
}

#[test]
fn h4_new_and_empty_stores_nothing() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        let ex = b
            .request(&w.bridge, |s| async move {
                assert!(s.is_new().await.unwrap());
                s.insert("tmp", 1).await.unwrap();
                s.remove_value("tmp").await.unwrap();
            })
            .await;
        assert_eq!(w.store.writes(), 0);
        assert!(ex.set_cookie("app.sid").is_none());
        assert_eq!(w.bridge.mapped_sessions(), 0);
    });
}

#[test]
fn h4_changes_persist_and_unchanged_sessions_are_not_rewritten() {
    block_on(async {
        let w = world();
        let mut events = w.bridge.events();
        let mut b = Browser::new();
        assert_eq!(count(&mut b, &w.bridge).await, 1);
        assert_eq!(count(&mut b, &w.bridge).await, 2);
        assert_eq!(count(&mut b, &w.bridge).await, 3);
        let _created = events.try_next();
        assert!(matches!(
            events.try_next(),
            Some(BridgeEvent::SessionSet {
                is_new: false,
                is_init: false,
                ..
            })
        ));
        let writes = w.store.writes();
        let ex = b
            .request(&w.bridge, |s| async move {
                let n: u64 = s.get("n").await.unwrap().unwrap();
                s.insert("n", n).await.unwrap(); // same value: not a change
                n
            })
            .await;
        assert_eq!(ex.value, 3);
        assert_eq!(w.store.writes(), writes, "GW2: same text, nothing written");
        assert!(ex.set_cookie("app.sid").is_none());
    });
}

#[test]
fn h4_h7_destroy_clears_cookie_fires_destroy_and_the_next_request_starts_fresh() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let (cid, sid) = b
            .request(&w.bridge, |s| async move {
                (s.client_id(), s.session_id().await.unwrap().unwrap())
            })
            .await
            .value;
        let mut events = w.bridge.events();
        let ex = b
            .request(&w.bridge, |s| async move { s.destroy().await.unwrap() })
            .await;
        let cleared = ex.set_cookie("app.sid").expect("cookie cleared");
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        assert_eq!(
            events.try_next(),
            Some(BridgeEvent::SessionDestroy {
                client_id: Some(cid.clone()),
                session_id: sid.clone(),
                reason: session_bridge::EndReason::Destroyed,
            })
        );
        assert_eq!(w.bridge.get_session_id(&cid).await.expect("mapping"), None);
        assert_eq!(count(&mut b, &w.bridge).await, 1);
        let new_sid = w
            .bridge
            .get_session_id(&cid)
            .await
            .expect("mapping")
            .unwrap();
        assert_ne!(new_sid, sid);
    });
}

#[test]
fn h2c_a_session_cookie_copied_into_another_browser_is_ignored() {
    block_on(async {
        let w = world();
        let mut alice = Browser::new();
        count(&mut alice, &w.bridge).await;
        count(&mut alice, &w.bridge).await;
        let mut mallory = Browser::new();
        mallory.visit(&w.bridge).await; // has its own client id
        mallory.set("app.sid", alice.get("app.sid").unwrap());
        let seen = mallory
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert!(
            seen.is_empty(),
            "mallory must not see alice's session: {seen:?}"
        );
        assert_eq!(count(&mut alice, &w.bridge).await, 3, "alice keeps hers");
    });
}

#[test]
fn h2_the_client_cookie_alone_never_yields_the_session_cookie() {
    block_on(async {
        let w = world();
        let mut alice = Browser::new();
        count(&mut alice, &w.bridge).await;
        let mut thief = Browser::new();
        thief.set("app.sid.cid", alice.get("app.sid.cid").unwrap());
        let ex = thief
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await;
        assert!(ex.value.is_empty());
        assert!(
            ex.set_cookie("app.sid").is_none(),
            "the seed's stale-cookie re-send is not ported"
        );
    });
}

#[test]
fn h2d_an_unknown_session_id_is_never_adopted() {
    block_on(async {
        let w = world_with(|b| b.signed(false).ids(SequentialIdGen::new("t")));
        let mut b = Browser::new();
        let forged = "tforgedforgedforgedforgedforged1";
        assert_eq!(forged.len(), 32);
        b.set("app.sid", forged);
        let ex = b
            .request(&w.bridge, |s| async move {
                s.insert("x", 1).await.unwrap();
                s.session_id().await.unwrap().unwrap()
            })
            .await;
        assert_ne!(ex.value, forged, "no fixation");
        assert_eq!(b.get("app.sid"), Some(ex.value.as_str()));
    });
}

#[test]
fn h2b_after_a_restart_an_existing_session_is_reattached() {
    block_on(async {
        let clock = ManualClock::new(0);
        let store = Arc::new(LiveStore::with_clock(clock.clone()));
        let build = || {
            SessionBridge::builder()
                .key("app.sid")
                .keys([KEY_A])
                .clock(clock.clone())
                .store(Arc::clone(&store))
                .build()
                .unwrap()
        };
        let mut b = Browser::new();
        count(&mut b, &build()).await;
        let restarted = build();
        let mut events = restarted.events();
        assert_eq!(count(&mut b, &restarted).await, 2);
        assert!(matches!(
            events.try_next(),
            Some(BridgeEvent::SessionSet {
                is_new: false,
                is_init: true,
                ..
            })
        ));
        assert!(matches!(
            events.try_next(),
            Some(BridgeEvent::SessionSet {
                is_new: false,
                is_init: false,
                ..
            })
        ));
    });
}

#[test]
fn h5_regenerate_moves_data_to_a_new_session_and_a_new_client_id() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let before = b.clone();
        let (old_cid, old_sid) = b
            .request(&w.bridge, |s| async move {
                (s.client_id(), s.session_id().await.unwrap().unwrap())
            })
            .await
            .value;
        let ex = b
            .request(&w.bridge, |s| async move {
                s.regenerate().await.unwrap();
                (s.client_id(), s.session_id().await.unwrap().unwrap())
            })
            .await;
        let (new_cid, new_sid) = ex.value;
        assert_ne!(new_cid, old_cid);
        assert_ne!(new_sid, old_sid);
        assert_eq!(
            w.bridge.get_session_id(&new_cid).await.expect("mapping"),
            Some(new_sid)
        );
        assert_eq!(
            w.bridge.get_session_id(&old_cid).await.expect("mapping"),
            None
        );
        assert_eq!(count(&mut b, &w.bridge).await, 2, "data followed");
        // The pre-login cookies are dead.
        let mut stale = before;
        assert_eq!(count(&mut stale, &w.bridge).await, 1);
    });
}

#[test]
fn h5_rolling_resends_the_cookie_and_refreshes_the_ttl() {
    block_on(async {
        let w = world_with(|b| b.rolling(true));
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        for _ in 0..3 {
            w.clock.advance(DAY / 2);
            let ex = b
                .request(
                    &w.bridge,
                    |s| async move { s.get::<u64>("n").await.unwrap() },
                )
                .await;
            assert_eq!(ex.value, Some(1), "rolling kept it alive");
            assert!(ex.set_cookie("app.sid").unwrap().contains("Max-Age=86400"));
        }
    });
}

#[test]
fn h5_renew_refreshes_only_past_half_life() {
    block_on(async {
        let w = world_with(|b| b.renew(true));
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let read = |b: &mut Browser| {
            let bridge = w.bridge.clone();
            let mut b2 = b.clone();
            async move {
                let ex = b2
                    .request(&bridge, |s| async move { s.get::<u64>("n").await.unwrap() })
                    .await;
                (ex.set_cookie("app.sid").is_some(), b2)
            }
        };
        w.clock.advance(Duration::from_secs(3600));
        let (renewed, nb) = read(&mut b).await;
        assert!(!renewed);
        b = nb;
        w.clock.advance(DAY / 2);
        let (renewed, _) = read(&mut b).await;
        assert!(renewed);
    });
}

#[test]
fn h5_per_session_max_age_overrides_record_and_cookie() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        let ex = b
            .request(&w.bridge, |s| async move {
                s.set_max_age(Duration::from_secs(120)).unwrap();
                assert!(s.set_max_age(Duration::from_secs(1)).is_err());
                s.insert("a", 1).await.unwrap();
            })
            .await;
        assert!(ex.set_cookie("app.sid").unwrap().contains("Max-Age=120"));
        w.clock.advance(Duration::from_secs(121));
        assert_eq!(
            count(&mut b, &w.bridge).await,
            1,
            "expired after its own max-age"
        );
    });
}

#[test]
fn h5_browser_session_cookie_has_no_max_age() {
    block_on(async {
        let w = world_with(|b| b.browser_session(true));
        let mut b = Browser::new();
        let ex = b
            .request(
                &w.bridge,
                |s| async move { s.insert("a", 1).await.unwrap() },
            )
            .await;
        assert!(!ex.set_cookie("app.sid").unwrap().contains("Max-Age"));
    });
}

#[test]
fn h5_a_regenerate_whose_new_record_is_refused_loses_nothing() {
    block_on(async {
        let w = world_with(|b| b.max_session_bytes(64));
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let err = b
            .try_request(&w.bridge, |s| async move {
                s.regenerate().await.unwrap();
                s.insert("blob", "x".repeat(100)).await.unwrap();
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SessionTooLarge { .. }));
        assert_eq!(
            count(&mut b, &w.bridge).await,
            2,
            "the old session is intact"
        );
    });
}

/// Review finding: a request in flight during a login (regenerate) must not log the user
/// out by rolling back the old client cookie or clearing the new session cookie (H1, H8).
#[test]
fn h8_a_request_in_flight_during_regenerate_does_not_undo_the_login() {
    block_on(async {
        for writes in [false, true] {
            let w = world();
            let mut b = Browser::new();
            count(&mut b, &w.bridge).await;
            // A starts with the pre-login cookies and touches the session.
            let a = w.bridge.begin_request(b.build_request().headers());
            if writes {
                a.session().insert("other", 1).await.unwrap();
            } else {
                a.session().get::<u64>("n").await.unwrap();
            }
            // B logs in and its response arrives first.
            b.request(&w.bridge, |s| async move {
                s.regenerate().await.unwrap();
                s.insert("user", "ada").await.unwrap();
            })
            .await;
            // A's response arrives last.
            let mut out = http::HeaderMap::new();
            a.commit(&mut out).await.unwrap();
            b.absorb(&out);
            let user = b
                .request(&w.bridge, |s| async move {
                    s.get::<String>("user").await.unwrap()
                })
                .await
                .value;
            assert_eq!(user.as_deref(), Some("ada"), "writes: {writes}");
        }
    });
}

/// Review finding: a regenerate never brings back a session destroyed meanwhile (a ban).
#[test]
fn h5_regenerate_after_a_concurrent_destroy_does_not_resurrect() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let cid = b
            .request(&w.bridge, |s| async move { s.client_id() })
            .await
            .value;
        let ctx = w.bridge.begin_request(b.build_request().headers());
        ctx.session().get::<u64>("n").await.unwrap(); // loaded before the ban
        assert!(w.bridge.destroy_by_client_id(&cid).await.unwrap());
        ctx.session().regenerate().await.unwrap();
        ctx.session().insert("user", "mallory").await.unwrap();
        let mut out = http::HeaderMap::new();
        ctx.commit(&mut out).await.unwrap();
        b.absorb(&out);
        let seen = b
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert!(seen.is_empty(), "the banned session came back: {seen:?}");
        assert_eq!(w.bridge.mapped_sessions(), 0);
    });
}

/// Review finding: a regenerate carries over what sockets wrote to the session meanwhile.
#[test]
fn h5_regenerate_keeps_concurrent_writes_to_other_keys() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let ctx = w.bridge.begin_request(b.build_request().headers());
        ctx.session().get::<u64>("n").await.unwrap();
        let socket = w
            .bridge
            .bind_socket(b.build_request().headers())
            .await
            .unwrap();
        socket
            .with_session(async |s| {
                s.insert_value("wsCount", 5.into());
            })
            .await
            .unwrap();
        ctx.session().regenerate().await.unwrap();
        ctx.session().insert("user", "ada").await.unwrap();
        let mut out = http::HeaderMap::new();
        ctx.commit(&mut out).await.unwrap();
        b.absorb(&out);
        let seen = b
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(seen["wsCount"], 5);
        assert_eq!(seen["user"], "ada");
        assert_eq!(seen["n"], 1);
    });
}

/// Review finding: destroy then write in one request ("logout, then a flash message")
/// announces the destroyed session with its client id (H7).
#[test]
fn h7_destroy_then_write_announces_the_owner() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let mut events = w.bridge.events();
        let cid = b
            .request(&w.bridge, |s| async move {
                s.destroy().await.unwrap();
                s.insert("flash", "bye").await.unwrap();
                s.client_id()
            })
            .await
            .value;
        let all: Vec<_> = std::iter::from_fn(|| events.try_next()).collect();
        assert!(
            all.iter().any(|e| matches!(e,
                BridgeEvent::SessionDestroy { client_id: Some(c), .. } if *c == cid)),
            "{all:?}"
        );
    });
}

/// H11: every commit that writes the record re-sends the session cookie with the record's TTL
/// as Max-Age, so an active user's cookie never expires before the record it names (the
/// defect: only the response that created the session carried `Set-Cookie: app.sid`). A
/// request that writes nothing sends no session cookie.
#[test]
fn h11_every_write_resends_the_session_cookie_with_the_records_ttl() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        for n in 2..=3 {
            w.clock.advance(Duration::from_secs(3600));
            let ex = b
                .request(&w.bridge, |s| async move {
                    let n = s.get::<u64>("n").await.unwrap().unwrap_or(0) + 1;
                    s.insert("n", n).await.unwrap();
                    n
                })
                .await;
            assert_eq!(ex.value, n);
            let set = ex
                .set_cookie("app.sid")
                .expect("a write re-sends the session cookie");
            assert!(set.contains("Max-Age=86400"), "{set}");
        }
        let read = b
            .request(
                &w.bridge,
                |s| async move { s.get::<u64>("n").await.unwrap() },
            )
            .await;
        assert_eq!(read.value, Some(3));
        assert_eq!(
            read.set_cookie("app.sid"),
            None,
            "nothing written, nothing re-sent"
        );
    });
}

/// H12, the defect: parallel requests of one browser that each read `n` and write `n + 1` lost
/// updates silently (20 requests gave +4). Now a request whose read key was changed by another
/// writer before its commit fails with a conflict and commits nothing: every increment that
/// reports success is counted, none is lost silently.
#[test]
fn h12_a_read_then_write_that_raced_another_writer_is_a_conflict_not_a_lost_update() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let headers = b.build_request().headers().clone();
        // 20 requests all read n before any commits (the worst interleaving).
        let mut pending = Vec::new();
        for _ in 0..20 {
            let ctx = w.bridge.begin_request(&headers);
            let n = ctx.session().get::<u64>("n").await.unwrap().unwrap_or(0);
            ctx.session().insert("n", n + 1).await.unwrap();
            pending.push(ctx);
        }
        let mut ok = 0;
        for ctx in pending {
            match ctx.commit(&mut http::HeaderMap::new()).await {
                Ok(()) => ok += 1,
                Err(err) => {
                    assert!(matches!(err, Error::ReadConflict), "{err:?}");
                    assert_eq!(err.status(), http::StatusCode::CONFLICT);
                }
            }
        }
        assert_eq!(ok, 1, "the first commit wins, the other 19 are told");
        let n = read_n(&mut b, &w.bridge).await;
        assert_eq!(
            n,
            Some(2),
            "1 + the one increment that succeeded: nothing lost silently"
        );
    });
}

/// H12 through `data()`: every key it returned counts as read with the value it had then,
/// whatever way the request later writes it (insert, remove, replace); a key that was absent
/// from what `data()` returned was not read.
#[test]
fn h12_data_reads_every_key_it_returns_with_its_value_then() {
    block_on(async {
        type Write = fn(&session_bridge::Session) -> futures::future::BoxFuture<'_, ()>;
        let writes: [(&str, Write); 3] = [
            ("insert", |s| {
                Box::pin(async move { s.insert("n", 100).await.unwrap() })
            }),
            ("remove", |s| {
                Box::pin(async move {
                    s.remove_value("n").await.unwrap();
                })
            }),
            ("replace", |s| {
                Box::pin(async move { s.replace(serde_json::Map::new()).await.unwrap() })
            }),
        ];
        for (how, write) in writes {
            let w = world();
            let mut b = Browser::new();
            count(&mut b, &w.bridge).await;
            let headers = b.build_request().headers().clone();
            let reader = w.bridge.begin_request(&headers);
            let seen = reader.session().data().await.unwrap();
            assert_eq!(seen["n"], 1);
            // Another request changes `n` after `data()` returned it.
            let other = w.bridge.begin_request(&headers);
            other.session().insert("n", 7).await.unwrap();
            other.commit(&mut http::HeaderMap::new()).await.unwrap();
            write(reader.session()).await;
            let err = reader
                .commit(&mut http::HeaderMap::new())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::ReadConflict), "{how}: {err:?}");
            let n = read_n(&mut b, &w.bridge).await;
            assert_eq!(n, Some(7), "{how}: the other writer's value stays");
        }
        // A key `data()` did not return was not read: creating it meanwhile is no conflict.
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let headers = b.build_request().headers().clone();
        let reader = w.bridge.begin_request(&headers);
        assert!(!reader.session().data().await.unwrap().contains_key("fresh"));
        let other = w.bridge.begin_request(&headers);
        other.session().insert("fresh", 1).await.unwrap();
        other.commit(&mut http::HeaderMap::new()).await.unwrap();
        reader.session().insert("fresh", 2).await.unwrap();
        reader.commit(&mut http::HeaderMap::new()).await.unwrap();
    });
}

/// H12: the atomic update runs at once under the session's lock on fresh data, so the same
/// 20 interleaved requests give exactly +20; writes of other keys by the request still merge.
#[test]
fn h12_session_update_is_atomic_and_20_interleaved_requests_give_exactly_20() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let headers = b.build_request().headers().clone();
        let mut pending = Vec::new();
        for i in 0..20 {
            let ctx = w.bridge.begin_request(&headers);
            let seen = ctx
                .session()
                .update(|data| {
                    let n = data.get("n").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
                    data.insert("n".into(), n.into());
                    n
                })
                .await
                .unwrap();
            assert_eq!(seen, 2 + i, "each update sees the previous one");
            ctx.session().insert(&format!("k{i}"), i).await.unwrap();
            pending.push(ctx);
        }
        for ctx in pending {
            ctx.commit(&mut http::HeaderMap::new()).await.unwrap();
        }
        let data = b
            .request(&w.bridge, |s| async move { s.data().await.unwrap() })
            .await
            .value;
        assert_eq!(data["n"], 21);
        assert!((0..20).all(|i| data.contains_key(&format!("k{i}"))));
    });
}

/// H12, H4, H5: `update` on a session the store does not hold yet (a new browser's first
/// request, or a session moving to a new id in a `regenerate`) changes it in place, and what
/// it wrote is stored at commit along with the request's other changes.
#[test]
fn h4_h5_h12_session_update_of_a_new_or_regenerating_session_is_stored_at_commit() {
    block_on(async {
        let w = world();
        let increment = |data: &mut serde_json::Map<String, serde_json::Value>| {
            let n = data.get("n").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
            data.insert("n".into(), n.into());
            n
        };
        // A new browser's first request.
        let mut b = Browser::new();
        let (n, cid) = b
            .request(&w.bridge, |s| async move {
                (s.update(increment).await.unwrap(), s.client_id())
            })
            .await
            .value;
        assert_eq!(n, 1);
        let stored = w.bridge.get_by_client_id(&cid).await.unwrap();
        assert_eq!(stored.expect("stored at commit")["n"], 1);
        assert_eq!(read_n(&mut b, &w.bridge).await, Some(1));

        // A login: `regenerate`, a plain write, then `update` on the moving session.
        let (n, cid) = b
            .request(&w.bridge, |s| async move {
                s.regenerate().await.unwrap();
                s.insert("user", "ada").await.unwrap();
                (s.update(increment).await.unwrap(), s.client_id())
            })
            .await
            .value;
        assert_eq!(n, 2);
        let stored = w.bridge.get_by_client_id(&cid).await.unwrap();
        let stored = stored.expect("moved at commit");
        assert_eq!((&stored["n"], &stored["user"]), (&2.into(), &"ada".into()));
        assert_eq!(read_n(&mut b, &w.bridge).await, Some(2));
    });
}

/// H12: `last_writer_wins(true)` restores the old behaviour for apps that want it.
#[test]
fn h12_last_writer_wins_restores_the_old_behaviour() {
    block_on(async {
        let w = world_with(|b| b.last_writer_wins(true));
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let headers = b.build_request().headers().clone();
        let first = w.bridge.begin_request(&headers);
        let second = w.bridge.begin_request(&headers);
        for ctx in [&first, &second] {
            let n = ctx.session().get::<u64>("n").await.unwrap().unwrap_or(0);
            ctx.session().insert("n", n + 1).await.unwrap();
        }
        first.commit(&mut http::HeaderMap::new()).await.unwrap();
        second.commit(&mut http::HeaderMap::new()).await.unwrap();
        let n = read_n(&mut b, &w.bridge).await;
        assert_eq!(
            n,
            Some(2),
            "last writer wins: one increment lost, as documented"
        );
    });
}

/// H11, issue 19 defect 1: `Session::update` (what the quick starts' counters use) wrote the
/// record but never re-sent the session cookie, so the browser's cookie expired a day after
/// the session was created however active it was. Every write re-sends it, `update` too.
#[test]
fn h11_session_update_resends_the_session_cookie_with_the_records_ttl() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        w.clock.advance(Duration::from_secs(3600));
        let ex = b
            .request(&w.bridge, |s| async move {
                s.update(|data| {
                    let n = data.get("n").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
                    data.insert("n".into(), n.into());
                    n
                })
                .await
                .unwrap()
            })
            .await;
        assert_eq!(ex.value, 2);
        let set = ex
            .set_cookie("app.sid")
            .expect("H11: an update re-sends the session cookie");
        assert!(set.contains("Max-Age=86400"), "{set}");
        // An update that changes nothing writes nothing and re-sends nothing.
        let same = b
            .request(
                &w.bridge,
                |s| async move { s.update(|_| ()).await.unwrap() },
            )
            .await;
        assert_eq!(same.set_cookie("app.sid"), None);
    });
}

/// H5, issue 19 defect 2: a per-session max age set by a request that never read the session
/// returned `Ok` and was silently dropped (the commit took the "untouched" exit). It takes
/// effect whether or not the request read the session: the record's TTL and the cookie's
/// Max-Age both change (tower-sessions' `set_expiry` test does the same).
#[test]
fn h5_set_max_age_without_a_read_takes_effect() {
    block_on(async {
        let w = world();
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        let week = Duration::from_secs(7 * 24 * 3600);
        let ex = b
            .request(&w.bridge, |s| async move { s.set_max_age(week).unwrap() })
            .await;
        let set = ex
            .set_cookie("app.sid")
            .expect("H5: the new max age reaches the cookie");
        assert!(set.contains("Max-Age=604800"), "{set}");
        // The record lives a week: still there after 2 days, past the 1-day default.
        w.clock.advance(Duration::from_secs(2 * 24 * 3600));
        assert_eq!(read_n(&mut b, &w.bridge).await, Some(1));
        // A new visitor's max age has no session to apply to: nothing stored, no cookie.
        let mut fresh = Browser::new();
        let ex = fresh
            .request(&w.bridge, |s| async move { s.set_max_age(week).unwrap() })
            .await;
        assert_eq!(ex.set_cookie("app.sid"), None);
    });
}
