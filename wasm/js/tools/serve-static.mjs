/**
 * A tiny static file server for the browser check: serves `wasm/js/` at `/` and the module at
 * `/lokimq_wasm.wasm`, on 127.0.0.1 (a free port), with the MIME types browsers insist on for
 * ES modules and WebAssembly. Prints `serving http://127.0.0.1:PORT/` once listening, and exits
 * by itself after SECONDS (default 120) in case nobody stops it.
 *
 *   node serve-static.mjs WASM_FILE [SECONDS]
 */

import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [wasmFile, seconds = '120'] = process.argv.slice(2);
if (!wasmFile) {
  console.error('usage: serve-static.mjs WASM_FILE [SECONDS]');
  process.exit(2);
}
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
};

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const file = url.pathname === '/lokimq_wasm.wasm'
    ? wasmFile
    : path.join(ROOT, path.normalize(decodeURIComponent(url.pathname)));
  if (file !== wasmFile && !file.startsWith(ROOT + path.sep)) {
    res.writeHead(403).end();
    return;
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(body);
  } catch {
    res.writeHead(404).end('not found');
  }
});
server.listen(0, '127.0.0.1', () => {
  console.log(`serving http://127.0.0.1:${server.address().port}/`);
});
setTimeout(() => process.exit(0), Number(seconds) * 1000).unref();
