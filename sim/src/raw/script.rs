//! Scripted workers: what a job does and how long it takes.
//!
//! A handler never touches its node while it "runs". It records [`Action`]s in a [`Ctx`], and
//! the simulator applies them when the job completes, just before it reports
//! `Input::JobFinished` — as a real worker thread's sends reach the proxy before its `RAN`.

use std::collections::BTreeMap;

use bytes::Bytes;
use lokimq_core::keys::PublicKey;
use lokimq_core::node::{
    ConnectionId, Message, Node, ReplyTarget, RequestError, RequestOptions, SendOptions,
};
use lokimq_core::time::{Duration, Instant};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

/// A command handler: runs on a worker for every `Job::Command` of its command.
pub type Handler = Box<dyn FnMut(&mut Ctx, &Message)>;
/// A reply callback: runs on a worker for the request's `Job::Reply`.
pub type ReplyFn = Box<dyn FnOnce(&mut Ctx, &Result<Vec<Bytes>, RequestError>)>;
/// A connect callback: runs on a worker for `Job::Connected`.
pub type ConnectFn = Box<dyn FnMut(&mut Ctx, &ConnectionId)>;
/// Work done later, outside any worker (like a thread using `send_later`).
pub type LaterFn = Box<dyn FnOnce(&mut Ctx)>;
/// Direct access to the node, applied with the other actions.
pub type NodeFn = Box<dyn FnOnce(&mut Node<ChaCha20Rng>, Instant)>;

/// Something a handler asked for; applied when its job completes.
#[non_exhaustive]
pub enum Action {
    /// `Node::reply`.
    Reply {
        /// Where the reply goes.
        to: ReplyTarget,
        /// The reply parts.
        data: Vec<Bytes>,
    },
    /// `Node::send_back`.
    SendBack {
        /// The message's sender.
        to: ReplyTarget,
        /// The command.
        command: Bytes,
        /// The data parts.
        data: Vec<Bytes>,
    },
    /// `Node::send`.
    Send {
        /// The peer.
        to: ConnectionId,
        /// The command.
        command: Bytes,
        /// The data parts.
        data: Vec<Bytes>,
        /// Options.
        opts: SendOptions,
    },
    /// `Node::request`, with an optional callback for the reply.
    Request {
        /// The peer.
        to: ConnectionId,
        /// The command.
        command: Bytes,
        /// The data parts.
        data: Vec<Bytes>,
        /// Options.
        opts: RequestOptions,
        /// Runs on a worker when the reply (or its failure) arrives.
        then: Option<ReplyFn>,
    },
    /// Anything else, straight on the node.
    Node(NodeFn),
    /// More work `delay` after completion, outside any worker.
    Later {
        /// How long after the job's completion.
        delay: Duration,
        /// The work.
        f: LaterFn,
    },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reply { data, .. } => write!(f, "Reply({} parts)", data.len()),
            Self::SendBack { command, .. } => write!(f, "SendBack({command:?})"),
            Self::Send { to, command, .. } => write!(f, "Send({to:?}, {command:?})"),
            Self::Request { to, command, .. } => write!(f, "Request({to:?}, {command:?})"),
            Self::Node(_) => f.write_str("Node(..)"),
            Self::Later { delay, .. } => write!(f, "Later({delay:?})"),
        }
    }
}

/// What a scripted job sees and how it acts.
#[derive(Debug)]
pub struct Ctx {
    /// When the job started (or the later work runs).
    pub now: Instant,
    /// The node's index in the simulator.
    pub node: usize,
    /// The node's public key.
    pub pubkey: PublicKey,
    pub(crate) actions: Vec<Action>,
    pub(crate) duration: Option<Duration>,
}

impl Ctx {
    pub(crate) fn new(now: Instant, node: usize, pubkey: PublicKey) -> Self {
        Self {
            now,
            node,
            pubkey,
            actions: Vec::new(),
            duration: None,
        }
    }

    /// Makes this job take `d` of virtual time (instead of the node's job-time policy).
    pub fn take(&mut self, d: Duration) {
        self.duration = Some(d);
    }

    /// Replies to a request message.
    pub fn reply(&mut self, msg: &Message, data: Vec<Bytes>) {
        self.reply_to(msg.reply_to.clone(), data);
    }

    /// Replies to a stored reply target (a deferred reply).
    pub fn reply_to(&mut self, to: ReplyTarget, data: Vec<Bytes>) {
        self.actions.push(Action::Reply { to, data });
    }

    /// Sends a command back to a message's sender.
    pub fn send_back(&mut self, msg: &Message, command: &str, data: Vec<Bytes>) {
        self.actions.push(Action::SendBack {
            to: msg.reply_to.clone(),
            command: Bytes::copy_from_slice(command.as_bytes()),
            data,
        });
    }

    /// Sends a command to a peer.
    pub fn send(&mut self, to: ConnectionId, command: &str, data: Vec<Bytes>, opts: SendOptions) {
        self.actions.push(Action::Send {
            to,
            command: Bytes::copy_from_slice(command.as_bytes()),
            data,
            opts,
        });
    }

    /// Sends a request; `then` runs (on a worker) with its outcome.
    pub fn request(
        &mut self,
        to: ConnectionId,
        command: &str,
        data: Vec<Bytes>,
        opts: RequestOptions,
        then: impl FnOnce(&mut Self, &Result<Vec<Bytes>, RequestError>) + 'static,
    ) {
        self.actions.push(Action::Request {
            to,
            command: Bytes::copy_from_slice(command.as_bytes()),
            data,
            opts,
            then: Some(Box::new(then)),
        });
    }

    /// Acts on the node directly when the job completes.
    pub fn with_node(&mut self, f: impl FnOnce(&mut Node<ChaCha20Rng>, Instant) + 'static) {
        self.actions.push(Action::Node(Box::new(f)));
    }

    /// Runs `f` `delay` after this job completes, outside any worker.
    pub fn later(&mut self, delay: Duration, f: impl FnOnce(&mut Self) + 'static) {
        self.actions.push(Action::Later {
            delay,
            f: Box::new(f),
        });
    }

    /// The actions recorded so far.
    #[must_use]
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }
}

/// A job duration: fixed, or drawn from the simulator's RNG ("slow workers").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dur {
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `lo..=hi` (microsecond resolution).
    Uniform(Duration, Duration),
}

impl Dur {
    /// Zero time.
    pub const ZERO: Self = Self::Fixed(Duration::ZERO);

    pub(crate) fn sample(self, rng: &mut ChaCha20Rng) -> Duration {
        match self {
            Self::Fixed(d) => d,
            Self::Uniform(lo, hi) => {
                let lo_us = lo.as_micros() as u64;
                let hi_us = (hi.as_micros() as u64).max(lo_us);
                Duration::from_micros(lo_us + rng.next_u64() % (hi_us - lo_us + 1))
            }
        }
    }
}

/// How long each kind of job takes on a node.
#[derive(Debug, Clone)]
pub struct JobTimes {
    /// Commands without an entry in `per_command`.
    pub command: Dur,
    /// Per command (`category.command`).
    pub per_command: BTreeMap<String, Dur>,
    /// Reply callbacks.
    pub reply: Dur,
    /// Everything else (connect callbacks, batch jobs, completions, timers, tasks).
    pub other: Dur,
}

impl Default for JobTimes {
    fn default() -> Self {
        Self {
            command: Dur::ZERO,
            per_command: BTreeMap::new(),
            reply: Dur::ZERO,
            other: Dur::ZERO,
        }
    }
}

impl JobTimes {
    /// Every job takes `d`.
    #[must_use]
    pub fn all(d: Dur) -> Self {
        Self {
            command: d,
            per_command: BTreeMap::new(),
            reply: d,
            other: d,
        }
    }
}
