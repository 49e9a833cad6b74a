//! Any `Cookie` header bytes, at an HTTP request and at a socket handshake (SPEC X1, S1): no
//! panic, no session for a forged cookie, and a commit that succeeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_bridge::{SessionBridge, id::SequentialIdGen};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = http::HeaderValue::from_bytes(data) else {
        return;
    };
    let Ok(bridge) = SessionBridge::builder()
        .key("app.sid")
        .keys([[7u8; 32]])
        .ids(SequentialIdGen::new("f"))
        .build()
    else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.append(http::header::COOKIE, value.clone());
    headers.append(http::header::COOKIE, value);
    futures::executor::block_on(async {
        let ctx = bridge.begin_request(&headers);
        let data = ctx
            .session()
            .data()
            .await
            .expect("an empty store never fails");
        assert!(data.is_empty(), "a forged cookie yielded a session");
        let mut out = http::HeaderMap::new();
        ctx.commit(&mut out)
            .await
            .expect("commit of an untouched session");
        let socket = bridge
            .bind_socket(&headers)
            .await
            .expect("bind never fails here");
        assert_eq!(socket.session_id(), None);
    });
});
