//! serde deserialisation from bt (feature `serde`), our own and `no_std`.
//!
//! The input is validated in full first (same rules and depth bound as
//! [`decode`](super::decode)), then read in place: strings and byte strings can be borrowed
//! (`&'de str`, `&'de [u8]`). The mapping mirrors [`to_bt`](super::to_bt): a struct field or map
//! entry that is absent reads as `None` (serde's own rule for `Option` fields), `bool` accepts only
//! the integers 0 and 1, integers are range-checked for the target type
//! ([`BtError::IntegerOutOfRange`]), enums read from a string (unit variant) or a one-entry dict
//! (`{variant: content}`), and a Rust tuple or enum that does not read every element of its list
//! or dict fails with [`BtError::ExtraElements`]. `deserialize_any` hands out byte strings as
//! `str` when they are UTF-8 and as bytes otherwise.

use alloc::collections::BTreeMap;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::fmt::{self, Display};

use serde::de::{self, Deserialize, DeserializeSeed, IntoDeserializer, Visitor};

use super::{BtError, BtKind, BtValue, InvalidReason, scan};

impl de::Error for BtError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::Serde(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        Self::MissingKey {
            key: field.as_bytes().to_vec(),
        }
    }
}

/// Deserialises a `T` from exactly one canonical bt value (see the module docs for the
/// mapping). Strings and byte strings may borrow from `input`.
pub fn from_bt<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T, BtError> {
    scan::validate(input)?;
    let mut de = Deserializer { src: input, pos: 0 };
    let value = T::deserialize(&mut de)?;
    // validate() saw exactly one value and every deserialize_* method reads a whole value, so
    // this only fires if a Deserialize impl returned without reading anything.
    if de.pos == input.len() {
        Ok(value)
    } else {
        Err(BtError::TrailingGarbage { offset: de.pos })
    }
}

/// A position in validated input.
struct Deserializer<'de> {
    src: &'de [u8],
    pos: usize,
}

impl<'de> Deserializer<'de> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// The kind of the value at the cursor.
    fn kind(&self) -> Result<BtKind, BtError> {
        match self.peek() {
            None | Some(b'e') => Err(BtError::Exhausted { offset: self.pos }),
            Some(byte) => scan::kind_of(byte).ok_or(BtError::Invalid {
                offset: self.pos,
                reason: InvalidReason::UnexpectedByte(byte),
            }),
        }
    }

    fn expect(&self, expected: BtKind) -> Result<(), BtError> {
        let found = self.kind()?;
        if found == expected {
            Ok(())
        } else {
            Err(BtError::WrongType {
                offset: self.pos,
                expected,
                found,
            })
        }
    }

    fn bytes(&mut self) -> Result<&'de [u8], BtError> {
        self.expect(BtKind::Bytes)?;
        let (bytes, next) = scan::string(self.src, self.pos)?;
        self.pos = next;
        Ok(bytes)
    }

    fn str(&mut self) -> Result<&'de str, BtError> {
        let start = self.pos;
        let bytes = self.bytes()?;
        core::str::from_utf8(bytes).map_err(|_| {
            self.pos = start;
            BtError::NotUtf8 { offset: start }
        })
    }

    /// Reads an integer that must lie in `min..=max`.
    fn int(&mut self, min: i128, max: i128) -> Result<i128, BtError> {
        self.expect(BtKind::Integer)?;
        let (v, next) = scan::integer(self.src, self.pos)?;
        if v < min || v > max {
            return Err(BtError::IntegerOutOfRange { offset: self.pos });
        }
        self.pos = next;
        Ok(v)
    }

    /// Reads a list or dict: its opening byte, whatever `read` takes of its content, then the
    /// closing `e`, which must come next (anything `read` left is [`BtError::ExtraElements`]).
    fn container<T>(
        &mut self,
        kind: BtKind,
        read: impl FnOnce(&mut Self) -> Result<T, BtError>,
    ) -> Result<T, BtError> {
        self.expect(kind)?;
        self.pos += 1;
        let value = read(self)?;
        if self.peek() == Some(b'e') {
            self.pos += 1;
            Ok(value)
        } else {
            Err(BtError::ExtraElements { offset: self.pos })
        }
    }

    /// Reads a dict key (always a byte string) for serde to interpret.
    fn key(&mut self) -> Result<KeyDeserializer<'de>, BtError> {
        let offset = self.pos;
        let key = self.bytes()?;
        Ok(KeyDeserializer { key, offset })
    }

    fn skip(&mut self) -> Result<(), BtError> {
        // The depth was checked by validate(); 0 cannot trip it again.
        self.pos = scan::skip(self.src, self.pos, 0)?;
        Ok(())
    }
}

macro_rules! deserialize_int {
    ($($method:ident $visit:ident $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
            let v = self.int(i128::from(<$t>::MIN), i128::from(<$t>::MAX))?;
            // int() checked the range of $t.
            visitor.$visit(v as $t)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = BtError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        match self.kind()? {
            BtKind::Bytes => visit_text_or_bytes(self.bytes()?, visitor),
            BtKind::Integer => {
                let v = self.int(i128::from(i64::MIN), i128::from(u64::MAX))?;
                match u64::try_from(v) {
                    Ok(u) => visitor.visit_u64(u),
                    // v is within i64::MIN..0 here.
                    Err(_) => visitor.visit_i64(v as i64),
                }
            }
            BtKind::List => self.deserialize_seq(visitor),
            BtKind::Dict => self.deserialize_map(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        let v = self.int(0, 1)?;
        visitor.visit_bool(v == 1)
    }

    deserialize_int!(
        deserialize_i8 visit_i8 i8,
        deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64,
        deserialize_u8 visit_u8 u8,
        deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64
    );

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        let v = self.int(i128::from(i64::MIN), i128::from(u64::MAX))?;
        visitor.visit_i128(v)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        let v = self.int(0, i128::from(u64::MAX))?;
        // v is non-negative.
        visitor.visit_u128(v as u128)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, BtError> {
        Err(BtError::Unsupported("a floating-point number"))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, BtError> {
        Err(BtError::Unsupported("a floating-point number"))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        let start = self.pos;
        let s = self.str()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => {
                self.pos = start;
                Err(de::Error::invalid_value(
                    de::Unexpected::Str(s),
                    &"a single character",
                ))
            }
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        visitor.visit_borrowed_str(self.str()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        // bt has no null: a value that is present is Some; absence is handled by the struct/map
        // reader (serde turns a missing Option field into None).
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.container(BtKind::List, |_| Ok(()))?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, BtError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, BtError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.container(BtKind::List, |de| visitor.visit_seq(ListAccess { de }))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, BtError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, BtError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.container(BtKind::Dict, |de| visitor.visit_map(DictAccess { de }))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BtError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BtError> {
        match self.kind()? {
            BtKind::Bytes => visitor.visit_enum(self.str()?.into_deserializer()),
            BtKind::Dict => self.container(BtKind::Dict, |de| {
                if de.peek() == Some(b'e') {
                    return Err(BtError::Exhausted { offset: de.pos });
                }
                visitor.visit_enum(VariantAccess { de })
            }),
            found => Err(BtError::WrongType {
                offset: self.pos,
                expected: BtKind::Dict,
                found,
            }),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        visit_text_or_bytes(self.bytes()?, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.skip()?;
        visitor.visit_unit()
    }
}

/// The elements of a list, for serde's `SeqAccess`.
struct ListAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::SeqAccess<'de> for ListAccess<'_, 'de> {
    type Error = BtError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BtError> {
        if self.de.peek() == Some(b'e') {
            return Ok(None);
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

/// The entries of a dict, for serde's `MapAccess`.
struct DictAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::MapAccess<'de> for DictAccess<'_, 'de> {
    type Error = BtError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BtError> {
        if self.de.peek() == Some(b'e') {
            return Ok(None);
        }
        seed.deserialize(self.de.key()?).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, BtError> {
        seed.deserialize(&mut *self.de)
    }
}

/// A one-entry dict `{variant: content}`, for serde's `EnumAccess`.
struct VariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for VariantAccess<'_, 'de> {
    type Error = BtError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), BtError> {
        let variant = seed.deserialize(self.de.key()?)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = BtError;

    fn unit_variant(self) -> Result<(), BtError> {
        // A unit variant is written as a plain string; in dict form its content must be `le`,
        // the encoding of ().
        Deserialize::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, BtError> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, BtError> {
        de::Deserializer::deserialize_seq(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BtError> {
        de::Deserializer::deserialize_map(&mut *self.de, visitor)
    }
}

/// A dict key (always a byte string): read as `str` when it is UTF-8, otherwise as bytes.
struct KeyDeserializer<'de> {
    key: &'de [u8],
    offset: usize,
}

impl<'de> KeyDeserializer<'de> {
    fn str(&self) -> Result<&'de str, BtError> {
        core::str::from_utf8(self.key).map_err(|_| BtError::NotUtf8 {
            offset: self.offset,
        })
    }
}

/// Hands a byte string to `visitor` as `str` when it is UTF-8 and as bytes otherwise.
fn visit_text_or_bytes<'de, V: Visitor<'de>>(
    bytes: &'de [u8],
    visitor: V,
) -> Result<V::Value, BtError> {
    match core::str::from_utf8(bytes) {
        Ok(s) => visitor.visit_borrowed_str(s),
        Err(_) => visitor.visit_borrowed_bytes(bytes),
    }
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'de> {
    type Error = BtError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        visit_text_or_bytes(self.key, visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        visitor.visit_borrowed_str(self.str()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        visitor.visit_borrowed_bytes(self.key)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BtError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, BtError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BtError> {
        visitor.visit_enum(self.str()?.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char option unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

/// Reads any bt value (or anything a self-describing serde format offers that bt can hold) into a
/// [`BtValue`]; `from_bt::<BtValue>` accepts exactly what [`decode`](super::decode) accepts.
impl<'de> Deserialize<'de> for BtValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = BtValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bt value (byte string, integer, list or dict)")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<BtValue, E> {
        Ok(BtValue::UInt(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<BtValue, E> {
        Ok(BtValue::from(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<BtValue, E> {
        Ok(BtValue::UInt(u64::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<BtValue, E> {
        Ok(BtValue::from(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<BtValue, E> {
        Ok(BtValue::from(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<BtValue, E> {
        Ok(BtValue::Bytes(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<BtValue, A::Error> {
        let mut list = Vec::new();
        while let Some(v) = seq.next_element()? {
            list.push(v);
        }
        Ok(BtValue::List(list))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<BtValue, A::Error> {
        let mut dict = BTreeMap::new();
        while let Some((KeyBytes(k), v)) = map.next_entry()? {
            dict.insert(k, v);
        }
        Ok(BtValue::Dict(dict))
    }
}

/// A dict key read as bytes, whether the format offers it as `str` or bytes.
struct KeyBytes(Vec<u8>);

impl<'de> Deserialize<'de> for KeyBytes {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyBytes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a dict key (string or bytes)")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyBytes, E> {
                Ok(KeyBytes(v.as_bytes().to_vec()))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<KeyBytes, E> {
                Ok(KeyBytes(v.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<KeyBytes, E> {
                Ok(KeyBytes(v))
            }
        }
        deserializer.deserialize_bytes(KeyVisitor)
    }
}
