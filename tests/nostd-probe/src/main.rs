//! Compile-time proof that lokimq-core builds without std (see Cargo.toml).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::panic::PanicInfo;

use lokimq_core::rng::{CryptoRng, RngCore};
use lokimq_core::{Config, Instant, Keypair, Node, RegistryBuilder};

#[global_allocator]
static ALLOCATOR: linked_list_allocator::LockedHeap = linked_list_allocator::LockedHeap::empty();

/// A stand-in generator: the probe is only type-checked, never run.
struct ProbeRng(u64);

impl RngCore for ProbeRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), lokimq_core::rng::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ProbeRng {}

/// Builds and drives a node, so the whole core (node, session, CURVE, scheduler) is
/// type-checked for a target without std.
pub fn probe() -> usize {
    let mut rng = ProbeRng(1);
    let keypair = Keypair::generate(&mut rng);
    let registry = RegistryBuilder::new().build();
    let Ok(mut node) = Node::new(Config::new(1), registry, keypair, rng, Instant::ZERO) else {
        return 0;
    };
    node.handle(Instant::from_millis(5), lokimq_core::Input::Timeout)
        .expect("a timeout is always accepted");
    let mut n = 0;
    while node.poll_output().is_some() {
        n += 1;
    }
    n
}

#[panic_handler]
fn panic(_: &PanicInfo<'_>) -> ! {
    loop {}
}
