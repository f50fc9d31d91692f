/**
 * An in-memory network of nodes: a {@link Host} per node, joined by pipes instead of sockets.
 *
 * Browsers cannot open raw TCP connections, and tests and benchmarks want no sockets at all, so
 * nodes in one JavaScript realm can talk through this:
 *
 * ```js
 * const net = new MemoryNetwork();
 * const a = lmq.createNode({ host: net.host() });
 * const b = lmq.createNode({ host: net.host() });
 * // … a.listen('tcp://a.local:1') → 'curve://a.local:1/KEY'; b.connect(that) …
 * ```
 *
 * A listener's address is only a name: `listen` binds it in this network (port 0 becomes the
 * next free number), `connect` finds it. Bytes and ends are delivered in order, asynchronously
 * (in a microtask), the way a socket delivers them in a later event, never inside the writer's
 * own call.
 *
 * @module memory-net
 */

/** A set of nodes that can reach each other by listener address. */
export class MemoryNetwork {
  #listeners = new Map();
  #queue = [];
  #flushing = false;
  #nextPort = 40000;

  /** A host for one node. */
  host() {
    return new MemoryHost(this);
  }

  /** @internal */
  bind(host, listener, addr) {
    let { address } = addr;
    if (addr.port === 0 && addr.host) {
      address = `tcp://${addr.host}:${this.#nextPort++}`;
    }
    if (this.#listeners.has(address)) throw new Error(`${address} is in use`);
    this.#listeners.set(address, { host, listener });
    return address;
  }

  /** @internal */
  unbind(host, listener) {
    for (const [address, l] of this.#listeners) {
      if (l.host === host && l.listener === listener) this.#listeners.delete(address);
    }
  }

  /** @internal */
  lookup(address) {
    return this.#listeners.get(address);
  }

  /** Queues a delivery (`bytes`, or `null` for the end of the stream) to one pipe end. */
  deliver(end, bytes) {
    this.#queue.push([end, bytes]);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Queues a callback behind the deliveries already queued. */
  later(f) {
    this.deliver(null, f);
  }

  #flush() {
    // Deliveries made while flushing join the queue and are handled in this same turn.
    for (let i = 0; i < this.#queue.length; i++) {
      const [end, what] = this.#queue[i];
      try {
        if (end === null) {
          what();
        } else {
          end.host.arrive(end, what);
        }
      } catch (err) {
        console.error(`memory-net: ${err?.stack ?? err}`);
      }
    }
    this.#queue = [];
    this.#flushing = false;
  }
}

/** One node's view of a {@link MemoryNetwork}. */
class MemoryHost {
  #net;
  /** @type {import('./lokimq.mjs').Node | null} */
  node = null;
  /** stream → pipe end */
  #ends = new Map();

  constructor(net) {
    this.#net = net;
  }

  attach(node) {
    this.node = node;
  }

  listen(listener, addr) {
    return Promise.resolve(this.#net.bind(this, listener, addr));
  }

  unlisten(listener) {
    this.#net.unbind(this, listener);
  }

  connect(stream, addr) {
    const here = { host: this, stream, peer: null };
    this.#ends.set(stream, here);
    this.#net.later(() => {
      if (this.#ends.get(stream) !== here) return; // closed while dialing
      const target = this.#net.lookup(addr.address);
      if (!target) {
        this.#ends.delete(stream);
        this.node.connectFailed(stream, `nothing listens on ${addr.address}`);
        return;
      }
      const there = { host: target.host, stream: 0, peer: here };
      here.peer = there;
      target.host.node.accept(target.listener, 'memory', (s) => {
        there.stream = s;
        target.host.#ends.set(s, there);
      });
      this.node.connected(stream);
    });
  }

  write(stream, bytes) {
    const end = this.#ends.get(stream);
    if (end?.peer) this.#net.deliver(end.peer, bytes);
  }

  close(stream) {
    const end = this.#ends.get(stream);
    this.#ends.delete(stream);
    if (end?.peer) this.#net.deliver(end.peer, null);
  }

  /** @internal a delivery for one of our ends */
  arrive(end, bytes) {
    if (this.#ends.get(end.stream) !== end) return; // we closed it already
    if (bytes === null) {
      this.#ends.delete(end.stream);
      this.node.closed(end.stream);
    } else {
      this.node.receive(end.stream, bytes);
    }
  }
}
