//! The server (accepting, ROUTER) side of the CURVE handshake: ← HELLO, WELCOME →,
//! ← INITIATE, (the embedder's authentication decision), READY → (or ERROR →).

use alloc::vec::Vec;
use core::fmt;

use crate::crypto::CryptoProvider;
#[cfg(any(test, feature = "internals"))]
use crate::crypto::{self as provider};
use crate::keys::{Keypair, PublicKey, SecretKey};
use crate::rng::{self, CryptoRngCore};

use super::command::{HELLO_LEN, INITIATE_MIN_LEN, READY_MIN_LEN, WELCOME_LEN};
use super::cookie::{COOKIE_LEN, CookieKey};
use super::crypto::{self, Cipher, TAG_LEN};
use super::error::{Command, CurveError, Stage};
use super::message::{CurveCodec, Side};
use super::nonce::{self, LONG_SUFFIX_LEN, SendCounter};

// HELLO layout.
const HELLO_VERSION_AT: usize = 6;
const HELLO_C_SHORT_AT: usize = 80;
const HELLO_NONCE_AT: usize = 112;
const HELLO_BOX_AT: usize = 120;
const HELLO_SIGNATURE_LEN: usize = 64;
// WELCOME layout.
const WELCOME_NONCE_AT: usize = 8;
const WELCOME_BOX_AT: usize = 24;
const WELCOME_S_SHORT_AT: usize = WELCOME_BOX_AT + TAG_LEN;
const WELCOME_COOKIE_AT: usize = WELCOME_S_SHORT_AT + 32;
// INITIATE layout and the layout of its box's plaintext.
const INITIATE_COOKIE_AT: usize = 9;
const INITIATE_NONCE_AT: usize = INITIATE_COOKIE_AT + COOKIE_LEN;
const INITIATE_BOX_AT: usize = INITIATE_NONCE_AT + 8;
const PLAIN_VOUCH_NONCE_AT: usize = 32;
const PLAIN_VOUCH_AT: usize = PLAIN_VOUCH_NONCE_AT + LONG_SUFFIX_LEN;
const VOUCH_LEN: usize = TAG_LEN + 64;
const PLAIN_METADATA_AT: usize = PLAIN_VOUCH_AT + VOUCH_LEN;
// READY layout: name (6), nonce (8), box.
const READY_BOX_AT: usize = 14;

// Clone only for tests, which fork a handshake at one step to feed it many variants.
#[cfg_attr(test, derive(Clone))]
enum State {
    /// Waiting for HELLO; s' exists already (made at creation, as libzmq does).
    ExpectHello { short: SecretKey },
    /// WELCOME sent; the cookie key K and C' are kept to check INITIATE's cookie.
    ExpectInitiate {
        short: SecretKey,
        client_short: [u8; 32],
        cookie: CookieKey,
    },
    /// INITIATE fully checked; s' and K are gone. The embedder decides, then calls `ready`.
    AwaitReady { session: Cipher, peer_nonce: u64 },
    /// READY produced; the session key moved into the codec.
    Done,
    /// A step failed; every later call is [`CurveError::WrongState`].
    Failed,
}

impl State {
    const fn name(&self) -> &'static str {
        match self {
            Self::ExpectHello { .. } => "ExpectHello",
            Self::ExpectInitiate { .. } => "ExpectInitiate",
            Self::AwaitReady { .. } => "AwaitReady",
            Self::Done => "Done",
            Self::Failed => "Failed",
        }
    }
}

/// What a verified INITIATE told the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Initiate {
    /// The client's long-term public key C, proven by the vouch: the key to authenticate.
    pub client_key: PublicKey,
    /// The client's metadata (raw ZMTP properties, not parsed here).
    pub metadata: Vec<u8>,
}

/// The server side of a CurveZMQ handshake, at the level of command bodies.
///
/// Call order: [`new`](Self::new) (makes S'/s' at once, as libzmq does when the connection
/// object is created), [`handle_hello`](Self::handle_hello) (send the WELCOME it returns),
/// [`handle_initiate`](Self::handle_initiate) (which yields the client's long-term key and
/// metadata for the authentication decision), then [`ready`](Self::ready) (send READY; the
/// [`CurveCodec`] takes over) or, to refuse, send [`error_body`](super::error_body) and close.
/// Any error latches: later calls return [`CurveError::WrongState`].
///
/// **RNG draws**, in order: `new` draws s' (32 private bytes); `handle_hello` draws the cookie
/// key K (32 private bytes), then the WELCOME nonce suffix (16 public bytes), then the cookie
/// nonce suffix (16 public bytes). Nothing else draws.
// Clone only for tests, which fork a handshake at one step to feed it many variants.
#[cfg_attr(test, derive(Clone))]
pub struct CurveServer {
    provider: &'static dyn CryptoProvider,
    our: Keypair,
    short_public: PublicKey,
    send: SendCounter,
    client_key: Option<PublicKey>,
    state: State,
}

impl fmt::Debug for CurveServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveServer")
            .field("provider", &self.provider)
            .field("our", self.our.public())
            .field("short_public", &self.short_public)
            .field("client_key", &self.client_key)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl CurveServer {
    /// Prepares to accept one connection with our long-term keypair `our`. Draws the
    /// short-term secret s' (32 bytes) from `rng`.
    ///
    /// The cryptography is [`crypto::default_provider`](provider::default_provider)'s; see
    /// [`with_provider`](Self::with_provider).
    #[cfg(any(test, feature = "internals"))]
    pub fn new<R: CryptoRngCore + ?Sized>(our: &Keypair, rng: &mut R) -> Self {
        Self::with_provider(provider::default_provider(), our, rng)
    }

    /// [`new`](Self::new), with every key agreement, seal and open of this handshake (the
    /// cookie's too) and of its [`CurveCodec`] done by `provider`.
    pub fn with_provider<R: CryptoRngCore + ?Sized>(
        provider: &'static dyn CryptoProvider,
        our: &Keypair,
        rng: &mut R,
    ) -> Self {
        let short = SecretKey::generate(rng);
        Self {
            provider,
            our: our.clone(),
            short_public: short.public_key(),
            send: SendCounter::new(),
            client_key: None,
            state: State::ExpectHello { short },
        }
    }

    /// Our short-term public key S' (sent inside WELCOME).
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn short_term_public(&self) -> &PublicKey {
        &self.short_public
    }

    /// The client's long-term key, once INITIATE has been verified.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn client_key(&self) -> Option<&PublicKey> {
        self.client_key.as_ref()
    }

    /// Whether INITIATE has been verified and READY (or a refusal) is due.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn is_awaiting_ready(&self) -> bool {
        matches!(self.state, State::AwaitReady { .. })
    }

    /// Whether READY has been produced.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub const fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Handles the client's HELLO body and returns our WELCOME body (168 bytes):
    /// `Box[S' ‖ cookie](S→C')` under a random long nonce. Draws K, the WELCOME nonce suffix
    /// and the cookie nonce suffix from `rng`, in that order.
    ///
    /// Checks: the name (`UnexpectedCommand`), size exactly 200 (`Malformed`), version 1.0
    /// (`Version`), C' not low-order (`NonContributory`), the signature box opens with
    /// (C', s) (`Cryptographic`) **and holds 64 zero bytes** (`Cryptographic`; stricter than
    /// libzmq). The padding and the nonce are not checked, as in libzmq.
    pub fn handle_hello<R: CryptoRngCore + ?Sized>(
        &mut self,
        body: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, CurveError> {
        let State::ExpectHello { short } = core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(CurveError::WrongState);
        };
        Command::Hello.check_body(body, HELLO_LEN..=HELLO_LEN)?;
        let (major, minor) = (body[HELLO_VERSION_AT], body[HELLO_VERSION_AT + 1]);
        if (major, minor) != (1, 0) {
            return Err(CurveError::Version { major, minor });
        }
        let client_short: [u8; 32] = crypto::array_at(body, HELLO_C_SHORT_AT);
        let hello_key = crypto::precompute(
            self.provider,
            self.our.secret(),
            &client_short,
            Stage::Hello,
        )?;
        let mut signature = [0u8; TAG_LEN + HELLO_SIGNATURE_LEN];
        signature.copy_from_slice(&body[HELLO_BOX_AT..]);
        crypto::open(
            &hello_key,
            &nonce::short(nonce::HELLO, nonce::counter_at(body, HELLO_NONCE_AT)),
            &mut signature,
            Stage::Hello,
        )?;
        if signature[TAG_LEN..].iter().any(|&b| b != 0) {
            return Err(CurveError::Cryptographic {
                stage: Stage::Hello,
            });
        }

        let cookie = CookieKey::generate(self.provider, rng);
        let mut w = [0u8; LONG_SUFFIX_LEN];
        rng::fill_public(rng, &mut w);
        let mut kn = [0u8; LONG_SUFFIX_LEN];
        rng::fill_public(rng, &mut kn);

        let mut out = alloc::vec![0u8; WELCOME_LEN];
        out[..8].copy_from_slice(Command::Welcome.wire_name());
        out[WELCOME_NONCE_AT..WELCOME_BOX_AT].copy_from_slice(&w);
        out[WELCOME_S_SHORT_AT..WELCOME_COOKIE_AT].copy_from_slice(self.short_public.as_bytes());
        let mut cookie_bytes = [0u8; COOKIE_LEN];
        cookie.seal(&kn, &client_short, &short, &mut cookie_bytes)?;
        out[WELCOME_COOKIE_AT..].copy_from_slice(&cookie_bytes);
        crypto::seal(
            &hello_key,
            &nonce::long(nonce::WELCOME, &w),
            &mut out[WELCOME_BOX_AT..],
            Stage::Welcome,
        )?;
        self.state = State::ExpectInitiate {
            short,
            client_short,
            cookie,
        };
        Ok(out)
    }

    /// Handles the client's INITIATE body: returns the client's long-term key and metadata.
    /// Then the embedder decides (ZAP's role) and calls [`ready`](Self::ready), or refuses.
    ///
    /// Checks, in libzmq's order (wire.md §7.5 steps 1-4): the name (`UnexpectedCommand`);
    /// size ≥ 257 (`Malformed`); the cookie opens under K (`Cryptographic`, stage cookie) and
    /// holds exactly this connection's C' ‖ s' (`BadCookie`); the box opens with (C', s')
    /// (`Cryptographic`); C is not low-order (`NonContributory`); the vouch opens with
    /// (C, s') (`Cryptographic`); its first half is C' (`KeyExchange`) and **its second half
    /// is our S** (`VouchServerKey`; stricter than libzmq). INITIATE's nonce is not checked,
    /// but MESSAGE nonces from the client must exceed it.
    pub fn handle_initiate(&mut self, body: &[u8]) -> Result<Initiate, CurveError> {
        let State::ExpectInitiate {
            short,
            client_short,
            cookie,
        } = core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(CurveError::WrongState);
        };
        Command::Initiate.check_body(body, INITIATE_MIN_LEN..)?;
        cookie.check(
            &body[INITIATE_COOKIE_AT..INITIATE_NONCE_AT],
            &client_short,
            &short,
        )?;
        drop(cookie);

        let n = nonce::counter_at(body, INITIATE_NONCE_AT);
        let session = crypto::precompute(self.provider, &short, &client_short, Stage::Initiate)?;
        let mut plain = body[INITIATE_BOX_AT..].to_vec();
        crypto::open(
            &session,
            &nonce::short(nonce::INITIATE, n),
            &mut plain,
            Stage::Initiate,
        )?;
        let plain = &mut plain[TAG_LEN..];
        let client_key: [u8; 32] = crypto::array_at(plain, 0);
        let vn: [u8; LONG_SUFFIX_LEN] = crypto::array_at(plain, PLAIN_VOUCH_NONCE_AT);

        let vouch_key = crypto::precompute(self.provider, &short, &client_key, Stage::Vouch)?;
        drop(short);
        let vouch = &mut plain[PLAIN_VOUCH_AT..PLAIN_METADATA_AT];
        crypto::open(
            &vouch_key,
            &nonce::long(nonce::VOUCH, &vn),
            vouch,
            Stage::Vouch,
        )?;
        if !crypto::ct_eq(&vouch[TAG_LEN..TAG_LEN + 32], &client_short) {
            return Err(CurveError::KeyExchange);
        }
        if !crypto::ct_eq(&vouch[TAG_LEN + 32..], self.our.public().as_bytes()) {
            return Err(CurveError::VouchServerKey);
        }
        let metadata = plain[PLAIN_METADATA_AT..].to_vec();
        let client_key = PublicKey::from_bytes(client_key);
        self.client_key = Some(client_key);
        self.state = State::AwaitReady {
            session,
            peer_nonce: u64::from_be_bytes(n),
        };
        Ok(Initiate {
            client_key,
            metadata,
        })
    }

    /// After a verified INITIATE and a positive authentication decision: returns the READY
    /// body (30 + `metadata.len()` bytes, short nonce 1, `Box[metadata](S'→C')`) and the
    /// connection's [`CurveCodec`]. `metadata` is our raw ZMTP properties.
    pub fn ready(&mut self, metadata: &[u8]) -> Result<(Vec<u8>, CurveCodec), CurveError> {
        let State::AwaitReady {
            session,
            peer_nonce,
        } = core::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(CurveError::WrongState);
        };
        let n = self.send.take()?.to_be_bytes();
        let mut out = Vec::with_capacity(READY_MIN_LEN.saturating_add(metadata.len()));
        out.extend_from_slice(Command::Ready.wire_name());
        out.extend_from_slice(&n);
        out.extend_from_slice(&[0u8; TAG_LEN]);
        out.extend_from_slice(metadata);
        crypto::seal(
            &session,
            &nonce::short(nonce::READY, n),
            &mut out[READY_BOX_AT..],
            Stage::Ready,
        )?;
        self.state = State::Done;
        let send = core::mem::replace(&mut self.send, SendCounter::new());
        Ok((
            out,
            CurveCodec::new(&session, Side::Server, send, peer_nonce),
        ))
    }
}
