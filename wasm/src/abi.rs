//! The WebAssembly boundary: the module's exports and its imports. All of this crate's `unsafe`
//! is here.
//!
//! # Exports
//!
//! | export | what |
//! |---|---|
//! | `lmq_version() -> u32` | [`ABI_VERSION`]; the JS glue refuses a module of another version |
//! | `lmq_input(len) -> ptr` | makes the input buffer `len` bytes long and returns where it is; the host writes a call's arguments there |
//! | `lmq_call(op, node, now_us, len) -> i32` | runs operation `op` (see [`api`](crate::api)) on node `node` at time `now_us` (µs, `f64`) with the first `len` input bytes as arguments; returns the length of the result, or -1 if the module cannot take calls (a call is running, or an earlier one trapped) |
//! | `lmq_output() -> ptr` | where the last result is (valid until the next call) |
//! | `memory` | the linear memory, exported by the toolchain |
//!
//! A result's first byte is 0 (success, the result follows) or 1 (an error: code and message
//! as two strings). Everything is in the [`wire`](crate::wire) format.
//!
//! # Imports (module `lokimq`)
//!
//! | import | what the host does |
//! |---|---|
//! | `random_fill(ptr, len)` | writes `len` (≤ 65536) cryptographically secure random bytes at `ptr` (`crypto.getRandomValues`) |
//! | `log(level, ptr, len)` | receives one UTF-8 log line (level 1 error … 5 trace) |
//! | `panicked(ptr, len)` | receives a panic message; the instance traps right after and must not be used again |
//!
//! Nothing else is imported: no clock, no file system, no network. The host must not call back
//! into the module from an import.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::sync::Once;

use crate::api::Api;

/// The version of this ABI (exports, operation codes and wire layouts). The JS glue checks it.
pub const ABI_VERSION: u32 = 1;

/// Largest request `crypto.getRandomValues` accepts in one call.
const RANDOM_CHUNK: usize = 65_536;

/// Largest argument buffer `lmq_input` makes (the JS glue refuses larger calls first).
pub const MAX_INPUT: u32 = 1 << 28;

#[cfg(target_family = "wasm")]
#[link(wasm_import_module = "lokimq")]
unsafe extern "C" {
    #[link_name = "random_fill"]
    fn import_random_fill(ptr: *mut u8, len: usize);
    #[link_name = "log"]
    fn import_log(level: u32, ptr: *const u8, len: usize);
    #[link_name = "panicked"]
    fn import_panicked(ptr: *const u8, len: usize);
}

/// Fills `buf` from the host's CSPRNG (the OS generator in host builds).
pub fn fill_random(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(RANDOM_CHUNK) {
        #[cfg(target_family = "wasm")]
        // SAFETY: the pointer and length describe `chunk`, a live slice this function borrows
        // exclusively for the call; the host writes exactly `len` bytes there, keeps no
        // reference, and does not call back into the module.
        unsafe {
            import_random_fill(chunk.as_mut_ptr(), chunk.len());
        }
        #[cfg(not(target_family = "wasm"))]
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, chunk);
    }
}

/// Hands one log line to the host (`stderr` in host builds).
pub fn host_log(level: u32, line: &str) {
    #[cfg(target_family = "wasm")]
    // SAFETY: the pointer and length describe `line`, borrowed for the call; the host only
    // reads it.
    unsafe {
        import_log(level, line.as_ptr(), line.len());
    }
    #[cfg(not(target_family = "wasm"))]
    eprintln!("lokimq-wasm [{level}] {line}");
}

/// Reports panics to the host before the instance traps (wasm32 aborts on panic).
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        #[cfg(target_family = "wasm")]
        std::panic::set_hook(Box::new(|info| {
            let msg = info.to_string();
            // SAFETY: as in `host_log`.
            unsafe {
                import_panicked(msg.as_ptr(), msg.len());
            }
        }));
    });
}

/// The module's state: the call buffers and every node.
struct Boundary {
    input: Vec<u8>,
    output: Vec<u8>,
    api: Api,
}

thread_local! {
    // WebAssembly runs this module on one thread; `RefCell` turns a re-entrant call (an import
    // calling back in) or a call after a trap (the borrow is never released) into a refusal.
    static BOUNDARY: RefCell<Boundary> = RefCell::new(Boundary {
        input: Vec::new(),
        output: Vec::new(),
        api: Api::default(),
    });
}

/// The ABI version (see [`ABI_VERSION`]).
#[unsafe(no_mangle)]
pub extern "C" fn lmq_version() -> u32 {
    ABI_VERSION
}

/// Sizes the input buffer to `len` bytes and returns its address (null if the module is busy,
/// or `len` is over [`MAX_INPUT`]).
#[unsafe(no_mangle)]
pub extern "C" fn lmq_input(len: u32) -> *mut u8 {
    install_panic_hook();
    if len > MAX_INPUT {
        return std::ptr::null_mut();
    }
    BOUNDARY.with(|b| match b.try_borrow_mut() {
        Ok(mut b) => {
            b.input.clear();
            b.input.resize(len as usize, 0);
            b.input.as_mut_ptr()
        }
        Err(_) => std::ptr::null_mut(),
    })
}

/// Runs one operation; see the [module docs](self).
#[unsafe(no_mangle)]
pub extern "C" fn lmq_call(op: u32, node: u32, now_us: f64, len: u32) -> i32 {
    install_panic_hook();
    BOUNDARY.with(|b| {
        let Ok(mut b) = b.try_borrow_mut() else {
            return -1;
        };
        let b = &mut *b;
        let len = (len as usize).min(b.input.len());
        b.output.clear();
        b.api.call(op, node, now_us, &b.input[..len], &mut b.output);
        i32::try_from(b.output.len()).unwrap_or(-1)
    })
}

/// Where the last call's result is (null if the module is busy).
#[unsafe(no_mangle)]
pub extern "C" fn lmq_output() -> *const u8 {
    BOUNDARY.with(|b| match b.try_borrow() {
        Ok(b) => b.output.as_ptr(),
        Err(_) => std::ptr::null(),
    })
}
