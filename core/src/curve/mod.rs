//! CurveZMQ (RFC 25/26) as libzmq 4.3 speaks it, byte for byte, at the level of command bodies.
//!
//! This module is the CURVE security mechanism and nothing else: it consumes and produces
//! *command bodies*, the bytes after a ZMTP frame's flags and size (HELLO's body is the 200
//! bytes starting `05 'HELLO'`). Framing, greetings, metadata parsing and the decision whether to
//! accept a client live elsewhere; metadata passes through here as opaque ZMTP-property bytes.
//!
//! # Flow
//!
//! ```text
//!   CurveClient                                   CurveServer
//!   new(c, S, rng)   draws c'                     new(s, rng)       draws s'
//!   hello()          ── HELLO (nonce 1) ───────▶  handle_hello(rng) draws K, W, Kn
//!   handle_welcome() ◀── WELCOME ──────────────
//!     (rng: vouch)   ── INITIATE (nonce 2) ────▶  handle_initiate() → Initiate { C, metadata }
//!                                                   … embedder authenticates C …
//!   handle_ready()   ◀── READY (nonce 1) ───────  ready(metadata)   (or error_body("400"))
//!   → CurveCodec (sends MESSAGE 3, 4, …)          → CurveCodec (sends MESSAGE 2, 3, …)
//! ```
//!
//! While waiting for WELCOME or READY the client may get ERROR instead
//! ([`CurveClient::handle_error`], [`parse_error`]). After the handshake every ZMTP frame and
//! every post-handshake command travels as one MESSAGE ([`CurveCodec`]); the payload flags byte
//! carries MORE (bit 0) and COMMAND (bit 1), and the outer ZMTP frame must be a plain data frame
//! (flags `0x00`, or `0x02` when long), as libzmq sends it.
//!
//! # Randomness
//!
//! Every random byte comes from the `rng` argument, in a fixed order, so a scripted generator
//! reproduces the known-answer vectors exactly:
//!
//! | call | draws, in order |
//! |---|---|
//! | [`CurveClient::new`] | c' (32, private) |
//! | [`CurveClient::handle_welcome`] | vouch nonce suffix (16, public) |
//! | [`CurveServer::new`] | s' (32, private) |
//! | [`CurveServer::handle_hello`] | cookie key K (32, private), WELCOME nonce suffix (16, public), cookie nonce suffix (16, public) |
//!
//! # Keys and secrets
//!
//! Boxes use XSalsa20-Poly1305 in the tag-first wire layout (libsodium `crypto_box` output
//! minus its 16 zero bytes), sealed and opened in place. The `crypto_box_beforenm`
//! precomputation is done once per key pair (x25519 via `x25519-dalek`, then HSalsa20; the same
//! computation as `crypto_box::SalsaBox::new`). Every x25519 agreement is checked: a low-order
//! peer key gives the all-zero shared secret, which libsodium refuses, and so do we
//! ([`CurveError::NonContributory`]) — for S on the client (at [`CurveClient::new`]), C' at
//! HELLO, S' at WELCOME (session key and vouch), and C at the vouch.
//!
//! Short-term secrets (c', s') are `x25519-dalek` static secrets and the cookie key and every
//! precomputed key live in `crypto_secretbox` ciphers; all of them zero themselves when
//! dropped, and each is dropped as soon as the handshake no longer needs it (c' once INITIATE
//! is built, s' and K once INITIATE is verified). Transient stack copies are wiped on a best
//! effort basis. The cookie's plaintext s' is encrypted in place, so it never sits in an
//! output buffer.
//!
//! # Receive-side checks, and where we are stricter than libzmq
//!
//! Checks follow libzmq's order and map to its monitor events (`UnexpectedCommand`,
//! `Malformed`, `Cryptographic`, `KeyExchange`, `InvalidSequence`). Like libzmq we do **not**
//! check HELLO's 72 padding bytes, the HELLO and INITIATE short nonces, or READY's nonce (the
//! last handshake nonce from the peer is only the floor for its MESSAGE nonces), and we ignore
//! bytes after an ERROR reason. MESSAGE nonces must be strictly increasing; gaps are fine.
//!
//! Deliberate differences, all invisible to a well-behaved libzmq peer:
//!
//! 1. **HELLO signature contents.** The server requires the opened HELLO signature box to be 64
//!    zero bytes (RFC 26's content); libzmq only requires that it opens. Every libzmq client
//!    sends zeros.
//! 2. **Vouch server key.** The server requires the vouch's second half to be its own long-term
//!    key S ([`CurveError::VouchServerKey`]); libzmq never reads that half. libzmq clients always
//!    put the right S there (checked against the recorded libzmq INITIATE in the vectors).
//! 3. **Low-order keys** are refused everywhere libsodium-backed libzmq refuses them, including
//!    on our own side before sending (a client given an all-zero server key fails in `new`;
//!    libzmq would fail at HELLO). libzmq builds on tweetnacl do not check; we always do.
//! 4. **Nonce exhaustion.** Our send counter stops after u64::MAX
//!    ([`CurveError::NonceExhausted`]); libzmq's would wrap to 0, which its peer refuses anyway.
//! 5. **Replay window update.** A MESSAGE's nonce is recorded only after its box opens (libzmq
//!    records it first). Either way a failure ends the connection.
//! 6. **ERROR reasons** over 255 bytes are refused when building ([`CurveError::ReasonTooLong`])
//!    rather than truncated.
//! 7. **Latched failure.** After any error a handshake object answers only
//!    [`CurveError::WrongState`].
//!
//! Unchanged from libzmq: the payload flags byte is sent as `flags & 0x03` and read as
//! `flags & 0x03` (other bits ignored); the server makes S'/s' when the connection starts and
//! checks that the cookie holds exactly the stored C' ‖ s' (a fresh random cookie key K per
//! WELCOME, as libzmq).

mod client;
mod command;
mod cookie;
mod crypto;
mod error;
mod message;
mod nonce;
mod server;

#[cfg(test)]
mod tests;

pub use client::CurveClient;
pub use error::{Command, CurveError, Stage};
pub use message::{CurveCodec, FLAG_COMMAND, FLAG_MORE};
pub use server::CurveServer;
// Reached only by the tests, benches and fuzz targets (the `internals` feature).
#[cfg(any(test, feature = "internals"))]
pub use command::{
    ERROR_MIN_LEN, ERROR_REASON_MAX, HELLO_LEN, INITIATE_MIN_LEN, READY_MIN_LEN, WELCOME_LEN,
    error_body, parse_error,
};
#[cfg(any(test, feature = "internals"))]
pub use message::{FLAG_MASK, MESSAGE_OVERHEAD, Side};
#[cfg(any(test, feature = "internals"))]
pub use server::Initiate;

/// Length of the server's cookie inside WELCOME and INITIATE.
#[cfg(any(test, feature = "internals"))]
pub const COOKIE_LEN: usize = cookie::COOKIE_LEN;
