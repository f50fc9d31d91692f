//! A small replicated key-value store on lokimq: the example application of `lokimq-sim`.
//!
//! This file is ordinary application code written against `lokimq` alone: nothing in it knows
//! about the simulator. `main.rs` runs it on real sockets and in the simulator; the tests in
//! `sim/tests/kvstore.rs` run it under faults across hundreds of seeds.
//!
//! # The protocol
//!
//! Every replica is a service node with a CURVE listener; they know each other by key (an
//! `sn_lookup` function) and list each other as the active service-node set. Each key has a
//! *primary*: the replica its hash picks from the replica set.
//!
//! * `kv.put [key, value]` (any client, any replica): a replica that is not the key's primary
//!   forwards the request to the primary by key (`ConnectionId::Sn`, a request chain answered
//!   with `send_later`); the primary gives the write the key's next version, stores it, replies
//!   `["OK", version]`, and queues it for every other replica.
//! * `repl.apply [key, version, value]` (service nodes only): a replica stores a replicated
//!   write. This is where the planted bug lives: [`ApplyOrder::Arrival`] stores whatever
//!   arrives last, [`ApplyOrder::ByVersion`] only a newer version.
//! * `kv.get [key]`: `["OK", version, value]` or `["NOT_FOUND"]`.
//! * A timer on every replica re-sends each write no replica has acknowledged yet (the
//!   *outbox*), so writes survive resets, partitions and crashes.
//!
//! The data and the outbox live on the replica's "disk" ([`Disk`], shared with whoever built
//! the replica), so they survive a restart; what is in flight does not.
//!
//! # The planted bug
//!
//! `repl.apply` runs on any of the replica's workers. Two replications of one key arrive in
//! order on one connection, but a node has several workers: if the older one's handler takes
//! longer, the newer one is stored first and the older one overwrites it. The store's author
//! assumed "in order on the wire" meant "in order in the handler". With
//! [`ApplyOrder::Arrival`] the replica then holds a stale value for good (the primary saw the
//! newer version acknowledged), which the simulation finds on some seed as soon as handlers
//! take varying time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lokimq::{
    Access, AuthLevel, Builder, Bytes, ConnectionId, Error, Handle, Message, PublicKey,
    RequestOptions, Target, ToAddress,
};

/// How a replica applies replicated writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApplyOrder {
    /// Only a newer version replaces what is stored (correct).
    ByVersion,
    /// Whatever arrives last wins (the planted bug).
    Arrival,
}

/// What a replica keeps across restarts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Disk {
    /// Key → (version, value).
    pub(crate) data: BTreeMap<String, (u64, String)>,
    /// Writes this replica is primary for that a replica has not acknowledged yet:
    /// (replica, key).
    pub(crate) outbox: BTreeSet<(PublicKey, String)>,
}

/// Locks a mutex, ignoring poisoning (a panicking handler leaves consistent data behind: every
/// change below is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key's primary among `replicas` (sorted): FNV-1a of the key, modulo their number.
#[must_use]
pub(crate) fn primary_of(replicas: &[PublicKey], key: &str) -> PublicKey {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    replicas[(h % replicas.len() as u64) as usize]
}

/// How long a replication waits for its acknowledgement before the outbox timer may resend.
const REPLICATE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the outbox is swept.
const SYNC_EVERY: Duration = Duration::from_millis(250);

/// One replica of the store: register it on a builder, start the node, hand it the handle.
#[derive(Clone)]
pub(crate) struct Replica {
    disk: Arc<Mutex<Disk>>,
    replicas: Arc<Vec<PublicKey>>,
    order: ApplyOrder,
    /// This incarnation's handle and its replications in flight (gone with the process).
    live: Arc<Mutex<Live>>,
}

#[derive(Default)]
struct Live {
    handle: Option<Handle>,
    in_flight: BTreeSet<(PublicKey, String)>,
}

impl Replica {
    /// A replica storing on `disk`, one of `replicas` (every replica's key).
    #[must_use]
    pub(crate) fn new(disk: Arc<Mutex<Disk>>, replicas: &[PublicKey], order: ApplyOrder) -> Self {
        let mut replicas = replicas.to_vec();
        replicas.sort_unstable();
        Self {
            disk,
            replicas: Arc::new(replicas),
            order,
            live: Arc::default(),
        }
    }

    /// Registers the store on `b`: the categories and commands, the outbox timer, the
    /// service-node settings. The caller adds its CURVE listener, keypair and `sn_lookup`.
    ///
    /// # Errors
    ///
    /// The builder's, for a name clash with the application's own commands.
    pub(crate) fn register(&self, b: &mut Builder) -> Result<(), Error> {
        // A fresh process: nothing in flight, no handle until `started`.
        *lock(&self.live) = Live::default();
        let (put, apply, get, sync) = (self.clone(), self.clone(), self.clone(), self.clone());
        b.service_node(true)
            .set_active_sns(self.replicas.iter().copied())
            .add_category("kv", AuthLevel::None)?
            .add_request_command("kv", "put", move |m| put.on_put(m))?
            .add_request_command("kv", "get", move |m| get.on_get(m))?
            .add_category("repl", Access::new(AuthLevel::None, true, true))?
            .add_request_command("repl", "apply", move |m| apply.on_apply(m))?
            .add_timer(move || sync.sync(), SYNC_EVERY, true, Target::Worker)?;
        Ok(())
    }

    /// Gives the replica its node's handle, once the node has started.
    pub(crate) fn started(&self, handle: Handle) {
        lock(&self.live).handle = Some(handle);
    }

    /// A copy of what is on disk.
    #[must_use]
    pub(crate) fn disk(&self) -> Disk {
        lock(&self.disk).clone()
    }

    fn on_put(&self, m: &mut Message) {
        let [key, value] = m.data() else {
            return m.send_reply(["ERR", "usage: key value"]);
        };
        let key = String::from_utf8_lossy(key).into_owned();
        let value = String::from_utf8_lossy(value).into_owned();
        let me = *m.handle().pubkey();
        let primary = primary_of(&self.replicas, &key);
        if primary != me {
            // Forward to the key's primary, answer our caller when it answers us.
            let later = m.send_later();
            let opts = RequestOptions::default().timeout(Duration::from_secs(3));
            let sent = m.handle().request_with(
                &ConnectionId::Sn(primary),
                "kv.put",
                [key, value],
                opts,
                move |r| {
                    let _ = match r {
                        Ok(parts) => later.reply(parts),
                        Err(e) => later.reply([String::from("ERR"), e.to_string()]),
                    };
                },
            );
            if sent.is_err() {
                m.send_reply(["ERR", "stopping"]);
            }
            return;
        }
        let version = {
            let mut disk = lock(&self.disk);
            let version = disk.data.get(&key).map_or(1, |(v, _)| v + 1);
            disk.data.insert(key.clone(), (version, value));
            for r in self.replicas.iter().filter(|r| **r != me) {
                disk.outbox.insert((*r, key.clone()));
            }
            version
        };
        m.send_reply([String::from("OK"), version.to_string()]);
        self.replicate(m.handle(), &key);
    }

    fn on_apply(&self, m: &mut Message) {
        let [key, version, value] = m.data() else {
            return m.send_reply(["ERR", "usage: key version value"]);
        };
        let key = String::from_utf8_lossy(key).into_owned();
        let Ok(version) = String::from_utf8_lossy(version).parse::<u64>() else {
            return m.send_reply(["ERR", "bad version"]);
        };
        let value = String::from_utf8_lossy(value).into_owned();
        {
            let mut disk = lock(&self.disk);
            let current = disk.data.get(&key).map_or(0, |(v, _)| *v);
            let store = match self.order {
                ApplyOrder::ByVersion => version > current,
                ApplyOrder::Arrival => true,
            };
            if store {
                disk.data.insert(key, (version, value));
            }
        }
        m.send_reply([String::from("OK"), version.to_string()]);
    }

    fn on_get(&self, m: &mut Message) {
        let Some(key) = m.data().first() else {
            return m.send_reply(["ERR", "usage: key"]);
        };
        let key = String::from_utf8_lossy(key).into_owned();
        let found = lock(&self.disk).data.get(&key).cloned();
        match found {
            Some((v, value)) => m.send_reply([String::from("OK"), v.to_string(), value]),
            None => m.send_reply(["NOT_FOUND"]),
        }
    }

    /// The outbox timer: resend every write not acknowledged and not in flight.
    fn sync(&self) {
        let Some(handle) = lock(&self.live).handle.clone() else {
            return;
        };
        let keys: BTreeSet<String> = lock(&self.disk)
            .outbox
            .iter()
            .map(|(_, k)| k.clone())
            .collect();
        for key in keys {
            self.replicate(&handle, &key);
        }
    }

    /// Sends `key`'s current version to every replica that still needs it and has nothing
    /// for it in flight.
    fn replicate(&self, handle: &Handle, key: &str) {
        let (targets, version, value) = {
            let disk = lock(&self.disk);
            let Some((version, value)) = disk.data.get(key).cloned() else {
                return;
            };
            let mut live = lock(&self.live);
            let targets: Vec<PublicKey> = disk
                .outbox
                .iter()
                .filter(|(_, k)| k == key)
                .map(|(r, _)| *r)
                .filter(|r| live.in_flight.insert((*r, key.to_owned())))
                .collect();
            (targets, version, value)
        };
        for r in targets {
            let (disk, live, key) = (
                Arc::clone(&self.disk),
                Arc::clone(&self.live),
                key.to_owned(),
            );
            let opts = RequestOptions::default().timeout(REPLICATE_TIMEOUT);
            let data: [Bytes; 3] = [
                key.clone().into(),
                version.to_string().into(),
                value.clone().into(),
            ];
            let _ =
                handle.request_with(&ConnectionId::Sn(r), "repl.apply", data, opts, move |res| {
                    lock(&live).in_flight.remove(&(r, key.clone()));
                    if res.is_ok() {
                        let mut disk = lock(&disk);
                        // Acknowledged; done unless a newer write came meanwhile.
                        if disk.data.get(&key).is_some_and(|(v, _)| *v == version) {
                            disk.outbox.remove(&(r, key));
                        }
                    }
                });
        }
    }
}

/// Builds one replica's node: `replica` registered, service-node key, CURVE listener on
/// `listen`, and `lookup` for the other replicas' addresses. The same function serves the
/// real deployment (`main.rs`) and the simulation.
///
/// # Errors
///
/// The builder's.
pub(crate) fn setup_replica(
    b: &mut Builder,
    replica: &Replica,
    listen: impl ToAddress,
    lookup: impl Fn(&PublicKey) -> Option<lokimq::Address> + Send + Sync + 'static,
) -> Result<(), Error> {
    replica.register(b)?;
    b.sn_lookup(lookup)
        .listen_curve(listen, |_ip, _key, _sn| AuthLevel::None)?;
    Ok(())
}

/// A client's write: `kv.put key value` to `to` (any replica, by key); `done` gets the
/// acknowledged version, or the error text.
///
/// # Errors
///
/// `Error::Stopped` if the client's node is gone.
pub(crate) fn put(
    client: &Handle,
    to: PublicKey,
    key: &str,
    value: &str,
    done: impl FnOnce(Result<u64, String>) + Send + 'static,
) -> Result<(), Error> {
    let opts = RequestOptions::default().timeout(Duration::from_secs(5));
    client.request_with(
        &ConnectionId::Sn(to),
        "kv.put",
        [key.to_owned(), value.to_owned()],
        opts,
        move |r| {
            done(match r {
                Ok(parts) if parts.first().is_some_and(|p| &p[..] == b"OK") => parts
                    .get(1)
                    .and_then(|v| String::from_utf8_lossy(v).parse().ok())
                    .ok_or_else(|| String::from("bad reply")),
                Ok(parts) => Err(parts
                    .iter()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")),
                Err(e) => Err(e.to_string()),
            });
        },
    )
}
