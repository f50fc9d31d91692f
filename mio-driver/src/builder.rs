//! [`Builder`]: keys, commands, listeners and tunables, fixed before the node starts; and
//! [`Listen`], one listener's description.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use lokimq_core::address::{Address, AddressError};
use lokimq_core::auth::{Access, AuthLevel};
use lokimq_core::ids::{CommandId, TaggedThreadId, TimerId};
use lokimq_core::keys::{KeyError, Keypair, PublicKey};
use lokimq_core::node::{BacklogLimit, Config, Node, Target};
use lokimq_core::registry::{DEFAULT_MAX_QUEUE, RegistryBuilder};
use mio::Poll;
use rand_core::OsRng;

use crate::clock::Clock;
use crate::handle::{AllowFn, CommandFn, Handle, OnBind, Shared, SnLookupFn, TimerFn};
use crate::message::Message;
use crate::proxy::workers::{Task, Workers};
use crate::proxy::{Callbacks, Proxy, WAKER};
use crate::{Error, LokiMq};

/// Anything that names an address: OxenMQ's text forms (`tcp://…`, `curve://…/KEY`,
/// `ipc://…`, `ipc+curve://…/KEY`), a parsed [`Address`], or a socket address (plain TCP; port
/// 0 binds an ephemeral port).
pub trait ToAddress {
    /// Converts, or says why the text is not an address.
    fn to_address(self) -> Result<Address, AddressError>;
}

impl ToAddress for Address {
    fn to_address(self) -> Result<Address, AddressError> {
        Ok(self)
    }
}

impl ToAddress for &Address {
    fn to_address(self) -> Result<Address, AddressError> {
        Ok(self.clone())
    }
}

impl ToAddress for &str {
    fn to_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

impl ToAddress for String {
    fn to_address(self) -> Result<Address, AddressError> {
        Address::parse(&self)
    }
}

impl ToAddress for &String {
    fn to_address(self) -> Result<Address, AddressError> {
        Address::parse(self)
    }
}

impl ToAddress for SocketAddr {
    fn to_address(self) -> Result<Address, AddressError> {
        Ok(Address::from_socket_addr(self))
    }
}

/// One listener: where, CURVE or plain, who may connect, and who to tell once it is bound.
///
/// ```
/// use lokimq::{AuthLevel, Listen};
/// let l = Listen::curve("tcp://127.0.0.1:4567")?
///     .allow(|ip, _key, _sn| if ip == "127.0.0.1" { AuthLevel::Basic } else { AuthLevel::Denied })
///     .on_bind(|r| println!("bound: {r:?}"));
/// # Ok::<(), lokimq::Error>(())
/// ```
pub struct Listen {
    pub(crate) address: Address,
    pub(crate) curve: bool,
    pub(crate) allow: Option<AllowFn>,
    pub(crate) on_bind: Option<OnBind>,
}

impl std::fmt::Debug for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listen")
            .field("address", &self.address)
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl Listen {
    /// A CURVE listener (OxenMQ's `listen_curve`) on a `tcp://` or `ipc://` address; any key
    /// in the address is ignored (the node's own key is used).
    pub fn curve(addr: impl ToAddress) -> Result<Self, Error> {
        Self::new(addr, true)
    }

    /// A plain (unencrypted, unauthenticated) listener (OxenMQ's `listen_plain`).
    pub fn plain(addr: impl ToAddress) -> Result<Self, Error> {
        Self::new(addr, false)
    }

    fn new(addr: impl ToAddress, curve: bool) -> Result<Self, Error> {
        let address = addr.to_address()?.with_pubkey(None);
        Ok(Self {
            address,
            curve,
            allow: None,
            on_bind: None,
        })
    }

    /// Decides each incoming connection: `(ip, client key (CURVE only), is an active service
    /// node) -> level`; [`AuthLevel::Denied`] refuses it. Without one, everyone gets `none`.
    /// Runs on the proxy thread: keep it quick.
    #[must_use]
    pub fn allow(
        mut self,
        f: impl Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync + 'static,
    ) -> Self {
        self.allow = Some(Arc::new(f));
        self
    }

    /// Called once with the bound address (actual port; the node's key for CURVE listeners)
    /// or the reason binding failed. Before `start()` it runs in `start()`; after, on the proxy
    /// thread.
    #[must_use]
    pub fn on_bind(mut self, f: impl FnOnce(Result<Address, String>) + Send + 'static) -> Self {
        self.on_bind = Some(Box::new(f));
        self
    }

    /// The address to bind.
    #[must_use]
    pub fn address(&self) -> &Address {
        &self.address
    }
}

/// Builds a node (OxenMQ's constructor plus everything that must happen before `start()`).
///
/// Registration methods take `&mut self` and return `Result<&mut Self, Error>`, so they chain
/// with `?`; [`start`](Self::start) consumes the builder.
pub struct Builder {
    keypair: Option<Keypair>,
    service_node: bool,
    config: Config,
    registry: RegistryBuilder,
    commands: BTreeMap<CommandId, CommandFn>,
    categories: BTreeSet<String>,
    listens: Vec<Listen>,
    tagged_starts: Vec<Option<Task>>,
    sn_lookup: Option<SnLookupFn>,
    active_sns: Option<BTreeSet<PublicKey>>,
    timers: Vec<PendingTimer>,
}

/// A timer added before `start()`.
struct PendingTimer {
    id: TimerId,
    f: TimerFn,
    interval: Duration,
    squelch: bool,
    target: Target,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("pubkey", &self.keypair.as_ref().map(Keypair::public))
            .field("service_node", &self.service_node)
            .field("config", &self.config)
            .field("listens", &self.listens)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// OxenMQ's defaults: a generated keypair, not a service node, one general worker per
    /// CPU core, no commands, no listeners.
    #[must_use]
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map_or(1, |n| u16::try_from(n.get()).unwrap_or(u16::MAX));
        let mut config = Config::new(cores);
        // libzmq's per-peer high-water mark (OxenMQ never changes it), plus a byte cap: the
        // driver reports its write queues, so a peer that stops reading costs bounded memory.
        config.send_backlog_limit = Some(BacklogLimit::LIBZMQ);
        Self {
            keypair: None,
            service_node: false,
            config,
            registry: RegistryBuilder::new(),
            commands: BTreeMap::new(),
            categories: BTreeSet::new(),
            listens: Vec::new(),
            tagged_starts: Vec::new(),
            sn_lookup: None,
            active_sns: None,
            timers: Vec::new(),
        }
    }

    /// Uses this long-term keypair.
    pub fn keypair(&mut self, keypair: Keypair) -> &mut Self {
        self.keypair = Some(keypair);
        self
    }

    /// OxenMQ's key arguments: both empty generates a keypair at start; otherwise both must be
    /// 32 bytes and match (this guards against passing an ed25519 key).
    pub fn keys(&mut self, pubkey: &[u8], privkey: &[u8]) -> Result<&mut Self, Error> {
        self.keypair = match (pubkey.is_empty(), privkey.is_empty()) {
            (true, true) => None,
            (true, false) | (false, true) => return Err(KeyError::OneKeyEmpty.into()),
            (false, false) => Some(Keypair::from_parts(pubkey, privkey)?),
        };
        Ok(self)
    }

    /// Runs this node as a service node (enables `local_sn` categories). Needs a keypair.
    pub fn service_node(&mut self, service_node: bool) -> &mut Self {
        self.service_node = service_node;
        self
    }

    /// The node's tunables (OxenMQ's public members: worker counts, timeouts, limits, …).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Answers "where does this service node listen?" when a connection to a service node
    /// must be opened and no hint was given (OxenMQ's `sn_lookup`); `None` means unknown.
    /// Runs on the proxy thread: keep it quick.
    pub fn sn_lookup(
        &mut self,
        f: impl Fn(&PublicKey) -> Option<Address> + Send + Sync + 'static,
    ) -> &mut Self {
        self.sn_lookup = Some(Arc::new(f));
        self
    }

    /// The initial active service-node set.
    pub fn set_active_sns(&mut self, sns: impl IntoIterator<Item = PublicKey>) -> &mut Self {
        self.active_sns = Some(sns.into_iter().collect());
        self
    }

    /// Adds a category (OxenMQ's `add_category`) with the default queue limit and no reserved
    /// threads.
    pub fn add_category(
        &mut self,
        name: &str,
        access: impl Into<Access>,
    ) -> Result<&mut Self, Error> {
        self.add_category_with(name, access, 0, DEFAULT_MAX_QUEUE)
    }

    /// Adds a category with `reserved_threads` and `max_queue` (negative: unlimited).
    pub fn add_category_with(
        &mut self,
        name: &str,
        access: impl Into<Access>,
        reserved_threads: u16,
        max_queue: i32,
    ) -> Result<&mut Self, Error> {
        self.registry
            .add_category(name, access, reserved_threads, max_queue)?;
        self.categories.insert(name.to_owned());
        Ok(self)
    }

    /// Adds a command to a category; `callback` runs on a worker for each one received.
    pub fn add_command(
        &mut self,
        category: &str,
        name: &str,
        callback: impl Fn(&mut Message) + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let id = self.registry.add_command(category, name)?;
        self.commands.insert(id, Arc::new(callback));
        Ok(self)
    }

    /// Adds a request command (its first data frame is the reply tag; answer with
    /// [`Message::send_reply`]).
    pub fn add_request_command(
        &mut self,
        category: &str,
        name: &str,
        callback: impl Fn(&mut Message) + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        let id = self.registry.add_request_command(category, name)?;
        self.commands.insert(id, Arc::new(callback));
        Ok(self)
    }

    /// Makes `from` an alias of `to` (`category.command`).
    pub fn add_command_alias(&mut self, from: &str, to: &str) -> Result<&mut Self, Error> {
        self.registry.add_command_alias(from, to)?;
        Ok(self)
    }

    /// Adds a tagged thread: a thread that runs only the jobs, batch jobs, completions and
    /// timers addressed to it, one at a time, in order.
    pub fn add_tagged_thread(&mut self, name: &str) -> Result<TaggedThreadId, Error> {
        self.tagged(name, None)
    }

    /// [`add_tagged_thread`](Self::add_tagged_thread) with a callback run in the thread when
    /// the node starts.
    pub fn add_tagged_thread_with_start(
        &mut self,
        name: &str,
        start: impl FnOnce() + Send + 'static,
    ) -> Result<TaggedThreadId, Error> {
        self.tagged(name, Some(Box::new(start)))
    }

    fn tagged(&mut self, name: &str, start: Option<Task>) -> Result<TaggedThreadId, Error> {
        if name.is_empty() || name == "_proxy" || name.contains('\0') {
            return Err(Error::InvalidTaggedThreadName(name.to_owned()));
        }
        let id = u16::try_from(self.config.tagged_threads.len())
            .map_err(|_| Error::InvalidTaggedThreadName(name.to_owned()))?;
        self.config.tagged_threads.push(name.to_owned());
        self.tagged_starts.push(start);
        Ok(TaggedThreadId(id))
    }

    /// Adds a repeating timer that starts with the node (OxenMQ allows `add_timer` before
    /// `start()`): see [`Handle::add_timer`](crate::Handle::add_timer). Its first firing is
    /// `interval` after [`start`](Self::start). The returned id is the one the running node
    /// uses, so it can be cancelled later with [`Handle::cancel_timer`](crate::Handle::cancel_timer).
    ///
    /// ```
    /// use lokimq::{LokiMq, Target};
    /// use std::time::Duration;
    ///
    /// let mut b = LokiMq::builder();
    /// let tick = b.add_timer(|| println!("tick"), Duration::from_secs(1), true, Target::Worker)?;
    /// let node = b.start()?;
    /// node.cancel_timer(tick)?;
    /// # Ok::<(), lokimq::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTaggedThread`] for a tagged thread this builder did not add, and
    /// [`Error::ZeroTimerInterval`] for an interval under a microsecond.
    pub fn add_timer(
        &mut self,
        f: impl Fn() + Send + Sync + 'static,
        interval: Duration,
        squelch: bool,
        target: Target,
    ) -> Result<TimerId, Error> {
        if let Target::Tagged(t) = target {
            if t.index() >= self.config.tagged_threads.len() {
                return Err(Error::UnknownTaggedThread(t.get()));
            }
        }
        if interval < Duration::from_micros(1) {
            return Err(Error::ZeroTimerInterval);
        }
        // The node numbers timers from 1 in the order they are added, and these are added
        // first, in this order, by `start`.
        let id = TimerId(self.timers.len() as u64 + 1);
        self.timers.push(PendingTimer {
            id,
            f: Arc::new(f),
            interval,
            squelch,
            target,
        });
        Ok(id)
    }

    /// Adds a listener, bound by [`start`](Self::start).
    pub fn listen(&mut self, listen: Listen) -> &mut Self {
        self.listens.push(listen);
        self
    }

    /// A CURVE listener with an allow function (shorthand for [`Listen::curve`]).
    pub fn listen_curve(
        &mut self,
        addr: impl ToAddress,
        allow: impl Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        Ok(self.listen(Listen::curve(addr)?.allow(allow)))
    }

    /// A plain listener with an allow function (shorthand for [`Listen::plain`]).
    pub fn listen_plain(
        &mut self,
        addr: impl ToAddress,
        allow: impl Fn(&str, Option<&PublicKey>, bool) -> AuthLevel + Send + Sync + 'static,
    ) -> Result<&mut Self, Error> {
        Ok(self.listen(Listen::plain(addr)?.allow(allow)))
    }

    /// Starts the node: binds every listener (a failure makes this return
    /// [`Error::Bind`] and nothing keeps running), starts the tagged threads, and spawns the
    /// proxy thread. Worker threads start on first use.
    pub fn start(self) -> Result<LokiMq, Error> {
        let clock = Clock::new();
        let keypair = match self.keypair {
            Some(k) => k,
            // OxenMQ's rules for "no keys given": generate, unless in service-node mode.
            None => Keypair::from_oxenmq(&[], &[], self.service_node, &mut OsRng)?,
        };
        let pubkey = *keypair.public();
        let mut config = self.config;
        config.service_node = self.service_node;
        let tagged_names = config.tagged_threads.clone();
        let tagged_count = u16::try_from(tagged_names.len()).unwrap_or(u16::MAX);
        let registry = self.registry.build();
        let mut commands = vec![None; registry.command_count()];
        for (id, cb) in self.commands {
            if let Some(slot) = commands.get_mut(id.index()) {
                *slot = Some(cb);
            }
        }
        let node = Node::new(config, registry, keypair, OsRng, clock.now())?;
        let poll = Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::new(
            tx,
            waker,
            pubkey,
            tagged_count,
            self.categories,
        ));
        let handle = Handle::new(shared);
        let max_workers = node.stats().sched.max_workers;
        let workers = Workers::new(max_workers, tagged_names, handle.clone());
        let cb = Callbacks {
            commands,
            sn_lookup: self.sn_lookup,
            ..Callbacks::default()
        };
        let mut proxy = Proxy::new(node, clock, poll, rx, handle.clone(), cb, workers);
        if let Some(sns) = self.active_sns {
            let now = proxy.now();
            proxy.node.set_active_sns(now, sns);
        }
        for listen in self.listens {
            proxy.add_listener(listen);
        }
        for t in self.timers {
            let now = proxy.now();
            let id = proxy.node.add_timer(now, t.interval, t.squelch, t.target)?;
            if id != t.id {
                // Cannot happen (see `add_timer`), but a wrong id would cancel the wrong timer.
                return Err(Error::TimerIdMismatch {
                    promised: t.id,
                    got: id,
                });
            }
            proxy.cb.timers.insert(id, t.f);
        }
        proxy.drain();
        if let Some(e) = proxy.take_startup_error() {
            return Err(e);
        }
        for (i, start) in self.tagged_starts.into_iter().enumerate() {
            let worker = proxy.workers.tagged_worker(i);
            proxy.workers.spawn(worker, start)?;
        }
        let bound = proxy.bound.clone();
        let join = std::thread::Builder::new()
            .name(String::from("lmq-proxy"))
            .spawn(move || proxy.run())?;
        Ok(LokiMq::new(handle, join, bound))
    }
}
