//! Observability: the bridge's `tracing` spans (an HTTP commit, a socket bind, a
//! `with_session`) carry the session's keyed tag, the outcome, the lock wait and the elapsed
//! time, and never a raw id or session data (L1).

mod common;

use common::capture::Logs;
use common::{Browser, world};
use futures::executor::block_on;
use session_bridge::Error;

/// The spans named `name`, each as its creation line followed by its recorded fields.
fn spans(logs: &Logs, name: &str) -> Vec<String> {
    let lines = logs.lines();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("span ") && line.contains(&format!(" {name}:")) {
            let mut span = line.clone();
            for next in &lines[i + 1..] {
                if next.starts_with("span record:") {
                    span.push_str(next.trim_start_matches("span record:"));
                } else if next.starts_with("span ") {
                    break;
                }
            }
            out.push(span);
        }
    }
    out
}

#[test]
fn commit_bind_and_with_session_spans_name_the_session_by_tag_with_outcome_and_timings() {
    block_on(async {
        let w = world();
        let logs = Logs::install();
        let mut b = Browser::new();
        // Untouched, created, updated, unchanged (read only), then a conflict.
        b.visit(&w.bridge).await;
        common::count(&mut b, &w.bridge).await;
        common::count(&mut b, &w.bridge).await;
        let (cid, sid) = b
            .request(&w.bridge, |s| async move {
                (s.client_id(), s.session_id().await.unwrap().unwrap())
            })
            .await
            .value;
        let headers = b.build_request().headers().clone();
        let first = w.bridge.begin_request(&headers);
        let second = w.bridge.begin_request(&headers);
        for ctx in [&first, &second] {
            let n = ctx.session().get::<u64>("n").await.unwrap().unwrap_or(0);
            ctx.session().insert("n", n + 1).await.unwrap();
        }
        first.commit(&mut http::HeaderMap::new()).await.unwrap();
        let err = second
            .commit(&mut http::HeaderMap::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ReadConflict));

        let commits = spans(&logs, "session_bridge.commit");
        let outcomes: Vec<&str> = commits
            .iter()
            .map(|s| {
                s.split("outcome=")
                    .nth(1)
                    .and_then(|o| o.split(' ').next())
                    .unwrap()
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                "untouched",
                "created",
                "updated",
                "unchanged",
                "updated",
                "conflict"
            ],
            "{commits:#?}"
        );
        let tag = w.bridge.client_tag(&cid).to_string(); // a tag of another kind
        for span in &commits[1..] {
            assert!(span.contains("session=#"), "named by its keyed tag: {span}");
            assert!(span.contains("elapsed_us="), "{span}");
            assert!(
                !span.contains(&tag[1..]),
                "the session tag is not the client tag"
            );
        }
        assert!(
            commits[2].contains("lock_wait_us="),
            "a write took the lock: {}",
            commits[2]
        );

        // A socket bind and a with_session.
        let socket = w
            .bridge
            .bind_socket(&{
                let mut h = headers.clone();
                h.insert(http::header::HOST, "localhost".parse().unwrap());
                h
            })
            .await
            .unwrap();
        socket
            .with_session(async |ctx| ctx.insert("ws", 1))
            .await
            .unwrap()
            .unwrap();
        let anonymous = w.bridge.bind_socket(&http::HeaderMap::new()).await.unwrap();
        assert!(anonymous.with_session(async |_| ()).await.is_err());
        let binds = spans(&logs, "session_bridge.bind");
        assert_eq!(binds.len(), 2, "{binds:#?}");
        assert!(
            binds[0].contains("outcome=session") && binds[0].contains("session=#"),
            "{}",
            binds[0]
        );
        assert!(binds[1].contains("outcome=anonymous"), "{}", binds[1]);
        let calls = spans(&logs, "session_bridge.with_session");
        assert_eq!(calls.len(), 2, "{calls:#?}");
        assert!(
            calls[0].contains("outcome=ok") && calls[0].contains("lock_wait_us="),
            "{}",
            calls[0]
        );
        assert!(calls[1].contains("outcome=missing"), "{}", calls[1]);

        // The same session is named by the same tag everywhere; no line shows an id.
        let tag_of = |s: &str| {
            s.split("session=")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(tag_of(&commits[2]), tag_of(&calls[0]));
        for line in logs.lines() {
            assert!(
                !line.contains(sid.as_str()) && !line.contains(cid.as_str()),
                "{line}"
            );
        }
    });
}
