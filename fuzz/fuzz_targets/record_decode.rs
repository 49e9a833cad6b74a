//! Real `Record::encode()` output, mutated (SPEC ST2, X2): `decode` succeeds exactly when the
//! fields are valid, and gives back exactly those fields; never a panic.
//!
//! The input is `<base>\n<program>`. `<base>` is text for a record: when it decodes, that
//! record (the seed corpus holds real `encode()` output); otherwise a record is made from its
//! bytes. Either way the record `r` must round-trip: `decode(encode(r)) == r`, and `encode(r)`
//! must be the documented layout. `<program>` then edits `encode(r)` one op at a time (see
//! [`apply`]), keeping a model of the fields (each value known valid, with its meaning, or
//! known invalid); after every op, `decode` must return the record of the model when every
//! field is valid, an error otherwise. Byte-level ops (truncate, append, flip) have a known
//! outcome too (a proper prefix of an object never parses; trailing whitespace is ignored,
//! anything else trailing is not), except a flip, which is judged by a plain `serde_json`
//! reading of the documented format. Whatever decodes re-encodes to text that decodes equal.
//! `Record::newer_format` names exactly the objects whose `format` is above this version's
//! (GW1: those are left in place, not dropped as corrupt).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use session_bridge::Record;

const KEYS: [&str; 7] = [
    "createdAt",
    "expiresAt",
    "format",
    "owner",
    "session",
    "ttl",
    "version",
];

/// One field's value as JSON text, and what it means.
#[derive(Clone, Debug)]
enum Field {
    U64(u64),
    Str(String),
    /// `null` (valid only as `owner`).
    Null,
    /// JSON text that no field accepts (negative, float, too big, wrong type).
    Bad(&'static str),
}

impl Field {
    fn text(&self) -> String {
        match self {
            Field::U64(n) => n.to_string(),
            Field::Str(s) => Value::from(s.as_str()).to_string(),
            Field::Null => "null".to_owned(),
            Field::Bad(t) => (*t).to_owned(),
        }
    }
}

/// Values no field takes: each is valid JSON, none an unsigned 64-bit integer nor a string.
const BAD: [&str; 9] = [
    "-1",
    "1.0",
    "1e3",
    "18446744073709551616",
    "null",
    "true",
    "[]",
    "{}",
    "-0.5",
];

/// The fields in order, a key possibly repeated (always with the same value) or missing.
#[derive(Clone, Debug)]
struct Model {
    fields: Vec<(&'static str, Field)>,
}

impl Model {
    fn of(r: &Record) -> Self {
        Model {
            fields: vec![
                ("createdAt", Field::U64(r.created_at)),
                ("expiresAt", Field::U64(r.expires_at)),
                ("format", Field::U64(Record::FORMAT)),
                ("owner", r.owner.clone().map_or(Field::Null, Field::Str)),
                ("session", Field::Str(r.session.clone())),
                ("ttl", Field::U64(r.ttl)),
                ("version", Field::U64(r.version)),
            ],
        }
    }

    fn text(&self) -> String {
        self.text_spaced("")
    }

    /// The text with `ws` around every token.
    fn text_spaced(&self, ws: &str) -> String {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}{}{ws}", v.text()))
            .collect();
        format!("{ws}{{{}}}{ws}", body.join(","))
    }

    fn get(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The record these fields describe, or `None` when one is missing or invalid.
    fn expected(&self) -> Option<Record> {
        let u64_of = |key| match self.get(key)? {
            Field::U64(n) => Some(*n),
            _ => None,
        };
        let format = u64_of("format")?;
        let Field::Str(session) = self.get("session")? else {
            return None;
        };
        let mut r = Record::new(session.clone(), u64_of("expiresAt")?, u64_of("ttl")?);
        r.version = u64_of("version")?;
        match format {
            // Format 1 is migrated: created at its last write, no owner; the format 2
            // fields, if any, are not read.
            1 => {}
            2 => {
                r.created_at = u64_of("createdAt")?;
                r.owner = match self.get("owner")? {
                    Field::Null | Field::Bad("null") => None,
                    Field::Str(tag) if !tag.is_empty() => Some(tag.clone()),
                    _ => return None,
                };
            }
            _ => return None,
        }
        Some(r)
    }

    /// Sets every occurrence of `key`.
    fn set(&mut self, key: &str, value: Field) {
        for (k, v) in &mut self.fields {
            if *k == key {
                *v = value.clone();
            }
        }
    }
}

/// A reading of the documented format with nothing but `serde_json`: an object whose
/// `format` is 1 or 2, `session` a string, `expiresAt`, `ttl` and `version` unsigned integers;
/// format 2 also has `createdAt` (unsigned) and `owner` (null or a non-empty string).
fn plain_reading(text: &str) -> Option<Record> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    let format = map.get("format")?.as_u64()?;
    let mut r = Record::new(
        map.get("session")?.as_str()?,
        map.get("expiresAt")?.as_u64()?,
        map.get("ttl")?.as_u64()?,
    );
    r.version = map.get("version")?.as_u64()?;
    match format {
        1 => {}
        2 => {
            r.created_at = map.get("createdAt")?.as_u64()?;
            r.owner = match map.get("owner")? {
                Value::Null => None,
                Value::String(tag) if !tag.is_empty() => Some(tag.clone()),
                _ => return None,
            };
        }
        _ => return None,
    }
    Some(r)
}

/// `decode(text)` is exactly `expected`; what decodes re-encodes to text that decodes equal.
fn check(text: &str, expected: Option<&Record>, what: &str) {
    let decoded = Record::decode(text).ok();
    assert_eq!(decoded.as_ref(), expected, "{what}: decode({text:?})");
    // GW1: a record of a newer format is told from a corrupt one (it is left in place), by
    // the plain reading: an object whose `format` is an unsigned integer above ours.
    let newer = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("format")?.as_u64())
        .filter(|&f| f > Record::FORMAT);
    assert_eq!(Record::newer_format(text), newer, "{what}: newer_format({text:?})");
    if newer.is_some() {
        assert!(decoded.is_none(), "{what}: a newer format decoded");
    }
    if let Some(r) = decoded {
        round_trip(&r);
    }
}

fn round_trip(r: &Record) {
    let text = r.encode();
    assert_eq!(
        text,
        Model::of(r).text(),
        "encode() is the documented layout"
    );
    let again = Record::decode(&text).expect("encode() output decodes");
    assert_eq!(&again, r, "decode(encode(r)) == r");
    assert_eq!(again.encode(), text, "encode is a function of the fields");
}

/// A record from arbitrary base bytes (when they are not a record themselves).
fn record_from(base: &[u8]) -> Record {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        for (j, b) in base.iter().skip(i * 8).take(8).enumerate() {
            w[j] = *b;
        }
        u64::from_le_bytes(w)
    };
    let mut r = Record::new(String::from_utf8_lossy(base), word(0), word(1));
    r.version = word(2);
    r.created_at = word(3);
    r.owner = (word(4) % 2 == 1).then(|| format!("tag{:x}", word(4)));
    r
}

fuzz_target!(|input: &[u8]| {
    let (base, prog) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    if prog.len() > 96 {
        return;
    }
    let r = match std::str::from_utf8(base) {
        Ok(text) => {
            // Whatever the base text is, decode agrees with the plain reading of the format.
            let plain = plain_reading(text);
            check(text, plain.as_ref(), "base text");
            plain.unwrap_or_else(|| record_from(base))
        }
        Err(_) => record_from(base),
    };
    round_trip(&r);

    let mut model = Model::of(&r);
    let mut bytes = prog.iter().copied();
    let mut next = move || bytes.next();
    while let Some(op) = next() {
        let mut arg = || next().unwrap_or(0);
        let key = |b: u8| KEYS[usize::from(b) % KEYS.len()];
        match op % 10 {
            // A field set to a valid value of its kind.
            0 => {
                let k = key(arg());
                let v = match k {
                    "session" => {
                        Field::Str(String::from_utf8_lossy(&[arg(), arg(), arg()]).into_owned())
                    }
                    "format" => Field::U64(u64::from(arg() % 3)),
                    "owner" => match arg() % 3 {
                        0 => Field::Null,
                        n => Field::Str("t".repeat(usize::from(n))),
                    },
                    _ => Field::U64(u64::from_le_bytes([
                        arg(),
                        arg(),
                        arg(),
                        arg(),
                        arg(),
                        arg(),
                        arg(),
                        arg(),
                    ])),
                };
                model.set(k, v);
            }
            // A field set to a value no field accepts.
            1 => {
                let k = key(arg());
                model.set(k, Field::Bad(BAD[usize::from(arg()) % BAD.len()]));
            }
            // A number quoted, or a string unquoted (as bare JSON text when that parses).
            2 => {
                let k = key(arg());
                let v = match model.get(k) {
                    Some(Field::U64(n)) => Field::Str(n.to_string()),
                    Some(Field::Str(s)) if s.parse::<u64>().is_ok() => {
                        Field::U64(s.parse().unwrap_or(0))
                    }
                    Some(Field::Str(_)) => Field::Bad("[]"),
                    _ => continue,
                };
                model.set(k, v);
            }
            // A field removed (every occurrence).
            3 => {
                let k = key(arg());
                model.fields.retain(|(key, _)| *key != k);
            }
            // A field repeated, same value.
            4 => {
                let i = usize::from(arg());
                if !model.fields.is_empty() && model.fields.len() < 12 {
                    let f = model.fields[i % model.fields.len()].clone();
                    let at = usize::from(arg()) % (model.fields.len() + 1);
                    model.fields.insert(at, f);
                }
            }
            // Fields reordered: readers must not depend on the order.
            5 => {
                if !model.fields.is_empty() {
                    let n = model.fields.len();
                    model
                        .fields
                        .swap(usize::from(arg()) % n, usize::from(arg()) % n);
                }
            }
            // Byte-level edits of the current text, each with a known outcome.
            6 => {
                let text = model.text();
                let mut at = usize::from(arg()) % text.len();
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                check(&text[..at], None, "a proper prefix");
                continue;
            }
            7 => {
                let text = model.text();
                let b = arg() & 0x7f;
                let appended = format!("{text}{}", char::from(b));
                let expected = if b" \t\n\r".contains(&b) {
                    model.expected()
                } else {
                    None
                };
                check(&appended, expected.as_ref(), "one byte appended");
                continue;
            }
            8 => {
                let mut text = model.text().into_bytes();
                let at = usize::from(arg()) % text.len();
                text[at] ^= arg().max(1);
                if let Ok(text) = std::str::from_utf8(&text) {
                    check(text, plain_reading(text).as_ref(), "a byte flipped");
                }
                continue;
            }
            // Whitespace between the tokens.
            _ => {
                let ws = [" ", "\n", "\t", "\r\n "][usize::from(arg()) % 4];
                let spaced = model.text_spaced(ws);
                check(
                    &spaced,
                    model.expected().as_ref(),
                    "whitespace between tokens",
                );
                continue;
            }
        }
        check(&model.text(), model.expected().as_ref(), "edited fields");
    }
});
