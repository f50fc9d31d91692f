//! What the module takes from its host: random bytes and a place for log lines.
//!
//! The core asks for randomness through an injected `CryptoRngCore` and logs through the `log`
//! facade; here both are wired to the host. Inside WebAssembly, [`HostRng`] calls the imported
//! `lokimq.random_fill`, which the JS glue implements with `crypto.getRandomValues` (the
//! browser's and Node.js's CSPRNG), and [`HostLogger`] calls `lokimq.log`. In host builds (the
//! native bench and `cargo test`) the OS generator and `stderr` stand in, so the same code runs
//! natively.

use rand_core::{CryptoRng, Error, RngCore, impls};

use crate::abi;

/// The host's cryptographically secure generator. Every draw goes to the host; nothing is
/// buffered or derived here, so the module holds no generator state worth stealing.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostRng;

impl RngCore for HostRng {
    fn next_u32(&mut self) -> u32 {
        impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        abi::fill_random(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// The host's generator is a CSPRNG (`crypto.getRandomValues`; the OS generator natively).
impl CryptoRng for HostRng {}

/// Sends the core's log lines to the host.
#[derive(Debug)]
pub struct HostLogger;

/// The one logger.
pub static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{}: {}", record.target(), record.args());
            abi::host_log(record.level() as u32, &line);
        }
    }

    fn flush(&self) {}
}

/// Installs [`LOGGER`] (once; later calls only change the level) and sets the most verbose
/// level forwarded: 0 off, 1 error, 2 warn, 3 info, 4 debug, 5 trace.
pub fn set_log_level(level: u8) {
    // Fails only if a logger is installed already, which is then ours.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    });
}
