/**
 * The JavaScript API against itself: two wasm nodes, in memory and over loopback TCP, CURVE in
 * every case; every request outcome; and every misuse a caller can commit, which must be a
 * LokiMQError with a code, never a trap.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { LokiMQError, loadLokiMQ } from '../lokimq.mjs';
import { MemoryNetwork } from '../memory-net.mjs';
import { NetHost } from '../net-host.mjs';
import { WASM, addTestCommands, load, texts, within } from './common.mjs';

const lmq = await load();

/** A started server (test commands; `admin` for the key `adminKey`, else basic) and client. */
async function pair(makeHost, { adminKey = null, clientConfig = {} } = {}) {
  const server = addTestCommands(lmq.createNode({ host: makeHost() }));
  server.start();
  const address = await within(server.listen('tcp://127.0.0.1:0', {
    allow: (ip, key) => (key !== null && key === adminKey ? 'admin' : 'basic'),
  }), 'listen');
  const client = lmq.createNode({ host: makeHost(), config: clientConfig });
  client.notes = [];
  client.addCategory('cb', 'none');
  client.addCommand('cb', 'note', (msg) => client.notes.push(texts(msg.data)));
  client.start();
  return { server, client, address };
}

async function closeAll(...nodes) {
  await within(Promise.all(nodes.map((n) => n.shutdown())), 'shutdown');
}

function rejectsWith(promise, code) {
  return assert.rejects(promise, (err) => {
    assert.ok(err instanceof LokiMQError, `not a LokiMQError: ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

function throwsWith(f, code) {
  assert.throws(f, (err) => {
    assert.ok(err instanceof LokiMQError, `not a LokiMQError: ${err}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

test('the module imports only what the host must supply', () => {
  const mod = new WebAssembly.Module(readFileSync(WASM));
  const imports = WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`).sort();
  assert.deepEqual(imports, ['lokimq.log', 'lokimq.panicked', 'lokimq.random_fill']);
});

test('in memory: CURVE handshake, requests and every reply kind', async () => {
  const memory = new MemoryNetwork();
  const { server, client, address } = await pair(() => memory.host());
  assert.match(address, /^curve:\/\/127\.0\.0\.1:\d+\/[0-9a-f]{64}$/);
  assert.ok(address.endsWith(server.pubkey));
  const conn = await within(client.connect(address), 'connect');
  assert.equal(conn.pubkey, server.pubkey);

  assert.deepEqual(texts(await client.request(conn, 'rpc.echo', ['a', new Uint8Array([0, 255])])),
    ['a', '\u0000\ufffd']);
  // The server saw our CURVE key and granted basic.
  assert.deepEqual(texts(await client.request(conn, 'rpc.whoami')), [client.pubkey, 'basic']);
  assert.deepEqual(texts(await client.request(conn, 'rpc.later', ['x'])), ['later', 'x']);
  assert.deepEqual(texts(await client.request(conn, 'rpc.manual')), ['manual']);
  await rejectsWith(client.request(conn, 'admin.secret'), 'FORBIDDEN');
  await rejectsWith(client.request(conn, 'rpc.nope'), 'UNKNOWNCOMMAND');
  await rejectsWith(client.request(conn, 'nope.nope'), 'UNKNOWNCOMMAND');
  // The server sends a plain command back on the incoming connection, before its reply.
  assert.deepEqual(texts(await client.request(conn, 'rpc.callback', ['back'])), ['sent']);
  assert.deepEqual(client.notes, [['back']]);
  // And the client sends the server a plain command.
  client.send(conn, 'rpc.note', ['one way']);
  assert.deepEqual(texts(await client.request(conn, 'rpc.echo')), []);
  assert.deepEqual(server.notes, [['one way']]);
  await rejectsWith(client.request(conn, 'rpc.silent', [], { timeoutMs: 100 }), 'TIMEOUT');
  await rejectsWith(client.request(conn, 'rpc.throws', [], { timeoutMs: 100 }), 'TIMEOUT');
  assert.ok(lmq.lines.some((l) => l.includes('deliberately')), 'a throwing handler is logged');

  // Many requests in flight at once, answered in any order.
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    client.request(conn, i % 2 ? 'rpc.echo' : 'rpc.later', [String(i)])));
  many.forEach((parts, i) => assert.deepEqual(texts(parts), i % 2 ? [String(i)] : ['later', String(i)]));

  // Only rpc.silent's handle waits for a reply that never comes; rpc.throws' was dropped.
  assert.equal(server.info().pendingReplies, 1);
  await closeAll(server, client);
});

test('admin access follows the allow function', async () => {
  const memory = new MemoryNetwork();
  const adminSecret = new Uint8Array(32).fill(7);
  const probe = lmq.createNode({ secretKey: adminSecret });
  const adminKey = probe.pubkey;
  probe.free();
  const { server, address } = await pair(() => memory.host(), { adminKey });
  const admin = lmq.createNode({ host: memory.host(), secretKey: adminSecret });
  admin.start();
  assert.equal(admin.pubkey, adminKey);
  const conn = await within(admin.connect(address), 'connect');
  assert.deepEqual(texts(await admin.request(conn, 'admin.secret')), ['s3cret']);
  assert.deepEqual(texts(await admin.request(conn, 'rpc.whoami')), [adminKey, 'admin']);
  await closeAll(server, admin);
});

test('a denied client cannot connect', async () => {
  const memory = new MemoryNetwork();
  const server = addTestCommands(lmq.createNode({ host: memory.host() }));
  server.start();
  const address = await server.listen('tcp://127.0.0.1:0', { allow: () => 'denied' });
  const client = lmq.createNode({ host: memory.host() });
  client.start();
  await rejectsWith(within(client.connect(address, { timeoutMs: 500 }), 'connect'), 'CONNECT_FAILED');
  await closeAll(server, client);
});

test('a wrong server key fails the handshake', async () => {
  const memory = new MemoryNetwork();
  const { server, client, address } = await pair(() => memory.host());
  const wrong = address.replace(/[0-9a-f]{64}$/, '11'.repeat(32));
  await rejectsWith(within(client.connect(wrong, { timeoutMs: 500 }), 'connect'), 'CONNECT_FAILED');
  await closeAll(server, client);
});

test('over loopback TCP with Node.js sockets, both nodes in wasm', async () => {
  const hosts = [];
  const { server, client, address } = await pair(() => {
    const h = new NetHost();
    hosts.push(h);
    return h;
  });
  const conn = await within(client.connect(address), 'connect');
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const [echoed] = await within(client.request(conn, 'rpc.echo', [big]), 'big echo');
  assert.deepEqual(echoed, big);
  await rejectsWith(client.request(conn, 'admin.secret'), 'FORBIDDEN');
  await closeAll(server, client);
  for (const h of hosts) h.destroy();
});

test('nothing listening: connect fails with CONNECT_FAILED', async () => {
  const host = new NetHost();
  const client = lmq.createNode({ host });
  client.start();
  const key = '22'.repeat(32);
  await rejectsWith(within(client.connect(`curve://127.0.0.1:1/${key}`, { timeoutMs: 300 }), 'connect'),
    'CONNECT_FAILED');
  await closeAll(client);
  host.destroy();
});

test('bad input is a LokiMQError with a code, never a trap', async () => {
  throwsWith(() => lmq.createNode({ secretKey: new Uint8Array(31) }), 'BAD_KEY');
  throwsWith(() => lmq.createNode({ secretKey: 'xyz' }), 'BAD_KEY');
  throwsWith(() => lmq.createNode({ secretKey: 42 }), 'BAD_KEY');
  throwsWith(() => lmq.createNode({ config: { requestTimeoutMs: -5 } }), 'BAD_ARGUMENT');
  throwsWith(() => lmq.createNode({ config: { noSuchOption: 1 } }), 'BAD_ARGUMENT');
  throwsWith(() => lmq.createNode({ config: { requestTimeoutMs: 'soon' } }), 'BAD_ARGUMENT');

  const memory = new MemoryNetwork();
  const node = lmq.createNode({ host: memory.host() });
  throwsWith(() => node.addCategory('a.b'), 'REGISTRY');
  throwsWith(() => node.addCategory('x', 'root'), 'BAD_ARGUMENT');
  throwsWith(() => node.addRequestCommand('nope', 'x', () => []), 'REGISTRY');
  throwsWith(() => node.addRequestCommand('x', 'y', 'not a function'), 'BAD_ARGUMENT');
  await rejectsWith(node.connect('curve://127.0.0.1:1/' + '33'.repeat(32)), 'NOT_STARTED');
  throwsWith(() => node.receive(1, new Uint8Array(1)), 'NOT_STARTED');
  node.addCategory('x');
  node.start();
  throwsWith(() => node.addCategory('y'), 'ALREADY_STARTED');
  throwsWith(() => node.start(), 'ALREADY_STARTED');

  await rejectsWith(node.connect('bogus'), 'BAD_ADDRESS');
  await rejectsWith(node.connect('curve://127.0.0.1:1/notakey'), 'BAD_ADDRESS');
  await rejectsWith(node.request({ token: new Uint8Array(1) }, 'x.y'), 'BAD_ARGUMENT');
  throwsWith(() => node.receive(99, new Uint8Array(1)), 'UNKNOWN_STREAM');
  throwsWith(() => node.receive(-1, new Uint8Array(1)), 'BAD_ARGUMENT');
  throwsWith(() => node.receive(1.5, new Uint8Array(1)), 'BAD_ARGUMENT');
  throwsWith(() => node.receive(1, 'text'), 'BAD_ARGUMENT');
  throwsWith(() => node.connected(99), 'UNKNOWN_STREAM');
  throwsWith(() => node.accept(7, '1.2.3.4'), 'REFUSED');
  throwsWith(() => node.accept(2 ** 32, '1.2.3.4'), 'BAD_ARGUMENT');
  await rejectsWith(node.listen('udp://127.0.0.1:1'), 'BAD_ADDRESS');
  await rejectsWith(node.listen('tcp://127.0.0.1:99999'), 'BAD_ADDRESS');
  await rejectsWith(node.listen('tcp://127.0.0.1:1', { allow: 'admin' }), 'BAD_ARGUMENT');

  // A server stream: bytes after the node closed it are refused, its end is harmless.
  const address = await node.listen('tcp://memory.test:0');
  let stream = null;
  const writes = [];
  const fake = {
    listen: () => Promise.resolve('tcp://fake:1'),
    write: (s, b) => writes.push([s, b]),
    close: () => {},
    connect: () => {},
  };
  const server = lmq.createNode({ host: fake });
  server.start();
  await server.listen('tcp://fake:1');
  stream = server.accept(0, '127.0.0.1', () => {});
  assert.equal(writes.length, 1, 'the greeting is written at once');
  // Garbage instead of a ZMTP greeting: the node closes the stream.
  server.receive(stream, new Uint8Array(64).fill(0x41));
  throwsWith(() => server.receive(stream, new Uint8Array(1)), 'STREAM_CLOSED');
  server.closed(stream);
  // A connection object from a plain request target that does not exist.
  const conn = await within((async () => {
    const c = lmq.createNode({ host: memory.host() });
    c.start();
    const p = c.connect(address);
    const r = await p;
    await c.shutdown();
    return r;
  })(), 'connect to the test node');
  await rejectsWith(node.request(conn, 'x.y', [{}]), 'BAD_ARGUMENT');
  await rejectsWith(node.request(conn, 'x.y', 'not an array'), 'BAD_ARGUMENT');
  await rejectsWith(node.request(conn, 'x.y', [], { timeoutMs: -1 }), 'BAD_ARGUMENT');
  // An outgoing id from another node is not one of this node's connections.
  await rejectsWith(node.request(conn, 'x.y'), 'SEND_FAILED');

  await closeAll(node, server);
  node.free();
  throwsWith(() => node.info(), 'UNKNOWN_NODE');
  // Still alive after all of that: no trap poisoned the module.
  const after = lmq.createNode();
  assert.equal(after.pubkey.length, 64);
  after.free();
});

test('random calls into the module never trap', async () => {
  // Its own instance: a trap would poison it, and the point is to see that none happens.
  const mod = await load();
  const memory = new MemoryNetwork();
  const node = mod.createNode({ host: memory.host() });
  node.start();
  await node.listen('tcp://fuzz.test:1');
  node.accept(0, '127.0.0.1', () => {});
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return seed >>> 0;
  };
  const ops = [...Array(50).keys(), 90];
  let errors = 0;
  for (let i = 0; i < 5000; i++) {
    const op = ops[next() % ops.length];
    if (op === 2 || op === 27) continue; // free, shutdown
    const w = mod.args();
    const len = next() % 40;
    for (let j = 0; j < len; j++) w.u8(next() & 0xff);
    if (len >= 8 && i % 2) w.buf.set(new Uint8Array(new Float64Array([next() % 4]).buffer), 0);
    try {
      mod.call(op, i % 7 ? 1 : 99, i, w);
    } catch (err) {
      assert.ok(err instanceof LokiMQError, String(err));
      assert.notEqual(err.code, 'INTERNAL', err.message);
      errors++;
    }
  }
  assert.ok(errors > 1000, `${errors} of the random calls were refused`);
  assert.equal(mod.createNode().pubkey.length, 64, 'the module still works');
  await within(node.shutdown(), 'shutdown after the random calls');
});

test('loading checks the module and the environment', async () => {
  await assert.rejects(loadLokiMQ(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])), /lokimq-wasm module/);
  const fixed = await loadLokiMQ(readFileSync(WASM), { random: (buf) => buf.fill(9) });
  // Randomness really comes from the host: a "generated" key is the key of secret 0x09…09.
  const generated = fixed.createNode();
  const explicit = fixed.createNode({ secretKey: '09'.repeat(32) });
  assert.equal(generated.pubkey, explicit.pubkey);
});
