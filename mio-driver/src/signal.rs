//! Waiting for the operating system to ask the process to stop (SIGINT, SIGTERM).
//!
//! Every server ends the same way: run until Ctrl-C or the service manager's SIGTERM, then
//! drop the node (which shuts it down in order) and exit. [`ShutdownSignals`] is that wait, so
//! a program needs no signal crate of its own. Install it before the node starts, so a signal
//! that arrives right after start-up (say, while the addresses are being printed) is kept
//! rather than killing the process with the default action.

use std::fmt;
use std::io;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Which signal asked the process to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (what service managers send).
    Terminate,
}

impl fmt::Display for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        })
    }
}

/// SIGINT and SIGTERM, caught from [`install`](Self::install) on, so a server can wait for
/// either and then drop its node. Install it before the node starts, so a signal that arrives
/// during start-up is kept rather than killing the process.
///
/// ```no_run
/// use lokimq::{LokiMq, ShutdownSignals};
///
/// let mut signals = ShutdownSignals::install()?;
/// let node = LokiMq::builder().start()?;
/// let signal = signals.wait();
/// eprintln!("{signal}: shutting down");
/// drop(node); // stops in order: listeners, running jobs, connections
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping it restores nothing (a process that stops waiting
/// for signals usually exits), but further signals are then only recorded, not acted on.
pub struct ShutdownSignals {
    signals: Signals,
}

impl fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownSignals").finish_non_exhaustive()
    }
}

impl ShutdownSignals {
    /// Starts catching SIGINT and SIGTERM (they no longer end the process at once).
    ///
    /// # Errors
    ///
    /// The operating system refused to install the handlers.
    pub fn install() -> io::Result<Self> {
        Ok(Self {
            signals: Signals::new([SIGINT, SIGTERM])?,
        })
    }

    /// Blocks until SIGINT or SIGTERM arrives (or has arrived since `install`).
    pub fn wait(&mut self) -> ShutdownSignal {
        loop {
            if let Some(signal) = self.signals.wait().find_map(to_shutdown) {
                return signal;
            }
        }
    }

    /// A signal that has arrived since `install` (or the last call), without waiting.
    pub fn pending(&mut self) -> Option<ShutdownSignal> {
        self.signals.pending().find_map(to_shutdown)
    }
}

fn to_shutdown(signal: i32) -> Option<ShutdownSignal> {
    match signal {
        SIGINT => Some(ShutdownSignal::Interrupt),
        SIGTERM => Some(ShutdownSignal::Terminate),
        _ => None,
    }
}

/// Waits for SIGINT or SIGTERM: [`ShutdownSignals::install`] and
/// [`wait`](ShutdownSignals::wait) in one call, for programs that start their node first.
///
/// # Errors
///
/// The operating system refused to install the handlers.
pub fn wait_for_shutdown_signal() -> io::Result<ShutdownSignal> {
    Ok(ShutdownSignals::install()?.wait())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_sigterm_is_caught_not_fatal() {
        let mut s = ShutdownSignals::install().unwrap();
        signal_hook::low_level::raise(SIGTERM).unwrap();
        assert_eq!(s.wait(), ShutdownSignal::Terminate);
        assert_eq!(s.pending(), None);
        assert_eq!(ShutdownSignal::Interrupt.to_string(), "SIGINT");
    }
}
