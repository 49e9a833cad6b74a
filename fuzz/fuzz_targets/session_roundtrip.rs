//! Any JSON object as session data (SPEC H3, GW2, X3): stored through one request and read
//! back unchanged by the next, or refused with a clear error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use session_bridge::{Error, SessionBridge};

fuzz_target!(|text: &str| {
    let Ok(Value::Object(data)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Ok(bridge) = SessionBridge::builder()
        .key("app.sid")
        .keys([[7u8; 32]])
        .max_session_bytes(4096)
        .signed(false)
        .build()
    else {
        return;
    };
    futures::executor::block_on(async {
        let ctx = bridge.begin_request(&http::HeaderMap::new());
        ctx.session().replace(data.clone()).await.expect("replace");
        let mut out = http::HeaderMap::new();
        match ctx.commit(&mut out).await {
            Ok(()) => {}
            Err(Error::SessionTooLarge { .. }) => return,
            Err(e) => panic!("unexpected error: {e}"),
        }
        let cookie: Vec<String> = out
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next().map(str::to_owned))
            .collect();
        let mut next = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&cookie.join("; ")) {
            next.insert(http::header::COOKIE, v);
        }
        let ctx = bridge.begin_request(&next);
        let read: Map<String, Value> = ctx.session().data().await.expect("read back");
        assert_eq!(read, data);
    });
});
