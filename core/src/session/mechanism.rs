//! The mechanism seam: handshake machines and the post-handshake frame transform.
//!
//! A session drives its mechanism through [`Handshake`] (one variant per mechanism and role) and,
//! once the handshake is done, passes every frame through the [`Transform`] the handshake
//! produced. Only NULL exists today; CURVE plugs in as:
//!
//! * `Handshake::CurveClient(curve::CurveClient)`: `start` queues `hello()` as a command frame;
//!   `on_command` answers WELCOME with `handle_welcome(body, our_metadata.to_bytes(), rng)`
//!   (queued as a command frame), then completes on READY with `handle_ready(body)` →
//!   `Step::Complete { peer_metadata: Metadata::decode(..), transform: Transform::Curve(codec) }`.
//!   An `ERROR` body is parsed with `curve::parse_error` → `SessionError::PeerError`.
//! * `Handshake::CurveServer(curve::CurveServer)`: HELLO → WELCOME; INITIATE →
//!   `Step::AwaitAuth { mechanism: Curve, client_key: Some(key) }` (or straight to READY when
//!   `auth_required` is false), keeping the metadata; `on_auth_allowed` queues `ready(..)` and
//!   returns `Complete`.
//! * `Transform::Curve(CurveCodec)`: `write_frame` seals `(more | command << 1, payload)` and
//!   queues the sealed MESSAGE body as an outer *data* frame (flags 0x00/0x02 only: never pass
//!   `more`/`command` to `Outbox::write_frame`); `open_frame` opens the body and returns the inner
//!   frame with the payload's MORE/COMMAND bits. libzmq ORs the outer frame's MORE/COMMAND bits
//!   into the payload flags (wire.md §7.9); either mirror that or refuse such outer frames. The
//!   frame decoder's size limit then applies to the encrypted size, as libzmq's MAXMSGSIZE does.
//! * `CurveError` maps to `SessionError::Crypto`.

use bytes::Bytes;

use super::config::MechanismConfig;
use super::error::SessionError;
use super::outbox::Outbox;
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

/// One handshake machine per mechanism and role.
#[derive(Debug)]
pub(crate) enum Handshake {
    Null(NullHandshake),
}

impl Handshake {
    /// The machine for `config`, or a typed error for mechanisms not available yet.
    pub(crate) fn new<R: CryptoRngCore + ?Sized>(
        config: &MechanismConfig,
        _rng: &mut R,
    ) -> Result<Self, SessionError> {
        match config {
            MechanismConfig::Null => Ok(Self::Null(NullHandshake::default())),
            // CURVE integration point: CurveClient::new(keypair, *server_key, rng) /
            // CurveServer::new(keypair, rng), mapping CurveError to SessionError::Crypto.
            MechanismConfig::CurveClient { .. } | MechanismConfig::CurveServer { .. } => {
                Err(SessionError::MechanismUnavailable(config.mechanism()))
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
        }
    }

    /// A command frame arrived during the handshake (`body` = bytes after the frame header).
    pub(crate) fn on_command<R: CryptoRngCore + ?Sized>(
        &mut self,
        _ctx: &mut HandshakeCtx<'_>,
        body: &Bytes,
        _rng: &mut R,
    ) -> Result<Step, SessionError> {
        match self {
            Self::Null(m) => m.on_command(body),
        }
    }

    /// The embedder allowed the peer.
    pub(crate) fn on_auth_allowed<R: CryptoRngCore + ?Sized>(
        &mut self,
        ctx: &mut HandshakeCtx<'_>,
        _rng: &mut R,
    ) -> Result<Step, SessionError> {
        match self {
            Self::Null(m) => Ok(m.on_auth_allowed(ctx)),
        }
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
        }
    }

    /// Turns one received wire frame into the logical frame it carries.
    pub(crate) fn open_frame(&mut self, frame: Frame) -> Result<Frame, SessionError> {
        match self {
            Self::Identity => Ok(frame),
        }
    }
}
