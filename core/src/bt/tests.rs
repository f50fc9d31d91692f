//! Tests for the bt module: vectors from oxenc's test suite and behaviour.md §1.15, one test per
//! strictness rule, an audit of what `bendy` enforces by itself, consumers, producers, and
//! property tests tying the encoder, `decode`, the consumers and `bendy` together.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use bendy::decoding::{Decoder, Object};
use proptest::prelude::*;

use super::bendy_adapter::build_raw;
use super::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn bytes(s: &str) -> BtValue {
    BtValue::from(s)
}

fn dict<const N: usize>(entries: [(&str, BtValue); N]) -> BtValue {
    BtValue::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

fn list<const N: usize>(items: [BtValue; N]) -> BtValue {
    BtValue::List(items.into())
}

fn nested_lists(n: usize) -> Vec<u8> {
    let mut v = vec![b'l'; n];
    v.extend(core::iter::repeat_n(b'e', n));
    v
}

fn invalid(offset: usize, reason: InvalidReason) -> BtError {
    BtError::Invalid { offset, reason }
}

/// Rebuilds a value by walking it with the consumers only (integers by sign, as decode does).
fn walk_list(mut c: BtListConsumer<'_>) -> Result<BtValue, BtError> {
    let mut items = Vec::new();
    while let Some(kind) = c.next_kind() {
        let item = match kind {
            BtKind::Bytes => BtValue::Bytes(c.consume_string()?.to_vec()),
            BtKind::Integer if c.is_negative_integer() => {
                assert!(!c.is_unsigned_integer());
                BtValue::Int(c.consume_integer::<i64>()?)
            }
            BtKind::Integer => {
                assert!(c.is_unsigned_integer());
                BtValue::UInt(c.consume_integer::<u64>()?)
            }
            BtKind::List => walk_list(c.consume_list_consumer()?)?,
            BtKind::Dict => walk_dict(c.consume_dict_consumer()?)?,
        };
        items.push(item);
    }
    c.finish()?;
    Ok(BtValue::List(items))
}

fn walk_dict(mut c: BtDictConsumer<'_>) -> Result<BtValue, BtError> {
    let mut entries = BTreeMap::new();
    while let Some(kind) = c.next_kind() {
        let (key, value) = match kind {
            BtKind::Bytes => c
                .next_string()
                .map(|(k, v)| (k, BtValue::Bytes(v.to_vec())))?,
            BtKind::Integer if c.is_negative_integer() => {
                c.next_integer::<i64>().map(|(k, v)| (k, BtValue::Int(v)))?
            }
            BtKind::Integer => c
                .next_integer::<u64>()
                .map(|(k, v)| (k, BtValue::UInt(v)))?,
            BtKind::List => {
                let (k, inner) = c.next_list_consumer()?;
                (k, walk_list(inner)?)
            }
            BtKind::Dict => {
                let (k, inner) = c.next_dict_consumer()?;
                (k, walk_dict(inner)?)
            }
        };
        assert!(entries.insert(key.to_vec(), value).is_none());
    }
    c.finish()?;
    Ok(BtValue::Dict(entries))
}

/// What the consumers make of `input`, reported in `decode`'s terms: scalars are wrapped and
/// unwrapped so that every kind of top-level value goes through a consumer.
fn consume_any(input: &[u8]) -> Result<BtValue, BtError> {
    match input.first() {
        Some(b'l') => walk_list(BtListConsumer::new(input)?),
        Some(b'd') => walk_dict(BtDictConsumer::new(input)?),
        _ => {
            // Validate exactly as decode does, then read the scalar through a list consumer.
            validate(input)?;
            let mut wrapped = vec![b'l'];
            wrapped.extend_from_slice(input);
            wrapped.push(b'e');
            match walk_list(BtListConsumer::new(&wrapped)?)? {
                BtValue::List(mut items) if items.len() == 1 => Ok(items.remove(0)),
                other => panic!("wrapped scalar read back as {other:?}"),
            }
        }
    }
}

/// `bendy`'s decoder on its own, without the three checks the adapter adds: true if it reads the
/// first value without error (trailing bytes, empty input and integer ranges are not looked at).
fn bendy_alone_accepts(input: &[u8]) -> bool {
    fn walk(object: Object<'_, '_>) -> bool {
        match object {
            Object::List(mut l) => loop {
                match l.next_object() {
                    Ok(Some(o)) => {
                        if !walk(o) {
                            return false;
                        }
                    }
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            },
            Object::Dict(mut d) => loop {
                match d.next_pair() {
                    Ok(Some((_, o))) => {
                        if !walk(o) {
                            return false;
                        }
                    }
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            },
            Object::Bytes(_) | Object::Integer(_) => true,
        }
    }
    let mut decoder = Decoder::new(input).with_max_depth(MAX_DEPTH);
    match decoder.next_object() {
        Ok(Some(object)) => walk(object),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// Every strictness rule: (input, the error every reader must report).
fn rejection_vectors() -> Vec<(Vec<u8>, BtError)> {
    let mut deep = nested_lists(MAX_DEPTH + 1);
    deep.insert(0, b'l');
    deep.push(b'e');
    vec![
        (b"".to_vec(), BtError::UnexpectedEnd { offset: 0 }),
        (b"i1ei2e".to_vec(), BtError::TrailingGarbage { offset: 3 }),
        (b"lex".to_vec(), BtError::TrailingGarbage { offset: 2 }),
        (b"i03e".to_vec(), invalid(2, InvalidReason::LeadingZero)),
        (b"i00e".to_vec(), invalid(2, InvalidReason::LeadingZero)),
        (b"i-0e".to_vec(), invalid(2, InvalidReason::NegativeZero)),
        (b"ie".to_vec(), invalid(1, InvalidReason::MalformedInteger)),
        (b"i-e".to_vec(), invalid(2, InvalidReason::MalformedInteger)),
        (
            b"i1.5e".to_vec(),
            invalid(2, InvalidReason::MalformedInteger),
        ),
        (
            b"i+1e".to_vec(),
            invalid(1, InvalidReason::MalformedInteger),
        ),
        (
            b"i--1e".to_vec(),
            invalid(2, InvalidReason::MalformedInteger),
        ),
        (
            b"i18446744073709551616e".to_vec(),
            BtError::IntegerOutOfRange { offset: 0 },
        ),
        (
            b"li-9223372036854775809ee".to_vec(),
            BtError::IntegerOutOfRange { offset: 1 },
        ),
        (b"03:abc".to_vec(), invalid(1, InvalidReason::LeadingZero)),
        (b"3abc".to_vec(), invalid(1, InvalidReason::MalformedLength)),
        (b"5:abc".to_vec(), BtError::UnexpectedEnd { offset: 5 }),
        (
            b"99999999999999999999999:x".to_vec(),
            BtError::UnexpectedEnd { offset: 25 },
        ),
        (
            b"d1:bi1e1:ai2ee".to_vec(),
            invalid(7, InvalidReason::UnsortedKeys),
        ),
        (
            b"d1:ai1e1:ai2ee".to_vec(),
            invalid(7, InvalidReason::DuplicateKey),
        ),
        (
            b"d2:aai1e1:ai2ee".to_vec(),
            invalid(8, InvalidReason::UnsortedKeys),
        ),
        (
            b"di1ei2ee".to_vec(),
            invalid(1, InvalidReason::KeyNotString),
        ),
        (b"d1:ae".to_vec(), invalid(4, InvalidReason::MissingValue)),
        (b"li1e".to_vec(), BtError::UnexpectedEnd { offset: 4 }),
        (b"d1:a".to_vec(), BtError::UnexpectedEnd { offset: 4 }),
        (
            b"x".to_vec(),
            invalid(0, InvalidReason::UnexpectedByte(b'x')),
        ),
        (
            b"e".to_vec(),
            invalid(0, InvalidReason::UnexpectedByte(b'e')),
        ),
        (
            b"l i1ee".to_vec(),
            invalid(1, InvalidReason::UnexpectedByte(b' ')),
        ),
        (
            nested_lists(MAX_DEPTH + 1),
            BtError::TooDeep { offset: MAX_DEPTH },
        ),
        (deep, BtError::TooDeep { offset: MAX_DEPTH }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Decoding vectors

#[test]
fn spec_dict_vector_decodes_and_reencodes_identically() {
    let input = b"d3:byei456e2:hii123e3:omgi-7890e3:zapi0ee";
    let value = decode(input).unwrap();
    assert_eq!(
        value,
        dict([
            ("bye", BtValue::UInt(456)),
            ("hi", BtValue::UInt(123)),
            ("omg", BtValue::Int(-7890)),
            ("zap", BtValue::UInt(0)),
        ])
    );
    assert!(matches!(value.get("omg"), Some(BtValue::Int(-7890))));
    assert!(matches!(value.get("zap"), Some(BtValue::UInt(0))));
    assert_eq!(encode(&value), input);
}

#[test]
fn integer_extremes_decode_into_the_right_alternative_and_reencode() {
    let cases: [(&[u8], BtValue); 6] = [
        (b"i42e", BtValue::UInt(42)),
        (b"i-42e", BtValue::Int(-42)),
        (
            b"i-8000000000000000000e",
            BtValue::Int(-8_000_000_000_000_000_000),
        ),
        (b"i-9223372036854775808e", BtValue::Int(i64::MIN)),
        (
            b"i10000000000000000000e",
            BtValue::UInt(10_000_000_000_000_000_000),
        ),
        (b"i18446744073709551615e", BtValue::UInt(u64::MAX)),
    ];
    for (input, expected) in cases {
        let value = decode(input).unwrap();
        // Check the variant, not just the numeric equality PartialEq offers.
        assert_eq!(
            core::mem::discriminant(&value),
            core::mem::discriminant(&expected)
        );
        assert_eq!(value, expected);
        assert_eq!(encode(&value), input);
    }
    assert!(matches!(decode(b"i0e"), Ok(BtValue::UInt(0))));
}

#[test]
fn typed_integer_reads_are_range_checked() {
    let v = decode(b"i4294967295e").unwrap();
    assert_eq!(v.as_int::<u32>(), Some(u32::MAX));
    assert_eq!(decode(b"i4294967296e").unwrap().as_int::<u32>(), None);
    let neg = decode(b"i-1e").unwrap();
    assert_eq!(neg.as_u64(), None);
    assert_eq!(neg.as_i64(), Some(-1));
    assert_eq!(neg.as_int::<i8>(), Some(-1));
    assert_eq!(BtValue::UInt(u64::MAX).as_i64(), None);
    assert_eq!(BtValue::Int(i64::MIN).as_int::<i32>(), None);
    assert_eq!(bytes("1").as_int::<u8>(), None);
}

#[test]
fn oxenc_nested_vector_decodes_to_the_expected_tree() {
    let input = b"d3:barle3:foold1:ali1ei2ei3ee1:bleed1:cli-5ei4eeeee";
    let value = decode(input).unwrap();
    let foo = value.get("foo").and_then(BtValue::as_list).unwrap();
    assert_eq!(foo.len(), 2);
    let ints = |v: &BtValue| -> Vec<i32> {
        v.as_list()
            .unwrap()
            .iter()
            .map(|x| x.as_int().unwrap())
            .collect()
    };
    assert_eq!(ints(foo[0].get("a").unwrap()), [1, 2, 3]);
    assert!(ints(foo[0].get("b").unwrap()).is_empty());
    assert_eq!(ints(foo[1].get("c").unwrap()), [-5, 4]);
    assert_eq!(value.get("bar").and_then(BtValue::as_list), Some(&[][..]));
    assert_eq!(value.as_dict().unwrap().len(), 2);
    assert_eq!(encode(&value), input);
}

#[test]
fn strings_may_hold_any_bytes() {
    let input = b"l1:a0:1:\x006:\x00\x00\x00gooe";
    let value = decode(input).unwrap();
    assert_eq!(
        value,
        list([bytes("a"), bytes(""), bytes("\0"), bytes("\0\0\0goo")])
    );
    assert_eq!(encode(&value), input);
    let high = decode(b"2:\xff\xfe").unwrap();
    assert_eq!(high.as_bytes(), Some(&b"\xff\xfe"[..]));
    assert_eq!(high.as_str(), None);
    assert_eq!(bytes("hé").as_str(), Some("hé"));
}

#[test]
fn accessors_report_kind_and_refuse_other_kinds() {
    let v = decode(b"d1:al1:xe1:bi-3ee").unwrap();
    assert_eq!(v.kind(), BtKind::Dict);
    assert_eq!(v.get("a").unwrap().kind(), BtKind::List);
    assert_eq!(v.get("b").unwrap().kind(), BtKind::Integer);
    assert_eq!(v.get("c"), None);
    assert_eq!(v.as_list(), None);
    assert_eq!(v.as_bytes(), None);
    assert_eq!(v.get("a").unwrap().get("x"), None);
    assert_eq!(
        v.get(b"a").and_then(BtValue::as_list).map(<[BtValue]>::len),
        Some(1)
    );
}

#[test]
fn integers_compare_by_value_across_alternatives() {
    assert_eq!(BtValue::Int(5), BtValue::UInt(5));
    assert_ne!(BtValue::Int(-5), BtValue::UInt(5));
    assert_ne!(BtValue::UInt(0), bytes("0"));
    assert!(matches!(BtValue::from(5i64), BtValue::UInt(5)));
    assert!(matches!(BtValue::from(-5i8), BtValue::Int(-5)));
    assert!(matches!(BtValue::from(usize::MAX), BtValue::UInt(_)));
    // A hand-built Int(5) encodes like UInt(5) and decodes back equal.
    assert_eq!(encode(&BtValue::Int(5)), b"i5e");
    assert_eq!(decode(b"i5e").unwrap(), BtValue::Int(5));
}

#[test]
fn debug_output_shows_bytes_as_escaped_text() {
    let v = decode(b"d1:al2:\x00zi-1eee").unwrap();
    assert_eq!(alloc::format!("{v:?}"), "{\"a\": [b\"\\x00z\", -1]}");
}

// ---------------------------------------------------------------------------------------------
// Strictness: one rule at a time, then all readers against the whole table

#[test]
fn empty_input_is_an_unexpected_end() {
    assert_eq!(decode(b""), Err(BtError::UnexpectedEnd { offset: 0 }));
}

#[test]
fn trailing_bytes_after_a_value_are_rejected() {
    assert_eq!(
        decode(b"i1ei2e"),
        Err(BtError::TrailingGarbage { offset: 3 })
    );
    assert_eq!(decode(b"0:x"), Err(BtError::TrailingGarbage { offset: 2 }));
    assert_eq!(decode(b"dee"), Err(BtError::TrailingGarbage { offset: 2 }));
    assert_eq!(
        decode(b"i1e\0"),
        Err(BtError::TrailingGarbage { offset: 3 })
    );
}

#[test]
fn integers_must_not_have_leading_zeros() {
    assert_eq!(decode(b"i03e"), Err(invalid(2, InvalidReason::LeadingZero)));
    assert_eq!(
        decode(b"i-03e"),
        Err(invalid(2, InvalidReason::NegativeZero))
    );
    assert_eq!(
        decode(b"li00ee"),
        Err(invalid(3, InvalidReason::LeadingZero))
    );
    assert!(decode(b"i0e").is_ok());
    assert!(decode(b"i10e").is_ok());
}

#[test]
fn negative_zero_is_rejected() {
    assert_eq!(
        decode(b"i-0e"),
        Err(invalid(2, InvalidReason::NegativeZero))
    );
}

#[test]
fn integers_need_digits_and_only_digits() {
    for (input, offset) in [
        (&b"ie"[..], 1),
        (b"i-e", 2),
        (b"i1-e", 2),
        (b"i 1e", 1),
        (b"i1 e", 2),
        (b"iae", 1),
        (b"i0x", 2),
    ] {
        assert_eq!(
            decode(input),
            Err(invalid(offset, InvalidReason::MalformedInteger)),
            "{input:?}"
        );
    }
    assert_eq!(decode(b"i12"), Err(BtError::UnexpectedEnd { offset: 3 }));
}

#[test]
fn integers_outside_the_64_bit_ranges_are_rejected() {
    assert_eq!(
        decode(b"i-9223372036854775809e"),
        Err(BtError::IntegerOutOfRange { offset: 0 })
    );
    assert_eq!(
        decode(b"l0:i18446744073709551616ee"),
        Err(BtError::IntegerOutOfRange { offset: 3 })
    );
    let mut huge = vec![b'i'];
    huge.extend(core::iter::repeat_n(b'9', 500));
    huge.push(b'e');
    assert_eq!(decode(&huge), Err(BtError::IntegerOutOfRange { offset: 0 }));
    // A malformed integer is reported as malformed even when it is also too large.
    huge.insert(400, b'x');
    assert_eq!(
        decode(&huge),
        Err(invalid(400, InvalidReason::MalformedInteger))
    );
}

#[test]
fn string_lengths_must_be_canonical_and_fit() {
    assert_eq!(
        decode(b"03:abc"),
        Err(invalid(1, InvalidReason::LeadingZero))
    );
    assert_eq!(decode(b"00:"), Err(invalid(1, InvalidReason::LeadingZero)));
    assert_eq!(
        decode(b"0x"),
        Err(invalid(1, InvalidReason::MalformedLength))
    );
    assert_eq!(
        decode(b"3abc"),
        Err(invalid(1, InvalidReason::MalformedLength))
    );
    assert_eq!(decode(b"5:abc"), Err(BtError::UnexpectedEnd { offset: 5 }));
    assert_eq!(decode(b"12"), Err(BtError::UnexpectedEnd { offset: 2 }));
    assert_eq!(
        decode(b"184467440737095516160:"),
        Err(BtError::UnexpectedEnd { offset: 22 })
    );
    assert_eq!(decode(b"0:").unwrap(), bytes(""));
    assert_eq!(decode(b"10:0123456789").unwrap(), bytes("0123456789"));
}

#[test]
fn dict_keys_must_be_strictly_increasing() {
    assert_eq!(
        decode(b"d1:bi1e1:ai2ee"),
        Err(invalid(7, InvalidReason::UnsortedKeys))
    );
    assert_eq!(
        decode(b"d1:ai1e1:ai2ee"),
        Err(invalid(7, InvalidReason::DuplicateKey))
    );
    // Byte order: a prefix sorts first, and bytes compare unsigned.
    assert!(decode(b"d1:ai1e2:aai2ee").is_ok());
    assert_eq!(
        decode(b"d2:aai1e1:ai2ee"),
        Err(invalid(8, InvalidReason::UnsortedKeys))
    );
    assert!(decode(b"d1:zi1e1:\x80i2ee").is_ok());
    assert_eq!(
        decode(b"d1:\x80i1e1:zi2ee"),
        Err(invalid(7, InvalidReason::UnsortedKeys))
    );
    // Order is per dict: a nested dict starts afresh.
    assert!(decode(b"d1:bd1:ai1ee1:cd1:ai1eee").is_ok());
}

#[test]
fn dict_keys_must_be_strings_with_values() {
    assert_eq!(
        decode(b"di1ei2ee"),
        Err(invalid(1, InvalidReason::KeyNotString))
    );
    assert_eq!(
        decode(b"dlei1ee"),
        Err(invalid(1, InvalidReason::KeyNotString))
    );
    assert_eq!(
        decode(b"d1:ae"),
        Err(invalid(4, InvalidReason::MissingValue))
    );
    assert_eq!(decode(b"d1:a"), Err(BtError::UnexpectedEnd { offset: 4 }));
}

#[test]
fn unterminated_containers_and_stray_bytes_are_rejected() {
    assert_eq!(decode(b"l"), Err(BtError::UnexpectedEnd { offset: 1 }));
    assert_eq!(decode(b"li1e"), Err(BtError::UnexpectedEnd { offset: 4 }));
    assert_eq!(
        decode(b"d1:ai1e"),
        Err(BtError::UnexpectedEnd { offset: 7 })
    );
    assert_eq!(
        decode(b"e"),
        Err(invalid(0, InvalidReason::UnexpectedByte(b'e')))
    );
    assert_eq!(
        decode(b"lxe"),
        Err(invalid(1, InvalidReason::UnexpectedByte(b'x')))
    );
    assert_eq!(
        decode(b"-1"),
        Err(invalid(0, InvalidReason::UnexpectedByte(b'-')))
    );
}

#[test]
fn nesting_is_bounded_at_exactly_max_depth() {
    assert!(decode(&nested_lists(MAX_DEPTH)).is_ok());
    assert_eq!(
        decode(&nested_lists(MAX_DEPTH + 1)),
        Err(BtError::TooDeep { offset: MAX_DEPTH })
    );
    // Dicts count too, mixed with lists.
    let mut mixed = Vec::new();
    for _ in 0..MAX_DEPTH / 2 {
        mixed.extend_from_slice(b"d1:kl");
    }
    mixed.extend(core::iter::repeat_n(b"ee", MAX_DEPTH / 2).flatten());
    assert!(decode(&mixed).is_ok());
    let mut deeper = b"l".to_vec();
    deeper.extend_from_slice(&mixed);
    deeper.push(b'e');
    assert!(matches!(decode(&deeper), Err(BtError::TooDeep { .. })));
    // A pathological input far beyond the bound fails fast, without exhausting the stack.
    assert_eq!(
        decode(&nested_lists(1_000_000)),
        Err(BtError::TooDeep { offset: MAX_DEPTH })
    );
}

#[test]
fn every_reader_rejects_every_vector_with_the_same_error() {
    for (input, expected) in rejection_vectors() {
        assert_eq!(decode(&input), Err(expected.clone()), "decode {input:?}");
        assert_eq!(
            validate(&input),
            Err(expected.clone()),
            "validate {input:?}"
        );
        assert_eq!(
            BtListConsumer::new(&input).map(|_| ()),
            Err(expected.clone()),
            "list consumer {input:?}"
        );
        assert_eq!(
            BtDictConsumer::new(&input).map(|_| ()),
            Err(expected.clone()),
            "dict consumer {input:?}"
        );
        let mut buf = Vec::new();
        assert_eq!(
            BtListProducer::new(&mut buf)
                .append_encoded(&input)
                .map(|_| ()),
            Err(expected),
            "append_encoded {input:?}"
        );
        assert_eq!(build_raw(&input), None, "bendy adapter {input:?}");
    }
}

#[test]
fn bendy_alone_enforces_canonical_form_but_not_completeness_or_range() {
    // These rules bendy enforces itself ...
    for input in [
        &b"i03e"[..],
        b"i-0e",
        b"ie",
        b"i-e",
        b"i1.5e",
        b"03:abc",
        b"3abc",
        b"5:abc",
        b"d1:bi1e1:ai2ee",
        b"d1:ai1e1:ai2ee",
        b"di1ei2ee",
        b"d1:ae",
        b"li1e",
        b"x",
        b"e",
    ] {
        assert!(!bendy_alone_accepts(input), "bendy accepted {input:?}");
    }
    assert!(!bendy_alone_accepts(&nested_lists(MAX_DEPTH + 1)));
    assert!(bendy_alone_accepts(&nested_lists(MAX_DEPTH)));
    // ... and these are the gaps the adapter (and our validator) close.
    for input in [
        &b""[..],
        b"i1ei2e",
        b"lex",
        b"i18446744073709551616e",
        b"i-9223372036854775809e",
    ] {
        assert!(bendy_alone_accepts(input), "bendy rejected {input:?}");
        assert_eq!(build_raw(input), None, "adapter accepted {input:?}");
        assert!(decode(input).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[test]
fn integers_encode_in_canonical_decimal() {
    assert_eq!(42i32.to_bt_vec(), b"i42e");
    assert_eq!(0u64.to_bt_vec(), b"i0e");
    assert_eq!(
        (-8_000_000_000_000_000_000i64).to_bt_vec(),
        b"i-8000000000000000000e"
    );
    assert_eq!(i64::MIN.to_bt_vec(), b"i-9223372036854775808e");
    assert_eq!(
        10_000_000_000_000_000_000u64.to_bt_vec(),
        b"i10000000000000000000e"
    );
    assert_eq!(u64::MAX.to_bt_vec(), b"i18446744073709551615e");
    assert_eq!(i8::MIN.to_bt_vec(), b"i-128e");
    assert_eq!(u16::MAX.to_bt_vec(), b"i65535e");
    assert_eq!(isize::MIN.to_bt_vec(), i64::MIN.to_bt_vec());
    assert_eq!(encode(&BtValue::from(u8::MAX)), b"i255e");
}

#[test]
fn strings_and_byte_slices_encode_as_byte_strings() {
    assert_eq!("foo".to_bt_vec(), b"3:foo");
    assert_eq!(String::from("").to_bt_vec(), b"0:");
    assert_eq!(b"\x00\x01"[..].to_bt_vec(), b"2:\x00\x01");
    assert_eq!([7u8; 3].to_bt_vec(), b"3:\x07\x07\x07");
    assert_eq!(vec![0u8, 1].to_bt_vec(), b"2:\x00\x01");
    assert_eq!(bytes::Bytes::from_static(b"xyz").to_bt_vec(), b"3:xyz");
    // Other element types make lists.
    assert_eq!(vec![0u16, 1].to_bt_vec(), b"li0ei1ee");
    assert_eq!(
        vec!["a", "", "\0", "\0\0\0goo"].to_bt_vec(),
        b"l1:a0:1:\x006:\x00\x00\x00gooe"
    );
}

#[test]
fn tuples_encode_as_lists() {
    assert_eq!(
        (42, "hi", vec![1, 2, 3, 4, 5]).to_bt_vec(),
        b"li42e2:hili1ei2ei3ei4ei5eee"
    );
    assert_eq!(
        ((3, "abc", "def"), (4, 5)).to_bt_vec(),
        b"lli3e3:abc3:defeli4ei5eee"
    );
    assert_eq!(
        ("zzzzzzzzzz", (42, 42u32)).to_bt_vec(),
        b"l10:zzzzzzzzzzli42ei42eee"
    );
    assert_eq!(encode(&BtValue::from((3, 4, "hi"))), b"li3ei4e2:hie");
    let mixed = list([
        1.into(),
        2.into(),
        (3, 4, "hi").into(),
        ("foo", String::from("bar")).into(),
        (-4).into(),
    ]);
    assert_eq!(encode(&mixed), b"li1ei2eli3ei4e2:hiel3:foo3:barei-4ee");
}

#[test]
fn maps_encode_as_dicts_in_byte_order() {
    let mut m: BTreeMap<&str, i32> = BTreeMap::new();
    m.insert("zap", 0);
    m.insert("omg", -7890);
    m.insert("hi", 123);
    m.insert("bye", 456);
    assert_eq!(m.to_bt_vec(), b"d3:byei456e2:hii123e3:omgi-7890e3:zapi0ee");

    type Inner = BTreeMap<Vec<u8>, Vec<i32>>;
    let mut nested: BTreeMap<String, Vec<Inner>> = BTreeMap::new();
    let mut first = BTreeMap::new();
    first.insert(b"a".to_vec(), vec![1, 2, 3]);
    first.insert(b"b".to_vec(), vec![]);
    let mut second = BTreeMap::new();
    second.insert(b"c".to_vec(), vec![-5, 4]);
    nested.insert("foo".into(), vec![first, second]);
    nested.insert("bar".into(), vec![]);
    assert_eq!(
        nested.to_bt_vec(),
        b"d3:barle3:foold1:ali1ei2ei3ee1:bleed1:cli-5ei4eeeee"
    );

    let value = BtValue::from(BTreeMap::from([
        ("a", BtValue::from(0)),
        ("b", BtValue::from(-8_000_000_000_000_000_000i64)),
        ("c", BtValue::from(10_000_000_000_000_000_000u64)),
        ("d", BtValue::from(-123i16)),
        ("e", BtValue::from(123u16)),
    ]));
    assert_eq!(
        encode(&value),
        b"d1:ai0e1:bi-8000000000000000000e1:ci10000000000000000000e1:di-123e1:ei123ee"
    );
}

#[test]
fn encode_into_appends_to_existing_bytes() {
    let mut out = b"prefix".to_vec();
    encode_into(&list([bytes("a"), BtValue::Int(-1)]), &mut out);
    assert_eq!(out, b"prefixl1:ai-1ee");
    let collected: BtValue = [1u32, 2].into_iter().map(BtValue::from).collect();
    assert_eq!(encode(&collected), b"li1ei2ee");
}

// ---------------------------------------------------------------------------------------------
// Consumers

#[test]
fn list_consumer_reads_the_oxenc_vector() {
    let mut lc = BtListConsumer::new(b"li1ei2eli3ei4e2:hiel3:foo3:barei-4ee").unwrap();
    assert_eq!(lc.consume_integer::<i32>(), Ok(1));
    assert_eq!(lc.consume_integer::<i32>(), Ok(2));
    let mut triple = lc.consume_list_consumer().unwrap();
    assert_eq!(triple.consume_integer::<u8>(), Ok(3));
    assert_eq!(triple.consume_integer::<u8>(), Ok(4));
    assert_eq!(triple.consume_string(), Ok(&b"hi"[..]));
    triple.finish().unwrap();
    let mut pair = lc.consume_list_consumer().unwrap();
    assert_eq!(pair.consume_string(), Ok(&b"foo"[..]));
    assert_eq!(pair.consume_string(), Ok(&b"bar"[..]));
    assert!(pair.is_finished());
    assert!(lc.is_negative_integer());
    assert_eq!(lc.consume_integer::<i64>(), Ok(-4));
    assert!(lc.is_finished());
    lc.finish().unwrap();
}

#[test]
fn dict_consumer_reads_the_oxenc_vector() {
    let mut dc = BtDictConsumer::new(b"d1:Ai0e1:ali1e3:omge1:bli1ei2ei3eee").unwrap();
    assert_eq!(dc.key(), Some(&b"A"[..]));
    assert!(dc.skip_until(b"a").unwrap());
    let (key, mut a) = dc.next_list_consumer().unwrap();
    assert_eq!(key, b"a");
    assert_eq!(a.consume_integer::<i8>(), Ok(1));
    assert_eq!(a.consume_string(), Ok(&b"omg"[..]));
    let (key, mut b) = dc.next_list_consumer().unwrap();
    assert_eq!(key, b"b");
    let nums: Vec<i32> = (0..3).map(|_| b.consume_integer().unwrap()).collect();
    assert_eq!(nums, [1, 2, 3]);
    b.finish().unwrap();
    assert!(dc.is_finished());
    assert_eq!(dc.key(), None);
}

#[test]
fn a_wrong_type_read_leaves_the_consumer_unmoved() {
    let mut lc = BtListConsumer::new(b"li7e3:abce").unwrap();
    let err = lc.consume_string().unwrap_err();
    assert_eq!(
        err,
        BtError::WrongType {
            offset: 1,
            expected: BtKind::Bytes,
            found: BtKind::Integer
        }
    );
    assert!(err.is_wrong_type());
    assert!(matches!(
        lc.consume_list_data(),
        Err(BtError::WrongType { .. })
    ));
    assert!(matches!(
        lc.consume_dict_consumer(),
        Err(BtError::WrongType { .. })
    ));
    assert_eq!(lc.consume_integer::<u8>(), Ok(7));
    assert_eq!(lc.consume_string(), Ok(&b"abc"[..]));

    let mut dc = BtDictConsumer::new(b"d1:a3:xyze").unwrap();
    assert!(dc.next_integer::<u32>().unwrap_err().is_wrong_type());
    assert_eq!(dc.next_string(), Ok((&b"a"[..], &b"xyz"[..])));
}

#[test]
fn an_out_of_range_read_leaves_the_consumer_unmoved() {
    let mut lc = BtListConsumer::new(b"li300ei-1ee").unwrap();
    let err = lc.consume_integer::<u8>().unwrap_err();
    assert_eq!(err, BtError::IntegerOutOfRange { offset: 1 });
    assert!(!err.is_wrong_type());
    assert_eq!(lc.consume_integer::<u16>(), Ok(300));
    assert_eq!(
        lc.consume_integer::<u64>(),
        Err(BtError::IntegerOutOfRange { offset: 6 })
    );
    assert_eq!(lc.consume_integer::<i8>(), Ok(-1));
}

#[test]
fn reading_past_the_end_is_exhausted() {
    let mut lc = BtListConsumer::new(b"le").unwrap();
    assert!(lc.is_finished());
    assert_eq!(lc.next_kind(), None);
    assert!(!lc.is_string() && !lc.is_integer() && !lc.is_list() && !lc.is_dict());
    assert_eq!(lc.consume_string(), Err(BtError::Exhausted { offset: 1 }));
    assert_eq!(lc.skip_value(), Err(BtError::Exhausted { offset: 1 }));
    assert!(lc.consume_raw().unwrap_err().is_wrong_type());
    let mut dc = BtDictConsumer::new(b"de").unwrap();
    assert_eq!(dc.next_string(), Err(BtError::Exhausted { offset: 1 }));
    assert!(!dc.skip_until(b"").unwrap());
}

#[test]
fn kind_predicates_look_at_the_next_element() {
    let mut lc = BtListConsumer::new(b"l1:xi-1ei0eledee").unwrap();
    assert!(lc.is_string() && !lc.is_integer());
    lc.skip_value().unwrap();
    assert!(lc.is_integer() && lc.is_negative_integer() && !lc.is_unsigned_integer());
    lc.skip_value().unwrap();
    assert!(lc.is_integer() && lc.is_unsigned_integer() && !lc.is_negative_integer());
    lc.skip_value().unwrap();
    assert!(lc.is_list() && lc.next_kind() == Some(BtKind::List));
    lc.skip_value().unwrap();
    assert!(lc.is_dict());
    lc.skip_value().unwrap();
    assert!(lc.is_finished());

    let dc = BtDictConsumer::new(b"d1:ai-5ee").unwrap();
    assert!(dc.is_integer() && dc.is_negative_integer() && !dc.is_unsigned_integer());
    assert!(!dc.is_string() && !dc.is_list() && !dc.is_dict());
}

#[test]
fn raw_data_reads_return_the_exact_encoded_slices() {
    let input = b"ld1:ali1eee3:abci9eli2eee";
    let mut lc = BtListConsumer::new(input).unwrap();
    let d = lc.consume_dict_data().unwrap();
    assert_eq!(d, b"d1:ali1eee");
    assert_eq!(lc.consume_raw(), Ok(&b"3:abc"[..]));
    assert_eq!(lc.consume_raw(), Ok(&b"i9e"[..]));
    assert_eq!(lc.consume_list_data(), Ok(&b"li2ee"[..]));
    // A slice from one consumer starts another.
    let mut inner = BtDictConsumer::new(d).unwrap();
    assert_eq!(inner.next_list_data(), Ok((&b"a"[..], &b"li1ee"[..])));

    let mut dc = BtDictConsumer::new(b"d1:ad1:bi1ee1:cle1:di4ee").unwrap();
    assert_eq!(dc.next_dict_data(), Ok((&b"a"[..], &b"d1:bi1ee"[..])));
    assert_eq!(dc.next_raw(), Ok((&b"c"[..], &b"le"[..])));
    assert_eq!(dc.next_value(), Ok((&b"d"[..], BtValue::UInt(4))));
}

#[test]
fn dict_lookups_go_forward_by_key() {
    let input = b"d1:a3:one1:bi2e1:cli3ee1:dd1:xi4ee1:f0:e";
    let mut dc = BtDictConsumer::new(input).unwrap();
    assert_eq!(dc.require_string(b"a"), Ok(&b"one"[..]));
    assert_eq!(dc.maybe_integer::<u8>(b"b"), Ok(Some(2)));
    let mut c = dc.require_list(b"c").unwrap();
    assert_eq!(c.consume_integer::<u8>(), Ok(3));
    let mut d = dc.maybe_dict(b"d").unwrap().unwrap();
    assert_eq!(d.require_integer::<u8>(b"x"), Ok(4));
    // "e" is absent: the lookup stops at "f" without consuming it.
    assert_eq!(dc.maybe_string(b"e"), Ok(None));
    assert_eq!(dc.key(), Some(&b"f"[..]));
    assert_eq!(
        dc.clone().require_integer::<u8>(b"e"),
        Err(BtError::MissingKey { key: b"e".to_vec() })
    );
    assert_eq!(dc.maybe_list(b"e").map(|l| l.is_some()), Ok(false));
    assert_eq!(dc.require_string(b"f"), Ok(&b""[..]));
    // Keys already passed cannot be found again.
    assert_eq!(
        dc.require(b"a"),
        Err(BtError::MissingKey { key: b"a".to_vec() })
    );
    assert!(dc.require_dict(b"z").is_err());
}

#[test]
fn finish_reports_unconsumed_elements() {
    let mut lc = BtListConsumer::new(b"li1ei2ee").unwrap();
    lc.skip_value().unwrap();
    assert_eq!(lc.finish(), Err(BtError::ExtraElements { offset: 4 }));
    let mut dc = BtDictConsumer::new(b"d1:ai1e2:bbi2ee").unwrap();
    dc.skip_value().unwrap();
    assert_eq!(dc.finish(), Err(BtError::ExtraElements { offset: 7 }));
}

#[test]
fn consumers_only_accept_their_own_kind_of_complete_value() {
    assert_eq!(
        BtListConsumer::new(b"d1:ai1ee").map(|_| ()),
        Err(BtError::WrongType {
            offset: 0,
            expected: BtKind::List,
            found: BtKind::Dict
        })
    );
    assert_eq!(
        BtDictConsumer::new(b"i1e").map(|_| ()),
        Err(BtError::WrongType {
            offset: 0,
            expected: BtKind::Dict,
            found: BtKind::Integer
        })
    );
    // Up-front validation catches a problem even far past what is ever read.
    assert_eq!(
        BtListConsumer::new(b"li1e3:abci01ee").map(|_| ()),
        Err(invalid(11, InvalidReason::LeadingZero))
    );
}

#[test]
fn consumers_can_read_whole_values_into_bt_values() {
    let mut lc = BtListConsumer::new(b"ld1:ai1eeli-2eee").unwrap();
    assert_eq!(lc.consume_value(), Ok(dict([("a", BtValue::UInt(1))])));
    assert_eq!(lc.consume_value(), Ok(list([BtValue::Int(-2)])));
    let mut dc = BtDictConsumer::new(b"d1:k2:xye").unwrap();
    assert_eq!(dc.consume_value(), Ok(bytes("xy")));
}

#[test]
fn consumer_error_offsets_are_positions_in_the_outer_input() {
    let input = b"d1:ald1:xi300eeee";
    let mut dc = BtDictConsumer::new(input).unwrap();
    let mut l = dc.require_list(b"a").unwrap();
    let mut inner = l.consume_dict_consumer().unwrap();
    assert_eq!(
        inner.require_integer::<u8>(b"x"),
        Err(BtError::IntegerOutOfRange { offset: 9 })
    );
    assert_eq!(&input[9..14], b"i300e");
}

// ---------------------------------------------------------------------------------------------
// Producers

#[test]
fn list_producer_builds_nested_structures() {
    let mut buf = Vec::new();
    {
        let mut lp = BtListProducer::new(&mut buf);
        lp.append("abc").append(&42).extend([1, 17, -999]);
        {
            let mut sub = lp.append_list();
            sub.append(&0).append("");
        }
        lp.append_list().append_list().append_list().append("omg");
        {
            let mut d = lp.append_dict();
            d.append("foo", "bar").unwrap().append("g", &42).unwrap();
            d.append_list("h")
                .unwrap()
                .append_dict()
                .append_dict("a")
                .unwrap()
                .append_list("A")
                .unwrap()
                .append(&999);
        }
    }
    assert_eq!(
        buf,
        b"l3:abci42ei1ei17ei-999eli0e0:elll3:omgeeed3:foo3:bar1:gi42e1:hld1:ad1:Ali999eeeeeee"
    );
    assert!(decode(&buf).is_ok());
}

#[test]
fn dict_producer_enforces_strictly_increasing_keys() {
    let mut buf = Vec::new();
    let mut dp = BtDictProducer::new(&mut buf);
    dp.append("foo", "bar").unwrap();
    dp.append(b"foo\0", &-333_222_111).unwrap();
    assert_eq!(
        dp.append("foo", &1).map(|_| ()),
        Err(BtError::KeyOrder {
            key: b"foo".to_vec()
        })
    );
    assert_eq!(
        dp.append(b"foo\0", &1).map(|_| ()),
        Err(BtError::KeyOrder {
            key: b"foo\0".to_vec()
        })
    );
    assert!(dp.append_list("a").is_err());
    assert!(dp.append_dict("foo").is_err());
    assert!(dp.append_encoded("a", b"i1e").is_err());
    dp.append_list("myList")
        .unwrap()
        .append("")
        .append(&2)
        .append(&42);
    dp.append_dict("p").unwrap().append("", "").unwrap();
    for (k, v) in [("q", 1), ("r", 2), ("~", 3), ("~1", 4)] {
        dp.append(k, &v).unwrap();
    }
    dp.finish();
    assert_eq!(
        buf,
        b"d3:foo3:bar4:foo\0i-333222111e6:myListl0:i2ei42ee1:pd0:0:e1:qi1e1:ri2e1:~i3e2:~1i4ee"
    );
    assert!(decode(&buf).is_ok());
}

#[test]
fn producers_combine_with_values_and_pre_encoded_data() {
    let more = dict([
        ("b", 1.into()),
        (
            "c",
            dict([
                ("d", bytes("e")),
                ("f", list([1.into(), 2.into(), 3.into()])),
            ]),
        ),
    ]);
    let tiny = dict([("a", bytes(""))]);
    let mut buf = Vec::new();
    {
        let mut x = BtDictProducer::new(&mut buf);
        x.append("a", &42).unwrap();
        x.append("x", &tiny).unwrap();
        x.append("y", &list([tiny.clone()])).unwrap();
        x.append_encoded("z", &encode(&more)).unwrap();
    }
    assert_eq!(
        buf,
        b"d1:ai42e1:xd1:a0:e1:yld1:a0:ee1:zd1:bi1e1:cd1:d1:e1:fli1ei2ei3eeeee"
    );

    let mut buf = Vec::new();
    {
        let mut y = BtListProducer::new(&mut buf);
        y.append(&123).append(&more).append(&tiny);
        y.append_encoded(b"ld1:a0:ee").unwrap();
        y.append("~");
    }
    assert_eq!(
        buf,
        b"li123ed1:bi1e1:cd1:d1:e1:fli1ei2ei3eeeed1:a0:eld1:a0:ee1:~e"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn arb_key() -> impl Strategy<Value = Vec<u8>> {
    // A small alphabet makes equal prefixes (and so the order rules) likely.
    proptest::collection::vec(
        prop_oneof![Just(b'a'), Just(b'b'), Just(0u8), Just(0xff), any::<u8>()],
        0..4,
    )
}

fn arb_value() -> impl Strategy<Value = BtValue> {
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(BtValue::Bytes),
        any::<i64>().prop_map(BtValue::from),
        any::<u64>().prop_map(BtValue::UInt),
        Just(BtValue::UInt(0)),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(BtValue::List),
            proptest::collection::btree_map(arb_key(), inner, 0..6).prop_map(BtValue::Dict),
        ]
    })
}

/// An edit to an encoding: overwrite, insert or delete one byte.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        Just(b'e'),
        Just(b'i'),
        Just(b'l'),
        Just(b'd'),
        Just(b'0'),
        Just(b'-'),
        Just(b':'),
        b'1'..=b'9',
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        match *edit {
            Edit::Set(i, b) if !bytes.is_empty() => {
                let at = i % bytes.len();
                bytes[at] = b;
            }
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % bytes.len());
            }
            _ => {}
        }
    }
    bytes
}

/// bendy's encoder, as an independent oracle for ours.
fn bendy_encode(value: &BtValue) -> Vec<u8> {
    use bendy::encoding::{Encoder, Error, SingleItemEncoder};
    fn emit(value: &BtValue, e: SingleItemEncoder<'_>) -> Result<(), Error> {
        match value {
            BtValue::Bytes(b) => e.emit_bytes(b),
            BtValue::Int(i) => e.emit_int(*i),
            BtValue::UInt(u) => e.emit_int(*u),
            BtValue::List(l) => e.emit_list(|e| {
                for v in l {
                    e.emit_with(|se| emit(v, se))?;
                }
                Ok(())
            }),
            BtValue::Dict(d) => e.emit_dict(|mut e| {
                for (k, v) in d {
                    e.emit_pair_with(k, |se| emit(v, se))?;
                }
                Ok(())
            }),
        }
    }
    let mut encoder = Encoder::new();
    encoder.emit_with(|se| emit(value, se)).unwrap();
    encoder.get_output().unwrap()
}

/// Everything that must hold for any input at all.
fn check_input(input: &[u8]) -> Result<(), TestCaseError> {
    let decoded = decode(input);
    // decode == the validator's verdict == bendy-with-adapter == the consumers.
    prop_assert_eq!(
        validate(input),
        decoded.as_ref().map(|_| ()).map_err(Clone::clone)
    );
    prop_assert_eq!(build_raw(input), decoded.clone().ok());
    prop_assert_eq!(consume_any(input), decoded.clone());
    if let Ok(value) = decoded {
        // Canonical: whatever decodes re-encodes to exactly the input.
        prop_assert_eq!(encode(&value), input);
    }
    Ok(())
}

proptest! {
    #[test]
    fn prop_encode_then_decode_round_trips(value in arb_value()) {
        let encoded = encode(&value);
        prop_assert_eq!(decode(&encoded), Ok(value.clone()));
        prop_assert_eq!(value.to_bt_vec(), encoded);
    }

    #[test]
    fn prop_our_encoder_matches_bendys(value in arb_value()) {
        prop_assert_eq!(encode(&value), bendy_encode(&value));
    }

    #[test]
    fn prop_consumers_agree_with_decode_on_valid_input(value in arb_value()) {
        let encoded = encode(&value);
        prop_assert_eq!(consume_any(&encoded), Ok(value.clone()));
        let wrapped = encode(&BtValue::List(vec![value.clone(), value]));
        check_input(&wrapped)?;
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic_and_all_readers_agree(
        input in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        check_input(&input)?;
    }

    #[test]
    fn prop_corrupted_encodings_are_judged_consistently(
        value in arb_value(),
        edits in proptest::collection::vec(arb_edit(), 1..4),
    ) {
        check_input(&apply(encode(&value), &edits))?;
    }

    #[test]
    fn prop_producers_match_encode(
        entries in proptest::collection::btree_map(arb_key(), arb_value(), 0..8),
        extra in arb_key(),
    ) {
        let mut buf = Vec::new();
        {
            let mut dp = BtDictProducer::new(&mut buf);
            for (k, v) in &entries {
                dp.append(k, v).unwrap();
            }
            // Any key not greater than the last one is refused and writes nothing.
            if let Some(last) = entries.keys().next_back() {
                if extra <= *last {
                    prop_assert!(dp.append(&extra, &0u16).is_err());
                }
            }
        }
        prop_assert_eq!(&buf, &encode(&BtValue::Dict(entries.clone())));
        let mut buf = Vec::new();
        BtListProducer::new(&mut buf).extend(entries.values());
        prop_assert_eq!(buf, encode(&BtValue::List(entries.into_values().collect())));
    }
}
