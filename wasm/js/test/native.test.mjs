/**
 * The wasm node against the native Rust node, over CURVE on 127.0.0.1, both directions:
 *
 * - wasm client → `lokimq serve` (echo.echo, echo.ping, UNKNOWNCOMMAND) and → the
 *   `conformance_server` example, whose `admin.echo` gives FORBIDDEN (`lokimq serve` has no
 *   command above auth level none) and whose `public.whoami` shows the key and level the
 *   native side saw;
 * - wasm server ← `lokimq call` (exit codes 0, 4 FORBIDDEN, 5 UNKNOWNCOMMAND; `--key-file`
 *   granted admin by the wasm allow function; `--send` plain commands).
 */

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { NetHost } from '../net-host.mjs';
import {
  CONFORMANCE_BIN, LOKIMQ_BIN, addTestCommands, freePort, load, run, start, stop, texts, within,
} from './common.mjs';

const lmq = await load();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'lokimq-wasm-native-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A started wasm client node on Node.js sockets. */
function client(secretKey) {
  const host = new NetHost();
  const node = lmq.createNode({ host, secretKey });
  node.start();
  return { node, host };
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, err.message);
    return true;
  });
}

test('wasm client → lokimq serve: CURVE handshake, requests, UNKNOWNCOMMAND', async () => {
  const serve = await start(LOKIMQ_BIN, ['serve', '--listen', 'curve://127.0.0.1:0'],
    /listening on (curve:\/\/127\.0\.0\.1:\d+\/\w+)/);
  const address = serve.match[1];
  const { node, host } = client();
  try {
    const conn = await within(node.connect(address), `connect to ${address}`);
    assert.deepEqual(texts(await node.request(conn, 'echo.echo', ['hello', 'world'])),
      ['hello', 'world']);
    assert.deepEqual(texts(await node.request(conn, 'echo.ping')), ['pong']);
    const binary = new Uint8Array(256).map((_, i) => i);
    assert.deepEqual((await node.request(conn, 'echo.echo', [binary]))[0], binary);
    const many = await within(Promise.all(Array.from({ length: 100 }, (_, i) =>
      node.request(conn, 'echo.echo', [`#${i}`]))), '100 concurrent requests');
    many.forEach((parts, i) => assert.deepEqual(texts(parts), [`#${i}`]));
    await rejectsWith(node.request(conn, 'echo.nope'), 'UNKNOWNCOMMAND');
    await rejectsWith(node.request(conn, 'nope.echo'), 'UNKNOWNCOMMAND');
    // Still usable after the errors.
    assert.deepEqual(texts(await node.request(conn, 'echo.echo', ['after'])), ['after']);
    node.disconnect(conn);
  } finally {
    await within(node.shutdown(), 'client shutdown');
    host.destroy();
    assert.equal(await stop(serve.child), 0, `lokimq serve: ${serve.stderr()}`);
  }
});

test('wasm client → native conformance server: FORBIDDEN, --allow levels, whoami', async () => {
  const secret = new Uint8Array(32).fill(0x42);
  const { node, host } = client(secret);
  const [curvePort, plainPort] = [await freePort(), await freePort()];
  const server = await start(CONFORMANCE_BIN, [
    '--curve', `tcp://127.0.0.1:${curvePort}`, '--plain', `tcp://127.0.0.1:${plainPort}`,
    '--key-file', path.join(tmp, 'conformance.key'), '--allow', `${node.pubkey}=basic`,
  ], /pubkey ([0-9a-f]{64})/);
  try {
    const conn = await within(node.connect(`curve://127.0.0.1:${curvePort}/${server.match[1]}`),
      'connect to the conformance server');
    // The native side saw our key, and --allow gave it basic.
    assert.deepEqual(texts(await node.request(conn, 'public.whoami')), [node.pubkey, 'basic', '0']);
    assert.deepEqual(texts(await node.request(conn, 'basic.echo', ['ok'])), ['ok']);
    await rejectsWith(node.request(conn, 'admin.echo', ['no']), 'FORBIDDEN');
    await rejectsWith(node.request(conn, 'public.nope'), 'UNKNOWNCOMMAND');
    assert.deepEqual(texts(await node.request(conn, 'pub.e', ['alias'])), ['alias']);
  } finally {
    await within(node.shutdown(), 'client shutdown');
    host.destroy();
    assert.equal(await stop(server.child), 0, `conformance_server: ${server.stderr()}`);
  }
});

test('lokimq call → wasm server: replies, exit codes, allow levels, plain commands', async () => {
  const keyFile = path.join(tmp, 'admin.key');
  const keygen = await run(LOKIMQ_BIN, ['keygen', '--out', keyFile]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const adminKey = keygen.stdout.match(/pubkey hex: ([0-9a-f]{64})/)[1];

  const host = new NetHost();
  const server = addTestCommands(lmq.createNode({ host }));
  server.start();
  const seen = [];
  const address = await within(server.listen('tcp://127.0.0.1:0', {
    allow: (ip, key) => {
      seen.push(ip);
      return key === adminKey ? 'admin' : 'basic';
    },
  }), 'listen');
  const call = (...args) => run(LOKIMQ_BIN, ['call', address, ...args]);
  try {
    let r = await call('rpc.echo', 'a', 'b c');
    assert.deepEqual([r.code, r.stdout], [0, 'a\nb c\n'], r.stderr);
    r = await call('rpc.later', 'x');
    assert.deepEqual([r.code, r.stdout], [0, 'later\nx\n'], r.stderr);
    r = await call('rpc.manual');
    assert.deepEqual([r.code, r.stdout], [0, 'manual\n'], r.stderr);
    r = await call('rpc.whoami', '--key-file', keyFile);
    assert.deepEqual([r.code, r.stdout], [0, `${adminKey}\nadmin\n`], r.stderr);
    r = await call('admin.secret');
    assert.equal(r.code, 4, `FORBIDDEN exits 4: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /FORBIDDEN/);
    r = await call('admin.secret', '--key-file', keyFile);
    assert.deepEqual([r.code, r.stdout], [0, 's3cret\n'], r.stderr);
    r = await call('rpc.nope');
    assert.equal(r.code, 5, `UNKNOWNCOMMAND exits 5: ${r.stderr}`);
    assert.match(r.stderr, /UNKNOWNCOMMAND/);
    r = await call('rpc.silent', '--timeout', '0.5');
    assert.equal(r.code, 3, `TIMEOUT exits 3: ${r.stderr}`);
    r = await call('rpc.note', 'hello', '--send');
    assert.equal(r.code, 0, r.stderr);
    r = await call('rpc.echo', '--hex', '--', '\u00e9');
    assert.deepEqual([r.code, r.stdout], [0, 'c3a9\n'], r.stderr);
    assert.ok(seen.every((ip) => ip === '127.0.0.1'), `allow saw ${seen}`);
    // The plain command may land just after `lokimq call` exits.
    for (let i = 0; i < 100 && server.notes.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(server.notes, [['hello']]);
    // A wrong server key: the handshake fails, lokimq call exits 6.
    const wrong = address.replace(/[0-9a-f]{64}$/, '11'.repeat(32));
    r = await run(LOKIMQ_BIN, ['call', wrong, 'rpc.echo', '--timeout', '1']);
    assert.equal(r.code, 6, `connection failure exits 6: ${r.stderr}`);
  } finally {
    await within(server.shutdown(), 'server shutdown');
    host.destroy();
  }
});
