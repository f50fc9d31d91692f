//! A minimal stderr logger for the command-line tool (the library only uses the `log` facade).

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("?");
            let level = match record.level() {
                Level::Error => "ERROR",
                Level::Warn => "warn",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            eprintln!("[{level} {name} {}] {}", record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

/// Installs the logger: `verbosity` 0 = warnings (errors only if `quiet`), 1 = info,
/// 2 = debug, 3+ = trace.
pub(crate) fn init(verbosity: u8, quiet: bool) {
    let filter = match verbosity {
        0 if quiet => LevelFilter::Error,
        0 => LevelFilter::Warn,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    // Fails only if a logger is already installed, which this binary never does twice.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter);
}
