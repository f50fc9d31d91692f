//! Futures for the calls that wait for an answer: a request's reply, a connection coming up, a
//! send finding room under the high-water mark.
//!
//! They need no runtime: each is a small one-shot cell that the node's thread fills (from the
//! same place a callback would run) and whose waker it calls, so they work with tokio,
//! async-std, smol or a plain `block_on`. Nothing blocks a worker thread while they wait, and
//! dropping one cancels nothing on the wire: the node still receives the reply and drops it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use lokimq_core::node::{ConnectError, ConnectionId, RequestError, SendError};

/// What a one-shot cell holds.
struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The filling side is gone without a value (the node stopped): the future ends with
    /// its "gone" answer.
    abandoned: bool,
}

/// A one-shot cell: one [`Fill`] side, one future side.
struct Cell<T> {
    state: Mutex<State<T>>,
}

impl<T> Cell<T> {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                value: None,
                waker: None,
                abandoned: false,
            }),
        })
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = s.value.take() {
            return Poll::Ready(Some(v));
        }
        if s.abandoned {
            return Poll::Ready(None);
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The filling side of a one-shot cell. Dropping it unfilled wakes the future with its "gone"
/// answer, so a future never waits for a callback that will not come.
pub(crate) struct Fill<T> {
    cell: Option<Arc<Cell<T>>>,
}

impl<T> Fill<T> {
    /// Stores the answer and wakes the future.
    pub(crate) fn fill(mut self, value: T) {
        if let Some(cell) = self.cell.take() {
            let waker = {
                let mut s = cell.state.lock().unwrap_or_else(PoisonError::into_inner);
                s.value = Some(value);
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Drop for Fill<T> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            let waker = {
                let mut s = cell.state.lock().unwrap_or_else(PoisonError::into_inner);
                s.abandoned = true;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

fn cell<T>() -> (Fill<T>, Arc<Cell<T>>) {
    let cell = Cell::new();
    (
        Fill {
            cell: Some(Arc::clone(&cell)),
        },
        cell,
    )
}

/// The reply to a request made with [`Handle::request_async`](crate::Handle::request_async):
/// the reply's data parts, or why there are none. A node that shut down before the reply
/// came ends it with [`RequestError::Timeout`], as OxenMQ fails a request it cannot send.
#[must_use = "a future does nothing unless awaited"]
pub struct Reply {
    cell: Arc<Cell<Result<Vec<Bytes>, RequestError>>>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").finish_non_exhaustive()
    }
}

impl Reply {
    pub(crate) fn new() -> (Fill<Result<Vec<Bytes>, RequestError>>, Self) {
        let (fill, cell) = cell();
        (fill, Self { cell })
    }
}

impl Future for Reply {
    type Output = Result<Vec<Bytes>, RequestError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell
            .poll(cx)
            .map(|v| v.unwrap_or(Err(RequestError::Timeout)))
    }
}

/// A connection coming up, from [`Handle::connect_remote_async`](crate::Handle::connect_remote_async):
/// its id once the remote said `HELLO`, or why it failed: refused, unreachable, the handshake
/// failed (wrong server key, mechanism mismatch, denied), timed out, or closed (also when the
/// node shuts down first). `error.to_string()` is OxenMQ's failure text.
#[must_use = "a future does nothing unless awaited"]
pub struct Connecting {
    conn: ConnectionId,
    cell: Arc<Cell<Result<ConnectionId, ConnectError>>>,
}

impl std::fmt::Debug for Connecting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connecting")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl Connecting {
    pub(crate) fn new(conn: ConnectionId) -> (Fill<Result<ConnectionId, ConnectError>>, Self) {
        let (fill, cell) = cell();
        (fill, Self { conn, cell })
    }

    /// The connection's id, usable at once (sends before it is up are queued until it is).
    #[must_use]
    pub fn conn(&self) -> &ConnectionId {
        &self.conn
    }
}

impl Future for Connecting {
    type Output = Result<ConnectionId, ConnectError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell
            .poll(cx)
            .map(|v| v.unwrap_or(Err(ConnectError::Closed)))
    }
}

/// A send waiting for room under the peer's high-water mark, from
/// [`Handle::send_async`](crate::Handle::send_async): `Ok` once the message is queued, or why
/// it never can be (no such connection, shut down, ...). Waiting is bounded only by the peer:
/// wrap it in a timeout if the peer may never read.
#[must_use = "a future does nothing unless awaited"]
pub struct Sending {
    cell: Arc<Cell<Result<(), SendError>>>,
}

impl std::fmt::Debug for Sending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sending").finish_non_exhaustive()
    }
}

impl Sending {
    pub(crate) fn new() -> (Fill<Result<(), SendError>>, Self) {
        let (fill, cell) = cell();
        (fill, Self { cell })
    }
}

impl Future for Sending {
    type Output = Result<(), SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell
            .poll(cx)
            .map(|v| v.unwrap_or(Err(SendError::Stopped)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future + Unpin>(f: &mut F, flag: &Arc<Flag>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::clone(flag));
        Pin::new(f).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_filled_reply_wakes_and_resolves() {
        let flag = Arc::new(Flag(false.into()));
        let (fill, mut reply) = Reply::new();
        assert!(poll_once(&mut reply, &flag).is_pending());
        fill.fill(Ok(vec![Bytes::from_static(b"x")]));
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(poll_once(&mut reply, &flag), Poll::Ready(Ok(v)) if v.len() == 1));
    }

    #[test]
    fn an_abandoned_reply_ends_instead_of_hanging() {
        let flag = Arc::new(Flag(false.into()));
        let (fill, mut reply) = Reply::new();
        assert!(poll_once(&mut reply, &flag).is_pending());
        drop(fill);
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(
            poll_once(&mut reply, &flag),
            Poll::Ready(Err(RequestError::Timeout))
        ));
    }
}
