//! X1 (with H2 a/b/c and C1, C2, C6): forged and malformed session cookies, sent the way an
//! attacker or a broken proxy would: next to the owner's VALID client cookie. Without that
//! client cookie a parser that accepted a bad value would still see an empty session, because
//! the session id is mapped to another client (H2 c); with it, an accepted value would be used
//! (H2 a, and after a restart H2 b would attach it). Every case therefore also checks that the
//! owner's client cookie was recognised, and a control row with the exact real pair must
//! return the data (so an empty session is not the answer to everything).

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Browser, KEY_A, KEY_B, Probe};
use futures::executor::block_on;
use hmac::{KeyInit as _, Mac as _};
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value, json};
use session_bridge::{LiveStore, Record, SessionBridge, Store, clock::ManualClock};

const DAY: Duration = Duration::from_secs(24 * 3600);
const SESSION: &str = "app.sid";
const CLIENT: &str = "app.sid.cid";

struct World {
    clock: ManualClock,
    store: Arc<Probe<LiveStore>>,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::new(1_700_000_000_000);
        let store = Arc::new(Probe::new(LiveStore::with_clock(clock.clone())));
        Self { clock, store }
    }

    /// A bridge process over the shared store: a new one has an empty mapping (a restart).
    fn bridge(&self) -> SessionBridge {
        SessionBridge::builder()
            .key(SESSION)
            .keys([KEY_A])
            .max_age(DAY)
            .clock(self.clock.clone())
            .store(Arc::clone(&self.store))
            .build()
            .expect("valid options")
    }
}

/// `<id>.<sig>` as the crate signs it (C1), computed independently of the crate.
fn sign(key: &[u8], name: &str, id: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{name}={id}").as_bytes());
    format!(
        "{id}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn id_of(value: &str) -> &str {
    value.rsplit_once('.').map_or(value, |(id, _)| id)
}

fn sig_of(value: &str) -> &str {
    value.rsplit_once('.').map_or("", |(_, sig)| sig)
}

/// Flips one character of `s` at `at` to another character of the URL-safe alphabet.
fn flip(s: &str, at: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[at] = if b[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// Alice: a browser with a session holding n = 1. Returns (client cookie, session cookie).
fn alice(bridge: &SessionBridge) -> (String, String) {
    let mut b = Browser::new();
    block_on(b.request(bridge, |s| async move { s.insert("n", 1).await.unwrap() }));
    (
        b.get(CLIENT).unwrap().to_owned(),
        b.get(SESSION).unwrap().to_owned(),
    )
}

/// Every bad value of the session cookie, built from Alice's real cookies. Each is sent as
/// `app.sid.cid=<Alice's client cookie>; app.sid=<bad>` (the non-UTF-8 one in its own header,
/// see `send`).
fn bad_session_values(client: &str, real: &str) -> Vec<(&'static str, Vec<u8>)> {
    let id = id_of(real);
    let sig = sig_of(real);
    vec![
        ("empty value", b"".to_vec()),
        ("a lone dot", b".".to_vec()),
        ("bytes that are not UTF-8", b"\xff\xfe".to_vec()),
        ("huge", "A".repeat(100_000).into_bytes()),
        ("trailing junk", format!("{real}x").into_bytes()),
        ("trailing dot", format!("{real}.").into_bytes()),
        (
            "truncated signature",
            real.as_bytes()[..real.len() - 2].to_vec(),
        ),
        (
            "truncated by one",
            real.as_bytes()[..real.len() - 1].to_vec(),
        ),
        ("opening quote", format!("\"{real}").into_bytes()),
        ("closing quote", format!("{real}\"").into_bytes()),
        ("bare id without signature", id.as_bytes().to_vec()),
        ("id and a dot", format!("{id}.").into_bytes()),
        ("signature without id", format!(".{sig}").into_bytes()),
        ("signature flipped", flip(real, real.len() - 5).into_bytes()),
        ("id flipped", flip(real, 3).into_bytes()),
        ("id doubled", format!("{id}{real}").into_bytes()),
        ("signature doubled", format!("{real}{sig}").into_bytes()),
        ("two dots", format!("{id}..{sig}").into_bytes()),
        ("padded signature", format!("{real}=").into_bytes()),
        ("client value as session value", client.as_bytes().to_vec()),
        (
            "signed under the client cookie's name",
            sign(&KEY_A, CLIENT, id).into_bytes(),
        ),
        (
            "signed with a key the bridge does not hold",
            sign(&KEY_B, SESSION, id).into_bytes(),
        ),
        ("lower-cased", real.to_ascii_lowercase().into_bytes()),
    ]
}

struct Outcome {
    data: Map<String, Value>,
    client_id: String,
    set_session_cookie: bool,
}

/// One request with Alice's client cookie and `session_value` as the session cookie.
fn send(bridge: &SessionBridge, client: &str, session_value: &[u8]) -> Outcome {
    let mut headers = HeaderMap::new();
    let mut line = format!("{CLIENT}={client}; {SESSION}=").into_bytes();
    line.extend_from_slice(session_value);
    match HeaderValue::from_bytes(&line) {
        Ok(v) if v.to_str().is_ok() => {
            headers.append(header::COOKIE, v);
        }
        // A header that is not visible ASCII is dropped whole by the parser; keep the
        // client cookie in its own header so that the case still tests the session value.
        _ => {
            headers.append(
                header::COOKIE,
                HeaderValue::from_str(&format!("{CLIENT}={client}")).unwrap(),
            );
            let mut bad = format!("{SESSION}=").into_bytes();
            bad.extend_from_slice(session_value);
            headers.append(header::COOKIE, HeaderValue::from_bytes(&bad).unwrap());
        }
    }
    block_on(async {
        let ctx = bridge.begin_request(&headers);
        let data = ctx.session().data().await.expect("X1: never an error");
        let client_id = ctx.client_id();
        let mut out = HeaderMap::new();
        ctx.commit(&mut out).await.expect("X1: never an error");
        let set_session_cookie = common::set_cookies(&out)
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}=")));
        Outcome {
            data,
            client_id: client_id.into_string(),
            set_session_cookie,
        }
    })
}

fn check_bad_rows(bridge: &SessionBridge, client: &str, real: &str, when: &str) {
    for (case, raw) in bad_session_values(client, real) {
        let out = send(bridge, client, &raw);
        assert_eq!(
            out.client_id,
            id_of(client),
            "{when}, {case}: the owner's client cookie must be recognised, or this row \
             tests nothing"
        );
        assert!(
            out.data.is_empty(),
            "{when}, {case}: a bad session cookie next to the owner's client cookie yielded \
             the session {:?}",
            out.data
        );
        assert!(!out.set_session_cookie, "{when}, {case}: no session cookie");
    }
}

fn check_control_row(bridge: &SessionBridge, client: &str, real: &str, when: &str) {
    let out = send(bridge, client, real.as_bytes());
    assert_eq!(out.client_id, id_of(client), "{when}: control row");
    assert_eq!(
        Value::Object(out.data),
        json!({"n": 1}),
        "{when}: the exact real pair must return the data"
    );
}

#[test]
fn x1_h2a_bad_session_cookies_next_to_the_owners_client_cookie_are_no_cookie() {
    let w = World::new();
    let bridge = w.bridge();
    let (client, real) = alice(&bridge);
    check_bad_rows(&bridge, &client, &real, "same process");
    check_control_row(&bridge, &client, &real, "same process");
    assert_eq!(bridge.mapped_sessions(), 1);
}

#[test]
fn x1_h2b_after_a_restart_no_bad_session_cookie_is_attached() {
    let w = World::new();
    let (client, real) = alice(&w.bridge());
    // A new process over the same store: the mapping is empty, so a bad value that verified
    // would be attached to Alice's client by H2 b.
    let restarted = w.bridge();
    let mut events = restarted.events();
    check_bad_rows(&restarted, &client, &real, "after a restart");
    assert_eq!(restarted.mapped_sessions(), 0, "nothing was attached");
    assert_eq!(events.try_next(), None, "no SessionSet for a bad cookie");
    check_control_row(&restarted, &client, &real, "after a restart");
    assert_eq!(
        restarted.mapped_sessions(),
        1,
        "the real pair is re-attached"
    );
}

#[test]
fn x1_bad_client_cookies_next_to_the_real_session_cookie_never_yield_the_session() {
    // The mirror case: the real session cookie with a forged client cookie. A forged client
    // value that verified would name Alice's client id and, by H2 a, give her session.
    let w = World::new();
    let bridge = w.bridge();
    let (client, real) = alice(&bridge);
    let cid = id_of(&client).to_owned();
    let forged: Vec<(&str, String)> = vec![
        ("trailing junk", format!("{client}x")),
        ("truncated", client[..client.len() - 1].to_owned()),
        ("opening quote", format!("\"{client}")),
        ("bare id", cid.clone()),
        ("signature flipped", flip(&client, client.len() - 5)),
        ("session value as client value", real.clone()),
        ("signed under the session name", sign(&KEY_A, SESSION, &cid)),
        ("foreign key", sign(&KEY_B, CLIENT, &cid)),
    ];
    for (case, value) in forged {
        let headers =
            common::headers_with_cookies(&[
                format!("{CLIENT}={value}; {SESSION}={real}").as_bytes()
            ]);
        let (data, got_cid) = block_on(async {
            let ctx = bridge.begin_request(&headers);
            let data = ctx.session().data().await.unwrap();
            let got = ctx.client_id();
            ctx.commit(&mut HeaderMap::new()).await.unwrap();
            (data, got)
        });
        assert_ne!(got_cid, cid, "{case}: a forged client cookie was accepted");
        assert!(data.is_empty(), "{case}: {data:?}");
    }
    // Control: the real pair still works, so the rows above were not empty for other reasons.
    let headers =
        common::headers_with_cookies(&[format!("{CLIENT}={client}; {SESSION}={real}").as_bytes()]);
    let data = block_on(async { bridge.begin_request(&headers).session().data().await }).unwrap();
    assert_eq!(Value::Object(data), json!({"n": 1}));
}

#[test]
fn c1_a_client_cookie_value_in_the_session_cookie_never_names_a_record_under_that_id() {
    // If the cookie name were not inside the MAC, Alice's client cookie value moved into the
    // session cookie would name session id = her client id. Plant a live record under exactly
    // that id: H2 b would attach it. With the name in the MAC it must not verify.
    let w = World::new();
    let bridge = w.bridge();
    let (client, real) = alice(&bridge);
    let cid = id_of(&client).to_owned();
    // The planted record carries Alice's owner tag (copied from her real record): H2 b adopts
    // only a record tagged for the client (ST2), so the control below can reach it.
    let owner = block_on(w.store.get(id_of(&real))).unwrap().unwrap().owner;
    let planted = || Record {
        owner: owner.clone(),
        ..Record::new(r#"{"planted":true}"#, u64::MAX, DAY.as_millis() as u64)
    };
    block_on(w.store.set(&cid, planted())).unwrap();
    for bridge in [bridge, w.bridge()] {
        let out = send(&bridge, &client, client.as_bytes());
        assert_eq!(out.client_id, cid);
        assert!(out.data.is_empty(), "C1: {:?}", out.data);
        // Control: the same id correctly signed under the session name is adopted (H2 b),
        // so the planted record is reachable and the assertion above can fail.
        let control = send(&bridge, &client, sign(&KEY_A, SESSION, &cid).as_bytes());
        assert_eq!(Value::Object(control.data), json!({"planted": true}));
        block_on(bridge.destroy_by_id(&cid.as_str().into())).unwrap();
        block_on(w.store.set(&cid, planted())).unwrap();
    }
}

#[test]
fn c2_a_correctly_signed_id_of_the_wrong_shape_is_refused() {
    // C2 checks the id's shape before (and besides) the MAC: an id the bridge's `IdGen` would
    // never make (from another generator, or signed by anything else holding the key) is no
    // id, even under a valid signature.
    let w = World::new();
    let bridge = w.bridge();
    let (client, real) = alice(&bridge);
    let (cid, sid) = (id_of(&client).to_owned(), id_of(&real).to_owned());
    let misshapen = |id: &str| {
        vec![
            format!("{id}x"),
            id[..id.len() - 1].to_owned(),
            format!("/{}", &id[1..]),
            "../../etc/passwd".to_owned(),
        ]
    };
    // As the client cookie: a new client id is issued instead.
    for bad in misshapen(&cid) {
        let headers =
            common::headers_with_cookies(&[
                format!("{CLIENT}={}", sign(&KEY_A, CLIENT, &bad)).as_bytes()
            ]);
        let got = bridge.begin_request(&headers).client_id();
        assert_ne!(
            got.as_str(),
            bad,
            "a client id of the wrong shape was accepted"
        );
        assert_ne!(got.as_str(), cid);
    }
    // As the session cookie, naming a live unclaimed record tagged for Alice (her owner tag
    // copied from her real record): H2 b would attach it (ST2).
    let owner = block_on(w.store.get(&sid)).unwrap().unwrap().owner;
    let planted = || Record {
        owner: owner.clone(),
        ..Record::new(r#"{"planted":true}"#, u64::MAX, DAY.as_millis() as u64)
    };
    for bad in misshapen(&sid) {
        block_on(w.store.set(&bad, planted())).unwrap();
        let out = send(&bridge, &client, sign(&KEY_A, SESSION, &bad).as_bytes());
        assert_eq!(out.client_id, cid);
        assert!(out.data.is_empty(), "{bad}: {:?}", out.data);
    }
    // Control: a planted record under a well-shaped id, correctly signed, is attached, so the
    // rows above could fail.
    let good = "P".repeat(sid.len());
    block_on(w.store.set(&good, planted())).unwrap();
    let control = send(&bridge, &client, sign(&KEY_A, SESSION, &good).as_bytes());
    assert_eq!(Value::Object(control.data), json!({"planted": true}));
}
