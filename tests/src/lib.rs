//! Simulation harness and shared test helpers for lokimq (being written).
