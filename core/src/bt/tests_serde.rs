//! Tests for the `serde` feature: the documented mapping in both directions, its errors, and
//! property tests tying `to_bt`/`from_bt` to `encode`/`decode`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

use super::*;

// Fields deliberately declared out of byte order: the output must still be sorted.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Control {
    zap: u64,
    hi: i32,
    omg: i64,
    bye: u16,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Optional {
    c: u8,
    a: Option<u8>,
    b: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Command {
    Ping,
    Echo(String),
    Move(i32, i32),
    Set { value: u32, key: String },
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Colour {
    Red,
    Blue,
}

/// Serialises through `serialize_bytes` (a `&[u8]` alone would serialise as a sequence).
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

fn nested_lists(n: usize) -> Vec<u8> {
    let mut v = vec![b'l'; n];
    v.extend(core::iter::repeat_n(b'e', n));
    v
}

#[test]
fn structs_become_dicts_with_sorted_keys() {
    let c = Control {
        zap: 0,
        hi: 123,
        omg: -7890,
        bye: 456,
    };
    let encoded = to_bt(&c).unwrap();
    assert_eq!(encoded, b"d3:byei456e2:hii123e3:omgi-7890e3:zapi0ee");
    assert_eq!(from_bt::<Control>(&encoded), Ok(c));
}

#[test]
fn none_fields_are_omitted_and_absent_fields_read_as_none() {
    let v = Optional {
        c: 1,
        a: None,
        b: Some("x".into()),
    };
    let encoded = to_bt(&v).unwrap();
    assert_eq!(encoded, b"d1:b1:x1:ci1ee");
    assert_eq!(from_bt::<Optional>(&encoded), Ok(v));
    assert_eq!(
        from_bt::<Optional>(b"d1:ai9e1:ci1ee"),
        Ok(Optional {
            c: 1,
            a: Some(9),
            b: None
        })
    );
    // Unknown keys are skipped (with full validation).
    assert_eq!(
        from_bt::<Optional>(b"d1:ci1e1:zld1:qi1eeee").map(|o| o.c),
        Ok(1)
    );
}

#[test]
fn deny_unknown_fields_is_honoured() {
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        a: u8,
    }
    assert_eq!(from_bt::<Strict>(b"d1:ai1ee"), Ok(Strict { a: 1 }));
    assert!(matches!(
        from_bt::<Strict>(b"d1:ai1e1:bi2ee"),
        Err(BtError::Serde(_))
    ));
}

#[test]
fn missing_required_fields_name_the_key() {
    assert_eq!(
        from_bt::<Control>(b"d2:hii1ee"),
        Err(BtError::MissingKey {
            key: b"zap".to_vec()
        })
    );
}

#[test]
fn none_outside_a_dict_value_is_unsupported() {
    assert!(matches!(to_bt(&None::<u8>), Err(BtError::Unsupported(_))));
    assert!(matches!(
        to_bt(&vec![Some(1u8), None]),
        Err(BtError::Unsupported(_))
    ));
    assert_eq!(to_bt(&Some(5u8)).unwrap(), b"i5e");
    assert_eq!(from_bt::<Option<u8>>(b"i5e"), Ok(Some(5)));
}

#[test]
fn bools_are_zero_or_one() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Flags {
        on: bool,
        off: bool,
    }
    let encoded = to_bt(&Flags {
        on: true,
        off: false,
    })
    .unwrap();
    assert_eq!(encoded, b"d3:offi0e2:oni1ee");
    assert_eq!(
        from_bt::<Flags>(&encoded),
        Ok(Flags {
            on: true,
            off: false
        })
    );
    let bad = b"d3:offi0e2:oni2ee";
    assert_eq!(
        from_bt::<Flags>(bad),
        Err(BtError::IntegerOutOfRange { offset: 13 })
    );
    assert_eq!(&bad[13..16], b"i2e");
}

#[test]
fn integers_are_range_checked_for_the_target_type() {
    assert_eq!(from_bt::<u8>(b"i255e"), Ok(255));
    assert_eq!(
        from_bt::<u8>(b"i256e"),
        Err(BtError::IntegerOutOfRange { offset: 0 })
    );
    assert_eq!(
        from_bt::<i8>(b"i-129e"),
        Err(BtError::IntegerOutOfRange { offset: 0 })
    );
    assert_eq!(
        from_bt::<u64>(b"i-1e"),
        Err(BtError::IntegerOutOfRange { offset: 0 })
    );
    assert_eq!(from_bt::<i64>(b"i-9223372036854775808e"), Ok(i64::MIN));
    assert_eq!(
        from_bt::<u128>(b"i18446744073709551615e"),
        Ok(u128::from(u64::MAX))
    );
    assert_eq!(from_bt::<i128>(b"i-5e"), Ok(-5));
    assert_eq!(
        to_bt(&u128::from(u64::MAX)).unwrap(),
        b"i18446744073709551615e"
    );
    assert!(matches!(
        to_bt(&u128::MAX),
        Err(BtError::IntegerOutOfRange { .. })
    ));
    assert!(matches!(
        to_bt(&i128::MIN),
        Err(BtError::IntegerOutOfRange { .. })
    ));
    assert_eq!(
        from_bt::<u32>(b"3:abc"),
        Err(BtError::WrongType {
            offset: 0,
            expected: BtKind::Integer,
            found: BtKind::Bytes
        })
    );
}

#[test]
fn enums_are_names_or_one_entry_dicts() {
    let cases: [(Command, &[u8]); 4] = [
        (Command::Ping, b"4:Ping"),
        (Command::Echo("hi".into()), b"d4:Echo2:hie"),
        (Command::Move(1, -2), b"d4:Moveli1ei-2eee"),
        (
            Command::Set {
                value: 7,
                key: "k".into(),
            },
            b"d3:Setd3:key1:k5:valuei7eee",
        ),
    ];
    for (command, encoded) in cases {
        assert_eq!(to_bt(&command).unwrap(), encoded);
        assert_eq!(from_bt::<Command>(encoded), Ok(command));
    }
    assert_eq!(
        from_bt::<Command>(b"d4:Echo2:hi4:Pinglee"),
        Err(BtError::ExtraElements { offset: 11 })
    );
    assert_eq!(
        from_bt::<Command>(b"de"),
        Err(BtError::Exhausted { offset: 1 })
    );
    assert!(matches!(
        from_bt::<Command>(b"4:Jump"),
        Err(BtError::Serde(_))
    ));
    assert!(matches!(
        from_bt::<Command>(b"i1e"),
        Err(BtError::WrongType { .. })
    ));
}

#[test]
fn enum_map_keys_use_variant_names() {
    let mut m = BTreeMap::new();
    m.insert(Colour::Red, 1u8);
    m.insert(Colour::Blue, 2u8);
    let encoded = to_bt(&m).unwrap();
    // Sorted by name bytes, not by the enum's Ord.
    assert_eq!(encoded, b"d4:Bluei2e3:Redi1ee");
    assert_eq!(from_bt::<BTreeMap<Colour, u8>>(&encoded), Ok(m));
}

#[test]
fn sequences_and_tuples_are_lists() {
    let t = (42u8, String::from("hi"), vec![1i32, 2, 3]);
    let encoded = to_bt(&t).unwrap();
    assert_eq!(encoded, b"li42e2:hili1ei2ei3eee");
    assert_eq!(from_bt::<(u8, String, Vec<i32>)>(&encoded), Ok(t));
    assert_eq!(
        from_bt::<(u8, u8)>(b"li1ei2ei3ee"),
        Err(BtError::ExtraElements { offset: 7 })
    );
    assert!(matches!(
        from_bt::<(u8, u8)>(b"li1ee"),
        Err(BtError::Serde(_))
    ));
    // Vec<u8> is a serde sequence, so it is a list of integers; bytes need serialize_bytes.
    assert_eq!(to_bt(&vec![1u8, 2]).unwrap(), b"li1ei2ee");
    assert_eq!(to_bt(&Raw(b"\x01\x02")).unwrap(), b"2:\x01\x02");
}

#[test]
fn strings_and_bytes_borrow_from_the_input() {
    #[derive(Debug, Deserialize)]
    struct Borrowed<'a> {
        name: &'a str,
        raw: &'a [u8],
    }
    let input = b"d4:name3:bob3:raw2:\xff\x00e";
    let b = from_bt::<Borrowed<'_>>(input).unwrap();
    assert_eq!(b.name, "bob");
    assert_eq!(b.raw, b"\xff\x00");
    let range = input.as_ptr_range();
    assert!(range.contains(&b.name.as_ptr()) && range.contains(&b.raw.as_ptr()));
    assert_eq!(
        from_bt::<String>(b"2:\xff\x00"),
        Err(BtError::NotUtf8 { offset: 0 })
    );
}

#[test]
fn chars_are_one_character_strings() {
    assert_eq!(to_bt(&'é').unwrap(), b"2:\xc3\xa9");
    assert_eq!(from_bt::<char>(b"2:\xc3\xa9"), Ok('é'));
    assert!(matches!(from_bt::<char>(b"2:ab"), Err(BtError::Serde(_))));
    assert!(matches!(from_bt::<char>(b"0:"), Err(BtError::Serde(_))));
}

#[test]
fn unit_is_the_empty_list() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Marker;
    assert_eq!(to_bt(&()).unwrap(), b"le");
    assert_eq!(to_bt(&Marker).unwrap(), b"le");
    assert_eq!(from_bt::<()>(b"le"), Ok(()));
    assert_eq!(from_bt::<Marker>(b"le"), Ok(Marker));
    assert_eq!(
        from_bt::<()>(b"li1ee"),
        Err(BtError::ExtraElements { offset: 1 })
    );
}

#[test]
fn values_bt_cannot_hold_are_unsupported() {
    assert!(matches!(to_bt(&1.5f64), Err(BtError::Unsupported(_))));
    assert!(matches!(
        from_bt::<f32>(b"i1e"),
        Err(BtError::Unsupported(_))
    ));
    let mut m = BTreeMap::new();
    m.insert(1u32, 2u32);
    assert!(matches!(to_bt(&m), Err(BtError::Unsupported(_))));
}

#[test]
fn duplicate_map_keys_are_refused() {
    struct Twice;
    impl Serialize for Twice {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            m.serialize_entry("a", &1u8)?;
            m.serialize_entry("a", &2u8)?;
            m.end()
        }
    }
    assert_eq!(to_bt(&Twice), Err(BtError::KeyOrder { key: b"a".to_vec() }));
}

#[test]
fn from_bt_is_as_strict_as_decode() {
    assert_eq!(
        from_bt::<u32>(b"i01e"),
        Err(BtError::Invalid {
            offset: 2,
            reason: InvalidReason::LeadingZero
        })
    );
    assert_eq!(
        from_bt::<u32>(b"i1ex"),
        Err(BtError::TrailingGarbage { offset: 3 })
    );
    assert_eq!(
        from_bt::<BTreeMap<String, u32>>(b"d1:bi1e1:ai2ee"),
        Err(BtError::Invalid {
            offset: 7,
            reason: InvalidReason::UnsortedKeys
        })
    );
    // Invalid data is reported even where the target type would never look.
    assert!(from_bt::<Optional>(b"d1:ci1e1:zi-0ee").is_err());
}

#[test]
fn depth_is_bounded_both_ways() {
    let mut deep = BtValue::List(vec![]);
    for _ in 1..MAX_DEPTH {
        deep = BtValue::List(vec![deep]);
    }
    assert_eq!(to_bt(&deep).unwrap(), encode(&deep));
    let deeper = BtValue::List(vec![deep]);
    assert!(matches!(to_bt(&deeper), Err(BtError::TooDeep { .. })));
    assert_eq!(
        from_bt::<BtValue>(&nested_lists(MAX_DEPTH + 1)),
        Err(BtError::TooDeep { offset: MAX_DEPTH })
    );
    // Enum wrappers count as a level.
    let mut inner = BtValue::List(vec![]);
    for _ in 2..MAX_DEPTH {
        inner = BtValue::List(vec![inner]);
    }
    #[derive(Serialize)]
    enum Wrap {
        V(BtValue),
    }
    assert!(to_bt(&Wrap::V(inner.clone())).is_ok());
    assert!(matches!(
        to_bt(&Wrap::V(BtValue::List(vec![inner]))),
        Err(BtError::TooDeep { .. })
    ));
}

#[test]
fn bt_values_embed_in_typed_structs() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Envelope {
        kind: String,
        body: BtValue,
    }
    let e = Envelope {
        kind: "x".into(),
        body: decode(b"d1:al2:\xffzi-1eee").unwrap(),
    };
    let encoded = to_bt(&e).unwrap();
    assert_eq!(encoded, b"d4:bodyd1:al2:\xffzi-1eee4:kind1:xe");
    assert_eq!(from_bt::<Envelope>(&encoded), Ok(e));
}

fn arb_value() -> impl Strategy<Value = BtValue> {
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(BtValue::Bytes),
        any::<i64>().prop_map(BtValue::from),
        any::<u64>().prop_map(BtValue::UInt),
    ];
    leaf.prop_recursive(5, 64, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(BtValue::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..4),
                inner,
                0..5
            )
            .prop_map(BtValue::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn prop_serde_agrees_with_encode_and_decode(value in arb_value()) {
        let encoded = to_bt(&value).unwrap();
        prop_assert_eq!(&encoded, &encode(&value));
        prop_assert_eq!(from_bt::<BtValue>(&encoded), Ok(value));
    }

    #[test]
    fn prop_from_bt_never_panics_and_matches_decode(
        input in proptest::collection::vec(
            prop_oneof![Just(b'l'), Just(b'd'), Just(b'e'), Just(b'i'), Just(b':'), b'0'..=b'9', any::<u8>()],
            0..48,
        )
    ) {
        prop_assert_eq!(from_bt::<BtValue>(&input), decode(&input));
        // Typed reads must fail cleanly too.
        let _ = from_bt::<Control>(&input);
        let _ = from_bt::<Command>(&input);
        let _ = from_bt::<Vec<(u8, String)>>(&input);
    }
}
