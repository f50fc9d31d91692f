//! Shared helpers for the lokimq benchmarks (being written).
