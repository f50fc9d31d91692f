/**
 * A {@link Host} for Node.js: the node's streams are `net` sockets (TCP, or unix sockets for
 * `ipc://` addresses).
 *
 * ```js
 * const node = lmq.createNode({ host: new NetHost() });
 * ```
 *
 * Socket events become the node's host-side calls: `connection` → `accept`, `data` →
 * `receive`, `connect` → `connected`, a failed dial → `connectFailed`, `end`/`error` →
 * `closed`. When the node closes a stream, the socket's write side is ended after what was
 * queued is flushed (so the peer sees every byte, then EOF) and the socket is destroyed when the
 * peer closes too, or after the node's linger. Nothing is read for the node after it closed a
 * stream.
 *
 * @module net-host
 */

import net from 'node:net';

/** Maps a node's streams and listeners onto Node.js sockets. One per node. */
export class NetHost {
  /** @type {import('./lokimq.mjs').Node | null} */
  #node = null;
  #servers = new Map();
  #sockets = new Map();

  /** Called by the node it serves. */
  attach(node) {
    if (this.#node !== null) throw new Error('a NetHost serves one node');
    this.#node = node;
  }

  /** Binds a listener; resolves with `tcp://HOST:PORT` (the real port) or `ipc://PATH`. */
  listen(listener, addr) {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, (sock) => this.#accepted(listener, sock));
      server.once('error', reject);
      const listening = () => {
        server.off('error', reject);
        server.on('error', (err) => this.#warn(`listener ${listener}: ${err.message}`));
        this.#servers.set(listener, server);
        const a = server.address();
        if (typeof a === 'string') {
          resolve(`ipc://${a}`);
        } else {
          resolve(`tcp://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
        }
      };
      if (addr.path) {
        server.listen(addr.path, listening);
      } else {
        const host = addr.host === '*' ? undefined : addr.host.replace(/^\[(.*)\]$/, '$1');
        server.listen(addr.port, host, listening);
      }
    });
  }

  /** Stops accepting on a listener (open connections stay). */
  unlisten(listener) {
    this.#servers.get(listener)?.close();
    this.#servers.delete(listener);
  }

  #accepted(listener, sock) {
    sock.setNoDelay(true);
    try {
      this.#node.accept(listener, sock.remoteAddress ?? '', (stream) => this.#track(stream, sock, true));
    } catch (err) {
      this.#warn(`refused a connection on listener ${listener}: ${err.message}`);
      sock.destroy();
    }
  }

  /** Dials; reports `connected` or `connectFailed`. */
  connect(stream, addr) {
    const sock = addr.path
      ? net.connect(addr.path)
      : net.connect({ host: addr.host.replace(/^\[(.*)\]$/, '$1'), port: addr.port, noDelay: true });
    this.#track(stream, sock, false);
  }

  #track(stream, sock, open) {
    const entry = { sock, open, closing: false, ended: false };
    this.#sockets.set(stream, entry);
    // Calls into the node may throw (a stream it already dropped, a bug): never let that escape
    // a socket event, where it would crash the process.
    const tell = (what, f) => {
      if (entry.closing || entry.ended) return;
      try {
        f();
      } catch (err) {
        this.#warn(`stream ${stream} ${what}: ${err.message}`);
        entry.ended = true;
        sock.destroy();
      }
    };
    sock.on('connect', () => {
      entry.open = true;
      tell('connected', () => this.#node.connected(stream));
    });
    sock.on('data', (buf) => tell('data', () => this.#node.receive(stream, buf)));
    sock.on('end', () => {
      tell('end', () => this.#node.closed(stream));
      entry.ended = true;
    });
    sock.on('error', (err) => {
      if (entry.open) {
        tell('error', () => this.#node.closed(stream, err.message));
      } else {
        tell('dial', () => this.#node.connectFailed(stream, err.message));
      }
      entry.ended = true;
    });
    sock.on('close', () => {
      tell('close', () => this.#node.closed(stream, 'socket closed'));
      entry.ended = true;
      clearTimeout(entry.linger);
      this.#sockets.delete(stream);
    });
  }

  /** Queues bytes on a stream (Node.js buffers them until the socket drains). */
  write(stream, bytes) {
    const entry = this.#sockets.get(stream);
    if (entry && !entry.ended) entry.sock.write(bytes);
  }

  /** Flushes, half-closes, and destroys after the peer's EOF or `lingerMs`. */
  close(stream, lingerMs) {
    const entry = this.#sockets.get(stream);
    if (!entry) return;
    entry.closing = true;
    if (!entry.open || lingerMs <= 0 || entry.ended) {
      entry.sock.destroy();
      return;
    }
    entry.sock.end();
    entry.linger = setTimeout(() => entry.sock.destroy(), lingerMs);
    entry.linger.unref?.();
  }

  /** Closes every listener and socket now (tests, process exit). */
  destroy() {
    for (const s of this.#servers.values()) s.close();
    for (const { sock } of this.#sockets.values()) sock.destroy();
    this.#servers.clear();
  }

  #warn(line) {
    this.#node?.hostLog?.('warn', line);
  }
}
