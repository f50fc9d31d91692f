/**
 * How fast the core is inside Node.js's WebAssembly engine, as ratios against the same core
 * natively, measured in the same run:
 *
 * - **native**: `examples/native_bench` runs `bench::run`, the in-memory two-node loop of
 *   `wasm/src/bench.rs`, as native code, twice: built as shipped (the `poly1305` crate picks
 *   its AVX2 backend at run time on x86-64, whose per-message setup is slow: see "Poly1305" in
 *   docs/performance.md), and built with `--cfg poly1305_force_soft`, the portable Poly1305
 *   that WebAssembly also runs. The second is the same code on both sides, so the ratios are
 *   taken against it;
 * - **wasm loop**: the same Rust loop compiled into the module (feature `bench`, op 90), timed
 *   from JavaScript: the cost of WebAssembly itself;
 * - **wasm via JS**: two nodes driven through the JavaScript API (`lokimq.mjs`) over a
 *   `MemoryNetwork`, `await`ing each handshake and request: what an embedder gets, including
 *   the boundary crossings, the byte copies and the promise machinery.
 *
 * A handshake is a new CURVE connection with OxenMQ's HI/HELLO, then a disconnect; a round trip
 * is one 100-byte `echo` request and its reply. Each figure is the best of five runs (on a
 * busy machine the best run is the least disturbed one).
 *
 *   node bench.mjs NATIVE_BENCH NATIVE_BENCH_SOFT WASM WASM_BENCH [HANDSHAKES [ROUND_TRIPS]]
 *
 * Prints a table, then one line of JSON.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

import { loadLokiMQ } from './lokimq.mjs';
import { MemoryNetwork } from './memory-net.mjs';

const [nativeBench, nativeSoftBench, wasmFile, benchWasmFile, h = '300', rt = '10000'] =
  process.argv.slice(2);
if (!benchWasmFile) {
  console.error('usage: bench.mjs NATIVE_BENCH NATIVE_BENCH_SOFT WASM WASM_BENCH [HANDSHAKES [ROUND_TRIPS]]');
  process.exit(2);
}
const HANDSHAKES = Number(h);
const ROUND_TRIPS = Number(rt);
const PAYLOAD = new Uint8Array(100).fill(0x5a);
const RUNS = 5;

/** Iterations per second of `body(count)`, best of RUNS. */
async function rate(count, body) {
  let best = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await body(count);
    best = Math.min(best, performance.now() - t0);
  }
  return count / (best / 1000);
}

const runNative = (bin) => JSON.parse(execFileSync(bin, [String(HANDSHAKES), String(ROUND_TRIPS)],
  { encoding: 'utf8', timeout: 300_000 }));
const shipped = runNative(nativeBench);
const native = runNative(nativeSoftBench);

const benchModule = await loadLokiMQ(readFileSync(benchWasmFile));
const loop = {
  handshakes_per_s: await rate(HANDSHAKES, (n) => benchModule.bench(0, n)),
  round_trips_per_s: await rate(ROUND_TRIPS, (n) => benchModule.bench(1, n, PAYLOAD.length)),
};

const lmq = await loadLokiMQ(readFileSync(wasmFile));
async function jsPair() {
  const net = new MemoryNetwork();
  const server = lmq.createNode({ host: net.host(), config: { heartbeatIntervalMs: 0 } });
  server.addCategory('bench', 'none');
  server.addRequestCommand('bench', 'echo', (msg) => msg.data);
  server.start();
  const address = await server.listen('tcp://127.0.0.1:4567', { allow: () => 'basic' });
  const client = lmq.createNode({ host: net.host(), config: { heartbeatIntervalMs: 0 } });
  client.start();
  return { server, client, address };
}
async function done(p) {
  await p.client.shutdown();
  await p.server.shutdown();
  p.client.free();
  p.server.free();
}
const js = {
  handshakes_per_s: await rate(HANDSHAKES, async (n) => {
    const p = await jsPair();
    for (let i = 0; i < n; i++) {
      const conn = await p.client.connect(p.address);
      p.client.disconnect(conn);
    }
    await done(p);
  }),
  round_trips_per_s: await rate(ROUND_TRIPS, async (n) => {
    const p = await jsPair();
    const conn = await p.client.connect(p.address);
    for (let i = 0; i < n; i++) {
      const [reply] = await p.client.request(conn, 'bench.echo', [PAYLOAD]);
      if (reply.length !== PAYLOAD.length) throw new Error('echo replied with other data');
    }
    await done(p);
  }),
};

const fmt = (v) => v.toFixed(0).padStart(9);
const ratio = (v, n) => (v / n).toFixed(2);
console.log(`${HANDSHAKES} CURVE handshakes, ${ROUND_TRIPS} round trips of ${PAYLOAD.length} B, best of ${RUNS}`);
console.log('(ratio: against native with the portable Poly1305, the same code as in wasm)');
console.log('                                handshakes/s   ratio   round trips/s   ratio');
for (const [name, r] of [
  ['native, as shipped (AVX2 Poly1305)', shipped],
  ['native, portable Poly1305', native],
  ['wasm, the Rust loop', loop],
  ['wasm, via the JS API', js],
]) {
  console.log(`${name.padEnd(34)} ${fmt(r.handshakes_per_s)}  ${ratio(r.handshakes_per_s, native.handshakes_per_s).padStart(5)}   `
    + `${fmt(r.round_trips_per_s)}   ${ratio(r.round_trips_per_s, native.round_trips_per_s).padStart(5)}`);
}
console.log(JSON.stringify({
  node: process.version,
  wasm_bytes: statSync(wasmFile).size,
  native_shipped: shipped,
  native,
  wasm_loop: loop,
  wasm_js: js,
  ratio_loop: {
    handshakes: loop.handshakes_per_s / native.handshakes_per_s,
    round_trips: loop.round_trips_per_s / native.round_trips_per_s,
  },
  ratio_js: {
    handshakes: js.handshakes_per_s / native.handshakes_per_s,
    round_trips: js.round_trips_per_s / native.round_trips_per_s,
  },
}));
