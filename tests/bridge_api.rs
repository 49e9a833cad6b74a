//! The by-id API and cleanup scheduling (SPEC B2, B3).

mod common;

use std::time::Duration;

use common::{Browser, DAY, count, world};
use futures::executor::block_on;
use serde_json::json;
use session_bridge::{BridgeEvent, Error};

#[test]
fn b2_by_id_api_never_creates_and_respects_the_mapping() {
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
        assert_eq!(
            w.bridge.get_by_id(&sid).await.unwrap(),
            Some(json!({"n":1}).as_object().unwrap().clone())
        );
        assert_eq!(
            w.bridge.get_by_client_id(&cid).await.unwrap().unwrap()["n"],
            1
        );
        assert_eq!(w.bridge.get_by_id(&"nope".into()).await.unwrap(), None);
        let data = json!({"n": 10}).as_object().unwrap().clone();
        assert!(
            w.bridge
                .set_by_client_id(&cid, Some(data.clone()), None)
                .await
                .unwrap()
        );
        assert_eq!(count(&mut b, &w.bridge).await, 11);
        assert!(matches!(
            w.bridge
                .set_by_id(&"unmapped".into(), Some(data), None)
                .await,
            Err(Error::NotMapped)
        ));
        assert!(!w.bridge.destroy_by_id(&"unmapped".into()).await.unwrap());
        assert!(w.bridge.destroy_by_client_id(&cid).await.unwrap());
        assert!(!w.bridge.destroy_by_client_id(&cid).await.unwrap());
        assert_eq!(count(&mut b, &w.bridge).await, 1);
    });
}

#[test]
fn b3_auto_cleanup_runs_on_the_injected_clock_and_stops() {
    let w = world();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut events = w.bridge.events();
        let worker = tokio::spawn(w.bridge.auto_cleanup_worker());
        count(&mut Browser::new(), &w.bridge).await;
        assert!(w.bridge.start_auto_cleanup(Some(Duration::from_secs(3600))));
        assert!(!w.bridge.start_auto_cleanup(None), "already running");
        // Bounded waits (a guard, not a sleep): a regression fails here instead of hanging.
        tokio::time::timeout(Duration::from_secs(10), async {
            while w.clock.sleepers() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the cleanup worker never went to sleep on the manual clock");
        w.clock.advance(DAY + Duration::from_secs(3600));
        let cleared = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match events.try_next() {
                    Some(BridgeEvent::Cleanup(n)) => break n,
                    Some(_) => {}
                    None => tokio::task::yield_now().await,
                }
            }
        })
        .await
        .expect("no Cleanup event after the clock passed the worker's interval");
        assert_eq!(cleared, 1);
        assert!(w.bridge.stop_auto_cleanup());
        assert!(!w.bridge.stop_auto_cleanup());
        drop(w);
        // The worker ends once the bridge is gone.
        tokio::time::timeout(Duration::from_secs(5), worker)
            .await
            .expect("worker ended")
            .unwrap();
    });
}

/// B5, S6: every `SessionDestroy` says why the session ended, so the glue can tell the
/// sockets: destroyed (HTTP, by id), regenerated, expired (read, cleanup), corrupt.
#[test]
fn b5_s6_every_session_end_names_its_reason() {
    use session_bridge::{EndReason, Record};
    block_on(async {
        let w = world();
        let mut events = w.bridge.events();
        let mut next_end = || loop {
            match events.try_next() {
                Some(BridgeEvent::SessionDestroy { reason, .. }) => return Some(reason),
                Some(_) => continue,
                None => return None,
            }
        };
        let mut b = Browser::new();
        count(&mut b, &w.bridge).await;
        b.request(&w.bridge, |s| async move { s.regenerate().await.unwrap() })
            .await;
        assert_eq!(next_end(), Some(EndReason::Regenerated));
        b.request(&w.bridge, |s| async move { s.destroy().await.unwrap() })
            .await;
        assert_eq!(next_end(), Some(EndReason::Destroyed));
        count(&mut b, &w.bridge).await;
        let cid = b
            .request(&w.bridge, |s| async move { s.client_id() })
            .await
            .value;
        let sid = w
            .bridge
            .get_session_id(&cid)
            .await
            .expect("mapping")
            .unwrap();
        assert!(w.bridge.destroy_by_id(&sid).await.unwrap());
        assert_eq!(next_end(), Some(EndReason::Destroyed));
        count(&mut b, &w.bridge).await;
        w.clock.advance(common::DAY);
        count(&mut b, &w.bridge).await; // read: expired, and a new session
        assert_eq!(next_end(), Some(EndReason::Expired));
        let sid = w
            .bridge
            .get_session_id(&cid)
            .await
            .expect("mapping")
            .unwrap();
        w.store
            .set(sid.as_str(), Record::new("[not an object]", u64::MAX, 1))
            .await
            .unwrap();
        let _ = b
            .request(&w.bridge, |s| async move { s.data().await })
            .await;
        assert_eq!(next_end(), Some(EndReason::Corrupt));
        count(&mut b, &w.bridge).await;
        w.clock.advance(common::DAY);
        assert_eq!(w.bridge.cleanup().await.unwrap(), 1);
        assert_eq!(next_end(), Some(EndReason::Expired));
        assert_eq!(next_end(), None);
    });
}
