//! [`Message`]: what a command callback gets, and [`DeferredSend`] for answering later.

use bytes::Bytes;

use lokimq_core::auth::PeerAccess;
use lokimq_core::node::{self, ConnectionId, ReplyTarget, RequestError, RequestOptions};

use crate::{Error, Handle};

/// An incoming command, as handed to its callback (OxenMQ's `Message`).
///
/// It carries the sender's identity and access, the data frames, and a [`Handle`] so the
/// callback can answer: [`send_reply`](Self::send_reply) for request commands,
/// [`send_back`](Self::send_back) for a new command to the sender, or
/// [`send_later`](Self::send_later) to answer from another thread after returning.
#[derive(Debug)]
pub struct Message {
    inner: node::Message,
    handle: Handle,
}

fn frames<D, B>(data: D) -> Vec<Bytes>
where
    D: IntoIterator<Item = B>,
    B: Into<Bytes>,
{
    data.into_iter().map(Into::into).collect()
}

fn log_failure(r: Result<(), Error>) {
    if let Err(e) = r {
        tracing::warn!("could not queue a reply: {e}");
    }
}

impl Message {
    pub(crate) fn new(inner: node::Message, handle: Handle) -> Self {
        Self { inner, handle }
    }

    /// The data frames (for a request command, without the reply tag).
    #[must_use]
    pub fn data(&self) -> &[Bytes] {
        &self.inner.data
    }

    /// Takes the data frames out, leaving none.
    pub fn take_data(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.inner.data)
    }

    /// Who sent it; usable later to send to the same peer.
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        &self.inner.conn
    }

    /// The caller's actual access: its connection's auth level, whether it is a service node,
    /// whether this node is one.
    #[must_use]
    pub fn access(&self) -> PeerAccess {
        self.inner.access
    }

    /// The peer's address (an IP for TCP, "(unknown)" for unix sockets, "inproc" in-process).
    #[must_use]
    pub fn remote(&self) -> &str {
        &self.inner.remote
    }

    /// The reply tag of a request command.
    #[must_use]
    pub fn reply_tag(&self) -> Option<&Bytes> {
        self.inner.reply_tag()
    }

    /// A handle to the node, for anything else.
    #[must_use]
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Sends `[command, data…]` back to the sender (strong for service nodes, optional for
    /// everyone else, as OxenMQ's `send_back`). Failures are logged.
    pub fn send_back<D, B>(&self, command: impl Into<Bytes>, data: D)
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        log_failure(self.send_later().back(command, data));
    }

    /// Replies to a request command: `[REPLY, tag, data…]`. Failures (including "this was not
    /// a request") are logged.
    pub fn send_reply<D, B>(&self, data: D)
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        log_failure(self.send_later().reply(data));
    }

    /// Sends a request back to the sender; `callback` gets the reply on a worker.
    pub fn send_request<D, B>(
        &self,
        command: impl Into<Bytes>,
        data: D,
        callback: impl FnOnce(Result<Vec<Bytes>, RequestError>) + Send + 'static,
    ) where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        log_failure(self.send_later().request(command, data, callback));
    }

    /// A handle for answering after the callback returned, from any thread (OxenMQ's
    /// `send_later()`).
    #[must_use]
    pub fn send_later(&self) -> DeferredSend {
        DeferredSend {
            handle: self.handle.clone(),
            target: self.inner.reply_to.clone(),
        }
    }

    /// The core's message, for embedders that want every field.
    #[must_use]
    pub fn as_core(&self) -> &node::Message {
        &self.inner
    }
}

/// Answers a message later, from any thread (OxenMQ's `DeferredSend`).
#[derive(Debug, Clone)]
pub struct DeferredSend {
    handle: Handle,
    target: ReplyTarget,
}

impl DeferredSend {
    /// The original sender.
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        self.target.conn()
    }

    /// True if the message was a request (so [`reply`](Self::reply) makes sense).
    #[must_use]
    pub fn is_request(&self) -> bool {
        self.target.tag().is_some()
    }

    /// Sends `[command, data…]` back to the sender.
    pub fn back<D, B>(&self, command: impl Into<Bytes>, data: D) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.handle
            .send_back_to(self.target.clone(), command.into(), frames(data))
    }

    /// Replies to the request: `[REPLY, tag, data…]`.
    pub fn reply<D, B>(&self, data: D) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        self.handle.reply_to(self.target.clone(), frames(data))
    }

    /// Sends a request to the sender (optional unless the sender is a service node).
    pub fn request<D, B>(
        &self,
        command: impl Into<Bytes>,
        data: D,
        callback: impl FnOnce(Result<Vec<Bytes>, RequestError>) + Send + 'static,
    ) -> Result<(), Error>
    where
        D: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let conn = self.target.conn();
        let mut opts = RequestOptions::default();
        opts.send.optional = !conn.is_sn();
        self.handle
            .request_with(conn, command, data, opts, callback)
    }
}
