//! The simulated node's I/O: the kit's [`Io`] over the virtual network.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;

use bytes::Bytes;
use lokimq::kit::Io;
use lokimq::kit::net::UnixSocketAccess;
use lokimq_core::address::Address;
use lokimq_core::ids::{ConnId, ListenerId, WorkerId};
use lokimq_core::node::{DisconnectCause, Input, Job};
use lokimq_core::time::Instant;
use rand_chacha::ChaCha20Rng;

use crate::net::{End, ListenTarget, Net, NetEv};
use crate::queue::Queue;
use crate::trace::Log;

/// Everything shared by the nodes: the clock, the RNG, the network, the queue, the trace.
pub(crate) struct World<E> {
    pub(crate) now: Instant,
    pub(crate) rng: ChaCha20Rng,
    pub(crate) net: Net,
    pub(crate) queue: Queue<E>,
    pub(crate) log: Log,
}

impl<E> World<E> {
    pub(crate) fn record(&mut self, who: &str, text: &str) {
        let line = format!("{:?} {who} {text}", self.now);
        self.log.record(line);
    }
}

/// One node's I/O state, as its driver would keep it.
#[derive(Default)]
pub(crate) struct NodeIo {
    /// Transport connections open (dialled or accepted, not yet closed or failed).
    pub(crate) open: BTreeSet<ConnId>,
    /// Listeners bound, by the network key they hold.
    pub(crate) listeners: BTreeMap<ListenerId, String>,
    /// Jobs handed out during the last host call, to schedule.
    pub(crate) jobs: Vec<(WorkerId, Job)>,
    /// Inputs to feed back (write progress).
    pub(crate) inputs: VecDeque<Input>,
    /// Whether the node wants `Input::Flushed` reports.
    pub(crate) report_flushed: bool,
    /// The next ephemeral port.
    pub(crate) next_port: u16,
}

/// Hosts a listening address may name for "this machine".
fn is_local(host: &str, ip: &str) -> bool {
    matches!(
        host,
        "*" | "0.0.0.0" | "::" | "[::]" | "127.0.0.1" | "localhost" | "::1" | "[::1]"
    ) || host == ip
}

/// The network key of a unix socket: its path, on this machine only.
fn ipc_key(n: usize, path: &str) -> String {
    format!("ipc@n{n}://{path}")
}

/// The network key a node dials for `addr`.
pub(crate) fn dial_key(n: usize, ip: &str, addr: &Address) -> Result<String, DisconnectCause> {
    if let Some(path) = addr.socket() {
        return Ok(ipc_key(n, path));
    }
    let (Some(host), Some(port)) = (addr.host(), addr.port()) else {
        return Err(DisconnectCause::ConnectFailed(format!(
            "cannot dial {addr}"
        )));
    };
    let host = if matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]") {
        ip
    } else if host.parse::<std::net::IpAddr>().is_ok() {
        host
    } else {
        return Err(DisconnectCause::ConnectFailed(format!(
            "could not resolve {host}: the simulated network has no names (use a node's IP)"
        )));
    };
    Ok(format!("tcp://{host}:{port}"))
}

/// The kit's [`Io`] for node `n`: see the crate documentation for the model.
pub(crate) struct SimIo<'a, E> {
    pub(crate) n: usize,
    pub(crate) ip: &'a str,
    pub(crate) world: &'a mut World<E>,
    pub(crate) st: &'a mut NodeIo,
}

impl<E: From<NetEv>> Io for SimIo<'_, E> {
    fn transmit(&mut self, conn: ConnId, data: Bytes) {
        let w = &mut *self.world;
        let n = self.n;
        w.record(
            &format!("n{n}"),
            &format!("> {conn:?} {}", crate::show::show_bytes(&data)),
        );
        let now = w.now;
        let sent = w
            .net
            .transmit(now, &mut w.rng, &mut w.queue, End::Node(n, conn), data);
        // The virtual socket takes every byte at once: nothing stays unsent in the driver.
        if sent && self.st.report_flushed {
            self.st.inputs.push_back(Input::Flushed { conn, unsent: 0 });
        }
    }

    fn connect(&mut self, conn: ConnId, addr: &Address) -> Result<(), DisconnectCause> {
        let key = dial_key(self.n, self.ip, addr);
        let n = self.n;
        let w = &mut *self.world;
        w.record(
            &format!("n{n}"),
            &format!("dial {conn:?} {addr} -> {key:?}"),
        );
        let key = key?;
        self.st.open.insert(conn);
        let now = w.now;
        w.net
            .dial(now, &mut w.rng, &mut w.queue, End::Node(n, conn), &key);
        Ok(())
    }

    fn close(&mut self, conn: ConnId, linger: std::time::Duration) {
        let n = self.n;
        let w = &mut *self.world;
        w.record(
            &format!("n{n}"),
            &format!("close {conn:?} linger {linger:?}"),
        );
        self.st.open.remove(&conn);
        let now = w.now;
        w.net
            .close(now, &mut w.rng, &mut w.queue, End::Node(n, conn), false);
    }

    fn listen(
        &mut self,
        listener: ListenerId,
        addr: &Address,
        _access: UnixSocketAccess,
    ) -> io::Result<Address> {
        let n = self.n;
        let (key, bound) = if let Some(path) = addr.socket() {
            (ipc_key(n, path), Address::ipc(path))
        } else {
            let host = addr.host().unwrap_or("*");
            if !is_local(host, self.ip) {
                return Err(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("Cannot assign requested address ({host} is not this node's)"),
                ));
            }
            let port = match addr.port() {
                Some(0) | None => {
                    let p = self.st.next_port;
                    self.st.next_port = self.st.next_port.wrapping_add(1).max(1024);
                    p
                }
                Some(p) => p,
            };
            (
                format!("tcp://{}:{port}", self.ip),
                Address::tcp(self.ip, port),
            )
        };
        let w = &mut *self.world;
        let ok = w.net.bind(key.clone(), ListenTarget::Node(n, listener));
        w.record(
            &format!("n{n}"),
            &format!(
                "listen {listener:?} {addr} -> {key} {}",
                if ok { "ok" } else { "in use" }
            ),
        );
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "Address already in use",
            ));
        }
        self.st.listeners.insert(listener, key);
        Ok(bound)
    }

    fn unlisten(&mut self, listener: ListenerId) {
        let n = self.n;
        self.st.listeners.remove(&listener);
        self.world.net.unbind(n, listener);
        self.world
            .record(&format!("n{n}"), &format!("unlisten {listener:?}"));
    }

    fn run_job(&mut self, worker: WorkerId, job: Job) -> Option<Job> {
        self.st.jobs.push((worker, job));
        None
    }

    fn stop_worker(&mut self, _worker: WorkerId) {}

    fn take_input(&mut self) -> Option<Input> {
        self.st.inputs.pop_front()
    }
}
