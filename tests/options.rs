//! Options (SPEC O1, O2): bad options are refused at build with the option named.

mod common;

use std::time::Duration;

use common::{Browser, DAY, KEY_A, count, world_with};
use futures::executor::block_on;
use session_bridge::{Error, SessionBridge, SessionBridgeBuilder};

#[test]
fn o2_bad_options_are_rejected_by_name() {
    let cases: Vec<(&str, SessionBridgeBuilder)> = vec![
        (
            "max_age",
            SessionBridge::builder().max_age(Duration::from_secs(59)),
        ),
        ("max_age", SessionBridge::builder().max_age(DAY * 366)),
        (
            "client_max_age",
            SessionBridge::builder().client_max_age(DAY * 401),
        ),
        ("keys", SessionBridge::builder().keys(["too short"])),
        ("key", SessionBridge::builder().key("bad name")),
        (
            "client_key",
            SessionBridge::builder().key("a").client_key("a"),
        ),
        ("path", SessionBridge::builder().path("relative")),
        (
            "auto_cleanup_interval",
            SessionBridge::builder().auto_cleanup_interval(Duration::ZERO),
        ),
        (
            "same_site",
            SessionBridge::builder()
                .same_site(Some(session_bridge::SameSite::None))
                .secure(false),
        ),
    ];
    for (name, builder) in cases {
        match builder.build() {
            Err(Error::InvalidOption { option, .. }) => assert_eq!(option, name),
            other => panic!("{name}: expected InvalidOption, got {other:?}"),
        }
    }
}

/// Review finding: cookie names with token characters that percent-encoding would change
/// still round-trip (O2).
#[test]
fn o2_unusual_but_valid_cookie_names_round_trip() {
    block_on(async {
        for name in ["app|sid", "app^sid", "app#sid", "app%sid", "app`sid"] {
            let w = world_with(|b| b.key(name));
            let mut b = Browser::new();
            count(&mut b, &w.bridge).await;
            assert_eq!(count(&mut b, &w.bridge).await, 2, "{name}");
        }
    });
}

#[test]
fn o2_attributes_and_id_generators_that_could_never_work_are_refused() {
    struct LongIds;
    impl session_bridge::id::IdGen for LongIds {
        fn generate(&self) -> String {
            "x".repeat(36)
        }
    }
    for (name, builder) in [
        ("path", SessionBridge::builder().path("/a\u{7f}")),
        ("path", SessionBridge::builder().path("/a\0")),
        ("domain", SessionBridge::builder().domain("a\u{1}b")),
        ("ids", SessionBridge::builder().ids(LongIds)),
    ] {
        match builder.key("app.sid").keys([KEY_A]).build() {
            Err(Error::InvalidOption { option, .. }) => assert_eq!(option, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// C5: `__Host-` and `__Secure-` names are supported (both cookies carry the prefix's
/// attributes) and refused when the options break the prefix's rules.
#[test]
fn c5_host_and_secure_prefixed_names_are_validated() {
    use common::KEY_A;
    let build = |key: &str,
                 f: fn(
        session_bridge::SessionBridgeBuilder,
    ) -> session_bridge::SessionBridgeBuilder| {
        f(SessionBridge::builder().key(key).keys([KEY_A])).build()
    };
    assert!(build("__Host-app.sid", |b| b).is_ok());
    assert!(build("__Secure-app.sid", |b| b.domain("example.com")).is_ok());
    type Tweak = fn(session_bridge::SessionBridgeBuilder) -> session_bridge::SessionBridgeBuilder;
    let cases: [(&str, Tweak); 4] = [
        ("__Host-app.sid", |b| b.secure(false)),
        ("__Host-app.sid", |b| b.path("/app")),
        ("__Host-app.sid", |b| b.domain("example.com")),
        ("__Secure-app.sid", |b| b.secure(false)),
    ];
    for (key, bad) in cases {
        let err = build(key, bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidOption { option: "key", .. }),
            "{key}: {err}"
        );
    }
    // The client cookie's own name is checked too.
    let err = SessionBridge::builder()
        .key("app.sid")
        .client_key("__Host-app.cid")
        .keys([KEY_A])
        .path("/app")
        .build()
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidOption {
            option: "client_key",
            ..
        }
    ));

    // Both cookies of a `__Host-` bridge come back with the prefix's attributes.
    block_on(async {
        let bridge = build("__Host-app.sid", |b| b).unwrap();
        let mut b = Browser::new();
        let ex = b
            .request(&bridge, |s| async move { s.insert("n", 1).await.unwrap() })
            .await;
        for name in ["__Host-app.sid", "__Host-app.sid.cid"] {
            let set = ex
                .set_cookie(name)
                .unwrap_or_else(|| panic!("{name} is set"));
            assert!(set.contains("Secure") && set.contains("Path=/"), "{set}");
            assert!(!set.contains("Domain"), "{set}");
        }
        let n = b
            .request(&bridge, |s| async move { s.get::<u64>("n").await.unwrap() })
            .await
            .value;
        assert_eq!(n, Some(1), "the prefixed cookies round-trip");
    });
}
