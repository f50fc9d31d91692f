/**
 * The wasm node against real libzmq (pyzmq's bundled libzmq 4.3.5 and libsodium), over CURVE on
 * 127.0.0.1, both directions, with `zmq_peer.py` playing an OxenMQ peer:
 *
 * - wasm client → libzmq ROUTER: HI/HELLO, echo, whoami (libzmq's ZAP saw our key and our
 *   `L` + pubkey routing id), FORBIDDEN, UNKNOWNCOMMAND, concurrent requests;
 * - libzmq DEALER → wasm server: the request script of `zmq_peer.py client`.
 *
 * Skipped (with the reason) when python3 cannot import zmq; scripts/wasm-check installs it.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { NetHost } from '../net-host.mjs';
import { PYTHON, addTestCommands, load, run, start, stop, texts, within } from './common.mjs';

const PEER = fileURLToPath(new URL('./zmq_peer.py', import.meta.url));
const probe = spawnSync(PYTHON, ['-c', 'import zmq; print(zmq.zmq_version())'], { encoding: 'utf8' });
const why = probe.error?.message ?? (probe.stderr ?? '').trim().split('\n').pop();
const skip = probe.status === 0 ? false : `${PYTHON} cannot import zmq: ${why}`;
const lmq = skip ? null : await load();

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, err.message);
    return true;
  });
}

test(`wasm client → libzmq ${(probe.stdout ?? '').trim()} ROUTER over CURVE`, { skip }, async () => {
  const peer = await start(PYTHON, [PEER, 'server'], /\{"port": (\d+), "pubkey": "([0-9a-f]{64})"\}/);
  const [, port, key] = peer.match;
  const host = new NetHost();
  const node = lmq.createNode({ host });
  node.start();
  try {
    const conn = await within(node.connect(`curve://127.0.0.1:${port}/${key}`), 'connect to libzmq');
    assert.deepEqual(texts(await node.request(conn, 'rpc.echo', ['a', 'b'])), ['a', 'b']);
    // libzmq's ZAP handler saw our CURVE key; the ROUTER saw our "L" + pubkey routing id.
    assert.deepEqual(texts(await node.request(conn, 'rpc.whoami')), [node.pubkey, `4c${node.pubkey}`]);
    await rejectsWith(node.request(conn, 'admin.secret'), 'FORBIDDEN');
    await rejectsWith(node.request(conn, 'rpc.nope'), 'UNKNOWNCOMMAND');
    const many = await within(Promise.all(Array.from({ length: 20 }, (_, i) =>
      node.request(conn, 'rpc.echo', [`#${i}`]))), '20 concurrent requests');
    many.forEach((parts, i) => assert.deepEqual(texts(parts), [`#${i}`]));
    await node.request(conn, 'peer.quit');
    const code = await within(new Promise((resolve) => peer.child.once('close', resolve)), 'peer exit');
    assert.equal(code, 0, peer.stderr());
    const summary = JSON.parse(peer.stdout().trim().split('\n').pop());
    assert.equal(summary.handled.HI, 1, JSON.stringify(summary));
  } finally {
    await within(node.shutdown(), 'shutdown');
    host.destroy();
    await stop(peer.child);
  }
});

test('libzmq DEALER → wasm server over CURVE', { skip }, async () => {
  const host = new NetHost();
  const server = addTestCommands(lmq.createNode({ host }));
  server.start();
  const address = await within(server.listen('tcp://127.0.0.1:0', { allow: () => 'basic' }), 'listen');
  const [, hostport, key] = address.match(/^curve:\/\/([^/]+)\/([0-9a-f]{64})$/);
  try {
    const r = await run(PYTHON, [PEER, 'client', hostport, key]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const result = JSON.parse(r.stdout.trim().split('\n').pop());
    assert.equal(result.ok, true);
    assert.equal(result.steps, 8);
    assert.deepEqual(server.notes, [['from-libzmq']]);
  } finally {
    await within(server.shutdown(), 'shutdown');
    host.destroy();
  }
});
