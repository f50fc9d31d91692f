//! Compile-time proof that lokimq-core builds without std (see Cargo.toml).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::panic::PanicInfo;

#[global_allocator]
static ALLOCATOR: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// Touches the core's public surface so that every module is type-checked for this target.
pub fn probe() -> u64 {
    let t = lokimq_core::time::Instant::from_millis(5);
    t.as_micros()
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}
