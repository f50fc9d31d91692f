//! [`Error`]: everything the driver's API can refuse, in one enum.

use lokimq_core::address::{Address, AddressError};
use lokimq_core::keys::KeyError;
use lokimq_core::node::{ConfigError, NodeError};
use lokimq_core::registry::RegistryError;
use lokimq_core::sched::SchedError;

/// Why a driver call failed. Texts follow OxenMQ's exception messages where OxenMQ has one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command, category or alias registration was refused (OxenMQ's texts).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The keys given to the builder are unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The node configuration was refused (worker counts, service-node mode without keys, …).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An address could not be parsed.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A listener given before `start()` could not be bound, so the node did not start
    /// (OxenMQ PR #68: `start()` throws).
    #[error("OxenMQ failed to listen on {address}: {source}")]
    Bind {
        /// The address that could not be bound.
        address: Address,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Setting up the poller, the waker or a thread failed.
    #[error("I/O error while starting the node: {0}")]
    Io(#[from] std::io::Error),
    /// A tagged thread name, a tagged-thread target or a timer interval broke the core's rule
    /// ([`SchedError::InvalidTaggedThreadName`], [`SchedError::UnknownTaggedThread`],
    /// [`SchedError::ZeroTimerInterval`]): the builder and the handle check with the core's own
    /// validators (`lokimq_core::sched::check_*`) before anything is posted.
    #[error(transparent)]
    Sched(#[from] SchedError),
    /// A batch with no jobs.
    #[error("Cannot batch a a job batch with 0 jobs")]
    EmptyBatch,
    /// A batch completion was set twice.
    #[error("Completion function can only be set once")]
    CompletionAlreadySet,
    /// `job()` was asked to run on the proxy thread.
    #[error("job() cannot be used to queue an in-proxy job")]
    InProxyJob,
    /// The node refused the operation.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The node has shut down (or is shutting down and no longer takes commands).
    #[error("Unable to reach the LokiMQ proxy thread: it is shutting down")]
    Stopped,
    /// A call that must wait for the proxy thread's answer (`stats`, `is_connected`)
    /// was made on the proxy thread itself, from an in-proxy completion, timer, allow function,
    /// lookup or bind callback; it would wait for itself forever.
    #[error("this call waits for the proxy thread and cannot be made from it")]
    OnProxyThread,
}
