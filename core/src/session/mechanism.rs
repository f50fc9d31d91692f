//! The mechanism seam: handshake machines and the post-handshake frame transform.
//!
//! A session drives its mechanism through [`Handshake`] (one variant per mechanism and role) and,
//! once the handshake is done, passes every frame through the [`Transform`] the handshake
//! produced:
//!
//! * NULL: READY both ways (the server's READY waits for the auth decision); frames travel as
//!   they are.
//! * CURVE client: HELLO →, ← WELCOME, INITIATE (with our metadata) →, ← READY (or ← ERROR).
//! * CURVE server: ← HELLO, WELCOME →, ← INITIATE (fully verified: cookie, box, vouch), then
//!   the auth decision, then READY → with our metadata.
//! * After a CURVE handshake every frame is one MESSAGE: the payload's MORE/COMMAND bits travel
//!   inside the box and the MESSAGE goes out as an outer *data* frame (flags 0x00/0x02), as
//!   libzmq sends it. On receipt we mirror libzmq: an outer MORE bit is OR-ed into the payload
//!   flags (gluing the frame to the next message), and a MESSAGE arriving in an outer COMMAND
//!   frame is opened (so its nonce counts) and dropped; the connection stays up. The frame
//!   decoder's size limit applies to the encrypted body, exactly as libzmq's MAXMSGSIZE does.

use alloc::boxed::Box;
use bytes::Bytes;

use bytes::BytesMut;

use super::config::MechanismConfig;
use super::error::SessionError;
use super::outbox::Outbox;
use crate::crypto::CryptoProvider;
use crate::curve::{self, CurveClient, CurveCodec, CurveServer};
use crate::keys::PublicKey;
use crate::rng::CryptoRngCore;
use crate::zmtp::command::{self, ErrorCommand, RawCommand};
use crate::zmtp::{Frame, Mechanism, Metadata, ZmtpError};

/// What the handshake machine needs from its session.
pub(crate) struct HandshakeCtx<'a> {
    /// Where handshake command frames go.
    pub(crate) out: &'a mut Outbox,
    /// Our handshake properties.
    pub(crate) our_metadata: &'a Metadata,
    /// Whether the embedder must decide before we accept the peer (server side).
    pub(crate) auth_required: bool,
}

impl HandshakeCtx<'_> {
    fn send_command(&mut self, body: &Bytes) {
        self.out.write_frame(false, true, body);
    }
}

/// What the session must do after a handshake step.
#[derive(Debug)]
pub(crate) enum Step {
    /// Keep reading handshake commands.
    Continue,
    /// Stop reading and ask the embedder.
    AwaitAuth {
        mechanism: Mechanism,
        client_key: Option<PublicKey>,
    },
    /// The handshake is done.
    Complete {
        peer_metadata: Metadata,
        transform: Transform,
    },
}

/// One handshake machine per mechanism and role. The CURVE machines are boxed and the whole
/// machine is replaced by `Done` once the handshake completes: an established connection then
/// keeps none of the handshake's keys, cookie or buffers (a few hundred bytes per idle
/// connection, which is what a server with thousands of them pays for).
#[derive(Debug)]
pub(crate) enum Handshake {
    Null(NullHandshake),
    CurveClient(Box<CurveClientHandshake>),
    CurveServer(Box<CurveServerHandshake>),
    Done,
}

/// A handshake step asked of a finished handshake: the session never does this.
const HANDSHAKE_DONE: SessionError =
    SessionError::InvalidConfig("the handshake is already complete");

impl Handshake {
    /// The machine for `config` (CURVE doing its cryptography with `provider`), or a typed
    /// error for mechanisms not available yet.
    pub(crate) fn new<R: CryptoRngCore + ?Sized>(
        config: &MechanismConfig,
        provider: &'static dyn CryptoProvider,
        rng: &mut R,
    ) -> Result<Self, SessionError> {
        match config {
            MechanismConfig::Null => Ok(Self::Null(NullHandshake::default())),
            MechanismConfig::CurveClient {
                keypair,
                server_key,
            } => Ok(Self::CurveClient(Box::new(CurveClientHandshake {
                inner: CurveClient::with_provider(provider, keypair, *server_key, rng)?,
            }))),
            MechanismConfig::CurveServer { keypair } => {
                Ok(Self::CurveServer(Box::new(CurveServerHandshake {
                    inner: CurveServer::with_provider(provider, keypair, rng),
                    peer_metadata: None,
                })))
            }
        }
    }

    /// The peer's greeting was valid: the handshake begins.
    pub(crate) fn start<R: CryptoRngCore + ?Sized>(
        &mut self,
        ctx: &mut HandshakeCtx<'_>,
        _rng: &mut R,
    ) -> Result<Step, SessionError> {
        match self {
            Self::Null(m) => Ok(m.start(ctx)),
            Self::CurveClient(m) => m.start(ctx),
            // The server speaks second: it waits for HELLO.
            Self::CurveServer(_) => Ok(Step::Continue),
            Self::Done => Err(HANDSHAKE_DONE),
        }
    }

    /// A command frame arrived during the handshake (`body` = bytes after the frame header).
    pub(crate) fn on_command<R: CryptoRngCore + ?Sized>(
        &mut self,
        ctx: &mut HandshakeCtx<'_>,
        body: &Bytes,
        rng: &mut R,
    ) -> Result<Step, SessionError> {
        match self {
            Self::Null(m) => m.on_command(body),
            Self::CurveClient(m) => m.on_command(ctx, body, rng),
            Self::CurveServer(m) => m.on_command(ctx, body, rng),
            Self::Done => Err(HANDSHAKE_DONE),
        }
    }

    /// True for a CURVE client that sent HELLO and has no WELCOME yet.
    pub(crate) fn awaits_welcome(&self) -> bool {
        matches!(self, Self::CurveClient(m) if m.inner.awaits_welcome())
    }

    /// The embedder allowed the peer.
    pub(crate) fn on_auth_allowed<R: CryptoRngCore + ?Sized>(
        &mut self,
        ctx: &mut HandshakeCtx<'_>,
        _rng: &mut R,
    ) -> Result<Step, SessionError> {
        match self {
            Self::Null(m) => Ok(m.on_auth_allowed(ctx)),
            Self::CurveServer(m) => m.send_ready(ctx),
            // Only servers wait for a decision; the session never asks a client.
            Self::CurveClient(_) => Err(SessionError::InvalidConfig(
                "a CURVE client cannot take an auth decision",
            )),
            Self::Done => Err(HANDSHAKE_DONE),
        }
    }
}

/// CURVE, client side (our DEALER connecting to a CURVE server).
#[derive(Debug)]
pub(crate) struct CurveClientHandshake {
    inner: CurveClient,
}

impl CurveClientHandshake {
    fn start(&mut self, ctx: &mut HandshakeCtx<'_>) -> Result<Step, SessionError> {
        let hello = self.inner.hello()?;
        ctx.send_command(&Bytes::from(hello));
        Ok(Step::Continue)
    }

    fn on_command<R: CryptoRngCore + ?Sized>(
        &mut self,
        ctx: &mut HandshakeCtx<'_>,
        body: &Bytes,
        rng: &mut R,
    ) -> Result<Step, SessionError> {
        if curve::Command::Error.matches(body) && self.inner.accepts_error() {
            let reason = self.inner.handle_error(body)?;
            return Err(SessionError::PeerError(crate::zmtp::WireText::new(
                Bytes::copy_from_slice(reason),
            )));
        }
        if curve::Command::Welcome.matches(body) {
            let metadata = ctx.our_metadata.to_bytes();
            let initiate = self.inner.handle_welcome(body, &metadata, rng)?;
            ctx.send_command(&Bytes::from(initiate));
            return Ok(Step::Continue);
        }
        // READY, or anything else (which the client refuses with a typed error).
        let (metadata, codec) = self.inner.handle_ready(body)?;
        Ok(Step::Complete {
            peer_metadata: Metadata::decode(&Bytes::from(metadata))?,
            transform: Transform::Curve(Box::new(codec)),
        })
    }
}

/// CURVE, server side (a connection accepted on a CURVE listener).
#[derive(Debug)]
pub(crate) struct CurveServerHandshake {
    inner: CurveServer,
    /// The client's INITIATE metadata, held while the embedder decides.
    peer_metadata: Option<Metadata>,
}

impl CurveServerHandshake {
    fn on_command<R: CryptoRngCore + ?Sized>(
        &mut self,
        ctx: &mut HandshakeCtx<'_>,
        body: &Bytes,
        rng: &mut R,
    ) -> Result<Step, SessionError> {
        if curve::Command::Hello.matches(body) {
            let welcome = self.inner.handle_hello(body, rng)?;
            ctx.send_command(&Bytes::from(welcome));
            return Ok(Step::Continue);
        }
        // INITIATE, or anything else (refused with a typed error by the CURVE state machine).
        let initiate = self.inner.handle_initiate(body)?;
        self.peer_metadata = Some(Metadata::decode(&Bytes::from(initiate.metadata))?);
        if ctx.auth_required {
            Ok(Step::AwaitAuth {
                mechanism: Mechanism::Curve,
                client_key: Some(initiate.client_key),
            })
        } else {
            self.send_ready(ctx)
        }
    }

    fn send_ready(&mut self, ctx: &mut HandshakeCtx<'_>) -> Result<Step, SessionError> {
        let metadata = ctx.our_metadata.to_bytes();
        let (ready, codec) = self.inner.ready(&metadata)?;
        ctx.send_command(&Bytes::from(ready));
        Ok(Step::Complete {
            peer_metadata: self.peer_metadata.take().unwrap_or_default(),
            transform: Transform::Curve(Box::new(codec)),
        })
    }
}

/// NULL: both sides send READY with their metadata; a server with authentication sends its READY
/// only once the embedder allows the peer.
#[derive(Debug, Default)]
pub(crate) struct NullHandshake {
    ready_sent: bool,
    peer_metadata: Option<Metadata>,
}

impl NullHandshake {
    fn start(&mut self, ctx: &mut HandshakeCtx<'_>) -> Step {
        if ctx.auth_required {
            Step::AwaitAuth {
                mechanism: Mechanism::Null,
                client_key: None,
            }
        } else {
            self.send_ready(ctx);
            Step::Continue
        }
    }

    fn send_ready(&mut self, ctx: &mut HandshakeCtx<'_>) {
        ctx.send_command(&command::ready_body(ctx.our_metadata));
        self.ready_sent = true;
    }

    fn on_auth_allowed(&mut self, ctx: &mut HandshakeCtx<'_>) -> Step {
        self.send_ready(ctx);
        self.try_complete()
    }

    fn on_command(&mut self, body: &Bytes) -> Result<Step, SessionError> {
        let cmd = RawCommand::parse(body)?;
        if cmd.is(command::READY) && self.peer_metadata.is_none() {
            self.peer_metadata = Some(Metadata::decode(&cmd.data)?);
            Ok(self.try_complete())
        } else if cmd.is(command::ERROR) && self.peer_metadata.is_none() {
            let err = ErrorCommand::parse_data(&cmd.data)?;
            Err(SessionError::PeerError(crate::zmtp::WireText::new(
                err.reason().clone(),
            )))
        } else {
            // libzmq: anything else, or any command after READY, is UNEXPECTED_COMMAND.
            Err(ZmtpError::UnexpectedCommand {
                name: cmd.name_text(),
            }
            .into())
        }
    }

    fn try_complete(&mut self) -> Step {
        if !self.ready_sent {
            return Step::Continue;
        }
        match self.peer_metadata.take() {
            Some(peer_metadata) => Step::Complete {
                peer_metadata,
                transform: Transform::Identity,
            },
            None => Step::Continue,
        }
    }
}

/// How frames are carried after the handshake.
#[derive(Debug)]
pub(crate) enum Transform {
    /// NULL: frames go on the wire as they are.
    Identity,
    /// CURVE: every frame is boxed in a MESSAGE. Boxed: the codec holds two directions' keys
    /// and subkeys (over 200 bytes), and NULL sessions should not carry that space.
    Curve(Box<CurveCodec>),
}

impl Transform {
    /// Queues one logical frame.
    pub(crate) fn write_frame(
        &mut self,
        out: &mut Outbox,
        more: bool,
        is_command: bool,
        body: &Bytes,
    ) -> Result<(), SessionError> {
        match self {
            Self::Identity => {
                out.write_frame(more, is_command, body);
                Ok(())
            }
            Self::Curve(codec) => {
                let flags = (u8::from(more) * curve::FLAG_MORE)
                    | (u8::from(is_command) * curve::FLAG_COMMAND);
                let mut sealed = BytesMut::with_capacity(CurveCodec::sealed_len(body.len()));
                codec.seal_bytes(flags, body, &mut sealed)?;
                // Outer data frame: MORE/COMMAND travel inside the box only (libzmq).
                out.write_frame(false, false, &sealed.freeze());
                Ok(())
            }
        }
    }

    /// Turns one received wire frame into the logical frame it carries; `None` means the frame
    /// is dropped silently (as libzmq drops a MESSAGE that arrived in an outer COMMAND frame).
    pub(crate) fn open_frame(&mut self, frame: Frame) -> Result<Option<Frame>, SessionError> {
        match self {
            Self::Identity => Ok(Some(frame)),
            Self::Curve(codec) => {
                // Open in place when we hold the only reference (the usual case), else copy.
                let mut body = frame
                    .body
                    .try_into_mut()
                    .unwrap_or_else(|shared| BytesMut::from(shared.as_ref()));
                let flags = codec.open_bytes(&mut body)?;
                if frame.command {
                    return Ok(None);
                }
                Ok(Some(Frame {
                    more: frame.more || flags & curve::FLAG_MORE != 0,
                    command: flags & curve::FLAG_COMMAND != 0,
                    body: body.freeze(),
                }))
            }
        }
    }
}
