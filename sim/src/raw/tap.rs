//! Taps: test-controlled connection ends. A tap records every byte it receives and writes
//! whatever the test gives it; with a ZMTP [`Session`] attached it is a raw DEALER (or ROUTER)
//! peer that sends exact frames and collects exact replies.

use bytes::Bytes;
use lokimq_core::address::Address;
use lokimq_core::keys::Keypair;
use lokimq_core::node::DisconnectCause;
use lokimq_core::session::MechanismConfig;
use lokimq_core::session::{Session, SessionConfig, SessionError};
use lokimq_core::time::Instant;
use lokimq_core::zmtp::SocketType;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::{Sim, parts, show_bytes};
use crate::net::{End, ListenTarget};

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

impl Sim {
    // -----------------------------------------------------------------------------------------
    // taps (raw peers)

    /// Opens a byte tap to `addr`; returns the tap's index.
    pub fn tap_dial(&mut self, addr: &Address) -> usize {
        self.tap_dial_with(addr, None)
    }

    /// Opens a raw ZMTP DEALER to `addr` (NULL, or CURVE with a fresh client key if the address
    /// carries a pubkey) with an empty routing id and no heartbeats.
    pub fn raw_dealer(&mut self, addr: &Address) -> usize {
        let mechanism = match addr.pubkey() {
            Some(server_key) => MechanismConfig::CurveClient {
                keypair: Keypair::generate(&mut self.rng),
                server_key: *server_key,
            },
            None => MechanismConfig::Null,
        };
        self.tap_dial_with(
            addr,
            Some(SessionConfig::new(SocketType::Dealer, mechanism)),
        )
    }

    /// Opens a tap to `addr` with an optional ZMTP session.
    pub fn tap_dial_with(&mut self, addr: &Address, session: Option<SessionConfig>) -> usize {
        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        self.taps.push(Tap::new(rng, session));
        let t = self.taps.len() - 1;
        self.record(&format!("tap{t}"), format!("dial {}", addr.zmq_address()));
        let now = self.now;
        self.net.dial(
            now,
            &mut self.rng,
            &mut self.queue,
            End::Tap(t),
            &addr.zmq_address(),
        );
        t
    }

    /// Listens on `addr` with taps (an optional ZMTP session for each accepted connection).
    pub fn tap_listen(&mut self, addr: &Address, session: Option<SessionConfig>) -> usize {
        let l = self.tap_listeners.len();
        let zmq = addr.zmq_address();
        assert!(
            self.net.bind(zmq.clone(), ListenTarget::Tap(l)),
            "address {zmq} already bound"
        );
        self.tap_listeners.push(TapListener {
            addr: zmq,
            accepted: Vec::new(),
            session_config: session,
        });
        l
    }

    /// Tap `t`.
    #[must_use]
    pub fn tap(&self, t: usize) -> &Tap {
        &self.taps[t]
    }

    /// Tap `t`, mutably.
    pub fn tap_mut(&mut self, t: usize) -> &mut Tap {
        &mut self.taps[t]
    }

    /// Tap listener `l`.
    #[must_use]
    pub fn tap_listener(&self, l: usize) -> &TapListener {
        &self.tap_listeners[l]
    }

    /// Writes raw bytes on tap `t` (queued until it is connected).
    pub fn tap_write(&mut self, t: usize, data: &[u8]) {
        let data = Bytes::copy_from_slice(data);
        self.record(&format!("tap{t}"), format!("write {}", show_bytes(&data)));
        if self.net.is_connected(End::Tap(t)) {
            let now = self.now;
            self.net
                .transmit(now, &mut self.rng, &mut self.queue, End::Tap(t), data);
        } else {
            self.taps[t].pending_bytes.push(data);
        }
    }

    /// Sends a multipart message on tap `t`'s session.
    pub fn raw_send(&mut self, t: usize, frames: Vec<Bytes>) {
        self.record(&format!("tap{t}"), format!("send {}", parts(&frames)));
        let now = self.now;
        match self.taps[t].session.as_mut() {
            Some(s) => {
                if let Err(e) = s.send(now, frames) {
                    self.record(&format!("tap{t}"), format!("send failed: {e}"));
                }
                self.flush_tap(t);
            }
            None => self.taps[t].pending_frames.push(frames),
        }
    }

    /// Sends a message whose frames are given as byte strings.
    pub fn raw_send_strs(&mut self, t: usize, frames: &[&[u8]]) {
        self.raw_send(
            t,
            frames.iter().map(|f| Bytes::copy_from_slice(f)).collect(),
        );
    }

    /// Takes the messages tap `t`'s session decoded so far.
    pub fn raw_take(&mut self, t: usize) -> Vec<Vec<Bytes>> {
        self.taps[t].take_messages()
    }

    /// Closes tap `t` for writing (FIN after everything it wrote); it still reads until the
    /// peer's EOF.
    pub fn tap_close(&mut self, t: usize) {
        self.record(&format!("tap{t}"), "close".to_string());
        self.taps[t].closed = true;
        let now = self.now;
        self.net
            .close(now, &mut self.rng, &mut self.queue, End::Tap(t), true);
    }
}
