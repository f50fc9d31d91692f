//! Two ZMTP sessions (DEALER client, ROUTER server) wired back to back in memory.

use bytes::Bytes;
use lokimq_core::crypto::CryptoProvider;
use lokimq_core::session::{MechanismConfig, Session, SessionConfig, SessionEvent, SessionState};
use lokimq_core::time::Instant;
use lokimq_core::zmtp::SocketType;
use rand_chacha::ChaCha20Rng;

use crate::{HarnessError, RUST, client_keypair, core_err, rng, server_keypair};

/// The security mechanism of a [`SessionPair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// NULL: frames travel in the clear.
    Null,
    /// CURVE: every frame is a MESSAGE box.
    Curve,
}

/// An established session pair. Time stands still (no heartbeats, no timeouts).
#[derive(Debug)]
pub struct SessionPair {
    client: Session,
    server: Session,
    rng: ChaCha20Rng,
    now: Instant,
    /// Messages the server received, drained by the carry methods.
    at_server: Vec<Vec<Bytes>>,
    /// Messages the client received.
    at_client: Vec<Vec<Bytes>>,
}

impl SessionPair {
    /// Creates both sessions (CURVE on [`RUST`]) and runs the greeting and handshake to
    /// completion.
    pub fn new(mechanism: Mechanism) -> Result<Self, HarnessError> {
        Self::with_provider(mechanism, RUST)
    }

    /// [`new`](Self::new) with both sessions' CURVE on `provider`.
    pub fn with_provider(
        mechanism: Mechanism,
        provider: &'static dyn CryptoProvider,
    ) -> Result<Self, HarnessError> {
        let (cm, sm) = match mechanism {
            Mechanism::Null => (MechanismConfig::Null, MechanismConfig::Null),
            Mechanism::Curve => {
                let server = server_keypair();
                (
                    MechanismConfig::CurveClient {
                        keypair: client_keypair(),
                        server_key: *server.public(),
                    },
                    MechanismConfig::CurveServer { keypair: server },
                )
            }
        };
        let mut rng = rng(2);
        let now = Instant::from_secs(1);
        let config = |socket_type, mechanism| {
            let mut c = SessionConfig::new(socket_type, mechanism);
            c.crypto_provider = provider;
            c
        };
        let client =
            Session::new(config(SocketType::Dealer, cm), now, &mut rng).map_err(core_err)?;
        let server =
            Session::new(config(SocketType::Router, sm), now, &mut rng).map_err(core_err)?;
        let mut pair = Self {
            client,
            server,
            rng,
            now,
            at_server: Vec::new(),
            at_client: Vec::new(),
        };
        pair.pump()?;
        if pair.client.state() != SessionState::Ready || pair.server.state() != SessionState::Ready
        {
            return Err(HarnessError::Unexpected(format!(
                "handshake did not complete: client {:?}, server {:?}",
                pair.client.state(),
                pair.server.state()
            )));
        }
        Ok(pair)
    }

    /// Moves bytes both ways until neither side has anything to send; collects messages.
    fn pump(&mut self) -> Result<(), HarnessError> {
        loop {
            let mut moved = false;
            while let Some(b) = self.client.poll_transmit() {
                moved = true;
                self.server.handle_bytes(self.now, &b, &mut self.rng);
            }
            while let Some(b) = self.server.poll_transmit() {
                moved = true;
                self.client.handle_bytes(self.now, &b, &mut self.rng);
            }
            collect(&mut self.client, &mut self.at_client)?;
            collect(&mut self.server, &mut self.at_server)?;
            if !moved {
                return Ok(());
            }
        }
    }

    /// `Session::send` on the client and the drain of its output, the bytes being discarded:
    /// the send-side cost of one message.
    pub fn client_send(&mut self, parts: Vec<Bytes>) -> Result<usize, HarnessError> {
        self.client.send(self.now, parts).map_err(core_err)?;
        let mut bytes = 0;
        while let Some(b) = self.client.poll_transmit() {
            bytes += b.len();
        }
        Ok(bytes)
    }

    /// Carries one message from client to server and returns it as the server received it.
    pub fn client_to_server(&mut self, parts: Vec<Bytes>) -> Result<Vec<Bytes>, HarnessError> {
        self.client.send(self.now, parts).map_err(core_err)?;
        self.pump()?;
        one(&mut self.at_server)
    }

    /// One request→reply exchange: `request` from client to server, then `reply` back. Returns
    /// the reply as the client received it.
    pub fn exchange(
        &mut self,
        request: Vec<Bytes>,
        reply: Vec<Bytes>,
    ) -> Result<Vec<Bytes>, HarnessError> {
        self.client_to_server(request)?;
        self.server.send(self.now, reply).map_err(core_err)?;
        self.pump()?;
        one(&mut self.at_client)
    }
}

fn collect(s: &mut Session, into: &mut Vec<Vec<Bytes>>) -> Result<(), HarnessError> {
    while let Some(e) = s.poll_event() {
        match e {
            SessionEvent::Message(m) => into.push(m),
            SessionEvent::Closed(err) => return Err(core_err(err)),
            _ => {}
        }
    }
    Ok(())
}

fn one(queue: &mut Vec<Vec<Bytes>>) -> Result<Vec<Bytes>, HarnessError> {
    match queue.pop() {
        Some(m) if queue.is_empty() => Ok(m),
        Some(_) => Err(HarnessError::Unexpected(
            "more than one message arrived".into(),
        )),
        None => Err(HarnessError::Unexpected("no message arrived".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FAST, SIZES, payload};

    #[test]
    fn both_mechanisms_carry_every_size_both_ways() {
        for (mechanism, provider) in [
            (Mechanism::Null, RUST),
            (Mechanism::Curve, RUST),
            (Mechanism::Curve, FAST),
        ] {
            let mut p = SessionPair::with_provider(mechanism, provider).unwrap();
            for size in SIZES {
                let msg = vec![Bytes::from(payload(size))];
                assert_eq!(p.client_to_server(msg.clone()).unwrap(), msg);
                let req = vec![Bytes::from_static(b"cmd"), Bytes::from(payload(size))];
                let rep = vec![Bytes::from_static(b"REPLY"), Bytes::from(payload(size / 2))];
                assert_eq!(p.exchange(req, rep.clone()).unwrap(), rep);
            }
        }
    }

    #[test]
    fn client_send_produces_the_framed_bytes() {
        let mut null = SessionPair::new(Mechanism::Null).unwrap();
        // One short data frame: flags, size, body.
        assert_eq!(
            null.client_send(vec![Bytes::from(payload(100))]).unwrap(),
            102
        );
        let mut curve = SessionPair::new(Mechanism::Curve).unwrap();
        // MESSAGE body = 33 + payload; 133 bytes still fit the short header.
        assert_eq!(
            curve.client_send(vec![Bytes::from(payload(100))]).unwrap(),
            2 + 133
        );
        assert_eq!(
            curve.client_send(vec![Bytes::from(payload(1024))]).unwrap(),
            9 + 33 + 1024
        );
    }
}
