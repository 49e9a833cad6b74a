//! The real cookies of a real session, mutated (SPEC X1, C1, C4, C6, H2, S1).
//!
//! Each run builds a bridge and two browsers through the public API: the owner `A` and another
//! browser `B`, each with a stored session made by `begin_request`, `insert` and `commit`,
//! following `Set-Cookie` like `tests/common`'s `Browser`. The fuzz input is a small program
//! (see [`Op`]) that edits A's real `Cookie` header: truncate a pair, append or flip a byte, swap
//! the two cookie names, quote a value, duplicate a pair, add one of B's real pairs or a junk
//! pair, drop or move a pair, change separators, split the header into several lines. A's real
//! client pair always stays in the header, untouched. Then, over HTTP and at a socket handshake:
//!
//! - safety: what the request (the socket) sees is A's session, B's session or nothing; A's only
//!   when the header carries A's exact session pair (`app.sid=<value>`, or the value in one
//!   pair of quotes: RFC 6265), B's only when it carries both of B's exact pairs; the commit
//!   succeeds and never sets a session cookie (the session was only read);
//! - liveness: when the header carries A's exact session pair and no B pair, A's session is
//!   seen, over HTTP and by the socket, whatever junk surrounds it (C6: only values of the
//!   right shape count towards the 8 candidates verified per name);
//! - two planted pairs (C4): when the header carries both of A's and both of B's exact pairs,
//!   neither session is seen, over HTTP or by the socket;
//! - A's own request still sees A's session afterwards (nothing moved or destroyed it).
//!
//! Liveness is claimed only for headers whose bytes are all visible ASCII (a value with other
//! bytes is skipped, and a header with them may not reach the bridge whole), and no B pair is
//! present. Safety is claimed for every header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use session_bridge::{SessionBridge, id::SequentialIdGen};

const SESSION: &str = "app.sid";
const CLIENT: &str = "app.sid.cid";
/// Bounds the work of one run (pairs per header), well under the per-name verification cap.
const MAX_PIECES: usize = 12;

/// One browser's real cookies and the session data stored for it.
struct Owner {
    client: Vec<u8>,
    session: Vec<u8>,
    client_value: String,
    session_value: String,
    data: Map<String, Value>,
}

/// The `name=value` pairs of the response's `Set-Cookie` lines (attributes dropped).
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

fn cookie_headers(lines: &[Vec<u8>]) -> Option<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let value = http::HeaderValue::from_bytes(line).ok()?;
        headers.append(http::header::COOKIE, value);
    }
    Some(headers)
}

/// A browser's first visit: a session with `data`, its cookies taken from `Set-Cookie`.
async fn new_owner(bridge: &SessionBridge, data: Map<String, Value>) -> Owner {
    let ctx = bridge.begin_request(&http::HeaderMap::new());
    for (k, v) in &data {
        ctx.session()
            .insert_value(k, v.clone())
            .await
            .expect("insert into a new session");
    }
    let mut out = http::HeaderMap::new();
    ctx.commit(&mut out).await.expect("commit of a new session");
    let pairs = set_cookie_pairs(&out);
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the first response sets no {name} cookie: {pairs:?}"))
    };
    let (client_value, session_value) = (value(CLIENT), value(SESSION));
    Owner {
        client: format!("{CLIENT}={client_value}").into_bytes(),
        session: format!("{SESSION}={session_value}").into_bytes(),
        client_value,
        session_value,
        data,
    }
}

/// What a request with these `Cookie` lines sees: its session data, and the session cookies
/// its response sets.
async fn http_view(bridge: &SessionBridge, headers: &http::HeaderMap) -> Map<String, Value> {
    let ctx = bridge.begin_request(headers);
    let data = ctx
        .session()
        .data()
        .await
        .expect("X1: reading the session never fails on cookie input");
    let mut out = http::HeaderMap::new();
    ctx.commit(&mut out)
        .await
        .expect("X1: the commit of a read-only request succeeds");
    let pairs = set_cookie_pairs(&out);
    assert!(
        pairs.iter().all(|(k, _)| k != SESSION),
        "H3: a request that only read the session set a session cookie"
    );
    data
}

/// What a socket whose handshake carries these `Cookie` lines sees (S1).
async fn socket_view(bridge: &SessionBridge, headers: &http::HeaderMap) -> Map<String, Value> {
    let socket = bridge
        .bind_socket(headers)
        .await
        .expect("S1: a handshake without Origin binds");
    socket
        .with_session_or_else(async |ctx| ctx.data().clone(), Map::new)
        .await
        .expect("with_session never fails on cookie input")
}

/// The fuzz input as a program: one op byte, then its argument bytes (0 when missing).
#[derive(Debug)]
enum Op {
    Truncate { piece: u8, at: u8 },
    Append { piece: u8, byte: u8 },
    Flip { piece: u8, at: u8, xor: u8 },
    SwapName { piece: u8 },
    Quote { piece: u8 },
    Duplicate { piece: u8 },
    Remove { piece: u8 },
    Move { piece: u8, to: u8 },
    AddOther { which: u8 },
    AddJunk { len: u8, seed: u8 },
    SpaceAroundEquals { piece: u8 },
    Separator { style: u8 },
    LineBreak { before: u8 },
}

fn program(data: &[u8]) -> Vec<Op> {
    let mut bytes = data.iter().copied();
    let mut next = move || bytes.next();
    let mut ops = Vec::new();
    while let Some(op) = next() {
        let mut arg = || next().unwrap_or(0);
        ops.push(match op % 13 {
            0 => Op::Truncate {
                piece: arg(),
                at: arg(),
            },
            1 => Op::Append {
                piece: arg(),
                byte: arg(),
            },
            2 => Op::Flip {
                piece: arg(),
                at: arg(),
                xor: arg(),
            },
            3 => Op::SwapName { piece: arg() },
            4 => Op::Quote { piece: arg() },
            5 => Op::Duplicate { piece: arg() },
            6 => Op::Remove { piece: arg() },
            7 => Op::Move {
                piece: arg(),
                to: arg(),
            },
            8 => Op::AddOther { which: arg() },
            9 => Op::AddJunk {
                len: arg(),
                seed: arg(),
            },
            10 => Op::SpaceAroundEquals { piece: arg() },
            11 => Op::Separator { style: arg() },
            _ => Op::LineBreak { before: arg() },
        });
    }
    ops
}

/// A's header under edit. A's real client pair is protected: the last exact copy of it is
/// never changed or removed (an op on it works on a copy, pushed at the end, or does nothing).
struct Header {
    pieces: Vec<Vec<u8>>,
    client: Vec<u8>,
    separator: &'static [u8],
    breaks: Vec<usize>,
}

impl Header {
    fn index(&self, piece: u8) -> usize {
        usize::from(piece) % self.pieces.len()
    }

    fn is_protected(&self, i: usize) -> bool {
        self.pieces[i] == self.client
            && self.pieces.iter().filter(|p| **p == self.client).count() == 1
    }

    /// Replaces `piece` by `f(copy)`, or pushes `f(copy)` when it is protected.
    fn edit(&mut self, piece: u8, f: impl FnOnce(&mut Vec<u8>)) {
        let i = self.index(piece);
        let mut copy = self.pieces[i].clone();
        f(&mut copy);
        if self.is_protected(i) {
            self.push(copy);
        } else {
            self.pieces[i] = copy;
        }
    }

    fn push(&mut self, piece: Vec<u8>) {
        if self.pieces.len() < MAX_PIECES {
            self.pieces.push(piece);
        }
    }

    fn apply(&mut self, op: &Op, other: &Owner) {
        match *op {
            Op::Truncate { piece, at } => self.edit(piece, |p| {
                let at = usize::from(at) % p.len().max(1);
                p.truncate(at);
            }),
            Op::Append { piece, byte } => self.edit(piece, |p| p.push(byte)),
            Op::Flip { piece, at, xor } => self.edit(piece, |p| {
                if !p.is_empty() {
                    let at = usize::from(at) % p.len();
                    p[at] ^= xor.max(1);
                }
            }),
            Op::SwapName { piece } => self.edit(piece, |p| {
                let swapped = if let Some(v) = p.strip_prefix(format!("{CLIENT}=").as_bytes()) {
                    [format!("{SESSION}=").as_bytes(), v].concat()
                } else if let Some(v) = p.strip_prefix(format!("{SESSION}=").as_bytes()) {
                    [format!("{CLIENT}=").as_bytes(), v].concat()
                } else {
                    return;
                };
                *p = swapped;
            }),
            Op::Quote { piece } => self.edit(piece, |p| {
                if let Some(eq) = p.iter().position(|&b| b == b'=') {
                    p.insert(eq + 1, b'"');
                    p.push(b'"');
                }
            }),
            Op::Duplicate { piece } => {
                let copy = self.pieces[self.index(piece)].clone();
                self.push(copy);
            }
            Op::Remove { piece } => {
                let i = self.index(piece);
                if !self.is_protected(i) {
                    self.pieces.remove(i);
                }
            }
            Op::Move { piece, to } => {
                let p = self.pieces.remove(self.index(piece));
                let to = usize::from(to) % (self.pieces.len() + 1);
                self.pieces.insert(to, p);
            }
            Op::AddOther { which } => {
                let pair = if which % 2 == 0 {
                    other.client.clone()
                } else {
                    other.session.clone()
                };
                self.push(pair);
            }
            Op::AddJunk { len, seed } => {
                let names: [&[u8]; 4] = [SESSION.as_bytes(), CLIENT.as_bytes(), b"other", b""];
                let mut junk = names[usize::from(seed) % names.len()].to_vec();
                if seed % 5 != 0 {
                    junk.push(b'=');
                }
                let mut x = seed;
                for _ in 0..(len % 48) {
                    x = x.wrapping_mul(31).wrapping_add(7);
                    junk.push(x);
                }
                self.push(junk);
            }
            Op::SpaceAroundEquals { piece } => self.edit(piece, |p| {
                if let Some(eq) = p.iter().position(|&b| b == b'=') {
                    p.splice(eq..=eq, *b" = ");
                }
            }),
            Op::Separator { style } => {
                self.separator = match style % 4 {
                    0 => b"; ",
                    1 => b";",
                    2 => b" ; ",
                    _ => b";\t",
                };
            }
            Op::LineBreak { before } => {
                let at = self.index(before);
                if at != 0 && !self.breaks.contains(&at) && self.breaks.len() < MAX_PIECES {
                    self.breaks.push(at);
                }
            }
        }
    }

    /// The `Cookie` header lines.
    fn lines(&self) -> Vec<Vec<u8>> {
        let mut lines = vec![Vec::new()];
        for (i, piece) in self.pieces.iter().enumerate() {
            let line = lines.last_mut().expect("one line at least");
            if i > 0 && self.breaks.contains(&i) && !line.is_empty() {
                lines.push(Vec::new());
            } else if i > 0 {
                line.extend_from_slice(self.separator);
            }
            lines.last_mut().expect("one line").extend_from_slice(piece);
        }
        lines
    }
}

/// The `(name, value)` pairs a reader of RFC 6265 finds in `lines`: split at `;`, the name
/// and the value trimmed of spaces and tabs, one pair of quotes around the value removed.
fn pairs(lines: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let trim = |s: &[u8]| -> Vec<u8> {
        let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
        let start = s.iter().position(|b| !is_ws(b)).unwrap_or(s.len());
        let end = s.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
        s[start..end].to_vec()
    };
    let mut out = Vec::new();
    for line in lines {
        for piece in line.split(|&b| b == b';') {
            let Some(eq) = piece.iter().position(|&b| b == b'=') else {
                continue;
            };
            let name = trim(&piece[..eq]);
            let mut value = trim(&piece[eq + 1..]);
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = value[1..value.len() - 1].to_vec();
            }
            out.push((name, value));
        }
    }
    out
}

fn carries(pairs: &[(Vec<u8>, Vec<u8>)], name: &str, value: &str) -> bool {
    pairs
        .iter()
        .any(|(k, v)| k == name.as_bytes() && v == value.as_bytes())
}

/// C6's cheap shape of one of our signed values: a 32-character id and a 43-character
/// signature, both URL-safe base64, joined by one `.`.
fn shaped(v: &[u8]) -> bool {
    let url_safe = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_';
    v.len() == 76 && v[32] == b'.' && v[..32].iter().all(url_safe) && v[33..].iter().all(url_safe)
}

/// Whether `value` is among the first 8 values of the right shape of cookie `name` (C6: the
/// bridge verifies at most that many candidates per name, counting only shaped ones; the
/// pairs it skips as malformed only move it earlier).
fn carries_within_cap(pairs: &[(Vec<u8>, Vec<u8>)], name: &str, value: &str) -> bool {
    pairs
        .iter()
        .filter(|(k, v)| k == name.as_bytes() && shaped(v))
        .take(8)
        .any(|(_, v)| v == value.as_bytes())
}

fuzz_target!(|input: &[u8]| {
    let ops = program(input);
    if ops.len() > 64 {
        return;
    }
    let bridge = SessionBridge::builder()
        .key(SESSION)
        .keys([[7u8; 32]])
        .ids(SequentialIdGen::new("f"))
        .build()
        .expect("valid options");
    futures::executor::block_on(async {
        let a = new_owner(
            &bridge,
            json!({ "owner": "A", "n": 1 })
                .as_object()
                .cloned()
                .unwrap(),
        )
        .await;
        let b = new_owner(
            &bridge,
            json!({ "owner": "B" }).as_object().cloned().unwrap(),
        )
        .await;
        let real = cookie_headers(&[[a.client.as_slice(), b"; ", a.session.as_slice()].concat()])
            .expect("the real cookies make a valid header");
        assert_eq!(
            http_view(&bridge, &real).await,
            a.data,
            "A's real cookies see A's session"
        );

        let mut header = Header {
            pieces: vec![a.client.clone(), a.session.clone()],
            client: a.client.clone(),
            separator: b"; ",
            breaks: Vec::new(),
        };
        for op in &ops {
            header.apply(op, &b);
        }
        let lines = header.lines();
        // A request can only carry valid header bytes: no control bytes but tab, no DEL.
        let Some(headers) = cookie_headers(&lines) else {
            return;
        };
        let found = pairs(&lines);
        assert!(
            carries(&found, CLIENT, &a.client_value),
            "A's client pair stays in the header"
        );
        let carries_a = carries(&found, SESSION, &a.session_value);
        let carries_b_session = carries(&found, SESSION, &b.session_value);
        let carries_b_client = carries(&found, CLIENT, &b.client_value);
        let visible_ascii = lines
            .iter()
            .flatten()
            .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b));
        let expect_a = carries_within_cap(&found, SESSION, &a.session_value)
            && carries_within_cap(&found, CLIENT, &a.client_value)
            && !carries_b_session
            && !carries_b_client
            && visible_ascii;
        let two_pairs = carries_within_cap(&found, SESSION, &a.session_value)
            && carries_within_cap(&found, CLIENT, &a.client_value)
            && carries_within_cap(&found, SESSION, &b.session_value)
            && carries_within_cap(&found, CLIENT, &b.client_value)
            && visible_ascii;

        for (channel, seen) in [
            ("HTTP", http_view(&bridge, &headers).await),
            ("socket", socket_view(&bridge, &headers).await),
        ] {
            if seen == a.data {
                assert!(
                    carries_a,
                    "{channel}: A's session without A's exact session pair"
                );
            } else if seen == b.data {
                assert!(
                    carries_b_session && carries_b_client,
                    "{channel}: B's session without both of B's exact pairs (H2 c)"
                );
            } else {
                assert!(seen.is_empty(), "{channel}: a session nobody has: {seen:?}");
            }
            if expect_a {
                assert_eq!(
                    seen, a.data,
                    "{channel}: A's exact pairs, yet not A's session"
                );
            }
            if two_pairs {
                assert!(
                    seen.is_empty(),
                    "{channel}: C4: two complete pairs, yet a session was trusted"
                );
            }
        }
        assert_eq!(
            http_view(&bridge, &real).await,
            a.data,
            "A's own cookies still see A's session after the mutated request"
        );
    });
});
