//! serde serialisation to bt (feature `serde`), our own and `no_std`.
//!
//! Mapping: integers (and `bool` as 0/1) → integers; `str`, `char` and `serialize_bytes` → byte
//! strings; sequences, tuples and tuple structs → lists; maps and structs → dicts with keys sorted
//! by their bytes; `None` as a struct field or map value → the entry is left out; `Some(x)` → `x`;
//! `()` and unit structs → the empty list; unit variants → the variant name as a string; other
//! variants → a one-entry dict `{name: value}`; newtype structs → their content. Floats, `None`
//! elsewhere, and map keys that are not strings or bytes are [`BtError::Unsupported`]. Output
//! nested deeper than [`MAX_DEPTH`] is refused ([`BtError::TooDeep`]) because
//! [`from_bt`](super::from_bt) would reject it.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::fmt::Display;

use serde::ser::{self, Impossible, Serialize};

use super::encode::{write_bytes, write_int};
use super::{BtError, MAX_DEPTH};

impl ser::Error for BtError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::Serde(msg.to_string())
    }
}

/// Serialises `value` to canonical bt (see the module docs for the mapping).
pub fn to_bt<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, BtError> {
    let mut out = Vec::new();
    value.serialize(&mut Serializer::new(&mut out, 0, false))?;
    Ok(out)
}

struct Serializer<'o> {
    out: &'o mut Vec<u8>,
    /// How many containers enclose the value being written.
    depth: usize,
    /// The value is a dict entry's value, where `None` means "leave the entry out".
    in_entry: bool,
    /// Set when the value was `None` in an entry (nothing was written).
    omitted: bool,
}

impl<'o> Serializer<'o> {
    const fn new(out: &'o mut Vec<u8>, depth: usize, in_entry: bool) -> Self {
        Self {
            out,
            depth,
            in_entry,
            omitted: false,
        }
    }

    /// Checks that `levels` more containers may be opened here.
    fn open(&self, levels: usize) -> Result<(), BtError> {
        if self.depth + levels > MAX_DEPTH {
            Err(BtError::TooDeep {
                offset: self.out.len(),
            })
        } else {
            Ok(())
        }
    }

    fn int(&mut self, v: i128) -> Result<(), BtError> {
        if v < i128::from(i64::MIN) || v > i128::from(u64::MAX) {
            return Err(BtError::IntegerOutOfRange {
                offset: self.out.len(),
            });
        }
        write_int(self.out, v);
        Ok(())
    }

    /// Starts a one-entry dict `{variant: …}` around an enum variant's content.
    fn variant_key(&mut self, variant: &str) {
        self.out.push(b'd');
        write_bytes(self.out, variant.as_bytes());
    }
}

/// Integer methods of [`Serializer`]: every width goes through [`Serializer::int`].
macro_rules! serialize_int {
    ($($method:ident $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), BtError> {
            self.int(i128::from(v))
        }
    )*};
}

/// Serializer methods taking one value that bt cannot hold: each fails with `$err`.
macro_rules! reject {
    ($err:expr; $($method:ident($t:ty)),* $(,)?) => {$(
        fn $method(self, _: $t) -> Result<Self::Ok, BtError> {
            Err($err)
        }
    )*};
}

impl<'a, 'o> ser::Serializer for &'a mut Serializer<'o> {
    type Ok = ();
    type Error = BtError;
    type SerializeSeq = ListSer<'a, 'o>;
    type SerializeTuple = ListSer<'a, 'o>;
    type SerializeTupleStruct = ListSer<'a, 'o>;
    type SerializeTupleVariant = ListSer<'a, 'o>;
    type SerializeMap = DictSer<'a, 'o>;
    type SerializeStruct = DictSer<'a, 'o>;
    type SerializeStructVariant = DictSer<'a, 'o>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<(), BtError> {
        self.int(i128::from(u8::from(v)))
    }

    serialize_int!(
        serialize_i8 i8,
        serialize_i16 i16,
        serialize_i32 i32,
        serialize_i64 i64,
        serialize_u8 u8,
        serialize_u16 u16,
        serialize_u32 u32,
        serialize_u64 u64
    );

    fn serialize_i128(self, v: i128) -> Result<(), BtError> {
        self.int(v)
    }

    fn serialize_u128(self, v: u128) -> Result<(), BtError> {
        match i128::try_from(v) {
            Ok(v) => self.int(v),
            Err(_) => Err(BtError::IntegerOutOfRange {
                offset: self.out.len(),
            }),
        }
    }

    reject!(
        BtError::Unsupported("a floating-point number");
        serialize_f32(f32),
        serialize_f64(f64)
    );

    fn serialize_char(self, v: char) -> Result<(), BtError> {
        write_bytes(self.out, v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), BtError> {
        write_bytes(self.out, v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), BtError> {
        write_bytes(self.out, v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), BtError> {
        if self.in_entry {
            self.omitted = true;
            Ok(())
        } else {
            Err(BtError::Unsupported(
                "None outside a struct field or map value",
            ))
        }
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), BtError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), BtError> {
        self.open(1)?;
        self.out.extend_from_slice(b"le");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), BtError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), BtError> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), BtError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), BtError> {
        self.open(1)?;
        self.variant_key(variant);
        value.serialize(&mut Serializer::new(self.out, self.depth + 1, false))?;
        self.out.push(b'e');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<ListSer<'a, 'o>, BtError> {
        ListSer::open(self, false)
    }

    fn serialize_tuple(self, _: usize) -> Result<ListSer<'a, 'o>, BtError> {
        ListSer::open(self, false)
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<ListSer<'a, 'o>, BtError> {
        ListSer::open(self, false)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<ListSer<'a, 'o>, BtError> {
        self.open(2)?;
        self.variant_key(variant);
        ListSer::open(self, true)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<DictSer<'a, 'o>, BtError> {
        DictSer::open(self, None)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<DictSer<'a, 'o>, BtError> {
        DictSer::open(self, None)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<DictSer<'a, 'o>, BtError> {
        DictSer::open(self, Some(variant))
    }
}

/// Writes a list (for sequences, tuples and tuple variants) element by element.
struct ListSer<'a, 'o> {
    ser: &'a mut Serializer<'o>,
    /// Depth of the list's elements.
    depth: usize,
    /// The list is the content of a `{variant: …}` dict that must be closed too.
    in_variant: bool,
}

impl<'a, 'o> ListSer<'a, 'o> {
    fn open(ser: &'a mut Serializer<'o>, in_variant: bool) -> Result<Self, BtError> {
        let levels = usize::from(in_variant) + 1;
        ser.open(levels)?;
        ser.out.push(b'l');
        Ok(Self {
            depth: ser.depth + levels,
            ser,
            in_variant,
        })
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BtError> {
        value.serialize(&mut Serializer::new(self.ser.out, self.depth, false))
    }

    fn close(self) {
        self.ser.out.push(b'e');
        if self.in_variant {
            self.ser.out.push(b'e');
        }
    }
}

/// serde's four list-shaped traits, all written by [`ListSer`].
macro_rules! list_ser {
    ($($trait:ident $method:ident),*) => {$(
        impl ser::$trait for ListSer<'_, '_> {
            type Ok = ();
            type Error = BtError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BtError> {
                self.element(value)
            }

            fn end(self) -> Result<(), BtError> {
                self.close();
                Ok(())
            }
        }
    )*};
}

list_ser!(
    SerializeSeq serialize_element,
    SerializeTuple serialize_element,
    SerializeTupleStruct serialize_field,
    SerializeTupleVariant serialize_field
);

/// Collects a dict's entries (encoded separately), then writes them sorted by key.
///
/// serde hands struct fields over in declaration order and map entries in the map's order, but
/// bt needs byte order, so the entries are buffered; memory is proportional to the output.
struct DictSer<'a, 'o> {
    ser: &'a mut Serializer<'o>,
    /// Depth of the dict's values.
    depth: usize,
    /// `Some(name)` for a struct variant: the dict is wrapped in `{name: …}`.
    variant: Option<&'static str>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    pending_key: Option<Vec<u8>>,
}

impl<'a, 'o> DictSer<'a, 'o> {
    fn open(ser: &'a mut Serializer<'o>, variant: Option<&'static str>) -> Result<Self, BtError> {
        let levels = usize::from(variant.is_some()) + 1;
        ser.open(levels)?;
        Ok(Self {
            depth: ser.depth + levels,
            ser,
            variant,
            entries: Vec::new(),
            pending_key: None,
        })
    }

    fn entry<T: Serialize + ?Sized>(&mut self, key: Vec<u8>, value: &T) -> Result<(), BtError> {
        let mut encoded = Vec::new();
        let mut ser = Serializer::new(&mut encoded, self.depth, true);
        value.serialize(&mut ser)?;
        if !ser.omitted {
            self.entries.push((key, encoded));
        }
        Ok(())
    }

    fn close(mut self) -> Result<(), BtError> {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = self.entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(BtError::KeyOrder {
                key: pair[1].0.clone(),
            });
        }
        let out = &mut *self.ser.out;
        if let Some(variant) = self.variant {
            out.push(b'd');
            write_bytes(out, variant.as_bytes());
        }
        out.push(b'd');
        for (key, value) in &self.entries {
            write_bytes(out, key);
            out.extend_from_slice(value);
        }
        out.push(b'e');
        if self.variant.is_some() {
            out.push(b'e');
        }
        Ok(())
    }
}

impl ser::SerializeMap for DictSer<'_, '_> {
    type Ok = ();
    type Error = BtError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BtError> {
        self.pending_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BtError> {
        let key = self.pending_key.take().ok_or_else(|| {
            BtError::Serde("serialize_value called before serialize_key".to_string())
        })?;
        self.entry(key, value)
    }

    fn end(self) -> Result<(), BtError> {
        self.close()
    }
}

/// Structs and struct variants: named fields, written by [`DictSer`].
macro_rules! struct_ser {
    ($($trait:ident),*) => {$(
        impl ser::$trait for DictSer<'_, '_> {
            type Ok = ();
            type Error = BtError;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), BtError> {
                self.entry(key.as_bytes().to_vec(), value)
            }

            fn end(self) -> Result<(), BtError> {
                self.close()
            }
        }
    )*};
}

struct_ser!(SerializeStruct, SerializeStructVariant);

/// Serialises a map key to its bytes: strings, bytes, chars, unit variants (by name) and
/// newtypes around those. Anything else has no bt key form.
struct KeySerializer;

const BAD_KEY: BtError = BtError::Unsupported("a dict key that is not a string or bytes");

impl ser::Serializer for KeySerializer {
    type Ok = Vec<u8>;
    type Error = BtError;
    type SerializeSeq = Impossible<Vec<u8>, BtError>;
    type SerializeTuple = Impossible<Vec<u8>, BtError>;
    type SerializeTupleStruct = Impossible<Vec<u8>, BtError>;
    type SerializeTupleVariant = Impossible<Vec<u8>, BtError>;
    type SerializeMap = Impossible<Vec<u8>, BtError>;
    type SerializeStruct = Impossible<Vec<u8>, BtError>;
    type SerializeStructVariant = Impossible<Vec<u8>, BtError>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_str(self, v: &str) -> Result<Vec<u8>, BtError> {
        Ok(v.as_bytes().to_vec())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Vec<u8>, BtError> {
        Ok(v.to_vec())
    }

    fn serialize_char(self, v: char) -> Result<Vec<u8>, BtError> {
        Ok(v.encode_utf8(&mut [0; 4]).as_bytes().to_vec())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Vec<u8>, BtError> {
        Ok(variant.as_bytes().to_vec())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, BtError> {
        value.serialize(self)
    }

    reject!(
        BAD_KEY;
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> Result<Vec<u8>, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Vec<u8>, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_unit(self) -> Result<Vec<u8>, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Vec<u8>, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, BtError> {
        Err(BAD_KEY)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, BtError> {
        Err(BAD_KEY)
    }
}

/// serialises a [`BtValue`](super::BtValue): byte strings through `serialize_bytes`, so any
/// serde format sees bytes, and dicts as maps with byte keys.
impl Serialize for super::BtValue {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ser::{SerializeMap, SerializeSeq};
        match self {
            Self::Bytes(b) => serializer.serialize_bytes(b),
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::UInt(u) => serializer.serialize_u64(*u),
            Self::List(list) => {
                let mut seq = serializer.serialize_seq(Some(list.len()))?;
                for v in list {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Self::Dict(dict) => {
                let mut map = serializer.serialize_map(Some(dict.len()))?;
                for (k, v) in dict {
                    map.serialize_entry(&ByteKey(k), v)?;
                }
                map.end()
            }
        }
    }
}

/// Serialises a dict key as bytes (a `Vec<u8>` would serialise as a sequence).
struct ByteKey<'a>(&'a [u8]);

impl Serialize for ByteKey<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}
