//! The client (connecting, DEALER) side of the CURVE handshake: HELLO →, ← WELCOME,
//! INITIATE →, ← READY (or ← ERROR).

use alloc::vec::Vec;
use core::fmt;

use crate::crypto::CryptoProvider;
#[cfg(any(test, feature = "internals"))]
use crate::crypto::{self as provider};
use crate::keys::{Keypair, PublicKey, SecretKey};
use crate::rng::{self, CryptoRngCore};

use super::command::{HELLO_LEN, INITIATE_MIN_LEN, READY_MIN_LEN, WELCOME_LEN, parse_error};
use super::cookie::COOKIE_LEN;
use super::crypto::{self, Cipher, TAG_LEN};
use super::error::{Command, CurveError, Stage};
use super::message::{CurveCodec, Side};
use super::nonce::{self, LONG_SUFFIX_LEN, SendCounter};

// HELLO layout.
const HELLO_C_SHORT_AT: usize = 80;
const HELLO_NONCE_AT: usize = 112;
const HELLO_BOX_AT: usize = 120;
// WELCOME layout.
const WELCOME_NONCE_AT: usize = 8;
const WELCOME_BOX_AT: usize = 24;
// INITIATE layout.
const INITIATE_COOKIE_AT: usize = 9;
const INITIATE_NONCE_AT: usize = INITIATE_COOKIE_AT + COOKIE_LEN;
const INITIATE_BOX_AT: usize = INITIATE_NONCE_AT + 8;
// READY layout.
const READY_NONCE_AT: usize = 6;
const READY_BOX_AT: usize = 14;

// Clone only for tests, which fork a handshake at one step to feed it many variants.
#[cfg_attr(test, derive(Clone))]
enum State {
    /// Created; HELLO not yet produced. Holds c' and the (S, c') key of HELLO and WELCOME.
    Start { short: SecretKey, hello_key: Cipher },
    /// HELLO sent.
    ExpectWelcome { short: SecretKey, hello_key: Cipher },
    /// INITIATE sent; c' is gone, only the session key (S', c') remains.
    ExpectReady { session: Cipher },
    /// READY accepted; the session key moved into the codec.
    Done,
    /// A step failed (or an ERROR arrived); every later call is [`CurveError::WrongState`].
    Failed,
}

impl State {
    const fn name(&self) -> &'static str {
        match self {
            Self::Start { .. } => "Start",
            Self::ExpectWelcome { .. } => "ExpectWelcome",
            Self::ExpectReady { .. } => "ExpectReady",
            Self::Done => "Done",
            Self::Failed => "Failed",
        }
    }
}

/// The client side of a CurveZMQ handshake, at the level of command bodies (the bytes after the
/// ZMTP frame header).
///
/// Call order: [`new`](Self::new), [`hello`](Self::hello) (send it),
/// [`handle_welcome`](Self::handle_welcome) (send the INITIATE it returns),
/// [`handle_ready`](Self::handle_ready) (which yields the server's metadata and the
/// [`CurveCodec`]). While waiting for WELCOME or READY the server may send ERROR instead: pass
/// it to [`handle_error`](Self::handle_error). Any error latches: later calls return
/// [`CurveError::WrongState`].
///
/// **RNG draws**, in order: `new` draws c' (32 private bytes); `handle_welcome` draws the vouch
/// nonce suffix (16 public bytes). Nothing else draws.
// Clone only for tests, which fork a handshake at one step to feed it many variants.
#[cfg_attr(test, derive(Clone))]
pub struct CurveClient {
    provider: &'static dyn CryptoProvider,
    our: Keypair,
    server: PublicKey,
    short_public: PublicKey,
    send: SendCounter,
    state: State,
}

impl fmt::Debug for CurveClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveClient")
            .field("provider", &self.provider)
            .field("our", self.our.public())
            .field("server", &self.server)
            .field("short_public", &self.short_public)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl CurveClient {
    /// Starts a handshake from our long-term keypair `our` towards the server whose long-term
    /// public key is `server`. Draws the short-term secret c' (32 bytes) from `rng`.
    ///
    /// Fails with [`CurveError::NonContributory`] (stage HELLO) if `server` is a low-order key
    /// (for example all zeros), which libsodium's `crypto_box` refuses.
    ///
    /// The cryptography is [`crypto::default_provider`](provider::default_provider)'s; see
    /// [`with_provider`](Self::with_provider).
    #[cfg(any(test, feature = "internals"))]
    pub fn new<R: CryptoRngCore + ?Sized>(
        our: &Keypair,
        server: PublicKey,
        rng: &mut R,
    ) -> Result<Self, CurveError> {
        Self::with_provider(provider::default_provider(), our, server, rng)
    }

    /// [`new`](Self::new), with every key agreement, seal and open of this handshake and of its
    /// [`CurveCodec`] done by `provider`.
    pub fn with_provider<R: CryptoRngCore + ?Sized>(
        provider: &'static dyn CryptoProvider,
        our: &Keypair,
        server: PublicKey,
        rng: &mut R,
    ) -> Result<Self, CurveError> {
        let short = SecretKey::generate(rng);
        let hello_key = crypto::precompute(provider, &short, server.as_bytes(), Stage::Hello)?;
        Ok(Self {
            provider,
            our: our.clone(),
            server,
            short_public: short.public_key(),
            send: SendCounter::new(),
            state: State::Start { short, hello_key },
        })
    }

    /// Our short-term public key C' (sent in HELLO).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn short_term_public(&self) -> &PublicKey {
        &self.short_public
    }

    /// The server's long-term public key S we are authenticating.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn server_key(&self) -> &PublicKey {
        &self.server
    }

    /// Whether an ERROR command is acceptable now (waiting for WELCOME or READY), as libzmq's
    /// client accepts it.
    #[must_use]
    pub const fn accepts_error(&self) -> bool {
        matches!(
            self.state,
            State::ExpectWelcome { .. } | State::ExpectReady { .. }
        )
    }

    /// Whether HELLO went out and WELCOME has not arrived yet: a server that closes the
    /// connection now could not open our HELLO, i.e. it does not hold the key we sealed it to.
    #[must_use]
    pub const fn awaits_welcome(&self) -> bool {
        matches!(self.state, State::ExpectWelcome { .. })
    }

    /// Whether READY has been accepted.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The HELLO body (200 bytes, short nonce 1): version 1.0, 72 zero bytes of padding, C',
    /// and `Box[64 zeros](C'→S)`. Callable once, first.
    pub fn hello(&mut self) -> Result<Vec<u8>, CurveError> {
        let State::Start { short, hello_key } = core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(CurveError::WrongState);
        };
        let n = self.send.take()?.to_be_bytes();
        let mut body = alloc::vec![0u8; HELLO_LEN];
        body[..6].copy_from_slice(Command::Hello.wire_name());
        body[6] = 1;
        body[7] = 0;
        body[HELLO_C_SHORT_AT..HELLO_NONCE_AT].copy_from_slice(self.short_public.as_bytes());
        body[HELLO_NONCE_AT..HELLO_BOX_AT].copy_from_slice(&n);
        crypto::seal(
            &hello_key,
            &nonce::short(nonce::HELLO, n),
            &mut body[HELLO_BOX_AT..],
            Stage::Hello,
        )?;
        self.state = State::ExpectWelcome { short, hello_key };
        Ok(body)
    }

    /// Handles the server's WELCOME body and returns our INITIATE body (257 + `metadata.len()`
    /// bytes, short nonce 2), carrying `metadata` (our ZMTP properties, opaque here) and the
    /// vouch `Box[C' ‖ S](C→S')`. Draws the 16-byte vouch nonce suffix from `rng`.
    ///
    /// Checks, as libzmq: the name (`UnexpectedCommand`), size exactly 168 (`Malformed`), the
    /// box opens with (S, c') (`Cryptographic`); then S' must not be low-order
    /// (`NonContributory`, which libsodium would refuse too).
    pub fn handle_welcome<R: CryptoRngCore + ?Sized>(
        &mut self,
        body: &[u8],
        metadata: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, CurveError> {
        let State::ExpectWelcome { short, hello_key } =
            core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(CurveError::WrongState);
        };
        Command::Welcome.check_body(body, WELCOME_LEN..=WELCOME_LEN)?;
        let w: [u8; LONG_SUFFIX_LEN] = crypto::array_at(body, WELCOME_NONCE_AT);
        let mut plain = [0u8; WELCOME_LEN - WELCOME_BOX_AT];
        plain.copy_from_slice(&body[WELCOME_BOX_AT..]);
        crypto::open(
            &hello_key,
            &nonce::long(nonce::WELCOME, &w),
            &mut plain,
            Stage::Welcome,
        )?;
        drop(hello_key);
        let server_short: [u8; 32] = crypto::array_at(&plain, TAG_LEN);
        let cookie = &plain[TAG_LEN + 32..];

        let session = crypto::precompute(self.provider, &short, &server_short, Stage::Welcome)?;
        drop(short);
        let vouch_key = crypto::precompute(
            self.provider,
            self.our.secret(),
            &server_short,
            Stage::Vouch,
        )?;
        let mut vn = [0u8; LONG_SUFFIX_LEN];
        rng::fill_public(rng, &mut vn);
        let n = self.send.take()?.to_be_bytes();

        // INITIATE = name ‖ cookie ‖ nonce ‖ Box[C ‖ Vn ‖ vouch ‖ metadata], sealed in place.
        let mut out = Vec::with_capacity(INITIATE_MIN_LEN.saturating_add(metadata.len()));
        out.extend_from_slice(Command::Initiate.wire_name());
        out.extend_from_slice(cookie);
        out.extend_from_slice(&n);
        out.extend_from_slice(&[0u8; TAG_LEN]);
        out.extend_from_slice(self.our.public().as_bytes());
        out.extend_from_slice(&vn);
        let vouch_at = out.len();
        out.extend_from_slice(&[0u8; TAG_LEN]);
        out.extend_from_slice(self.short_public.as_bytes());
        out.extend_from_slice(self.server.as_bytes());
        crypto::seal(
            &vouch_key,
            &nonce::long(nonce::VOUCH, &vn),
            &mut out[vouch_at..],
            Stage::Vouch,
        )?;
        out.extend_from_slice(metadata);
        crypto::seal(
            &session,
            &nonce::short(nonce::INITIATE, n),
            &mut out[INITIATE_BOX_AT..],
            Stage::Initiate,
        )?;
        self.state = State::ExpectReady { session };
        Ok(out)
    }

    /// Handles the server's READY body: returns the server's metadata (raw ZMTP properties, for
    /// the caller to parse and check) and the connection's [`CurveCodec`].
    ///
    /// Checks, as libzmq: the name (`UnexpectedCommand`), size ≥ 30 (`Malformed`), and the box
    /// opens with the session key (`Cryptographic`). READY's nonce is not checked, but MESSAGE
    /// nonces from the server must exceed it.
    pub fn handle_ready(&mut self, body: &[u8]) -> Result<(Vec<u8>, CurveCodec), CurveError> {
        let State::ExpectReady { session } = core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(CurveError::WrongState);
        };
        Command::Ready.check_body(body, READY_MIN_LEN..)?;
        let n = nonce::counter_at(body, READY_NONCE_AT);
        let mut plain = body[READY_BOX_AT..].to_vec();
        crypto::open(
            &session,
            &nonce::short(nonce::READY, n),
            &mut plain,
            Stage::Ready,
        )?;
        plain.drain(..TAG_LEN);
        self.state = State::Done;
        let send = core::mem::replace(&mut self.send, SendCounter::new());
        Ok((
            plain,
            CurveCodec::new(&session, Side::Client, send, u64::from_be_bytes(n)),
        ))
    }

    /// Handles an ERROR body from the server while waiting for WELCOME or READY: returns its
    /// reason (libzmq's server sends `400` or `500` after an authentication refusal). The
    /// handshake is over either way; a later call returns [`CurveError::WrongState`].
    ///
    /// Errors: [`CurveError::WrongState`] if ERROR is not acceptable now, or the errors of
    /// [`parse_error`].
    pub fn handle_error<'a>(&mut self, body: &'a [u8]) -> Result<&'a [u8], CurveError> {
        let accepts = self.accepts_error();
        self.state = State::Failed;
        if !accepts {
            return Err(CurveError::WrongState);
        }
        parse_error(body)
    }
}
