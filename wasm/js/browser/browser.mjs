/**
 * The browser check's script (see index.html): loads the module from `/lokimq_wasm.wasm`, runs
 * a server and a client node in this page over a MemoryNetwork, and writes `PASS …` or
 * `FAIL: …` into #result.
 */

import { LokiMQError, loadLokiMQ } from '../lokimq.mjs';
import { MemoryNetwork } from '../memory-net.mjs';

const result = document.getElementById('result');
const log = document.getElementById('log');
const text = (parts) => parts.map((p) => new TextDecoder().decode(p));

function check(ok, what) {
  if (!ok) throw new Error(what);
  log.textContent += `ok: ${what}\n`;
}

async function outcome(promise) {
  try {
    await promise;
    return 'no error';
  } catch (err) {
    return err instanceof LokiMQError ? err.code : String(err);
  }
}

async function main() {
  const module = await WebAssembly.compileStreaming(fetch('/lokimq_wasm.wasm'))
    .catch(async () => WebAssembly.compile(await (await fetch('/lokimq_wasm.wasm')).arrayBuffer()));
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`).sort();
  check(imports.join() === 'lokimq.log,lokimq.panicked,lokimq.random_fill',
    `imports are only ${imports.join(', ')}`);
  const lmq = await loadLokiMQ(module);
  const net = new MemoryNetwork();

  const server = lmq.createNode({ host: net.host() });
  server.addCategory('rpc', 'none');
  server.addRequestCommand('rpc', 'echo', (msg) => msg.data);
  server.addRequestCommand('rpc', 'whoami', (msg) => [msg.pubkey ?? '', msg.auth]);
  server.addRequestCommand('rpc', 'later', (msg) => new Promise((resolve) => {
    setTimeout(() => resolve(['later', ...msg.data]), 5);
  }));
  server.addCategory('admin', 'admin');
  server.addRequestCommand('admin', 'secret', () => ['s3cret']);
  server.start();
  const address = await server.listen('tcp://server.page:0', { allow: () => 'basic' });
  check(address.endsWith(`/${server.pubkey}`), `server listens on ${address}`);

  const client = lmq.createNode({ host: net.host() });
  client.start();
  const conn = await client.connect(address);
  check(conn.pubkey === server.pubkey, 'CURVE handshake completed (server key verified)');
  check(text(await client.request(conn, 'rpc.echo', ['hello', 'browser'])).join() === 'hello,browser',
    'echo request');
  const who = text(await client.request(conn, 'rpc.whoami'));
  check(who[0] === client.pubkey && who[1] === 'basic', 'server saw the client key, granted basic');
  check(text(await client.request(conn, 'rpc.later', ['x'])).join() === 'later,x', 'deferred reply');
  check(await outcome(client.request(conn, 'admin.secret')) === 'FORBIDDEN', 'FORBIDDEN');
  check(await outcome(client.request(conn, 'rpc.nope')) === 'UNKNOWNCOMMAND', 'UNKNOWNCOMMAND');
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    client.request(conn, 'rpc.echo', [String(i)])));
  check(many.every((parts, i) => text(parts)[0] === String(i)), '20 concurrent requests');
  await client.shutdown();
  await server.shutdown();
  result.textContent = `PASS lokimq-wasm in ${navigator.userAgent.match(/(Headless)?Chrome\/[\d.]+/)?.[0] ?? 'this browser'}`;
}

main().catch((err) => {
  result.textContent = `FAIL: ${err?.stack ?? err}`;
});
