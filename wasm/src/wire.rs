//! The byte format that carries arguments into the module and results out of it.
//!
//! WebAssembly functions take and return numbers only, so everything else crosses the boundary
//! as bytes in linear memory. The format is deliberately tiny, and mirrored by
//! `wasm/js/wire.mjs`:
//!
//! | type | encoding |
//! |---|---|
//! | `u8`, `bool` | one byte (`bool`: 0 or 1, anything else is an error) |
//! | `u32` | 4 bytes, little-endian |
//! | `f64` | 8 bytes, IEEE 754 little-endian |
//! | id | an `f64` holding an integer in `0..=2^53` (JavaScript numbers are exact up to there) |
//! | bytes | a `u32` length, then that many bytes |
//! | str | bytes that must be UTF-8 |
//! | parts | a `u32` count, then that many bytes |
//!
//! Decoding never panics and never trusts a length: a count or length that runs past the end of
//! the buffer is an error before anything is allocated for it.

use bytes::Bytes;

use crate::node::{Error, ErrorCode};

/// The largest id a JavaScript number represents exactly.
pub const MAX_ID: u64 = 1 << 53;

/// Reads arguments from a call's input bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(malformed(&format!(
                "{what}: needs {n} bytes at offset {}, {} left",
                self.pos,
                self.buf.len() - self.pos
            )));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1, "u8")?[0])
    }

    /// A boolean byte (0 or 1).
    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(malformed(&format!("bool: {b} is neither 0 nor 1"))),
        }
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4, "u32")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `f64`.
    pub fn f64(&mut self) -> Result<f64, Error> {
        let b = self.take(8, "f64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// An id: an `f64` that is a whole number in `0..=2^53`.
    pub fn id(&mut self) -> Result<u64, Error> {
        let v = self.f64()?;
        f64_to_id(v).ok_or_else(|| {
            Error::new(
                ErrorCode::BadArgument,
                format!("{v} is not a valid id (a whole number from 0 to 2^53)"),
            )
        })
    }

    /// Length-prefixed bytes, borrowed from the input.
    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        self.take(n, "bytes")
    }

    /// Length-prefixed UTF-8.
    pub fn str(&mut self) -> Result<&'a str, Error> {
        let b = self.bytes()?;
        core::str::from_utf8(b)
            .map_err(|_| Error::new(ErrorCode::BadArgument, "a text argument is not UTF-8"))
    }

    /// A list of byte strings (message parts), copied out.
    pub fn parts(&mut self) -> Result<Vec<Bytes>, Error> {
        let n = self.u32()? as usize;
        // Every part needs at least its 4-byte length: refuse impossible counts before
        // allocating for them.
        if n > (self.buf.len() - self.pos) / 4 {
            return Err(malformed(&format!("parts: {n} parts cannot fit")));
        }
        let mut parts = Vec::with_capacity(n);
        for _ in 0..n {
            parts.push(Bytes::copy_from_slice(self.bytes()?));
        }
        Ok(parts)
    }

    /// Checks that every byte was consumed.
    pub fn finish(self) -> Result<(), Error> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(malformed(&format!(
                "{} unexpected bytes after the arguments",
                self.buf.len() - self.pos
            )))
        }
    }
}

/// An `f64` as an id, if it is a whole number in `0..=2^53`.
#[must_use]
pub fn f64_to_id(v: f64) -> Option<u64> {
    // `as` saturates and maps NaN to 0, so check the value first.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let id = v as u64;
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && id <= MAX_ID).then_some(id)
}

fn malformed(what: &str) -> Error {
    Error::new(
        ErrorCode::BadArgument,
        format!(
            "malformed call arguments ({what}); is the JS glue the same version as the module?"
        ),
    )
}

/// Appends results to a call's output bytes.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// A writer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    /// A boolean byte.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A little-endian `f64`.
    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// An id (see [`MAX_ID`]); ids past it are written as `MAX_ID`, which no caller reaches.
    #[allow(clippy::cast_precision_loss)] // exact: at most 2^53
    pub fn id(&mut self, v: u64) -> &mut Self {
        self.f64(v.min(MAX_ID) as f64)
    }

    /// Length-prefixed bytes. Lengths past `u32::MAX` cannot occur: the module's memory is
    /// 32-bit.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let n = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(n);
        self.out.extend_from_slice(&v[..n as usize]);
        self
    }

    /// Length-prefixed UTF-8.
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A list of byte strings.
    pub fn parts(&mut self, parts: &[Bytes]) -> &mut Self {
        self.u32(u32::try_from(parts.len()).unwrap_or(u32::MAX));
        for p in parts {
            self.bytes(p);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_type() {
        let mut out = Vec::new();
        Writer::new(&mut out)
            .u8(7)
            .bool(true)
            .u32(0xdead_beef)
            .f64(-1.5)
            .id(42)
            .bytes(b"abc")
            .str("héllo")
            .parts(&[Bytes::from_static(b"x"), Bytes::new()]);
        let mut r = Reader::new(&out);
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.bool().unwrap());
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert!((r.f64().unwrap() + 1.5).abs() < f64::EPSILON);
        assert_eq!(r.id().unwrap(), 42);
        assert_eq!(r.bytes().unwrap(), b"abc");
        assert_eq!(r.str().unwrap(), "héllo");
        assert_eq!(
            r.parts().unwrap(),
            vec![Bytes::from_static(b"x"), Bytes::new()]
        );
        r.finish().unwrap();
    }

    #[test]
    fn truncation_lies_and_leftovers_are_errors() {
        assert!(Reader::new(&[1, 0]).u32().is_err());
        // A length that runs past the end.
        assert!(Reader::new(&[9, 0, 0, 0, 1]).bytes().is_err());
        // A part count that cannot fit is refused before allocating.
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).parts().is_err());
        assert!(Reader::new(&[2]).bool().is_err());
        assert!(Reader::new(&[0xff, 0xfe]).str().is_err());
        let r = Reader::new(&[1]);
        assert_eq!(r.finish().unwrap_err().code, ErrorCode::BadArgument);
    }

    #[test]
    fn ids_are_whole_numbers_within_2_pow_53() {
        assert_eq!(f64_to_id(0.0), Some(0));
        assert_eq!(f64_to_id(9_007_199_254_740_992.0), Some(MAX_ID));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, 18_014_398_509_481_984.0] {
            assert_eq!(f64_to_id(bad), None, "{bad}");
        }
    }
}
