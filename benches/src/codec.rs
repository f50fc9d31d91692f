//! The CURVE MESSAGE codec at the level the session uses it, without a session around it.
//!
//! Send side: [`seal_frame`] writes what `Session::send` writes per frame under CURVE, the ZMTP
//! data-frame header of the MESSAGE followed by the sealed MESSAGE body, into a reused output
//! buffer. Receive side: [`Opener::open`] runs one wire frame through the session's
//! [`FrameDecoder`] and opens it in place with [`CurveCodec::open_bytes`], as the session does.

use bytes::{Bytes, BytesMut};
use lokimq_core::crypto::CryptoProvider;
use lokimq_core::curve::{CurveClient, CurveCodec, CurveServer};
use lokimq_core::zmtp::{FrameDecoder, FrameHeader};

use crate::{HarnessError, RUST, client_keypair, rng, server_keypair};

/// Runs a full CURVE handshake through the public API (empty metadata) and returns the
/// post-handshake codecs `(client, server)`, on [`RUST`].
pub fn codec_pair() -> Result<(CurveCodec, CurveCodec), HarnessError> {
    codec_pair_with(RUST)
}

/// [`codec_pair`] with both sides on `provider`.
pub fn codec_pair_with(
    provider: &'static dyn CryptoProvider,
) -> Result<(CurveCodec, CurveCodec), HarnessError> {
    let mut rng = rng(1);
    let server_kp = server_keypair();
    let mut client =
        CurveClient::with_provider(provider, &client_keypair(), *server_kp.public(), &mut rng)?;
    let mut server = CurveServer::with_provider(provider, &server_kp, &mut rng);
    let hello = client.hello()?;
    let welcome = server.handle_hello(&hello, &mut rng)?;
    let initiate = client.handle_welcome(&welcome, &[], &mut rng)?;
    server.handle_initiate(&initiate)?;
    let (ready, server_codec) = server.ready(&[])?;
    let (_, client_codec) = client.handle_ready(&ready)?;
    Ok((client_codec, server_codec))
}

/// Appends one CURVE-carried data frame to `out`: the outer ZMTP header (a plain data frame,
/// as libzmq sends MESSAGEs) and the MESSAGE body sealing `flags` and `payload`.
pub fn seal_frame(
    codec: &mut CurveCodec,
    flags: u8,
    payload: &[u8],
    out: &mut BytesMut,
) -> Result<(), HarnessError> {
    let header = FrameHeader::data(CurveCodec::sealed_len(payload.len()) as u64, false);
    out.reserve(header.encoded_len() + CurveCodec::sealed_len(payload.len()));
    header.write(out);
    codec.seal_bytes(flags, payload, out)?;
    Ok(())
}

/// Wire bytes of `count` consecutive sealed frames of `payload` (one byte stream, as a socket
/// would deliver them).
pub fn sealed_stream(
    codec: &mut CurveCodec,
    payload: &[u8],
    count: usize,
) -> Result<Vec<u8>, HarnessError> {
    let mut out = BytesMut::new();
    for _ in 0..count {
        seal_frame(codec, 0, payload, &mut out)?;
    }
    Ok(out.to_vec())
}

/// The receive half: a frame decoder and the codec that opens what it decodes.
#[derive(Debug)]
pub struct Opener {
    decoder: FrameDecoder,
    codec: CurveCodec,
}

impl Opener {
    /// A receiver with the session's default 1 MiB frame limit.
    #[must_use]
    pub fn new(codec: CurveCodec) -> Self {
        Self {
            decoder: FrameDecoder::new(Some(1 << 20)),
            codec,
        }
    }

    /// Decodes the next frame from `input` (advancing it) and opens it in place. Returns the
    /// payload flags and the payload.
    pub fn open(&mut self, input: &mut &[u8]) -> Result<(u8, Bytes), HarnessError> {
        let frame = self
            .decoder
            .decode(input)?
            .ok_or_else(|| HarnessError::Unexpected("incomplete frame".into()))?;
        // The session's own path: open in place when the decoder handed over the only
        // reference (always, here), else copy.
        let mut body = frame
            .body
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(shared.as_ref()));
        let flags = self.codec.open_bytes(&mut body)?;
        Ok((flags, body.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FAST, SIZES, payload};
    use lokimq_core::curve::{FLAG_MORE, MESSAGE_OVERHEAD};

    #[test]
    fn sealed_frames_open_on_the_other_side_in_order() {
        for p in [RUST, FAST] {
            sealed_frames_open_with(p);
        }
    }

    fn sealed_frames_open_with(p: &'static dyn CryptoProvider) {
        let (mut client, server) = codec_pair_with(p).unwrap();
        let mut opener = Opener::new(server);
        for size in SIZES {
            let p = payload(size);
            let mut out = BytesMut::new();
            seal_frame(&mut client, FLAG_MORE, &p, &mut out).unwrap();
            let header = if size + MESSAGE_OVERHEAD > 255 { 9 } else { 2 };
            assert_eq!(out.len(), header + MESSAGE_OVERHEAD + size);
            let mut input = &out[..];
            let (flags, body) = opener.open(&mut input).unwrap();
            assert!(input.is_empty());
            assert_eq!(flags, FLAG_MORE);
            assert_eq!(&body[..], &p[..]);
        }
    }

    #[test]
    fn a_stream_opens_frame_by_frame_and_replay_is_refused() {
        let (mut client, server) = codec_pair().unwrap();
        let stream = sealed_stream(&mut client, b"abc", 3).unwrap();
        let mut opener = Opener::new(server);
        let mut input = &stream[..];
        for _ in 0..3 {
            assert_eq!(&opener.open(&mut input).unwrap().1[..], b"abc");
        }
        assert!(input.is_empty());
        // The benches must feed fresh nonces: a replayed frame fails, it is not timed as success.
        let mut again = &stream[..];
        assert!(matches!(
            opener.open(&mut again),
            Err(HarnessError::Curve(_))
        ));
    }
}
