/**
 * What the tests share: where the built artefacts are, loading the module, bounded child
 * processes, and a node with the test commands.
 *
 * Paths come from the environment when set (scripts/wasm-check sets them), else from the
 * repository's default build locations.
 */

import { spawn } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { loadLokiMQ } from '../lokimq.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const WASM = process.env.LOKIMQ_WASM
  ?? path.join(REPO, 'target/wasm32-unknown-unknown/wasm/lokimq_wasm.wasm');
export const LOKIMQ_BIN = process.env.LOKIMQ_BIN ?? path.join(REPO, 'target/debug/lokimq');
export const CONFORMANCE_BIN = process.env.CONFORMANCE_BIN
  ?? path.join(REPO, 'target/debug/examples/conformance_server');
export const PYTHON = process.env.PYTHON ?? 'python3';

/** Every wait in the tests is bounded by this. */
export const WAIT_MS = 20_000;

/** The module, loaded once per test file; log lines are collected, not printed. */
export async function load(options = {}) {
  if (!existsSync(WASM)) throw new Error(`${WASM} is missing: build it first (scripts/wasm-check)`);
  const lines = [];
  const lmq = await loadLokiMQ(readFileSync(WASM), {
    log: (level, line) => lines.push(`${level}: ${line}`),
    logLevel: 'warn',
    ...options,
  });
  lmq.lines = lines;
  return lmq;
}

/** Rejects after `ms` with `what`. */
export function within(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Text of each part. */
export function texts(parts) {
  return parts.map((p) => new TextDecoder().decode(p));
}

/**
 * Runs a program to its end (killed after `ms`), without blocking the event loop (the wasm
 * node under test keeps serving meanwhile). Resolves with `{ code, stdout, stderr }`.
 */
export function run(cmd, args, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr });
    });
  });
}

/**
 * Starts a long-running program and waits for the first stdout line matching `pattern`.
 * Resolves with `{ child, match, stderr() }`; stop it with `stop(child)`.
 */
export function start(cmd, args, pattern, ms = WAIT_MS) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} printed no ${pattern} within ${ms} ms; stderr: ${err}`));
    }, ms);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, stderr: () => err, stdout: () => out });
      }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before printing ${pattern}; stderr: ${err}`));
    });
  });
}

/** Stops a started program: SIGTERM, then SIGKILL after 5 s. Resolves with its exit code. */
export function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('close', (code) => { clearTimeout(timer); resolve(code); });
    child.kill('SIGTERM');
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * The test server's commands, on a node not yet started:
 *
 * | command | access | reply |
 * |---|---|---|
 * | `rpc.echo` | none | the request's parts |
 * | `rpc.whoami` | none | `[caller pubkey hex or "", auth level]` |
 * | `rpc.later` | none | after 20 ms (a promise): `["later", parts…]` |
 * | `rpc.manual` | none | through `msg.reply`, after 10 ms: `["manual"]` |
 * | `rpc.silent` | none | never (the caller times out) |
 * | `rpc.throws` | none | never: the handler throws |
 * | `rpc.note` | none | a plain command: its parts are appended to `node.notes` |
 * | `rpc.callback` | none | sends the plain command `cb.note` with the request's parts back to the caller, then replies `["sent"]` |
 * | `admin.secret` | admin | `["s3cret"]` |
 */
export function addTestCommands(node) {
  node.notes = [];
  node.addCategory('rpc', 'none');
  node.addCommand('rpc', 'note', (msg) => node.notes.push(texts(msg.data)));
  node.addRequestCommand('rpc', 'callback', (msg) => {
    node.send(msg.conn, 'cb.note', msg.data);
    return ['sent'];
  });
  node.addRequestCommand('rpc', 'echo', (msg) => msg.data);
  node.addRequestCommand('rpc', 'whoami', (msg) => [msg.pubkey ?? '', msg.auth]);
  node.addRequestCommand('rpc', 'later', (msg) => new Promise((resolve) => {
    setTimeout(() => resolve(['later', ...msg.data]), 20);
  }));
  node.addRequestCommand('rpc', 'manual', (msg) => {
    setTimeout(() => msg.reply(['manual']), 10);
  });
  node.addRequestCommand('rpc', 'silent', () => undefined);
  node.addRequestCommand('rpc', 'throws', () => {
    throw new Error('deliberately');
  });
  node.addCategory('admin', 'admin');
  node.addRequestCommand('admin', 'secret', () => ['s3cret']);
  return node;
}
