//! # lokimq: the native LokiMQ node
//!
//! The mio driver around [`lokimq_core`]: sockets (TCP and unix), worker threads, the clock, OS
//! randomness and user callbacks. (Being written: see the project issues.)

pub use lokimq_core as core;
