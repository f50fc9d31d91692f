//! ZMTP connection metadata (the property list carried by READY and CURVE's INITIATE).
//!
//! ```text
//! metadata = *( name_len(1) name  value_len(4, u32 BE) value )
//! ```
//!
//! Encoding enforces the RFC (names 1..=255 bytes, values below 2^31). Decoding mirrors libzmq's
//! `mechanism_t::parse_metadata` exactly, so we accept and refuse the same peers:
//!
//! * it loops while more than one byte is left; a single leftover byte is an error;
//! * a name or value length running past the end is an error, **except** that a list ending
//!   exactly after a name (no room for the 4-byte value length) is accepted and that last name is
//!   dropped: libzmq breaks out of its loop with nothing left over and reports success;
//! * zero-length names are accepted (the RFC forbids them);
//! * names are compared case-sensitively, and duplicates are kept in order. Lookups return the
//!   first occurrence, as libzmq's `std::map::insert` keeps the first value.

use alloc::vec::Vec;

use bytes::{BufMut, Bytes, BytesMut};

use super::{WireText, ZmtpError};

/// The largest value length we encode (the RFC's 2^31 − 1).
pub const MAX_VALUE_LEN: usize = (1 << 31) - 1;

/// An ordered list of connection properties (name, value), duplicates allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: Vec<(Bytes, Bytes)>,
}

impl Metadata {
    /// An empty property list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a property, checking that it can be encoded (name 1..=255 bytes, value below
    /// 2^31 bytes).
    pub fn push(
        &mut self,
        name: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<(), ZmtpError> {
        let name = name.into();
        let value = value.into();
        if name.is_empty() || name.len() > 255 {
            return Err(ZmtpError::InvalidProperty {
                name: WireText::new(name),
                reason: "names must be 1 to 255 bytes long",
            });
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(ZmtpError::InvalidProperty {
                name: WireText::new(name),
                reason: "values must be shorter than 2^31 bytes",
            });
        }
        self.entries.push((name, value));
        Ok(())
    }

    /// The value of the first property named exactly `name` (case-sensitive).
    #[must_use]
    pub fn get(&self, name: impl AsRef<[u8]>) -> Option<&Bytes> {
        let name = name.as_ref();
        self.entries
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }

    /// Every value of properties named exactly `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a Bytes> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }

    /// The properties in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.entries.iter().map(|(n, v)| (n, v))
    }

    /// Number of properties.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no properties.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps only the properties for which `keep(name, value)` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) {
        self.entries.retain(|(n, v)| keep(n, v));
    }

    /// Length of the encoded form.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| 1 + n.len() + 4 + v.len())
            .sum()
    }

    /// Appends the encoded list to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        for (name, value) in &self.entries {
            // Lossless: `push` checks names ≤ 255 and values < 2^31; `decode` reads a 1-byte name
            // length and a u32 value length.
            out.put_u8(name.len() as u8);
            out.extend_from_slice(name);
            out.put_u32(value.len() as u32);
            out.extend_from_slice(value);
        }
    }

    /// The encoded list.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// Decodes a property list with libzmq's rules (see the module docs). Names and values are
    /// O(1) slices of `data`.
    pub fn decode(data: &Bytes) -> Result<Self, ZmtpError> {
        let mut entries = Vec::new();
        let mut pos = 0usize;
        let end = data.len();
        while end - pos > 1 {
            let name_len = usize::from(data[pos]);
            pos += 1;
            if end - pos < name_len {
                return Err(ZmtpError::BadMetadata("property name runs past the end"));
            }
            let name = data.slice(pos..pos + name_len);
            pos += name_len;
            if end - pos < 4 {
                if pos == end {
                    // libzmq's quirk: a trailing name with no value is accepted and dropped.
                    break;
                }
                return Err(ZmtpError::BadMetadata("value length runs past the end"));
            }
            let value_len =
                u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
            pos += 4;
            let value_len = usize::try_from(value_len).unwrap_or(usize::MAX);
            if end - pos < value_len {
                return Err(ZmtpError::BadMetadata("property value runs past the end"));
            }
            entries.push((name, data.slice(pos..pos + value_len)));
            pos += value_len;
        }
        if pos != end {
            return Err(ZmtpError::BadMetadata("one trailing byte"));
        }
        Ok(Self { entries })
    }
}

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a Bytes, &'a Bytes);
    type IntoIter = core::iter::Map<
        core::slice::Iter<'a, (Bytes, Bytes)>,
        fn(&'a (Bytes, Bytes)) -> (&'a Bytes, &'a Bytes),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(n, v)| (n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn hex(s: &str) -> Bytes {
        crate::encoding::hex::decode(s).unwrap().into()
    }

    #[test]
    fn decodes_libzmq_ready_metadata() {
        // null-handshake-capture.txt, DEALER with routing id "dealer-A" (READY body after 6 bytes).
        let m = Metadata::decode(&hex(
            "0b536f636b65742d54797065000000064445414c4552084964656e74697479000000086465616c65722d41",
        ))
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("Socket-Type").unwrap().as_ref(), b"DEALER");
        assert_eq!(m.get(b"Identity").unwrap().as_ref(), b"dealer-A");
        // ROUTER with its empty Identity.
        let m = Metadata::decode(&hex(
            "0b536f636b65742d5479706500000006524f55544552084964656e7469747900000000",
        ))
        .unwrap();
        assert_eq!(m.get("Socket-Type").unwrap().as_ref(), b"ROUTER");
        assert_eq!(m.get("Identity").unwrap().as_ref(), b"");
        assert_eq!(m.get("identity"), None, "case-sensitive");
    }

    #[test]
    fn encodes_in_insertion_order() {
        let mut m = Metadata::new();
        m.push("Socket-Type", "ROUTER").unwrap();
        m.push("Identity", "").unwrap();
        assert_eq!(
            m.to_bytes(),
            hex("0b536f636b65742d5479706500000006524f55544552084964656e7469747900000000")
        );
        assert_eq!(m.encoded_len(), 35);
    }

    #[test]
    fn push_validates_names_and_values() {
        let mut m = Metadata::new();
        assert!(m.push("", "x").is_err());
        assert!(m.push(vec![b'a'; 256], "x").is_err());
        assert!(m.push(vec![b'a'; 255], "x").is_ok());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn empty_and_zero_length_names() {
        assert!(Metadata::decode(&Bytes::new()).unwrap().is_empty());
        // name_len 0, value "v": accepted (libzmq does, the RFC does not).
        let m = Metadata::decode(&Bytes::from_static(b"\x00\x00\x00\x00\x01v")).unwrap();
        assert_eq!(m.get(b"").unwrap().as_ref(), b"v");
    }

    #[test]
    fn refuses_one_trailing_byte() {
        let mut data = hex("0b536f636b65742d54797065000000064445414c4552").to_vec();
        data.push(0);
        assert_eq!(
            Metadata::decode(&data.into()),
            Err(ZmtpError::BadMetadata("one trailing byte"))
        );
        assert!(Metadata::decode(&Bytes::from_static(b"\x05")).is_err());
    }

    #[test]
    fn refuses_overruns() {
        // Name longer than the data.
        assert!(Metadata::decode(&Bytes::from_static(b"\x05ab")).is_err());
        // Value longer than the data.
        assert!(Metadata::decode(&Bytes::from_static(b"\x01a\x00\x00\x00\x05abc")).is_err());
        // Value length itself cut short.
        assert!(Metadata::decode(&Bytes::from_static(b"\x01a\x00\x00")).is_err());
        // Huge value length.
        assert!(Metadata::decode(&Bytes::from_static(b"\x01a\xff\xff\xff\xff")).is_err());
    }

    #[test]
    fn mirrors_libzmq_trailing_name_quirk() {
        // "\x01a" then nothing: libzmq stops with 0 bytes left and succeeds; the name is dropped.
        let m = Metadata::decode(&Bytes::from_static(b"\x01a")).unwrap();
        assert!(m.is_empty());
        // After a complete property too.
        let m = Metadata::decode(&Bytes::from_static(b"\x01k\x00\x00\x00\x01v\x02ab")).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn duplicates_keep_order_and_first_wins() {
        let mut m = Metadata::new();
        m.push("X-A", "1").unwrap();
        m.push("X-A", "2").unwrap();
        let d = Metadata::decode(&m.to_bytes()).unwrap();
        assert_eq!(d.get("X-A").unwrap().as_ref(), b"1");
        assert_eq!(d.get_all(b"X-A").count(), 2);
        let mut d = d;
        d.retain(|_, v| v == b"2");
        assert_eq!(d.get("X-A").unwrap().as_ref(), b"2");
    }

    fn arb_metadata() -> impl Strategy<Value = Metadata> {
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 1..=255),
                proptest::collection::vec(any::<u8>(), 0..64),
            ),
            0..6,
        )
        .prop_map(|entries| {
            let mut m = Metadata::new();
            for (n, v) in entries {
                m.push(n, v).unwrap();
            }
            m
        })
    }

    proptest! {
        #[test]
        fn round_trips(m in arb_metadata()) {
            let enc = m.to_bytes();
            prop_assert_eq!(enc.len(), m.encoded_len());
            prop_assert_eq!(Metadata::decode(&enc).unwrap(), m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = Metadata::decode(&data.clone().into()) {
                // Whatever decodes re-encodes to a prefix of the input (a dropped trailing name is
                // the only thing that can be lost).
                let enc = m.to_bytes();
                prop_assert!(data.starts_with(&enc));
            }
        }
    }
}
