//! ZMTP frames: an incremental, limit-checking decoder and the encoders.
//!
//! ```text
//! frame = flags(1) size body
//! flags : bit0 MORE (0x01)  bit1 LONG (0x02)  bit2 COMMAND (0x04)  bits 3-7 reserved
//! size  : LONG=0 -> 1 byte (0..=255);  LONG=1 -> 8 bytes, u64 big-endian
//! ```
//!
//! The decoder follows zmq.rs's state enum (flags → size → body) but adds the limits libzmq has:
//! the declared size is checked against the limit the moment the size field is complete, before
//! any body byte is buffered, and the body buffer only ever grows with bytes that actually
//! arrived, so a peer declaring 2^62 bytes costs nothing until it sends them (and is refused at
//! once when a limit is set). Completed bodies leave the decoder as [`Bytes`] without a copy;
//! bodies of 1 KiB or more are uniquely owned, so a consumer can turn them back into `BytesMut`
//! and decrypt in place.

#[cfg(any(test, feature = "internals"))]
use bytes::BufMut;
use bytes::{Bytes, BytesMut};

/// Bodies at least this large leave the decoder uniquely owned (see `FrameDecoder::take_body`).
const UNIQUE_BODY_THRESHOLD: usize = 1024;

use super::ZmtpError;

/// Flag bit: more frames of the same message follow.
pub const MORE: u8 = 0x01;
/// Flag bit: the size field is 8 bytes long.
pub const LONG: u8 = 0x02;
/// Flag bit: the frame is a command.
pub const COMMAND: u8 = 0x04;

/// The largest body that uses the 1-byte size form; larger bodies use the 8-byte form.
pub const MAX_SHORT_SIZE: u64 = 255;
/// The longest frame header (flags + 8-byte size).
pub const MAX_HEADER_LEN: usize = 9;

/// The hard ceiling on any frame body, limit or not: RFC 23 allows sizes up to 2^63 − 1, and a
/// body must also fit in this platform's address space (matters on 32-bit targets).
pub const ABSOLUTE_MAX_FRAME_SIZE: u64 = if (isize::MAX as u64) < (i64::MAX as u64) {
    isize::MAX as u64
} else {
    i64::MAX as u64
};

/// A frame header: what precedes a body on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// More frames of the same message follow (never set on a command).
    pub more: bool,
    /// This is a command frame.
    pub command: bool,
    /// Body size in bytes.
    pub size: u64,
}

impl FrameHeader {
    /// The header of a data frame.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn data(size: u64, more: bool) -> Self {
        Self {
            more,
            command: false,
            size,
        }
    }

    /// The header of a command frame.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn command(size: u64) -> Self {
        Self {
            more: false,
            command: true,
            size,
        }
    }

    /// The flags byte as we send it: reserved bits zero, LONG iff the size exceeds 255.
    #[must_use]
    pub const fn flags(&self) -> u8 {
        let mut f = 0;
        if self.more {
            f |= MORE;
        }
        if self.command {
            f |= COMMAND;
        }
        if self.size > MAX_SHORT_SIZE {
            f |= LONG;
        }
        f
    }

    /// Encoded length of this header: 2 or 9 bytes.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn encoded_len(&self) -> usize {
        if self.size > MAX_SHORT_SIZE { 9 } else { 2 }
    }

    /// The header bytes (the first [`FrameHeader::encoded_len`] bytes of the array are valid).
    #[must_use]
    pub fn to_bytes(self) -> ([u8; MAX_HEADER_LEN], usize) {
        let mut out = [0u8; MAX_HEADER_LEN];
        out[0] = self.flags();
        if self.size > MAX_SHORT_SIZE {
            out[1..9].copy_from_slice(&self.size.to_be_bytes());
            (out, 9)
        } else {
            // Lossless: size ≤ 255 in this branch.
            out[1] = self.size as u8;
            (out, 2)
        }
    }

    /// Appends the header to `out`.
    pub fn write(&self, out: &mut BytesMut) {
        let (bytes, len) = self.to_bytes();
        out.extend_from_slice(&bytes[..len]);
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// More frames of the same message follow.
    pub more: bool,
    /// This is a command frame (never combined with `more`: the decoder refuses that).
    pub command: bool,
    /// The body.
    pub body: Bytes,
}

impl Frame {
    /// A data frame.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn data(body: impl Into<Bytes>, more: bool) -> Self {
        Self {
            more,
            command: false,
            body: body.into(),
        }
    }

    /// A command frame with a complete command body (name length, name, data).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn command(body: impl Into<Bytes>) -> Self {
        Self {
            more: false,
            command: true,
            body: body.into(),
        }
    }

    /// This frame's header.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn header(&self) -> FrameHeader {
        FrameHeader {
            more: self.more,
            command: self.command,
            size: self.body.len() as u64,
        }
    }

    /// Appends the encoded frame (header and body) to `out`.
    #[cfg(any(test, feature = "internals"))]
    pub fn write(&self, out: &mut BytesMut) {
        write_frame(out, self.more, self.command, &self.body);
    }
}

/// Appends one frame to `out`.
#[cfg(any(test, feature = "internals"))]
pub fn write_frame(out: &mut BytesMut, more: bool, command: bool, body: &[u8]) {
    let header = FrameHeader {
        more,
        command,
        size: body.len() as u64,
    };
    out.reserve(header.encoded_len() + body.len());
    header.write(out);
    out.extend_from_slice(body);
}

/// Checks a command name for encoding (1..=255 bytes) and returns its length byte.
#[cfg(any(test, feature = "internals"))]
pub fn command_name_len(name: &[u8]) -> Result<u8, ZmtpError> {
    match u8::try_from(name.len()) {
        Ok(len) if len > 0 => Ok(len),
        _ => Err(ZmtpError::InvalidCommandName { len: name.len() }),
    }
}

/// Builds a command body: name length, name, data.
#[cfg(any(test, feature = "internals"))]
pub fn command_body(name: &[u8], data: &[u8]) -> Result<BytesMut, ZmtpError> {
    let len = command_name_len(name)?;
    let mut body = BytesMut::with_capacity(1 + name.len() + data.len());
    body.put_u8(len);
    body.extend_from_slice(name);
    body.extend_from_slice(data);
    Ok(body)
}

/// Appends a command frame (`name` + `data`) to `out`.
#[cfg(any(test, feature = "internals"))]
pub fn write_command(out: &mut BytesMut, name: &[u8], data: &[u8]) -> Result<(), ZmtpError> {
    let len = command_name_len(name)?;
    let header = FrameHeader::command((1 + name.len() + data.len()) as u64);
    out.reserve(header.encoded_len() + header.size as usize);
    header.write(out);
    out.put_u8(len);
    out.extend_from_slice(name);
    out.extend_from_slice(data);
    Ok(())
}

/// Appends a multipart message: MORE on every frame but the last. An empty slice writes nothing
/// (a ZMTP message has at least one frame; callers refuse empty messages before this).
#[cfg(any(test, feature = "internals"))]
pub fn write_message(out: &mut BytesMut, parts: &[Bytes]) {
    let n = parts.len();
    for (i, part) in parts.iter().enumerate() {
        write_frame(out, i + 1 < n, false, part);
    }
}

#[derive(Debug, Clone)]
enum State {
    Flags,
    ShortSize { flags: u8 },
    LongSize { flags: u8, got: u8, acc: u64 },
    Body { flags: u8, remaining: u64 },
    Failed(ZmtpError),
}

/// Incremental frame decoder with a body-size limit.
///
/// Feed it any chunking of the stream; it returns one frame at a time. After an error it stays
/// failed and returns the same error.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    state: State,
    max_size: Option<u64>,
    buf: BytesMut,
}

impl FrameDecoder {
    /// A decoder refusing bodies larger than `max_size` bytes (`None` = no limit beyond
    /// [`ABSOLUTE_MAX_FRAME_SIZE`]).
    #[must_use]
    pub fn new(max_size: Option<u64>) -> Self {
        Self {
            state: State::Flags,
            max_size,
            buf: BytesMut::new(),
        }
    }

    /// The body-size limit in force.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn max_size(&self) -> Option<u64> {
        self.max_size
    }

    /// Changes the limit. It applies from the next frame header on; the session changes it only
    /// at frame boundaries (from the handshake cap to the traffic limit).
    pub fn set_max_size(&mut self, max_size: Option<u64>) {
        self.max_size = max_size;
    }

    /// True between frames (no partial header or body buffered).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn is_at_boundary(&self) -> bool {
        matches!(self.state, State::Flags)
    }

    /// Body bytes buffered for the frame in progress.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Consumes bytes from the front of `input` (advancing it) until one frame is complete.
    ///
    /// Returns `Ok(Some(frame))` as soon as a frame is complete (the rest of `input` is left
    /// for the next call), `Ok(None)` once `input` is exhausted mid-frame.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, ZmtpError> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Flags => {
                    let Some(flags) = take_byte(input) else {
                        return Ok(None);
                    };
                    if flags & COMMAND != 0 && flags & MORE != 0 {
                        return Err(self.fail(ZmtpError::CommandWithMore));
                    }
                    self.state = if flags & LONG != 0 {
                        State::LongSize {
                            flags,
                            got: 0,
                            acc: 0,
                        }
                    } else {
                        State::ShortSize { flags }
                    };
                }
                State::ShortSize { flags } => {
                    let Some(size) = take_byte(input) else {
                        return Ok(None);
                    };
                    self.begin_body(flags, u64::from(size))?;
                }
                State::LongSize {
                    flags,
                    mut got,
                    mut acc,
                } => {
                    while got < 8 {
                        let Some(b) = take_byte(input) else {
                            self.state = State::LongSize { flags, got, acc };
                            return Ok(None);
                        };
                        acc = (acc << 8) | u64::from(b);
                        got += 1;
                    }
                    self.begin_body(flags, acc)?;
                }
                State::Body { flags, remaining } => {
                    if remaining > 0 {
                        // Grows only with bytes actually received, never with the declared size.
                        let n = usize::try_from(remaining)
                            .unwrap_or(usize::MAX)
                            .min(input.len());
                        if n == 0 {
                            return Ok(None);
                        }
                        self.buf.extend_from_slice(&input[..n]);
                        *input = &input[n..];
                        let remaining = remaining - n as u64;
                        self.state = State::Body { flags, remaining };
                        if remaining > 0 {
                            return Ok(None);
                        }
                    }
                    self.state = State::Flags;
                    return Ok(Some(Frame {
                        more: flags & MORE != 0,
                        command: flags & COMMAND != 0,
                        body: self.take_body(),
                    }));
                }
            }
        }
    }

    /// Hands out the completed body. A large body takes the whole buffer, so it is uniquely
    /// owned and a CURVE session can decrypt it in place instead of copying it; a small one is
    /// split off, so the buffer's spare capacity serves the next frames without allocating
    /// (copying a small body costs less than a fresh allocation per frame).
    fn take_body(&mut self) -> Bytes {
        if self.buf.len() >= UNIQUE_BODY_THRESHOLD {
            core::mem::take(&mut self.buf).freeze()
        } else {
            self.buf.split().freeze()
        }
    }

    fn begin_body(&mut self, flags: u8, size: u64) -> Result<(), ZmtpError> {
        let limit = self
            .max_size
            .map_or(ABSOLUTE_MAX_FRAME_SIZE, |m| m.min(ABSOLUTE_MAX_FRAME_SIZE));
        if size > limit {
            return Err(self.fail(ZmtpError::FrameTooLarge { size, limit }));
        }
        self.state = State::Body {
            flags,
            remaining: size,
        };
        Ok(())
    }

    fn fail(&mut self, e: ZmtpError) -> ZmtpError {
        self.buf = BytesMut::new();
        self.state = State::Failed(e.clone());
        e
    }
}

fn take_byte(input: &mut &[u8]) -> Option<u8> {
    let (&b, rest) = input.split_first()?;
    *input = rest;
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn decode_all(dec: &mut FrameDecoder, mut input: &[u8]) -> Result<Vec<Frame>, ZmtpError> {
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut input)? {
            out.push(f);
        }
        assert!(input.is_empty());
        Ok(out)
    }

    fn encode(frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        for f in frames {
            f.write(&mut out);
        }
        out
    }

    #[test]
    fn large_decoded_bodies_are_uniquely_owned() {
        // A CURVE session opens large boxes in place; that needs the body to be the only
        // reference (small ones are cheaper to copy than to allocate for).
        let mut dec = FrameDecoder::new(None);
        let mut wire = Vec::new();
        for body in [&[1u8; 1024][..], &[7u8; 70_000][..], &[2u8; 5000][..]] {
            let mut f = BytesMut::new();
            write_frame(&mut f, false, false, body);
            wire.extend_from_slice(&f);
        }
        let mut input = &wire[..];
        for _ in 0..3 {
            let frame = dec.decode(&mut input).unwrap().unwrap();
            let len = frame.body.len();
            assert!(
                frame.body.try_into_mut().is_ok(),
                "body of {len} bytes shares its allocation"
            );
        }
    }

    #[test]
    fn short_and_long_headers_at_the_boundary() {
        for (size, header) in [
            (0usize, vec![0x00, 0x00]),
            (1, vec![0x00, 0x01]),
            (255, vec![0x00, 0xff]),
            (256, vec![0x02, 0, 0, 0, 0, 0, 0, 1, 0]),
            (300, vec![0x02, 0, 0, 0, 0, 0, 0, 1, 0x2c]),
            (70_000, vec![0x02, 0, 0, 0, 0, 0, 1, 0x11, 0x70]),
        ] {
            let f = Frame::data(vec![0x78; size], false);
            let enc = encode(core::slice::from_ref(&f));
            assert_eq!(&enc[..header.len()], header.as_slice(), "size {size}");
            assert_eq!(enc.len(), header.len() + size);
            let mut d = FrameDecoder::new(Some(1 << 20));
            assert_eq!(decode_all(&mut d, &enc).unwrap(), vec![f]);
        }
    }

    #[test]
    fn encodes_flags_like_libzmq() {
        assert_eq!(FrameHeader::data(5, true).to_bytes().0[..2], [0x01, 5]);
        assert_eq!(FrameHeader::command(7).to_bytes().0[..2], [0x04, 7]);
        assert_eq!(FrameHeader::command(300).flags(), 0x06);
        assert_eq!(FrameHeader::data(300, true).flags(), 0x03);
    }

    #[test]
    fn accepts_long_form_for_small_sizes_and_ignores_reserved_bits() {
        let input = [
            0x02,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            3,
            b'a',
            b'b',
            b'c', // long form, 3 bytes
            0xf8 | MORE,
            1,
            b'x', // reserved bits set, MORE
            0x0a,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0, // reserved 0x08 + LONG, empty body
        ];
        let frames = decode_all(&mut FrameDecoder::new(Some(16)), &input).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::data(&b"abc"[..], false),
                Frame::data(&b"x"[..], true),
                Frame::data(Bytes::new(), false),
            ]
        );
    }

    #[test]
    fn refuses_command_with_more() {
        let mut d = FrameDecoder::new(None);
        let mut input: &[u8] = &[COMMAND | MORE, 0];
        assert_eq!(d.decode(&mut input), Err(ZmtpError::CommandWithMore));
        assert_eq!(input.len(), 1, "refused at the flags byte");
        // Sticky.
        assert_eq!(
            d.decode(&mut &[0u8, 0][..]),
            Err(ZmtpError::CommandWithMore)
        );
        assert!(FrameDecoder::new(None).decode(&mut &[0x07u8][..]).is_err());
    }

    #[test]
    fn oversize_is_refused_after_the_header_before_any_body() {
        let mut input = vec![0x02];
        input.extend_from_slice(&(1u64 << 62).to_be_bytes());
        input.extend_from_slice(&[0xaa; 100]);
        let mut d = FrameDecoder::new(Some(10));
        let mut slice = &input[..];
        assert_eq!(
            d.decode(&mut slice),
            Err(ZmtpError::FrameTooLarge {
                size: 1 << 62,
                limit: 10
            })
        );
        assert_eq!(slice.len(), 100, "exactly the 9 header bytes were consumed");
        assert_eq!(d.buffered(), 0);
        // Byte by byte, it fails on the 9th byte.
        let mut d = FrameDecoder::new(Some(10));
        for (i, b) in input.iter().enumerate().take(9) {
            let r = d.decode(&mut core::slice::from_ref(b));
            assert_eq!(r.is_err(), i == 8, "byte {i}");
        }
        // The limit is inclusive (libzmq: size > max is the error).
        let mut ok = vec![0x00, 10];
        ok.extend_from_slice(&[1; 10]);
        assert_eq!(
            decode_all(&mut FrameDecoder::new(Some(10)), &ok).unwrap()[0]
                .body
                .len(),
            10
        );
        assert!(matches!(
            FrameDecoder::new(Some(9)).decode(&mut &ok[..]),
            Err(ZmtpError::FrameTooLarge { size: 10, limit: 9 })
        ));
    }

    #[test]
    fn unlimited_decoder_never_preallocates_the_declared_size() {
        let mut input = vec![0x02];
        input.extend_from_slice(&(1u64 << 40).to_be_bytes());
        input.extend_from_slice(&[0x55; 1000]);
        let mut d = FrameDecoder::new(None);
        assert_eq!(d.decode(&mut &input[..]), Ok(None));
        assert_eq!(d.buffered(), 1000);
        assert!(d.buf.capacity() < 1 << 20);
        // Sizes beyond 2^63 - 1 are refused even without a limit.
        let mut input = vec![0x02];
        input.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            FrameDecoder::new(None).decode(&mut &input[..]),
            Err(ZmtpError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn limit_changes_apply_from_the_next_header() {
        let mut d = FrameDecoder::new(Some(4));
        let mut input: &[u8] = &[0, 3, 1, 2, 3, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert!(d.decode(&mut input).unwrap().is_some());
        d.set_max_size(Some(8));
        assert_eq!(d.max_size(), Some(8));
        assert_eq!(d.decode(&mut input).unwrap().unwrap().body.len(), 8);
    }

    #[test]
    fn command_encoders() {
        let mut out = BytesMut::new();
        write_command(&mut out, b"PING", &[0, 0x14]).unwrap();
        assert_eq!(&out[..], &[4, 7, 4, b'P', b'I', b'N', b'G', 0, 0x14]);
        assert_eq!(
            write_command(&mut out, b"", b""),
            Err(ZmtpError::InvalidCommandName { len: 0 })
        );
        assert!(write_command(&mut out, &[b'A'; 256], b"").is_err());
        assert_eq!(&command_body(b"READY", b"").unwrap()[..], b"\x05READY");
        let mut out = BytesMut::new();
        write_message(
            &mut out,
            &[Bytes::from_static(b"hello"), Bytes::from_static(b"")],
        );
        // Exactly the bytes libzmq sent in null-handshake-capture.txt.
        assert_eq!(&out[..], b"\x01\x05hello\x00\x00");
        let mut out = BytesMut::new();
        write_message(&mut out, &[]);
        assert!(out.is_empty());
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::vec(any::<u8>(), 250..260),
            ],
        )
            .prop_map(|(more, command, body)| Frame {
                more: more && !command,
                command,
                body: body.into(),
            })
    }

    proptest! {
        #[test]
        fn frames_round_trip_at_any_split(
            frames in proptest::collection::vec(arb_frame(), 0..8),
            chunk in 1usize..40,
        ) {
            let enc = encode(&frames);
            let mut d = FrameDecoder::new(Some(300));
            let mut got = Vec::new();
            for piece in enc.chunks(chunk) {
                let mut input = piece;
                while let Some(f) = d.decode(&mut input).unwrap() {
                    got.push(f);
                }
                prop_assert!(input.is_empty());
            }
            prop_assert!(d.is_at_boundary());
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            limit in proptest::option::of(0u64..400),
            chunk in 1usize..64,
        ) {
            let mut d = FrameDecoder::new(limit);
            'outer: for piece in data.chunks(chunk) {
                let mut input = piece;
                loop {
                    match d.decode(&mut input) {
                        Ok(Some(f)) => {
                            prop_assert!(!(f.more && f.command));
                            if let Some(l) = limit {
                                prop_assert!(f.body.len() as u64 <= l);
                            }
                        }
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
        }
    }
}
