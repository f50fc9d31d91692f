//! Taps: test-controlled connection ends. A tap records every byte it receives and writes
//! whatever the test gives it; with a ZMTP [`Session`] attached it is a raw DEALER (or ROUTER)
//! peer that sends exact frames and collects exact replies.

use bytes::Bytes;
use lokimq_core::node::DisconnectCause;
use lokimq_core::session::{Session, SessionConfig, SessionError};
use lokimq_core::time::Instant;
use rand_chacha::ChaCha20Rng;

/// One tap (see the module docs).
#[derive(Debug)]
pub struct Tap {
    /// Every byte received, in order.
    pub received: Vec<u8>,
    /// When the connection was established.
    pub connected_at: Option<Instant>,
    /// When the peer's EOF arrived.
    pub eof_at: Option<Instant>,
    /// Why the connection failed or was reset.
    pub failed: Option<(Instant, DisconnectCause)>,
    /// The tap listener that accepted this tap, if any.
    pub listener: Option<usize>,
    /// Messages decoded by the attached session.
    pub messages: Vec<Vec<Bytes>>,
    /// Why the attached session closed.
    pub session_closed: Option<SessionError>,
    /// When the attached session became ready.
    pub ready_at: Option<Instant>,
    pub(crate) pending_bytes: Vec<Bytes>,
    pub(crate) pending_frames: Vec<Vec<Bytes>>,
    pub(crate) session_config: Option<SessionConfig>,
    pub(crate) session: Option<Session>,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) closed: bool,
}

impl Tap {
    pub(crate) fn new(rng: ChaCha20Rng, session_config: Option<SessionConfig>) -> Self {
        Self {
            received: Vec::new(),
            connected_at: None,
            eof_at: None,
            failed: None,
            listener: None,
            messages: Vec::new(),
            session_closed: None,
            ready_at: None,
            pending_bytes: Vec::new(),
            pending_frames: Vec::new(),
            session_config,
            session: None,
            rng,
            closed: false,
        }
    }

    /// The attached session, if any.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Takes the messages decoded so far.
    pub fn take_messages(&mut self) -> Vec<Vec<Bytes>> {
        std::mem::take(&mut self.messages)
    }
}

/// A listening address whose accepted connections become taps.
#[derive(Debug)]
pub struct TapListener {
    /// The address (zmq form).
    pub addr: String,
    /// The taps accepted, in order.
    pub accepted: Vec<usize>,
    pub(crate) session_config: Option<SessionConfig>,
}
