//! Property tests (proptest) over the same properties as the fuzz targets in `fuzz/`, so every
//! `cargo test` explores them a little: cookie headers (X1, C2), record decoding (ST2, X2) and
//! session JSON round trips (H3, GW2, X3).

mod common;

use common::{Browser, KEY_A};
use futures::executor::block_on;
use http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use serde_json::{Map, Value};
use session_bridge::{Error, Record, SessionBridge};

fn bridge(max_bytes: usize) -> SessionBridge {
    SessionBridge::builder()
        .key("app.sid")
        .keys([KEY_A])
        .max_session_bytes(max_bytes)
        .build()
        .unwrap()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(".{0,8}", json_value(), 0..6).prop_map(|m| m.into_iter().collect())
}

/// The Cookie header a browser sends after receiving `out`'s Set-Cookie headers.
fn follow(out: &HeaderMap) -> HeaderMap {
    let mut browser = Browser::new();
    browser.absorb(out);
    browser.build_request().headers().clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// X1: any Cookie header is "no cookie" (never someone's session, never a panic).
    #[test]
    fn any_cookie_header_is_no_session(raw in prop::collection::vec(any::<u8>(), 0..300),
                                       name_hit in any::<bool>()) {
        let mut bytes = if name_hit { b"app.sid=".to_vec() } else { Vec::new() };
        bytes.extend(raw);
        let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let b = bridge(64 * 1024);
        block_on(async {
            // A real session exists, so a forged cookie has something to hit.
            let owner = b.begin_request(&HeaderMap::new());
            owner.session().insert("secret", 1).await.unwrap();
            owner.commit(&mut HeaderMap::new()).await.unwrap();

            let mut h = HeaderMap::new();
            h.insert(header::COOKIE, value);
            let ctx = b.begin_request(&h);
            prop_assert!(ctx.session().data().await.unwrap().is_empty());
            ctx.commit(&mut HeaderMap::new()).await.unwrap();
            let socket = b.bind_socket(&h).await.unwrap();
            prop_assert_eq!(socket.session_id(), None);
            Ok(())
        })?;
    }

    /// ST2: encode/decode is a round trip for every record.
    #[test]
    fn record_round_trip(session in ".*", expires_at in any::<u64>(), ttl in any::<u64>(), version in any::<u64>()) {
        let r = Record { session, expires_at, ttl, version };
        prop_assert_eq!(Record::decode(&r.encode()), Ok(r));
    }

    /// X2: decoding any text never panics; what decodes re-encodes to itself.
    #[test]
    fn record_decode_any_text(text in ".*") {
        if let Ok(r) = Record::decode(&text) {
            prop_assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
    }

    /// H3, GW2, X3: any JSON object written by one request is read back unchanged by the next,
    /// or refused whole when over the limit.
    #[test]
    fn session_json_round_trip(data in json_object()) {
        let b = bridge(512);
        block_on(async {
            let ctx = b.begin_request(&HeaderMap::new());
            ctx.session().replace(data.clone()).await.unwrap();
            let mut out = HeaderMap::new();
            match ctx.commit(&mut out).await {
                Ok(()) => {}
                Err(Error::SessionTooLarge { size, limit }) => {
                    prop_assert!(size > limit);
                    prop_assert_eq!(b.mapped_sessions(), 0, "nothing half-written");
                    return Ok(());
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
            let ctx = b.begin_request(&follow(&out));
            prop_assert_eq!(ctx.session().data().await.unwrap(), data);
            Ok(())
        })?;
    }
}
