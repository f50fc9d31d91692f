//! The bt (bencode) target: the decoder, the consumers and serde's `from_bt`, checked against
//! each other and against the encoder.

use std::collections::BTreeMap;

use lokimq_core::bt::{
    self, BtDictConsumer, BtError, BtKind, BtListConsumer, BtValue, MAX_DEPTH, from_bt, to_bt,
};
use serde::{Deserialize, Serialize};

/// A typed shape for serde's derived code paths: every field optional (an absent key reads as
/// `None`), so ordinary dicts of the right key names get through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Typed {
    a: Option<u32>,
    b: Option<Vec<i16>>,
    c: Option<String>,
    d: Option<BTreeMap<String, bool>>,
    e: Option<Shape>,
    f: Option<(u8, Vec<u64>)>,
    g: Option<i64>,
}

/// An enum of every variant kind (unit, newtype, tuple, struct).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Shape {
    Unit,
    New(i64),
    Pair(u8, String),
    Named { x: u16, y: Option<Vec<u8>> },
}

/// Fuzzes bt decoding with `data` as one encoded value.
///
/// * [`bt::validate`], [`bt::decode`] and serde's `from_bt::<BtValue>` accept exactly the same
///   inputs, with the same error, and the last two build the same value;
/// * a decoded value re-encodes to exactly `data` (decoding accepts canonical bt only), and its
///   nesting is within [`MAX_DEPTH`];
/// * the list and dict consumers accept exactly the lists and dicts `decode` accepts, and walking
///   them element by element (each read preceded by a read of the wrong kind, which must fail
///   softly and leave the consumer where it was) rebuilds the decoded value, with every raw
///   element slice being the element's encoding;
/// * dict lookups (`skip_until`, `maybe_*`, `require`) agree with the decoded dict;
/// * a typed `from_bt` that succeeds only does so on valid bt, and its value survives
///   `to_bt` → `from_bt`.
pub fn fuzz_bt(data: &[u8]) {
    let validated = bt::validate(data);
    let decoded = bt::decode(data);
    assert_eq!(
        validated.as_ref().err(),
        decoded.as_ref().err(),
        "validate and decode disagree"
    );
    let via_serde = from_bt::<BtValue>(data);
    assert_eq!(via_serde, decoded, "from_bt::<BtValue> and decode disagree");

    match &decoded {
        Ok(value) => {
            assert_eq!(
                bt::encode(value),
                data,
                "decoded value re-encodes differently"
            );
            assert!(depth(value) <= MAX_DEPTH, "decoded a value nested too deep");
            match to_bt(value) {
                Ok(bytes) => assert_eq!(bytes, data, "to_bt(BtValue) differs from encode"),
                Err(e) => panic!("to_bt refused a decoded value: {e}"),
            }
        }
        Err(e) => assert!(
            !e.is_wrong_type(),
            "decoding failed with a soft error: {e:?}"
        ),
    }

    let list = BtListConsumer::new(data);
    let dict = BtDictConsumer::new(data);
    match &decoded {
        Ok(BtValue::List(items)) => {
            let Ok(mut c) = list else {
                panic!("list consumer refused a valid list: {list:?}");
            };
            assert_eq!(walk_list(&mut c), *items, "list consumer walk differs");
            assert!(dict.is_err(), "dict consumer took a list");
        }
        Ok(BtValue::Dict(entries)) => {
            let Ok(mut c) = dict else {
                panic!("dict consumer refused a valid dict: {dict:?}");
            };
            let fresh = c.clone();
            assert_eq!(walk_dict(&mut c), *entries, "dict consumer walk differs");
            check_lookups(&fresh, entries);
            assert!(list.is_err(), "list consumer took a dict");
        }
        Ok(_) => {
            assert!(
                matches!(list, Err(BtError::WrongType { .. })),
                "list consumer on a scalar: {list:?}"
            );
            assert!(
                matches!(dict, Err(BtError::WrongType { .. })),
                "dict consumer on a scalar: {dict:?}"
            );
        }
        Err(_) => {
            assert!(list.is_err(), "list consumer took invalid bt");
            assert!(dict.is_err(), "dict consumer took invalid bt");
        }
    }

    if let Ok(t) = from_bt::<Typed>(data) {
        assert!(decoded.is_ok(), "from_bt::<Typed> took invalid bt");
        roundtrip(&t);
    }
    if let Ok(t) = from_bt::<Shape>(data) {
        assert!(decoded.is_ok(), "from_bt::<Shape> took invalid bt");
        roundtrip(&t);
    }
    if let Ok(t) = from_bt::<Vec<(String, i32)>>(data) {
        assert!(
            decoded.is_ok(),
            "from_bt::<Vec<(String, i32)>> took invalid bt"
        );
        roundtrip(&t);
    }
}

fn roundtrip<T>(value: &T)
where
    T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let bytes = match to_bt(value) {
        Ok(b) => b,
        Err(e) => panic!("to_bt refused a value from_bt built ({value:?}): {e}"),
    };
    match from_bt::<T>(&bytes) {
        Ok(again) => assert_eq!(&again, value, "to_bt then from_bt changed the value"),
        Err(e) => panic!("from_bt refused to_bt's output for {value:?}: {e}"),
    }
}

fn depth(v: &BtValue) -> usize {
    match v {
        BtValue::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        BtValue::Dict(entries) => 1 + entries.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A read of the wrong kind must fail softly and leave the list consumer where it was.
fn probe_list(c: &mut BtListConsumer<'_>, kind: BtKind) {
    let before = c.clone();
    let r = match kind {
        BtKind::Bytes => c.consume_integer::<i64>().map(drop),
        _ => c.consume_string().map(drop),
    };
    match r {
        Err(e) if e.is_wrong_type() => {}
        other => panic!("a {kind} read as the wrong kind: {other:?}"),
    }
    assert_eq!(
        c.next_kind(),
        before.next_kind(),
        "a refused read moved the consumer"
    );
    assert_eq!(
        c.clone().consume_raw().ok(),
        before.clone().consume_raw().ok(),
        "a refused read moved the consumer"
    );
}

fn walk_list(c: &mut BtListConsumer<'_>) -> Vec<BtValue> {
    let mut out = Vec::new();
    while let Some(kind) = c.next_kind() {
        probe_list(c, kind);
        let raw = c.clone().consume_raw();
        let v = match kind {
            BtKind::Bytes => c.consume_string().map(|s| BtValue::Bytes(s.to_vec())),
            BtKind::Integer => {
                if c.is_negative_integer() {
                    c.consume_integer::<i64>().map(BtValue::Int)
                } else {
                    c.consume_integer::<u64>().map(BtValue::UInt)
                }
            }
            BtKind::List => c
                .consume_list_consumer()
                .map(|mut inner| BtValue::List(walk_list(&mut inner))),
            BtKind::Dict => c
                .consume_dict_consumer()
                .map(|mut inner| BtValue::Dict(walk_dict(&mut inner))),
        };
        let v = match v {
            Ok(v) => v,
            Err(e) => panic!("consumer refused an element of a valid list: {e}"),
        };
        match raw {
            Ok(raw) => assert_eq!(raw, bt::encode(&v), "raw element slice is not its encoding"),
            Err(e) => panic!("consume_raw refused an element of a valid list: {e}"),
        }
        out.push(v);
    }
    assert!(c.is_finished());
    assert!(
        matches!(c.consume_string(), Err(BtError::Exhausted { .. })),
        "a finished list consumer gave another element"
    );
    assert_eq!(c.clone().finish(), Ok(()));
    out
}

fn walk_dict(c: &mut BtDictConsumer<'_>) -> BTreeMap<Vec<u8>, BtValue> {
    let mut out = BTreeMap::new();
    while let Some(kind) = c.next_kind() {
        let before = c.clone();
        let wrong = match kind {
            BtKind::Bytes => c.next_integer::<i64>().map(drop),
            _ => c.next_string().map(drop),
        };
        assert!(
            matches!(wrong, Err(ref e) if e.is_wrong_type()),
            "a {kind} dict value read as the wrong kind: {wrong:?}"
        );
        assert_eq!(
            c.key(),
            before.key(),
            "a refused read moved the dict consumer"
        );
        let raw = c.clone().next_raw();
        let entry = match kind {
            BtKind::Bytes => c
                .next_string()
                .map(|(k, s)| (k, BtValue::Bytes(s.to_vec()))),
            BtKind::Integer => {
                if c.is_negative_integer() {
                    c.next_integer::<i64>().map(|(k, v)| (k, BtValue::Int(v)))
                } else {
                    c.next_integer::<u64>().map(|(k, v)| (k, BtValue::UInt(v)))
                }
            }
            BtKind::List => c
                .next_list_consumer()
                .map(|(k, mut inner)| (k, BtValue::List(walk_list(&mut inner)))),
            BtKind::Dict => c
                .next_dict_consumer()
                .map(|(k, mut inner)| (k, BtValue::Dict(walk_dict(&mut inner)))),
        };
        let (key, v) = match entry {
            Ok(e) => e,
            Err(e) => panic!("consumer refused an entry of a valid dict: {e}"),
        };
        match raw {
            Ok((k, raw)) => {
                assert_eq!(k, key);
                assert_eq!(raw, bt::encode(&v), "raw dict value is not its encoding");
            }
            Err(e) => panic!("next_raw refused an entry of a valid dict: {e}"),
        }
        assert!(
            out.last_key_value()
                .is_none_or(|(last, _): (&Vec<u8>, _)| last[..] < *key),
            "dict consumer gave keys out of order"
        );
        out.insert(key.to_vec(), v);
    }
    assert!(c.is_finished() && c.key().is_none());
    out
}

/// Lookups from a fresh consumer agree with the decoded dict: every present key is found by
/// `skip_until` with its value, and a key between two present ones (or past the last) is not.
fn check_lookups(fresh: &BtDictConsumer<'_>, entries: &BTreeMap<Vec<u8>, BtValue>) {
    let mut forward = fresh.clone();
    for (k, v) in entries {
        let mut absent = k.clone();
        absent.push(0);
        let mut probe = fresh.clone();
        assert_eq!(probe.skip_until(k), Ok(true), "skip_until missed a key");
        assert_eq!(probe.next_value().ok(), Some((&k[..], v.clone())));
        let mut probe = fresh.clone();
        if !entries.contains_key(&absent) {
            assert_eq!(
                probe.skip_until(&absent),
                Ok(false),
                "skip_until found an absent key"
            );
            assert!(
                matches!(
                    probe.clone().require(&absent),
                    Err(BtError::MissingKey { .. })
                ),
                "require found an absent key"
            );
            assert_eq!(probe.maybe_string(&absent), Ok(None));
        }
        // One consumer moving forward through every key, as OxenMQ's readers do.
        match v {
            BtValue::Bytes(b) => assert_eq!(forward.maybe_string(k), Ok(Some(&b[..]))),
            BtValue::Int(i) => assert_eq!(forward.maybe_integer::<i64>(k), Ok(Some(*i))),
            BtValue::UInt(u) => assert_eq!(forward.maybe_integer::<u64>(k), Ok(Some(*u))),
            BtValue::List(_) => assert!(matches!(forward.maybe_list(k), Ok(Some(_)))),
            BtValue::Dict(_) => assert!(matches!(forward.maybe_dict(k), Ok(Some(_)))),
        }
    }
    assert!(forward.is_finished(), "forward lookups left entries");
}
