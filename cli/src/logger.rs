//! Logging for the command-line tool: a `tracing` subscriber writing to stderr. The library
//! logs through `tracing`; the core logs through the `log` facade (it is `no_std`), whose
//! records the subscriber's `tracing-log` bridge picks up.

use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber: `verbosity` 0 = warnings (errors only if `quiet`), 1 = info,
/// 2 = debug, 3+ = trace. `RUST_LOG`, when set, overrides the level.
pub(crate) fn init(verbosity: u8, quiet: bool) {
    let level = match verbosity {
        0 if quiet => LevelFilter::ERROR,
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    // Fails only if a subscriber is already installed, which this binary never does twice.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: escape codes in a log file are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_thread_names(true)
        .try_init();
}
