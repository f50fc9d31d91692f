//! One ZMTP connection as a state machine: bytes in, multipart messages out.
//!
//! A [`Session`] owns everything about one TCP/IPC stream: our greeting, the peer's, the
//! mechanism handshake (NULL today; CURVE plugs into the internal `mechanism` seam), the authentication
//! decision, framing, multipart assembly, heartbeats and its timers. It performs no IO, reads no
//! clock and keeps no global state.
//!
//! ```text
//! Greeting → Handshake → [AwaitingAuth → Handshake] → Ready → Closing → Closed
//! ```
//!
//! ## Drive contract
//!
//! After creating a session and after every `handle_*`, [`Session::send`],
//! [`Session::auth_decision`] or [`Session::close`] call, drain [`Session::poll_transmit`] (write
//! the bytes to the socket in order) and [`Session::poll_event`] until both return `None`, then
//! arm a timer for [`Session::poll_timeout`] and call [`Session::handle_timeout`] when it fires.
//! `now` must never decrease.
//!
//! ## Errors are latched
//!
//! The first error closes the session: [`SessionEvent::Closed`] is emitted exactly once, every
//! later input is ignored, and [`Session::poll_transmit`] only yields bytes queued before the
//! error (such as an `ERROR "400"` command). The session is [`SessionState::Closing`] while such
//! bytes remain and [`SessionState::Closed`] afterwards; the driver closes the socket once it has
//! written them. No input, in any chunking, can make a session panic.
//!
//! ## Memory bounds
//!
//! * Frames: every inbound frame is checked against `max_message_size` as soon as its header is
//!   read (before buffering any body), and handshake frames against
//!   [`config::HANDSHAKE_COMMAND_LIMIT`] as well. With no limit, body buffers grow only with bytes
//!   actually received.
//! * Multipart messages: at most `max_message_parts` frames and, with a frame limit, at most
//!   [`config::MULTIPART_SIZE_FACTOR`] × `max_message_size` bytes. A peer streaming 10^9 empty
//!   MORE frames is cut off after `max_message_parts`.
//! * Input held while awaiting the authentication decision: [`config::AUTH_BACKLOG_LIMIT`].
//! * Outbound messages before the handshake completes: `max_queued_messages` messages.
//! * Events and outbound bytes after the handshake are proportional to what the embedder fed in
//!   or sent without draining; draining after every call (the contract above) keeps them small.

pub mod config;
pub mod error;
mod mechanism;
mod outbox;
pub mod peer;

#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

pub use config::{MechanismConfig, SessionConfig};
pub use error::{SendError, SessionError};
pub use peer::{AuthDecision, DenyStatus, PeerInfo};

use self::config::{AUTH_BACKLOG_LIMIT, HANDSHAKE_COMMAND_LIMIT, MULTIPART_SIZE_FACTOR};
use self::mechanism::{Handshake, HandshakeCtx, Step, Transform};
use self::outbox::Outbox;
use crate::keys::PublicKey;
use crate::rng::CryptoRngCore;
use crate::time::{Instant, earliest};
use crate::zmtp::command::{ErrorCommand, Ping, TrafficCommand};
use crate::zmtp::greeting::encode_greeting;
use crate::zmtp::socket::handshake_metadata;
use crate::zmtp::{
    Frame, FrameDecoder, GreetingDecoder, Heartbeat, HeartbeatExpiry, Mechanism, Metadata,
    PeerGreeting, SocketType, ZmtpError,
};

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[cfg(any(test, feature = "internals"))]
pub enum SessionState {
    /// Waiting for (the rest of) the peer's greeting. Ours is already queued.
    Greeting,
    /// Exchanging mechanism commands.
    Handshake,
    /// Waiting for [`Session::auth_decision`]; input is held, not processed.
    AwaitingAuth,
    /// Traffic flows.
    Ready,
    /// Closed by an error, with bytes (e.g. an ERROR command) still to transmit.
    Closing,
    /// Closed, nothing left to transmit.
    Closed,
}

/// What a session reports to its embedder.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Decide whether to accept this peer, then call [`Session::auth_decision`].
    AuthRequest {
        /// The mechanism in use.
        mechanism: Mechanism,
        /// The client's long-term public key (CURVE only).
        client_key: Option<PublicKey>,
    },
    /// The handshake completed; [`Session::peer`] is available.
    Ready,
    /// A complete multipart message (at least one frame).
    Message(Vec<Bytes>),
    /// The session closed (emitted exactly once).
    Closed(SessionError),
}

/// Counters for debugging and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Stream bytes consumed by the greeting and frame decoders (bytes held during the
    /// authentication wait count once processed; bytes after a closing error never count).
    pub bytes_received: u64,
    /// Complete messages received.
    pub messages_received: u64,
    /// Messages framed for transmission (queued ones count when flushed).
    pub messages_sent: u64,
    /// PINGs received (each answered with a PONG).
    pub pings_received: u64,
    /// PONGs received.
    pub pongs_received: u64,
    /// PINGs sent.
    pub pings_sent: u64,
    /// Unknown commands received after the handshake and dropped, as libzmq does.
    pub unknown_commands: u64,
    /// SUBSCRIBE/CANCEL commands received and ignored (DEALER/ROUTER have no subscriptions).
    pub ignored_subscriptions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Handshake,
    AwaitingAuth,
    Ready,
}

/// One ZMTP connection (see the module docs for the drive contract).
#[derive(Debug)]
pub struct Session {
    socket_type: SocketType,
    #[cfg_attr(not(any(test, feature = "internals")), allow(dead_code))]
    mechanism: Mechanism,
    auth_required: bool,
    max_message_size: Option<u64>,
    max_message_parts: usize,
    max_multipart_bytes: Option<u64>,
    max_queued_messages: usize,
    our_metadata: Metadata,

    phase: Phase,
    greeting: GreetingDecoder,
    peer_greeting: Option<PeerGreeting>,
    decoder: FrameDecoder,
    handshake: Handshake,
    transform: Option<Transform>,
    decision: Option<(Bytes, Vec<(alloc::string::String, Bytes)>)>,
    peer: Option<PeerInfo>,

    backlog: BytesMut,
    partial: Vec<Bytes>,
    partial_bytes: u64,
    queued: VecDeque<Vec<Bytes>>,
    out: Outbox,
    events: VecDeque<SessionEvent>,

    handshake_deadline: Option<Instant>,
    heartbeat: Heartbeat,
    error: Option<SessionError>,
    stats: SessionStats,
}

impl Session {
    /// Creates a session and queues our full 64-byte greeting at once (never waiting for the
    /// peer's: libzmq sends most of its greeting only after seeing the start of ours).
    ///
    /// Fails on an invalid configuration, an unsupported socket type (sessions implement DEALER
    /// and ROUTER), or a CURVE client whose server key is unusable (low order).
    pub fn new<R: CryptoRngCore + ?Sized>(
        config: SessionConfig,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self, SessionError> {
        if !matches!(config.socket_type, SocketType::Dealer | SocketType::Router) {
            return Err(SessionError::UnsupportedSocketType(config.socket_type));
        }
        if config.max_message_parts == 0 {
            return Err(SessionError::InvalidConfig(
                "max_message_parts must be at least 1",
            ));
        }
        let our_metadata =
            handshake_metadata(config.socket_type, &config.routing_id, &config.properties)
                .map_err(SessionError::InvalidProperty)?;
        let mechanism = config.mechanism.mechanism();
        let handshake = Handshake::new(&config.mechanism, config.crypto_provider, rng)?;

        let mut out = Outbox::default();
        out.write_bytes(&encode_greeting(mechanism, config.routing_id.len()));
        let handshake_limit = config
            .max_message_size
            .map_or(HANDSHAKE_COMMAND_LIMIT, |m| m.min(HANDSHAKE_COMMAND_LIMIT));
        Ok(Self {
            socket_type: config.socket_type,
            mechanism,
            auth_required: config.auth_required,
            max_message_size: config.max_message_size,
            max_message_parts: config.max_message_parts,
            max_multipart_bytes: config
                .max_message_size
                .map(|m| m.saturating_mul(MULTIPART_SIZE_FACTOR)),
            max_queued_messages: config.max_queued_messages,
            our_metadata,
            phase: Phase::Greeting,
            greeting: GreetingDecoder::new(mechanism),
            peer_greeting: None,
            decoder: FrameDecoder::new(Some(handshake_limit)),
            handshake,
            transform: None,
            decision: None,
            peer: None,
            backlog: BytesMut::new(),
            partial: Vec::new(),
            partial_bytes: 0,
            queued: VecDeque::new(),
            out,
            events: VecDeque::new(),
            handshake_deadline: (!config.handshake_timeout.is_zero())
                .then(|| now + config.handshake_timeout),
            heartbeat: Heartbeat::new(config.heartbeat),
            error: None,
            stats: SessionStats::default(),
        })
    }

    /// Feeds bytes received from the peer, in any chunking (even one byte at a time): the
    /// events and output are the same as for one big chunk.
    pub fn handle_bytes<R: CryptoRngCore + ?Sized>(
        &mut self,
        now: Instant,
        data: &[u8],
        rng: &mut R,
    ) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        if self.phase == Phase::AwaitingAuth {
            self.hold(data);
            return;
        }
        let mut input = data;
        self.process(now, &mut input, rng);
        if !input.is_empty() && self.error.is_none() && self.phase == Phase::AwaitingAuth {
            self.hold(input);
        }
    }

    /// Advances timers to `now` (call when [`Session::poll_timeout`] is reached; calling it
    /// earlier is harmless).
    pub fn handle_timeout<R: CryptoRngCore + ?Sized>(&mut self, now: Instant, _rng: &mut R) {
        if self.error.is_some() {
            return;
        }
        if self.handshake_deadline.is_some_and(|d| d.has_elapsed(now)) {
            self.fail(SessionError::HandshakeTimeout);
            return;
        }
        if self.phase != Phase::Ready {
            return;
        }
        match self.heartbeat.handle_timeout(now) {
            Ok(None) => {}
            Ok(Some(ttl)) => {
                let ping = Ping {
                    ttl,
                    context: Bytes::new(),
                };
                self.stats.pings_sent += 1;
                self.write_traffic_command(&ping.body());
            }
            Err(HeartbeatExpiry::NoResponse) => self.fail(SessionError::HeartbeatTimeout),
            Err(HeartbeatExpiry::TtlExpired) => self.fail(SessionError::TtlExpired),
        }
    }

    /// Answers [`SessionEvent::AuthRequest`]. Input held meanwhile is processed right after an
    /// allow, in order. Returns `false` (and does nothing) if the session was not awaiting a
    /// decision, e.g. because it already closed on a handshake timeout.
    ///
    /// Takes an RNG because processing held input may continue the mechanism handshake.
    pub fn auth_decision<R: CryptoRngCore + ?Sized>(
        &mut self,
        now: Instant,
        decision: AuthDecision,
        rng: &mut R,
    ) -> bool {
        if self.error.is_some() || self.phase != Phase::AwaitingAuth {
            return false;
        }
        match decision {
            AuthDecision::Allow {
                user_id,
                properties,
            } => {
                self.decision = Some((user_id, properties));
                self.phase = Phase::Handshake;
                self.handshake_step(now, |h, ctx| h.on_auth_allowed(ctx, rng));
                let held = core::mem::take(&mut self.backlog);
                let mut input = &held[..];
                self.process(now, &mut input, rng);
                if !input.is_empty() && self.error.is_none() && self.phase == Phase::AwaitingAuth {
                    self.backlog.extend_from_slice(input);
                }
            }
            AuthDecision::Deny { status } => {
                if let Some(reason) = status.error_reason() {
                    // Handshake commands travel in the clear under every mechanism.
                    let body = ErrorCommand::new(Bytes::from_static(reason))
                        .expect("a 3-byte reason is within ERROR's 255-byte limit")
                        .body();
                    self.out.write_frame(false, true, &body);
                }
                self.fail(SessionError::AuthDenied(status));
            }
        }
        true
    }

    /// Sends a multipart message. Before the handshake completes it is queued (at most
    /// `max_queued_messages`); afterwards it is framed at once.
    pub fn send(&mut self, _now: Instant, parts: Vec<Bytes>) -> Result<(), SendError> {
        if parts.is_empty() {
            return Err(SendError::EmptyMessage);
        }
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        if self.phase == Phase::Ready {
            self.write_message(&parts);
            return if self.error.is_some() {
                Err(SendError::Closed)
            } else {
                Ok(())
            };
        }
        if self.queued.len() >= self.max_queued_messages {
            return Err(SendError::QueueFull {
                limit: self.max_queued_messages,
            });
        }
        self.queued.push_back(parts);
        Ok(())
    }

    /// Closes the session locally ([`SessionError::LocallyClosed`]). Bytes already queued remain
    /// to be transmitted; messages still waiting for the handshake are dropped.
    pub fn close(&mut self, _now: Instant) {
        self.fail(SessionError::LocallyClosed);
    }

    /// The next bytes to write to the socket, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.pop()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called (`None` = no timer).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let heartbeat = if self.phase == Phase::Ready {
            self.heartbeat.poll_timeout()
        } else {
            None
        };
        earliest(self.handshake_deadline, heartbeat)
    }

    /// The current state.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn state(&self) -> SessionState {
        if self.error.is_some() {
            return if self.out.is_empty() {
                SessionState::Closed
            } else {
                SessionState::Closing
            };
        }
        match self.phase {
            Phase::Greeting => SessionState::Greeting,
            Phase::Handshake => SessionState::Handshake,
            Phase::AwaitingAuth => SessionState::AwaitingAuth,
            Phase::Ready => SessionState::Ready,
        }
    }

    /// The error that closed the session, if it is closed.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// True for a CURVE client whose HELLO went out and got no WELCOME yet. If the transport
    /// ends now, the server could not open our HELLO: libzmq closes silently when HELLO is not
    /// sealed to its key, so the key we were given is almost certainly wrong.
    #[must_use]
    pub fn awaits_curve_welcome(&self) -> bool {
        self.error.is_none() && self.phase == Phase::Handshake && self.handshake.awaits_welcome()
    }

    /// The peer, once the handshake has completed.
    #[must_use]
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// The peer's greeting, once received.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn peer_greeting(&self) -> Option<&PeerGreeting> {
        self.peer_greeting.as_ref()
    }

    /// Our socket type.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// Our mechanism.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Debug counters.
    #[must_use]
    #[cfg(any(test, feature = "internals"))]
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    fn hold(&mut self, data: &[u8]) {
        if self.backlog.len().saturating_add(data.len()) > AUTH_BACKLOG_LIMIT {
            self.fail(SessionError::AuthBacklogExceeded {
                limit: AUTH_BACKLOG_LIMIT,
            });
        } else {
            self.backlog.extend_from_slice(data);
        }
    }

    /// Consumes `input` until it is exhausted, an error latches, or the session starts waiting
    /// for the authentication decision (the rest is then left in `input`).
    fn process<R: CryptoRngCore + ?Sized>(&mut self, now: Instant, input: &mut &[u8], rng: &mut R) {
        let start = input.len();
        while self.error.is_none() && !input.is_empty() {
            match self.phase {
                Phase::AwaitingAuth => break,
                Phase::Greeting => match self.greeting.decode(input) {
                    Ok(Some(g)) => self.on_greeting(now, g, rng),
                    Ok(None) => {}
                    Err(e) => self.fail(e.into()),
                },
                Phase::Handshake | Phase::Ready => {
                    let before = input.len();
                    let result = self.decoder.decode(input);
                    if input.len() < before {
                        // Any incoming bytes prove the peer alive (cancels heartbeat timers).
                        self.heartbeat.on_activity();
                    }
                    match result {
                        Ok(Some(frame)) => self.on_frame(now, frame, rng),
                        Ok(None) => {}
                        Err(e) => self.fail(e.into()),
                    }
                }
            }
        }
        let consumed = (start - input.len()) as u64;
        self.stats.bytes_received = self.stats.bytes_received.saturating_add(consumed);
    }

    fn on_greeting<R: CryptoRngCore + ?Sized>(
        &mut self,
        now: Instant,
        greeting: PeerGreeting,
        rng: &mut R,
    ) {
        self.peer_greeting = Some(greeting);
        self.phase = Phase::Handshake;
        self.handshake_step(now, |h, ctx| h.start(ctx, rng));
    }

    /// Runs one step of the mechanism handshake against this session's output and metadata,
    /// then acts on its result.
    fn handshake_step(
        &mut self,
        now: Instant,
        step: impl FnOnce(&mut Handshake, &mut HandshakeCtx<'_>) -> Result<Step, SessionError>,
    ) {
        let result = step(
            &mut self.handshake,
            &mut HandshakeCtx {
                out: &mut self.out,
                our_metadata: &self.our_metadata,
                auth_required: self.auth_required,
            },
        );
        self.apply_step(now, result);
    }

    fn apply_step(&mut self, now: Instant, step: Result<Step, SessionError>) {
        match step {
            Err(e) => self.fail(e),
            Ok(Step::Continue) => {}
            Ok(Step::AwaitAuth {
                mechanism,
                client_key,
            }) => {
                self.phase = Phase::AwaitingAuth;
                self.events.push_back(SessionEvent::AuthRequest {
                    mechanism,
                    client_key,
                });
            }
            Ok(Step::Complete {
                peer_metadata,
                transform,
            }) => self.complete(now, peer_metadata, transform),
        }
    }

    fn complete(&mut self, now: Instant, peer_metadata: Metadata, transform: Transform) {
        let peer_type = match self.socket_type.check_peer(&peer_metadata) {
            Ok(t) => t,
            Err(e) => return self.fail(e.into()),
        };
        let dialect = self
            .peer_greeting
            .map_or(crate::zmtp::Dialect::Zmtp31, |g| g.dialect());
        self.peer = Some(PeerInfo::new(
            peer_metadata,
            peer_type,
            dialect,
            self.decision.take(),
        ));
        self.transform = Some(transform);
        self.handshake = Handshake::Done;
        self.phase = Phase::Ready;
        self.decoder.set_max_size(self.max_message_size);
        self.handshake_deadline = None;
        self.heartbeat.start(now);
        self.events.push_back(SessionEvent::Ready);
        while let Some(parts) = self.queued.pop_front() {
            self.write_message(&parts);
            if self.error.is_some() {
                return;
            }
        }
    }

    fn on_frame<R: CryptoRngCore + ?Sized>(&mut self, now: Instant, frame: Frame, rng: &mut R) {
        match self.phase {
            Phase::Handshake => {
                if !frame.command {
                    return self.fail(ZmtpError::UnexpectedDataFrame.into());
                }
                self.handshake_step(now, |h, ctx| h.on_command(ctx, &frame.body, rng));
            }
            Phase::Ready => {
                let opened = match self.transform.as_mut() {
                    Some(t) => t.open_frame(frame),
                    // Ready always has a transform; treat the impossible as identity.
                    None => Ok(Some(frame)),
                };
                match opened {
                    Ok(Some(f)) if f.command => self.on_traffic_command(now, &f.body),
                    Ok(Some(f)) => self.on_data_frame(f),
                    Ok(None) => self.stats.unknown_commands += 1,
                    Err(e) => self.fail(e),
                }
            }
            // Frames are only decoded in the two phases above.
            Phase::Greeting | Phase::AwaitingAuth => {}
        }
    }

    fn on_traffic_command(&mut self, now: Instant, body: &Bytes) {
        match TrafficCommand::parse(body) {
            Err(e) => self.fail(e.into()),
            Ok(TrafficCommand::Ping(ping)) => {
                self.stats.pings_received += 1;
                self.heartbeat.on_ping(now, ping.ttl_duration());
                self.write_traffic_command(&ping.pong().body());
            }
            Ok(TrafficCommand::Pong(_)) => self.stats.pongs_received += 1,
            Ok(TrafficCommand::Subscribe(_) | TrafficCommand::Cancel(_)) => {
                self.stats.ignored_subscriptions += 1;
            }
            Ok(_) => self.stats.unknown_commands += 1,
        }
    }

    fn on_data_frame(&mut self, frame: Frame) {
        if self.partial.len() >= self.max_message_parts {
            return self.fail(
                ZmtpError::TooManyParts {
                    limit: self.max_message_parts,
                }
                .into(),
            );
        }
        self.partial_bytes = self.partial_bytes.saturating_add(frame.body.len() as u64);
        if let Some(limit) = self.max_multipart_bytes {
            if self.partial_bytes > limit {
                return self.fail(ZmtpError::MessageTooLarge { limit }.into());
            }
        }
        self.partial.push(frame.body);
        if !frame.more {
            self.partial_bytes = 0;
            self.stats.messages_received += 1;
            let parts = core::mem::take(&mut self.partial);
            self.events.push_back(SessionEvent::Message(parts));
        }
    }

    fn write_traffic_command(&mut self, body: &Bytes) {
        let result = match self.transform.as_mut() {
            Some(t) => t.write_frame(&mut self.out, false, true, body),
            None => Ok(()),
        };
        if let Err(e) = result {
            self.fail(e);
        }
    }

    fn write_message(&mut self, parts: &[Bytes]) {
        let Some(t) = self.transform.as_mut() else {
            return;
        };
        let n = parts.len();
        for (i, part) in parts.iter().enumerate() {
            if let Err(e) = t.write_frame(&mut self.out, i + 1 < n, false, part) {
                return self.fail(e);
            }
        }
        self.stats.messages_sent += 1;
    }

    fn fail(&mut self, error: SessionError) {
        if self.error.is_some() {
            return;
        }
        self.heartbeat.stop();
        self.handshake_deadline = None;
        self.queued.clear();
        self.partial.clear();
        self.backlog = BytesMut::new();
        self.events.push_back(SessionEvent::Closed(error.clone()));
        self.error = Some(error);
    }
}
