//! The criterion settings every bench target shares.

use std::time::Duration;

use criterion::Criterion;

/// Short runs (the whole suite takes about 1.5 minutes on a quiet machine); `scripts/bench`
/// also reports the best sample of each side, which short runs on a busy machine need.
pub(crate) fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(30)
        .nresamples(20_000)
}
