//! Signed cookie values against an independent oracle (SPEC C1, C2, H1, H2, S1, L2).
//!
//! Each run builds a real bridge whose key ring holds 2 or 3 keys (newest first) and two
//! browsers `A` and `B` with stored sessions. The structured input picks a cookie name (the
//! session or the client cookie), an id (A's, B's, a well-formed fresh one, or arbitrary
//! cookie-octets), a signature (the right MAC under one key of the ring or a key outside it,
//! the MAC of the other cookie name or of another id, or arbitrary octets) and a few byte
//! mutations of the assembled value. The request carries that value under that name, next to
//! A's real value of the other cookie.
//!
//! The oracle, computed here with `hmac`/`sha2`/`base64` and not with the crate: the value is
//! accepted exactly when it is `<id>.<base64url-no-pad(HMAC-SHA256(key, "<name>=<id>"))>` for
//! a key of the ring and `<id>` is 32 characters of `[A-Za-z0-9_-]`. It is checked through what
//! the bridge does:
//!
//! - client cookie: the request's client id is the value's id iff accepted (else a fresh id
//!   that appears nowhere in the value), and the response re-sends it signed with the newest
//!   key (C2, H1); A's session (A's real session cookie is in the header) is seen over HTTP
//!   and by a socket iff accepted and the id is A's client id; a socket's client id is the
//!   value's id iff accepted, except B's (S1: B holds a session that A's session cookie does
//!   not prove, so such a socket is bound to nothing);
//! - session cookie: A's session is seen over HTTP and by a socket iff accepted and the id is
//!   A's session id (B's session never is); the response sets a session cookie only when the
//!   value verified with an older key, and then it is signed with the newest (C2).
//!
//! The handshake reads the same header after the HTTP request did, so a value that verified
//! there is answered by the bridge's verified-cookie memo the second time: the oracle holds
//! for the memo too.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use session_bridge::SessionBridge;

const SESSION: &str = "app.sid";
const CLIENT: &str = "app.sid.cid";
/// The ring is a prefix of these (newest first); the last one is never in it.
const KEYS: [[u8; 32]; 4] = [[0x11; 32], [0x22; 32], [0x33; 32], [0x44; 32]];
/// Bytes a cookie value may hold (RFC 6265 cookie-octet: no space, `"`, `,`, `;` or `\`).
const OCTETS: &[u8] = b"!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`\
abcdefghijklmnopqrstuvwxyz{|}~";
const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Session,
    Client,
}

#[derive(Arbitrary, Debug)]
enum IdPart {
    /// A's id for this cookie name (A's session id or A's client id).
    Own,
    /// B's id for this cookie name.
    Other,
    /// A well-formed id nobody holds.
    Fresh([u8; 32]),
    /// Any cookie-octets (a `.` included).
    Octets(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum SigPart {
    /// HMAC(KEYS[key % 4], "<name>=<id>"): in the ring or not, depending on the ring size.
    Mac { key: u8 },
    /// The MAC of the same id under the other cookie name (C1: the name is inside the MAC).
    OtherName { key: u8 },
    /// The MAC of another id (A's id for this name, or B's).
    OtherId { key: u8, b: bool },
    /// Any cookie-octets.
    Octets(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Mutation {
    Truncate(u8),
    Flip {
        at: u8,
        to: u8,
    },
    Append(u8),
    Insert {
        at: u8,
        byte: u8,
    },
    Remove(u8),
    SwapCase(u8),
    /// Repeats the value's last `.` (an empty signature, or a `.` inside the id).
    DoubleDot,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// 2 or 3 keys in the ring.
    three_keys: bool,
    name: Name,
    id: IdPart,
    sig: SigPart,
    mutations: Vec<Mutation>,
}

fn octets(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| char::from(OCTETS[usize::from(*b) % OCTETS.len()]))
        .collect()
}

fn name_str(name: Name) -> &'static str {
    match name {
        Name::Session => SESSION,
        Name::Client => CLIENT,
    }
}

/// base64url-no-pad(HMAC-SHA256(key, "<name>=<id>")), independently of the crate.
fn mac(key: &[u8; 32], name: &str, id: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    m.update(format!("{name}={id}").as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// The oracle: which key of the ring (index) the value verifies with, and its id.
fn oracle(ring: &[[u8; 32]], name: &str, value: &str) -> Option<(usize, String)> {
    // An id has no `.` and a signature is base64url: an accepted value has exactly one `.`.
    let (id, sig) = value.split_once('.')?;
    let id_ok = id.len() == 32 && id.bytes().all(|b| ID_CHARS.contains(&b));
    if !id_ok {
        return None;
    }
    ring.iter()
        .position(|key| mac(key, name, id) == sig)
        .map(|i| (i, id.to_owned()))
}

struct Owner {
    cid: String,
    sid: String,
    client_value: String,
    session_value: String,
    data: Map<String, Value>,
}

impl Owner {
    fn id(&self, name: Name) -> &str {
        match name {
            Name::Session => &self.sid,
            Name::Client => &self.cid,
        }
    }

    fn value(&self, name: Name) -> &str {
        match name {
            Name::Session => &self.session_value,
            Name::Client => &self.client_value,
        }
    }
}

/// The `name=value` pairs of a response's `Set-Cookie` lines.
fn set_cookie_pairs(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

async fn new_owner(bridge: &SessionBridge, who: &str) -> Owner {
    let data = json!({ "owner": who }).as_object().cloned().unwrap();
    let ctx = bridge.begin_request(&http::HeaderMap::new());
    ctx.session()
        .replace(data.clone())
        .await
        .expect("a new session");
    let cid = ctx.client_id().into_string();
    let sid = ctx
        .session()
        .session_id()
        .await
        .expect("no store call")
        .expect("H6: a written session has its id")
        .into_string();
    let mut out = http::HeaderMap::new();
    ctx.commit(&mut out).await.expect("commit of a new session");
    let pairs = set_cookie_pairs(&out);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect("the first response sets both cookies")
    };
    Owner {
        cid,
        sid,
        client_value: get(CLIENT),
        session_value: get(SESSION),
        data,
    }
}

fn mutate(value: &mut Vec<u8>, m: &Mutation) {
    let at = |i: u8, len: usize| usize::from(i) % len.max(1);
    match *m {
        Mutation::Truncate(n) => value.truncate(at(n, value.len())),
        Mutation::Flip { at: i, to } if !value.is_empty() => {
            let i = at(i, value.len());
            value[i] = OCTETS[usize::from(to) % OCTETS.len()];
        }
        Mutation::Append(b) => value.push(OCTETS[usize::from(b) % OCTETS.len()]),
        Mutation::Insert { at: i, byte } => {
            let i = usize::from(i) % (value.len() + 1);
            value.insert(i, OCTETS[usize::from(byte) % OCTETS.len()]);
        }
        Mutation::Remove(i) if !value.is_empty() => {
            value.remove(at(i, value.len()));
        }
        Mutation::SwapCase(i) if !value.is_empty() => {
            let i = at(i, value.len());
            value[i] = if value[i].is_ascii_lowercase() {
                value[i].to_ascii_uppercase()
            } else {
                value[i].to_ascii_lowercase()
            };
        }
        Mutation::DoubleDot => {
            if let Some(dot) = value.iter().rposition(|&b| b == b'.') {
                value.insert(dot, b'.');
            }
        }
        _ => {}
    }
}

fuzz_target!(|input: Input| {
    if input.mutations.len() > 8 {
        return;
    }
    let ring: Vec<[u8; 32]> = KEYS[..if input.three_keys { 3 } else { 2 }].to_vec();
    let bridge = SessionBridge::builder()
        .key(SESSION)
        .keys(ring.clone())
        .build()
        .expect("valid options");
    futures::executor::block_on(async {
        let a = new_owner(&bridge, "A").await;
        let b = new_owner(&bridge, "B").await;
        let name = name_str(input.name);
        let other_name = name_str(match input.name {
            Name::Session => Name::Client,
            Name::Client => Name::Session,
        });

        let id = match &input.id {
            IdPart::Own => a.id(input.name).to_owned(),
            IdPart::Other => b.id(input.name).to_owned(),
            IdPart::Fresh(bytes) => bytes
                .iter()
                .map(|b| char::from(ID_CHARS[usize::from(*b) % ID_CHARS.len()]))
                .collect(),
            IdPart::Octets(bytes) => octets(bytes),
        };
        let key = |k: u8| &KEYS[usize::from(k) % KEYS.len()];
        let sig = match &input.sig {
            SigPart::Mac { key: k } => mac(key(*k), name, &id),
            SigPart::OtherName { key: k } => mac(key(*k), other_name, &id),
            SigPart::OtherId { key: k, b: use_b } => {
                let other = if *use_b { &b } else { &a };
                mac(key(*k), name, other.id(input.name))
            }
            SigPart::Octets(bytes) => octets(bytes),
        };
        let mut value = format!("{id}.{sig}").into_bytes();
        for m in &input.mutations {
            mutate(&mut value, m);
        }
        let value = String::from_utf8(value).expect("cookie-octets are ASCII");
        let verdict = oracle(&ring, name, &value);

        // The fuzzed value under `name`, A's real value of the other cookie next to it.
        let line = format!(
            "{name}={value}; {other_name}={}",
            a.value(match input.name {
                Name::Session => Name::Client,
                Name::Client => Name::Session,
            })
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            http::HeaderValue::from_str(&line).expect("cookie-octets make a valid header"),
        );

        // Over HTTP.
        let ctx = bridge.begin_request(&headers);
        let cid = ctx.client_id().into_string();
        let seen = ctx
            .session()
            .data()
            .await
            .expect("X1: reading the session never fails on cookie input");
        let mut out = http::HeaderMap::new();
        ctx.commit(&mut out)
            .await
            .expect("X1: a read-only commit succeeds");
        let set = set_cookie_pairs(&out);
        let set_value = |n: &str| set.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());

        // Whose session the header may open: A's, when the fuzzed value is accepted and
        // names A's id for that cookie.
        let opens_a = verdict
            .as_ref()
            .is_some_and(|(_, vid)| vid == a.id(input.name));
        assert_ne!(seen, b.data, "H2 c: B's session seen with A's cookie");
        if opens_a {
            assert_eq!(
                seen, a.data,
                "C2: A's exact value verifies, yet A's session is not seen"
            );
        } else {
            assert!(
                seen.is_empty(),
                "C1/C2: a session seen though the oracle rejects the value {value:?} \
                 (verdict {verdict:?})"
            );
        }

        match input.name {
            Name::Client => {
                match &verdict {
                    Some((_, vid)) => assert_eq!(
                        &cid, vid,
                        "H1: a client cookie the oracle accepts was not used"
                    ),
                    None => assert!(
                        !value.contains(cid.as_str()),
                        "H1: a client id taken from a value the oracle rejects: {value:?}"
                    ),
                }
                // always-roll: the client cookie is re-sent, signed with the newest key (C2).
                assert_eq!(
                    set_value(CLIENT),
                    Some(format!("{cid}.{}", mac(&ring[0], CLIENT, &cid)).as_str()),
                    "C2/H1: the client cookie is re-sent signed with the newest key"
                );
                assert_eq!(
                    set_value(SESSION),
                    None,
                    "H3: a read sets no session cookie"
                );
            }
            Name::Session => {
                assert_eq!(cid, a.cid, "H1: A's real client cookie is used");
                let stale = opens_a && verdict.as_ref().is_some_and(|(i, _)| *i > 0);
                if stale {
                    let want = format!("{}.{}", a.sid, mac(&ring[0], SESSION, &a.sid));
                    assert_eq!(
                        set_value(SESSION),
                        Some(want.as_str()),
                        "C2: an old-key session cookie is re-sent signed with the newest"
                    );
                } else {
                    assert_eq!(
                        set_value(SESSION),
                        None,
                        "H3: a read sets no session cookie (only an old-key one is re-signed)"
                    );
                }
            }
        }

        // At a socket handshake (S1): the same verdict.
        let socket = bridge
            .bind_socket(&headers)
            .await
            .expect("S1: a handshake without Origin binds");
        if input.name == Name::Client {
            // S1: a socket bound by its client cookie alone keeps no client id when that
            // client holds a live session the handshake did not prove: B's (the header
            // carries A's session cookie, which B does not hold).
            let expected = verdict
                .as_ref()
                .map(|(_, vid)| vid.clone())
                .filter(|vid| *vid != b.cid);
            assert_eq!(
                socket.client_id().map(|c| c.into_string()),
                expected,
                "S1: the socket's client id is the value's id iff the oracle accepts it \
                 (and it does not name B, whose session the handshake did not prove)"
            );
        }
        let seen = socket
            .with_session_or_else(async |ctx| ctx.data().clone(), Map::new)
            .await
            .expect("with_session never fails on cookie input");
        if opens_a {
            assert_eq!(
                seen, a.data,
                "S1: A's exact pair, yet the socket sees nothing"
            );
        } else {
            assert!(
                seen.is_empty(),
                "S1: a socket sees a session the oracle denies"
            );
        }
    });
});
