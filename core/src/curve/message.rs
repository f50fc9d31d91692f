//! Post-handshake MESSAGE boxing: [`CurveCodec`].
//!
//! ```text
//! off len
//!   0   8  07 'MESSAGE'
//!   8   8  short nonce (u64 BE)
//!  16  16  Poly1305 tag                      ┐ Box[flags ‖ payload](sender'→receiver'),
//!  32   1  flags  (bit0 MORE, bit1 COMMAND)  │ nonce "CurveZMQMESSAGEC" (client sends) or
//!  33   N  payload                           ┘ "CurveZMQMESSAGES" (server sends) ‖ nonce
//! ```
//!
//! The box is sealed straight from the payload into the output buffer (the provider's
//! [`seal_from_sub`](crate::crypto::CryptoProvider::seal_from_sub): one pass for `FastCrypto`,
//! a copy then the cipher for providers without it) and opened in place in the body buffer, so
//! receiving into a `BytesMut` costs the cipher alone.
//!
//! Each direction's nonce prefix is constant, so the codec derives each direction's XSalsa20
//! subkey (HSalsa20 of the session key and the prefix) once, when the handshake makes it, and
//! every MESSAGE box runs Salsa20 and Poly1305 only ([`crate::crypto::Subkey`]).

#[cfg(any(test, feature = "internals"))]
use alloc::vec::Vec;
use core::fmt;
#[cfg(any(test, feature = "internals"))]
use core::ops::Range;

use bytes::{Buf, BufMut, BytesMut};

use super::crypto::{self, Cipher, DirectionCipher, TAG_LEN};
use super::error::{Command, CurveError, Stage};
use super::nonce::{self, SendCounter};

/// Bytes a MESSAGE body adds to its payload: name (8), nonce (8), tag (16), flags (1).
pub const MESSAGE_OVERHEAD: usize = 33;
/// Payload flag: more frames of this message follow.
pub const FLAG_MORE: u8 = 0x01;
/// Payload flag: the payload is a ZMTP command (PING, PONG, SUBSCRIBE, ...), not a data frame.
pub const FLAG_COMMAND: u8 = 0x02;
/// The payload flag bits libzmq sends and keeps; any other bit is dropped on both ends.
pub const FLAG_MASK: u8 = FLAG_MORE | FLAG_COMMAND;

const HEADER_LEN: usize = 16;
const BOX_AT: usize = HEADER_LEN;
const FLAGS_AT: usize = HEADER_LEN + TAG_LEN;

/// Which end of the connection a codec serves; it decides the nonce prefixes.
// Two values, and matching on both is the point: no `#[non_exhaustive]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The connecting side (sent HELLO); seals with `CurveZMQMESSAGEC`.
    Client,
    /// The accepting side (sent WELCOME); seals with `CurveZMQMESSAGES`.
    Server,
}

impl Side {
    const fn send_prefix(self) -> &'static [u8; 16] {
        match self {
            Self::Client => nonce::MESSAGE_FROM_CLIENT,
            Self::Server => nonce::MESSAGE_FROM_SERVER,
        }
    }

    const fn recv_prefix(self) -> &'static [u8; 16] {
        match self {
            Self::Client => nonce::MESSAGE_FROM_SERVER,
            Self::Server => nonce::MESSAGE_FROM_CLIENT,
        }
    }
}

/// One connection's MESSAGE sealer and opener, made by a successful handshake
/// ([`CurveClient::handle_ready`](super::CurveClient::handle_ready) or
/// [`CurveServer::ready`](super::CurveServer::ready)).
///
/// Its send counter continues the handshake's (the client's first MESSAGE is nonce 3, the
/// server's is 2), and it accepts a peer nonce only if it is strictly greater than the last one
/// accepted, starting from the peer's last handshake nonce (INITIATE's on the server, READY's on
/// the client), as libzmq does. Gaps are allowed. The precomputed keys (the session key and
/// the two directions' XSalsa20 subkeys) are zeroed on drop.
// Clone only for tests, which fork a handshake at one step to feed it many variants.
#[cfg_attr(test, derive(Clone))]
pub struct CurveCodec {
    /// Seals with this side's prefix.
    sealer: DirectionCipher,
    /// Opens with the peer's prefix.
    opener: DirectionCipher,
    side: Side,
    send: SendCounter,
    recv_last: u64,
}

impl fmt::Debug for CurveCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveCodec")
            .field("side", &self.side)
            .field("next_send_nonce", &self.send.peek())
            .field("last_received_nonce", &self.recv_last)
            .finish_non_exhaustive()
    }
}

impl CurveCodec {
    /// The codec of one side of a session whose key is `cipher`; derives both directions'
    /// subkeys.
    pub(crate) fn new(cipher: &Cipher, side: Side, send: SendCounter, recv_last: u64) -> Self {
        Self {
            sealer: cipher.direction(side.send_prefix()),
            opener: cipher.direction(side.recv_prefix()),
            side,
            send,
            recv_last,
        }
    }

    /// Which side this codec seals for.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn side(&self) -> Side {
        self.side
    }

    /// The nonce the next sealed MESSAGE will carry, or `None` once the counter is exhausted.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn next_send_nonce(&self) -> Option<u64> {
        self.send.peek()
    }

    /// The last nonce accepted from the peer (its last handshake nonce before any MESSAGE).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn last_received_nonce(&self) -> u64 {
        self.recv_last
    }

    /// Size of the MESSAGE body for a payload of `payload_len` bytes: the size libzmq's
    /// `ZMQ_MAXMSGSIZE` is checked against. Saturates instead of overflowing.
    #[must_use]
    pub const fn sealed_len(payload_len: usize) -> usize {
        payload_len.saturating_add(MESSAGE_OVERHEAD)
    }

    /// Appends the MESSAGE body for `payload` to `out`. Only `flags & 0x03` is sent, as libzmq
    /// does. On error `out` is unchanged.
    #[cfg(any(test, feature = "internals"))]
    pub fn seal(&mut self, flags: u8, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CurveError> {
        let n = self.send.take()?;
        let start = out.len();
        out.reserve(Self::sealed_len(payload.len()));
        out.extend_from_slice(Command::Message.wire_name());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&[0u8; TAG_LEN]);
        out.push(flags & FLAG_MASK);
        out.resize(out.len() + payload.len(), 0);
        let r = self.seal_box_from(n, &mut out[start..], payload);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// [`seal`](Self::seal) into a `BytesMut` (the session's output buffer).
    pub fn seal_bytes(
        &mut self,
        flags: u8,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), CurveError> {
        let n = self.send.take()?;
        let start = out.len();
        out.reserve(Self::sealed_len(payload.len()));
        out.put_slice(Command::Message.wire_name());
        out.put_u64(n);
        out.put_bytes(0, TAG_LEN);
        out.put_u8(flags & FLAG_MASK);
        out.put_bytes(0, payload.len());
        let r = self.seal_box_from(n, &mut out[start..], payload);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// Seals a body the caller laid out: `body` is the whole MESSAGE body
    /// ([`sealed_len`](Self::sealed_len) of the payload) with the payload already at offset 33;
    /// bytes 0..33 are overwritten. For callers that build the payload in the output buffer.
    #[cfg(any(test, feature = "internals"))]
    pub fn seal_in_place(&mut self, flags: u8, body: &mut [u8]) -> Result<(), CurveError> {
        if body.len() < MESSAGE_OVERHEAD {
            return Err(CurveError::BufferTooShort { len: body.len() });
        }
        let n = self.send.take()?;
        body[..8].copy_from_slice(Command::Message.wire_name());
        body[8..16].copy_from_slice(&n.to_be_bytes());
        body[FLAGS_AT] = flags & FLAG_MASK;
        self.seal_box(n, body)
    }

    /// Encrypts `body[16..]` (tag slot, flags, payload) under nonce `n`.
    #[cfg(any(test, feature = "internals"))]
    fn seal_box(&self, n: u64, body: &mut [u8]) -> Result<(), CurveError> {
        crypto::seal_short(
            &self.sealer,
            &n.to_be_bytes(),
            &mut body[BOX_AT..],
            Stage::Message,
        )
    }

    /// Encrypts `body[16..]` (tag slot, flags, room for the payload) under nonce `n`, the
    /// payload coming from `payload` rather than from the body.
    fn seal_box_from(&self, n: u64, body: &mut [u8], payload: &[u8]) -> Result<(), CurveError> {
        crypto::seal_short_from(
            &self.sealer,
            &n.to_be_bytes(),
            &mut body[BOX_AT..],
            payload,
            Stage::Message,
        )
    }

    /// Checks a received body's name, size and nonce (libzmq's order) without touching it,
    /// returning the nonce.
    fn check(&self, body: &[u8]) -> Result<u64, CurveError> {
        Command::Message.check_body(body, MESSAGE_OVERHEAD..)?;
        let n = u64::from_be_bytes(nonce::counter_at(body, 8));
        if n <= self.recv_last {
            return Err(CurveError::InvalidSequence {
                received: n,
                last: self.recv_last,
            });
        }
        Ok(n)
    }

    /// Opens `body[16..]` in place after [`check`](Self::check), then records the nonce. The
    /// nonce is recorded only once the box has opened (libzmq records it before), so a forged
    /// MESSAGE cannot move the window.
    fn open_box(&mut self, body: &mut [u8]) -> Result<u8, CurveError> {
        let n = self.check(body)?;
        crypto::open_short(
            &self.opener,
            &n.to_be_bytes(),
            &mut body[BOX_AT..],
            Stage::Message,
        )?;
        self.recv_last = n;
        Ok(body[FLAGS_AT] & FLAG_MASK)
    }

    /// Opens a MESSAGE body: returns the payload flags (`& 0x03`: [`FLAG_MORE`],
    /// [`FLAG_COMMAND`]) and a copy of the payload. Checks, in libzmq's order, the name, the
    /// size (≥ 33), the nonce (strictly above the last accepted) and the box.
    #[cfg(any(test, feature = "internals"))]
    pub fn open(&mut self, body: &[u8]) -> Result<(u8, Vec<u8>), CurveError> {
        let n = self.check(body)?;
        // Copy only flags and payload; the tag is checked where it lies.
        let mut buf = body[FLAGS_AT..].to_vec();
        crypto::open_short_detached(
            &self.opener,
            &n.to_be_bytes(),
            &body[BOX_AT..FLAGS_AT],
            &mut buf,
            Stage::Message,
        )?;
        self.recv_last = n;
        let flags = buf[0] & FLAG_MASK;
        buf.remove(0);
        Ok((flags, buf))
    }

    /// Opens a MESSAGE body in place in `body`, leaving exactly the payload in it (the 33
    /// header bytes are dropped in O(1)). Returns the payload flags. On error `body` is
    /// unchanged.
    pub fn open_bytes(&mut self, body: &mut BytesMut) -> Result<u8, CurveError> {
        let flags = self.open_box(body)?;
        body.advance(MESSAGE_OVERHEAD);
        Ok(flags)
    }

    /// Opens a MESSAGE body in place in a caller slice. Returns the payload flags and the
    /// payload's range within `body` (always `33..body.len()`). On error `body` is unchanged.
    #[cfg(any(test, feature = "internals"))]
    pub fn open_in_place(&mut self, body: &mut [u8]) -> Result<(u8, Range<usize>), CurveError> {
        let flags = self.open_box(body)?;
        Ok((flags, MESSAGE_OVERHEAD..body.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn pair() -> (CurveCodec, CurveCodec) {
        pair_with(crate::crypto::default_provider())
    }

    fn pair_with(provider: &'static dyn crate::crypto::CryptoProvider) -> (CurveCodec, CurveCodec) {
        let key = [0x5a; 32];
        let client = CurveCodec::new(
            &crypto::cipher_from_key(provider, &mut key.clone()),
            Side::Client,
            {
                let mut c = SendCounter::new();
                c.take().unwrap();
                c.take().unwrap();
                c
            },
            1,
        );
        let server = CurveCodec::new(
            &crypto::cipher_from_key(provider, &mut key.clone()),
            Side::Server,
            {
                let mut c = SendCounter::new();
                c.take().unwrap();
                c
            },
            2,
        );
        (client, server)
    }

    #[test]
    fn nonces_continue_from_the_handshake() {
        let (mut c, mut s) = pair();
        assert_eq!(c.next_send_nonce(), Some(3));
        assert_eq!(s.next_send_nonce(), Some(2));
        let mut out = Vec::new();
        c.seal(FLAG_MORE, b"hi", &mut out).unwrap();
        assert_eq!(&out[8..16], &3u64.to_be_bytes());
        assert_eq!(out.len(), CurveCodec::sealed_len(2));
        assert_eq!(s.open(&out).unwrap(), (FLAG_MORE, b"hi".to_vec()));
        assert_eq!(s.last_received_nonce(), 3);
    }

    #[test]
    fn seal_variants_agree() {
        let (mut a, _) = pair();
        let (mut b, _) = pair();
        let (mut c, _) = pair();
        let mut v = Vec::new();
        a.seal(FLAG_COMMAND, b"payload", &mut v).unwrap();
        let mut bm = BytesMut::new();
        b.seal_bytes(FLAG_COMMAND, b"payload", &mut bm).unwrap();
        let mut inplace = vec![0xee; CurveCodec::sealed_len(7)];
        inplace[MESSAGE_OVERHEAD..].copy_from_slice(b"payload");
        c.seal_in_place(FLAG_COMMAND, &mut inplace).unwrap();
        assert_eq!(v, bm.to_vec());
        assert_eq!(v, inplace);
        assert_eq!(
            c.seal_in_place(0, &mut [0u8; 32]),
            Err(CurveError::BufferTooShort { len: 32 })
        );
    }

    #[test]
    fn every_provider_seals_the_same_bytes_and_opens_the_others() {
        let providers = crate::crypto::all_providers();
        let payload: Vec<u8> = (0..1500u32).map(|i| (i * 31) as u8).collect();
        let sealed: Vec<(Vec<u8>, BytesMut)> = providers
            .iter()
            .map(|&p| {
                let (mut a, _) = pair_with(p);
                let (mut b, _) = pair_with(p);
                let mut v = Vec::new();
                a.seal(FLAG_MORE, &payload, &mut v).unwrap();
                let mut bm = BytesMut::new();
                b.seal_bytes(FLAG_MORE, &payload, &mut bm).unwrap();
                assert_eq!(v, bm.to_vec());
                (v, bm)
            })
            .collect();
        for (v, _) in &sealed {
            assert_eq!(v, &sealed[0].0);
        }
        for &p in providers {
            let (_, mut s) = pair_with(p);
            assert_eq!(s.open(&sealed[0].0).unwrap(), (FLAG_MORE, payload.clone()));
        }
    }

    #[test]
    fn open_variants_agree() {
        let (mut c, _) = pair();
        let mut body = Vec::new();
        c.seal(FLAG_MORE | FLAG_COMMAND, b"xyz", &mut body).unwrap();
        let (_, mut s1) = pair();
        let (_, mut s2) = pair();
        let (_, mut s3) = pair();
        let (f1, p1) = s1.open(&body).unwrap();
        let mut bm = BytesMut::from(&body[..]);
        let f2 = s2.open_bytes(&mut bm).unwrap();
        let mut sl = body.clone();
        let (f3, range) = s3.open_in_place(&mut sl).unwrap();
        assert_eq!((f1, f2, f3), (3, 3, 3));
        assert_eq!(p1, b"xyz");
        assert_eq!(&bm[..], b"xyz");
        assert_eq!(&sl[range], b"xyz");
    }

    #[test]
    fn extra_flag_bits_are_dropped_both_ways() {
        let (mut c, mut s) = pair();
        let mut body = Vec::new();
        c.seal(0xff, b"", &mut body).unwrap();
        assert_eq!(s.open(&body).unwrap().0, FLAG_MASK);
        // A peer that sets reserved bits (libzmq accepts 0x80): forge one by hand.
        let mut forged = Vec::new();
        forged.extend_from_slice(b"\x07MESSAGE");
        forged.extend_from_slice(&4u64.to_be_bytes());
        forged.extend_from_slice(&[0u8; TAG_LEN]);
        forged.push(0x81);
        forged.extend_from_slice(b"z");
        c.seal_box(4, &mut forged).unwrap();
        assert_eq!(s.open(&forged).unwrap(), (FLAG_MORE, b"z".to_vec()));
    }

    #[test]
    fn send_counter_exhaustion_is_an_error_and_leaves_output_alone() {
        let key = [1; 32];
        let provider = crate::crypto::default_provider();
        let mut c = CurveCodec::new(
            &crypto::cipher_from_key(provider, &mut key.clone()),
            Side::Client,
            SendCounter::starting_at(u64::MAX),
            0,
        );
        let mut s = CurveCodec::new(
            &crypto::cipher_from_key(provider, &mut key.clone()),
            Side::Server,
            SendCounter::new(),
            u64::MAX - 1,
        );
        let mut out = Vec::new();
        c.seal(0, b"last", &mut out).unwrap();
        assert_eq!(s.open(&out).unwrap().1, b"last");
        let len = out.len();
        assert_eq!(
            c.seal(0, b"more", &mut out),
            Err(CurveError::NonceExhausted)
        );
        assert_eq!(out.len(), len);
        let mut bm = BytesMut::new();
        assert_eq!(
            c.seal_bytes(0, b"more", &mut bm),
            Err(CurveError::NonceExhausted)
        );
        assert!(bm.is_empty());
        assert_eq!(c.next_send_nonce(), None);
        // And the receiver can take nothing above u64::MAX.
        assert_eq!(
            s.open(&out).unwrap_err(),
            CurveError::InvalidSequence {
                received: u64::MAX,
                last: u64::MAX
            }
        );
    }

    #[test]
    fn failed_open_does_not_move_the_window_or_the_buffer() {
        let (mut c, mut s) = pair();
        let mut body = Vec::new();
        c.seal(0, b"abc", &mut body).unwrap();
        let mut bad = BytesMut::from(&body[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0x10;
        let before = bad.clone();
        assert_eq!(
            s.open_bytes(&mut bad),
            Err(CurveError::Cryptographic {
                stage: Stage::Message
            })
        );
        assert_eq!(bad, before);
        assert_eq!(s.last_received_nonce(), 2);
        assert_eq!(s.open(&body).unwrap().1, b"abc");
    }

    #[test]
    fn a_codec_cannot_open_its_own_direction() {
        let (mut c, _) = pair();
        let (mut c2, _) = pair();
        let mut body = Vec::new();
        c.seal(0, b"loop", &mut body).unwrap();
        assert_eq!(
            c2.open(&body),
            Err(CurveError::Cryptographic {
                stage: Stage::Message
            })
        );
    }
}
