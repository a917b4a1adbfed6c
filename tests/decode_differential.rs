//! The direct CBOR → `T` decoder against the old path (CBOR → JSON → `serde_json::from_value`)
//! on the same bytes: generated rows shaped like SurrealDB's (record ids, datetimes, NONE, …),
//! values of every kind and tag, and the same frames with bytes changed, cut or swapped for
//! indefinite lengths. `surreal_pool::fuzzing::decoders_agree` panics when the two disagree;
//! the fuzz target of the same name runs it on arbitrary bytes.

use ciborium::Value as Cbor;
use surreal_pool::fuzzing::decoders_agree;

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.into())
}

fn int(n: i128) -> Cbor {
    Cbor::Integer(n.try_into().unwrap())
}

fn tag(t: u64, v: Cbor) -> Cbor {
    Cbor::Tag(t, Box::new(v))
}

fn texts(rng: &mut Rng) -> Cbor {
    let s = *rng.pick(&["", "tobie", "a:b c", "12", "-3", "0", "01", "1e3", "1.5", "-0", "true", "false", "⟨odd⟩", "Plain", "Tagged", "x\u{0}y", "99999999999999999999"]);
    text(s)
}

fn ints(rng: &mut Rng) -> Cbor {
    let n: i128 = *rng.pick(&[0, 1, -1, 23, 24, 255, 256, -129, i64::MAX as i128, i64::MIN as i128, u64::MAX as i128, -(u64::MAX as i128) - 1, 300, 7]);
    int(n)
}

/// Any value: every major type, SurrealDB's tags and some it does not use.
fn any(rng: &mut Rng, depth: u32) -> Cbor {
    let leaf = depth == 0 || rng.chance(40);
    match rng.below(if leaf { 6 } else { 9 }) {
        0 => ints(rng),
        1 => Cbor::Float(*rng.pick(&[0.5, -0.0, 1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3.0, f64::from(f32::MAX) * 2.0])),
        2 => texts(rng),
        3 => Cbor::Bytes((0..rng.below(4)).map(|i| i as u8 * 97).collect()),
        4 => rng.pick(&[Cbor::Null, Cbor::Bool(true), Cbor::Bool(false)]).clone(),
        5 => tag(6, Cbor::Null),
        6 => Cbor::Array((0..rng.below(4)).map(|_| any(rng, depth - 1)).collect()),
        7 => Cbor::Map(
            (0..rng.below(4))
                .map(|_| {
                    let key = if rng.chance(80) { texts(rng) } else { any(rng, 0) };
                    (key, any(rng, depth - 1))
                })
                .collect(),
        ),
        _ => {
            let t = *rng.pick(&[0, 2, 3, 6, 7, 8, 9, 10, 12, 13, 14, 37, 49, 50, 51, 55, 56, 88, 89, 90, 91, 92, 93, 94, 99, 1000]);
            let inner = match t {
                8 => Cbor::Array(vec![text("person"), any(rng, depth - 1)]),
                12 | 14 => Cbor::Array(vec![ints(rng), ints(rng)]),
                37 => Cbor::Bytes(vec![7; if rng.chance(80) { 16 } else { 3 }]),
                2 | 3 => Cbor::Bytes((0..rng.below(20)).map(|i| i as u8).collect()),
                49 => Cbor::Array(vec![tag(50, ints(rng)), tag(51, ints(rng))]),
                88 => Cbor::Array(vec![Cbor::Float(1.5), ints(rng)]),
                _ => any(rng, depth - 1),
            };
            tag(t, inner)
        }
    }
}

/// A record id as SurrealDB sends one.
fn record_id(rng: &mut Rng) -> Cbor {
    let key = match rng.below(4) {
        0 => texts(rng),
        1 => ints(rng),
        2 => tag(37, Cbor::Bytes((0..16).collect())),
        _ => Cbor::Array(vec![text("London"), int(3)]),
    };
    if rng.chance(10) {
        return tag(8, text("person:tobie"));
    }
    tag(8, Cbor::Array(vec![text(rng.pick::<&str>(&["person", "my table"])), key]))
}

fn kind(rng: &mut Rng, clean: bool) -> Cbor {
    let one = |k: &str, v: Cbor| Cbor::Map(vec![(text(k), v)]);
    match rng.below(if clean { 5 } else { 6 }) {
        0 => text("Plain"),
        1 => one("Tagged", texts(rng)),
        2 => one("Pair", Cbor::Array(vec![ints(rng), ints(rng)])),
        3 => one("Rec", Cbor::Map(vec![(text("x"), ints(rng))])),
        4 => one("Plain", Cbor::Null),
        _ => Cbor::Map(vec![(text("Pair"), Cbor::Array(vec![])), (text("Rec"), Cbor::Map(vec![]))]),
    }
}

fn nested(rng: &mut Rng, depth: u32) -> Cbor {
    let mut fields = vec![
        (text("a"), ints(rng)),
        (text("b"), Cbor::Array((0..rng.below(4)).map(|_| rng.pick(&[Cbor::Null, Cbor::Bool(true), tag(6, Cbor::Null)]).clone()).collect())),
    ];
    if depth > 0 && rng.chance(30) {
        fields.push((text("deep"), nested(rng, depth - 1)));
    }
    Cbor::Map(fields)
}

/// The first `valid` of `options` fit the row's type; a clean row picks only from those.
fn choose(rng: &mut Rng, clean: bool, valid: usize, options: &[Cbor]) -> Cbor {
    let n = if clean { valid } else { options.len() };
    options[rng.below(n as u64) as usize].clone()
}

/// A value for a field of the row: one that fits if `clean`, else most of the time.
fn field(rng: &mut Rng, name: &str, clean: bool) -> Cbor {
    if !clean && rng.chance(8) {
        return any(rng, 2);
    }
    match name {
        "id" => record_id(rng),
        "name" => texts(rng),
        "age" => choose(rng, clean, 4, &[Cbor::Null, tag(6, Cbor::Null), int(30), int(255), int(300)]),
        "score" => choose(rng, clean, 3, &[Cbor::Float(1.25), int(3), Cbor::Float(-0.0), tag(10, text("1.5")), Cbor::Float(f64::NAN), Cbor::Float(f64::INFINITY), int(-(u64::MAX as i128) - 1)]),
        "small" => choose(rng, clean, 3, &[Cbor::Float(0.1), Cbor::Float(1e300), int(-2), Cbor::Float(f64::NAN)]),
        "at" => choose(
            rng,
            clean,
            3,
            &[tag(12, Cbor::Array(vec![int(1_700_000_000), int(123)])), tag(0, text("2024-01-01T00:00:00Z")), Cbor::Null, tag(12, Cbor::Array(vec![int(i64::MAX as i128), int(0)]))],
        ),
        "tags" => Cbor::Array((0..rng.below(5)).map(|_| texts(rng)).collect()),
        "nested" => nested(rng, 3),
        "kind" => kind(rng, clean),
        "keyed" => Cbor::Map(
            (0..rng.below(4))
                .map(|_| {
                    let key = if clean { rng.pick(&["12", "-3", "0", "9223372036854775807", "-9223372036854775808"]).to_string() } else { texts(rng).into_text().unwrap() };
                    (text(&key), Cbor::Bool(rng.chance(50)))
                })
                .collect(),
        ),
        "missing" => choose(rng, clean, 3, &[Cbor::Null, int(5), tag(6, Cbor::Null), text("5")]),
        "blob" => choose(rng, clean, 3, &[Cbor::Bytes(vec![1, 2, 255]), Cbor::Array(vec![int(1), int(2)]), Cbor::Bytes(vec![]), Cbor::Array(vec![int(1), int(256)])]),
        "pair" => choose(rng, clean, 1, &[Cbor::Array(vec![int(1), text("a")]), Cbor::Array(vec![int(1)]), Cbor::Array(vec![int(1), text("a"), int(2)])]),
        "wrapped" => texts(rng),
        "either" => {
            let id = record_id(rng);
            choose(rng, clean, 4, &[int(4), text("x"), Cbor::Array(vec![int(1), text("y")]), id, Cbor::Float(2.5)])
        }
        _ => any(rng, 3),
    }
}

const FIELDS: &[&str] = &["id", "name", "age", "score", "small", "at", "tags", "nested", "kind", "keyed", "missing", "blob", "pair", "wrapped", "either"];

/// A row: every field fitting its type half of the time; otherwise fields missing, repeated
/// or of another shape.
fn row(rng: &mut Rng) -> Cbor {
    // A third clean, a third clean but for one field, a third noisy.
    let mode = rng.below(3);
    let clean = mode < 2;
    let odd = if mode == 1 { rng.below(FIELDS.len() as u64 + 1) as usize } else { usize::MAX };
    let mut fields = Vec::new();
    for (i, f) in FIELDS.iter().enumerate() {
        if i == odd && rng.chance(20) {
            continue;
        }
        if clean || rng.chance(97) {
            fields.push((text(f), field(rng, f, clean && i != odd)));
        }
    }
    // Extra fields go to the flattened rest; sometimes one repeats a field.
    for _ in 0..rng.below(3) {
        let name = if !clean && rng.chance(10) { rng.pick(FIELDS).to_string() } else { format!("extra{}", rng.below(5)) };
        let value = field(rng, &name, clean);
        fields.push((text(&name), value));
    }
    // Wire order is the server's, not sorted.
    for i in (1..fields.len()).rev() {
        fields.swap(i, rng.below(i as u64 + 1) as usize);
    }
    Cbor::Map(fields)
}

fn encode(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

/// The same frame with one byte changed, cut short, or a definite-length head made
/// indefinite (with a break appended where the container ends is not known: the end).
fn mutations(rng: &mut Rng, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..4 {
        let mut b = bytes.to_vec();
        let i = rng.below(b.len() as u64) as usize;
        b[i] = rng.next() as u8;
        out.push(b);
    }
    out.push(bytes[..rng.below(bytes.len() as u64) as usize].to_vec());
    // The outer map made indefinite: every entry, then a break.
    if let Some(first) = bytes.first().filter(|b| *b >> 5 == 5 && *b & 0x1f < 24) {
        let mut b = vec![(first & 0xe0) | 31];
        b.extend_from_slice(&bytes[1..]);
        b.push(0xff);
        out.push(b);
    }
    out
}

#[test]
fn rows_decode_the_same_both_ways() {
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let (mut rows, mut ok) = (0, 0);
    for _ in 0..4000 {
        let value = row(&mut rng);
        let bytes = encode(&value);
        decoders_agree(&bytes);
        rows += 1;
        // How many of them are valid rows (the rest test the errors).
        if surreal_pool::fuzzing::decodes_as_row(&bytes) {
            ok += 1;
        }
        for m in mutations(&mut rng, &bytes) {
            decoders_agree(&m);
        }
    }
    // Both outcomes are well represented, so both are compared.
    assert!(ok > rows / 10 && ok < rows * 9 / 10, "{ok} of {rows} generated rows decode");
}

#[test]
fn lists_of_rows_and_any_values_decode_the_same_both_ways() {
    let mut rng = Rng(0xdead_beef_0bad_f00d);
    for _ in 0..2000 {
        let list = Cbor::Array((0..rng.below(4)).map(|_| row(&mut rng)).collect());
        decoders_agree(&encode(&list));
        let value = any(&mut rng, 5);
        let bytes = encode(&value);
        decoders_agree(&bytes);
        for m in mutations(&mut rng, &bytes) {
            decoders_agree(&m);
        }
    }
}

#[test]
fn nesting_past_the_limit_is_an_error_both_ways() {
    let mut v = Cbor::Null;
    for _ in 0..300 {
        v = Cbor::Array(vec![v]);
    }
    decoders_agree(&encode(&v));
    let mut v = Cbor::Null;
    for _ in 0..300 {
        v = tag(99, v);
    }
    decoders_agree(&encode(&v));
}
