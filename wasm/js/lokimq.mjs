/**
 * lokimq-wasm for JavaScript: a LokiMQ (OxenMQ) node running in WebAssembly.
 *
 * The node speaks libzmq's bytes (ZMTP 3.1, CurveZMQ) and OxenMQ's protocol, but owns no
 * sockets: a *host* moves its bytes. `net-host.mjs` maps streams onto Node.js `net` sockets,
 * `memory-net.mjs` joins nodes in memory (browsers, tests, benchmarks); any object with the
 * methods of {@link Host} will do (a WebSocket bridge, for instance).
 *
 * ```js
 * import { loadLokiMQ } from './lokimq.mjs';
 * import { NetHost } from './net-host.mjs';
 *
 * const lmq = await loadLokiMQ(fs.readFileSync('lokimq_wasm.wasm'));
 * const server = lmq.createNode({ host: new NetHost() });          // a fresh key
 * server.addCategory('rpc', 'none');
 * server.addRequestCommand('rpc', 'echo', (msg) => msg.data);     // reply = the request's parts
 * server.start();
 * const address = await server.listen('tcp://127.0.0.1:0');       // curve://127.0.0.1:PORT/KEY
 *
 * const client = lmq.createNode({ host: new NetHost() });
 * client.start();
 * const conn = await client.connect(address);
 * const reply = await client.request(conn, 'rpc.echo', ['hi']);    // [Uint8Array "hi"]
 * ```
 *
 * Everything runs on the caller's thread: handlers run inline, the moment their request is
 * decoded, and a handler that blocks stalls its node. Errors are {@link LokiMQError}s with a
 * `code`: request outcomes (`TIMEOUT`, `FORBIDDEN`, `FORBIDDEN_SN`, `NOT_A_SERVICE_NODE`,
 * `UNKNOWNCOMMAND`, `NO_REPLY_TAG`) and misuse (`BAD_ARGUMENT`, `BAD_KEY`, `BAD_ADDRESS`,
 * `UNKNOWN_STREAM`, `STREAM_CLOSED`, `NOT_STARTED`, `ALREADY_STARTED`, `REGISTRY`,
 * `SEND_FAILED`, `REFUSED`, `NO_SUCH_REPLY`, `UNEXPECTED`, `CONNECT_FAILED`, `STOPPED`,
 * `BUSY`, `INTERNAL`).
 *
 * @module lokimq
 */

import { Reader, Writer, fromHex, text, toHex, utf8 } from './wire.mjs';

/** The ABI version this glue speaks (`lmq_version()` of the module). */
export const ABI_VERSION = 1;

const OP = {
  CREATE: 1, FREE: 2, SET_LOG_LEVEL: 3,
  SET_OPTION: 10, ADD_CATEGORY: 11, ADD_COMMAND: 12, ADD_ALIAS: 13, START: 14,
  LISTEN: 20, CONNECT: 21, DISCONNECT: 22, REQUEST: 23, SEND: 24, REPLY: 25,
  FORGET_REPLY: 26, SHUTDOWN: 27,
  ACCEPT: 30, RECEIVED: 31, CONNECTED: 32, CLOSED: 33, LISTEN_FAILED: 34,
  AUTH_DECISION: 35, JOB_FINISHED: 36, TIMEOUT: 37,
  POLL: 40, INFO: 41, BENCH: 90,
};

const OUT = {
  IDLE: 0, TRANSMIT: 1, CONNECT: 2, CLOSE: 3, LISTEN: 4, AUTH: 5, COMMAND: 6, REPLY: 7,
  CONNECTED: 8, CONNECT_FAILED: 9, STOPPED: 10,
};

const LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'];
/** What each request outcome means (OxenMQ's words). */
const REQUEST_ERRORS = {
  TIMEOUT: 'no reply in time',
  FORBIDDEN: 'the remote refused: our auth level is too low for this command',
  FORBIDDEN_SN: 'the remote refused: the command is for service nodes',
  NOT_A_SERVICE_NODE: 'the remote refused: it is not a service node',
  UNKNOWNCOMMAND: 'the remote has no such command',
  NO_REPLY_TAG: 'the remote says the request had no reply tag',
};
const AUTH_LEVELS = ['denied', 'none', 'basic', 'admin'];
/** Largest argument buffer sent in one call (the module refuses more than 256 MiB). */
const MAX_CALL = 64 * 1024 * 1024;

/** An error from lokimq: `code` says which kind (see the module docs). */
export class LokiMQError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message ? `${code}: ${message}` : code);
    this.name = 'LokiMQError';
    /** The error's code, e.g. `FORBIDDEN` or `STREAM_CLOSED`. */
    this.code = code;
  }
}

/**
 * Loads and instantiates the module.
 *
 * @param {BufferSource | WebAssembly.Module | Response | Promise<Response>} source the
 *   `.wasm` bytes, a compiled module, or a `fetch()` response for it
 * @param {object} [options]
 * @param {(buf: Uint8Array) => void} [options.random] fills a buffer with cryptographically
 *   secure random bytes; default `crypto.getRandomValues`
 * @param {(level: string, line: string) => void} [options.log] receives log lines: the
 *   module's (up to `logLevel`) and the glue's own warnings, e.g. a handler that threw
 *   (default: `error` and `warn` lines to `console.error`)
 * @param {string} [options.logLevel] most verbose level passed on: off, error (default), warn,
 *   info, debug, trace
 * @returns {Promise<LokiMQ>}
 */
export async function loadLokiMQ(source, options = {}) {
  const random = options.random ?? defaultRandom(await webCrypto());
  const log = options.log ?? ((level, line) => {
    if (level === 'error' || level === 'warn') console.error(`lokimq ${level}: ${line}`);
  });
  const lmq = new LokiMQ(random, log);
  const imports = { lokimq: lmq.imports() };
  source = await source;
  let instance;
  if (source instanceof WebAssembly.Module) {
    instance = await WebAssembly.instantiate(source, imports);
  } else if (typeof Response !== 'undefined' && source instanceof Response) {
    instance = (await WebAssembly.instantiate(await source.arrayBuffer(), imports)).instance;
  } else {
    instance = (await WebAssembly.instantiate(source, imports)).instance;
  }
  lmq.attach(instance);
  lmq.setLogLevel(options.logLevel ?? 'error');
  return lmq;
}

/** Web Crypto: the global one, or Node.js's before version 19 made it global. */
async function webCrypto() {
  if (typeof globalThis.crypto?.getRandomValues === 'function') return globalThis.crypto;
  try {
    return (await import('node:crypto')).webcrypto;
  } catch {
    return undefined;
  }
}

/**
 * `crypto.getRandomValues`, drawn 4 KiB at a time: each call costs microseconds, and the node
 * asks for a few bytes per request (its reply tag). Every byte handed out is fresh from the
 * CSPRNG and used once.
 */
function defaultRandom(c) {
  if (!c || typeof c.getRandomValues !== 'function') {
    throw new LokiMQError('BAD_ARGUMENT',
      'no crypto.getRandomValues in this environment: pass options.random');
  }
  const pool = new Uint8Array(4096);
  let used = pool.length;
  return (buf) => {
    if (buf.length > pool.length) {
      c.getRandomValues(buf);
      return;
    }
    if (used + buf.length > pool.length) {
      c.getRandomValues(pool);
      used = 0;
    }
    buf.set(pool.subarray(used, used + buf.length));
    // Spent bytes do not linger.
    pool.fill(0, used, used + buf.length);
    used += buf.length;
  };
}

/** An instantiated module: creates nodes. Get one with {@link loadLokiMQ}. */
export class LokiMQ {
  #random;
  #log;
  #exports = null;
  #u8 = null;
  #view = null;
  #writer = new Writer();
  #panic = null;

  /** @hideconstructor */
  constructor(random, log) {
    this.#random = random;
    this.#log = log;
  }

  /** Passes a line of the JS glue's own to the log function (internal). */
  hostLog(level, line) {
    try {
      this.#log(level, line);
    } catch {
      // As for the module's lines.
    }
  }

  /** The module's imports (internal). */
  imports() {
    return {
      random_fill: (ptr, len) => {
        // Must not throw: an exception would unwind through the module.
        this.#random(this.#mem().subarray(ptr, ptr + len));
      },
      log: (level, ptr, len) => {
        try {
          this.#log(LOG_LEVELS[level] ?? 'trace', text(this.#mem().subarray(ptr, ptr + len)));
        } catch {
          // A logger that throws loses its line, nothing else.
        }
      },
      panicked: (ptr, len) => {
        this.#panic = text(this.#mem().subarray(ptr, ptr + len));
      },
    };
  }

  /** Binds to the instance (internal). */
  attach(instance) {
    const e = instance.exports;
    for (const name of ['memory', 'lmq_version', 'lmq_input', 'lmq_call', 'lmq_output']) {
      if (!(name in e)) throw new LokiMQError('BAD_ARGUMENT', `not a lokimq-wasm module: no ${name}`);
    }
    const version = e.lmq_version();
    if (version !== ABI_VERSION) {
      throw new LokiMQError('BAD_ARGUMENT',
        `module speaks ABI ${version}, this glue ${ABI_VERSION}: use the lokimq.mjs built with it`);
    }
    this.#exports = e;
  }

  #mem() {
    const buf = this.#exports.memory.buffer;
    if (this.#u8 === null || this.#u8.buffer !== buf) {
      // The memory grew (its old buffer is detached): new views.
      this.#u8 = new Uint8Array(buf);
      this.#view = new DataView(buf);
    }
    return this.#u8;
  }

  /** A fresh argument writer (internal). */
  args() {
    return this.#writer.reset();
  }

  /**
   * Runs one operation (internal). Returns a Reader over the result; throws LokiMQError.
   * @returns {Reader}
   */
  call(op, node, nowUs, writer) {
    const e = this.#exports;
    const len = writer ? writer.len : 0;
    if (len > MAX_CALL) throw new LokiMQError('BAD_ARGUMENT', `arguments of ${len} bytes are too large`);
    let n;
    try {
      if (len > 0) {
        const ptr = e.lmq_input(len);
        if (ptr === 0) this.#busy();
        this.#mem().set(writer.view8, ptr);
      }
      n = e.lmq_call(op, node, nowUs, len);
    } catch (err) {
      if (err instanceof LokiMQError) throw err;
      // A trap: a bug in the module (reported through `panicked` when it was a panic).
      this.#panic ??= String(err);
      throw new LokiMQError('INTERNAL',
        `the module trapped (${this.#panic}); it cannot be used again: reload it`);
    }
    if (n < 0) this.#busy();
    const ptr = e.lmq_output();
    const r = new Reader(this.#mem(), this.#view, ptr, ptr + n);
    if (r.u8() !== 0) throw new LokiMQError(r.str(), r.str());
    return r;
  }

  #busy() {
    if (this.#panic !== null) {
      throw new LokiMQError('INTERNAL',
        `the module trapped earlier (${this.#panic}); it cannot be used again: reload it`);
    }
    throw new LokiMQError('BUSY', 'the module is already running a call (re-entrant use from an import?)');
  }

  /**
   * Sets how much of the module's logging reaches `options.log`.
   * @param {'off'|'error'|'warn'|'info'|'debug'|'trace'} level
   */
  setLogLevel(level) {
    const n = LOG_LEVELS.indexOf(level);
    if (n < 0) throw new LokiMQError('BAD_ARGUMENT', `unknown log level ${level}`);
    this.call(OP.SET_LOG_LEVEL, 0, 0, this.args().u8(n));
  }

  /**
   * Creates a node (not yet started: register commands, then {@link Node#start}).
   *
   * @param {object} [options]
   * @param {Uint8Array | string} [options.secretKey] the x25519 secret key, 32 bytes or 64 hex
   *   digits; without it a fresh key is generated from the host's randomness
   * @param {Host} [options.host] moves the node's bytes; required before `listen`/`connect`
   * @param {() => number} [options.clock] monotonic milliseconds (default `performance.now()`)
   * @param {object} [options.config] tunables: `requestTimeoutMs`, `connectTimeoutMs`,
   *   `handshakeTimeoutMs`, `heartbeatIntervalMs` (0 disables), `heartbeatTimeoutMs`,
   *   `reconnectIntervalMs`, `reconnectIntervalMaxMs`, `closeLingerMs`, `maxMessageSize`
   *   (bytes, -1 unlimited), `maxIncomingConnections`, `ephemeralRoutingId` (boolean)
   * @returns {Node}
   */
  createNode(options = {}) {
    let secret = options.secretKey ?? new Uint8Array(0);
    if (typeof secret === 'string') {
      const bytes = fromHex(secret);
      if (bytes === null) throw new LokiMQError('BAD_KEY', 'a secret key string must be 64 hex digits');
      secret = bytes;
    }
    if (!(secret instanceof Uint8Array)) {
      throw new LokiMQError('BAD_KEY', 'secretKey must be a Uint8Array of 32 bytes or 64 hex digits');
    }
    const r = this.call(OP.CREATE, 0, 0, this.args().bytes(secret));
    const handle = r.u32();
    const pubkey = r.bytes();
    const node = new Node(this, handle, pubkey, options);
    try {
      for (const [name, value] of Object.entries(options.config ?? {})) {
        const v = typeof value === 'boolean' ? Number(value) : value;
        if (typeof v !== 'number') {
          throw new LokiMQError('BAD_ARGUMENT', `option ${name} must be a number`);
        }
        this.call(OP.SET_OPTION, handle, 0, this.args().str(name).f64(v));
      }
    } catch (err) {
      this.call(OP.FREE, handle, 0, null);
      throw err;
    }
    return node;
  }

  /**
   * Times the in-module benchmark loop (only in a module built with the `bench` feature):
   * `kind` 0 is CURVE handshakes, 1 is round trips of `payload` bytes.
   * @returns {number} iterations done
   */
  bench(kind, count, payload = 100) {
    return this.call(OP.BENCH, 0, 0, this.args().u8(kind).u32(count).u32(payload)).u32();
  }
}

/**
 * What a node needs from its transport. Every method is called synchronously while the node
 * drains its outputs; report events back through the node's host-side methods
 * ({@link Node#accept}, {@link Node#receive}, {@link Node#connected}, {@link Node#connectFailed},
 * {@link Node#closed}).
 *
 * @typedef {object} Host
 * @property {(node: Node) => void} [attach] called once, when the node is created
 * @property {(listener: number, address: Address) => Promise<string>} listen bind; resolve
 *   with the bound `tcp://HOST:PORT` (or `ipc://PATH`), reject if binding failed. Accept each
 *   connection with `node.accept(listener, remoteIp, register)`.
 * @property {(listener: number) => void} [unlisten] stop accepting (at shutdown)
 * @property {(stream: number, address: Address) => void} connect start dialing; then
 *   `node.connected(stream)` or `node.connectFailed(stream, reason)`
 * @property {(stream: number, bytes: Uint8Array) => void} write queue bytes, in order
 * @property {(stream: number, lingerMs: number) => void} close flush for at most `lingerMs`,
 *   then close; report nothing more for this stream
 */

/**
 * An address to listen on or dial: `address` is `tcp://HOST:PORT` or `ipc://PATH`.
 * @typedef {object} Address
 * @property {string} address
 * @property {string} host empty for ipc
 * @property {number} port 0 for ipc
 * @property {string} path empty for tcp
 */

/**
 * A connection to a peer: what {@link Node#connect} resolves with, and `msg.conn` in a handler.
 * Pass it back to `request`, `send` and `disconnect`.
 */
export class Connection {
  #key;
  #hex;

  /** @hideconstructor */
  constructor(token, pubkey) {
    /** @type {Uint8Array} opaque, for the module */
    this.token = token;
    this.#key = pubkey;
  }

  /** @type {string | null} the peer's CURVE key in hex, if the connection is CURVE */
  get pubkey() {
    if (this.#hex === undefined) this.#hex = this.#key.length ? toHex(this.#key) : null;
    return this.#hex;
  }

  /** @type {'sn'|'outgoing'|'incoming'} how the node reaches the peer */
  get kind() {
    return ['sn', 'outgoing', 'incoming'][this.token[0]] ?? 'unknown';
  }
}

/**
 * An incoming command, as its handler sees it.
 * @typedef {object} Message
 * @property {Uint8Array[]} data the data parts (without the reply tag)
 * @property {Connection} conn who sent it: reply with `node.send(msg.conn, …)` or `msg.reply`
 * @property {string | null} pubkey the sender's CURVE key in hex
 * @property {'none'|'basic'|'admin'} auth the sender's auth level
 * @property {string} remote the sender's address as the host reported it
 * @property {boolean} isRequest whether it expects a reply
 * @property {(parts: Part[]) => void} reply answers the request (once; later is fine)
 */

/** @typedef {Uint8Array | string} Part a message part: bytes, or text sent as UTF-8 */

function toParts(parts, what) {
  if (parts === undefined || parts === null) return [];
  if (!Array.isArray(parts)) throw new LokiMQError('BAD_ARGUMENT', `${what} must be an array of parts`);
  return parts.map((p, i) => {
    if (p instanceof Uint8Array) return p;
    if (typeof p === 'string') return utf8(p);
    if (ArrayBuffer.isView(p)) return new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    if (p instanceof ArrayBuffer) return new Uint8Array(p);
    throw new LokiMQError('BAD_ARGUMENT', `${what}[${i}] must be a Uint8Array or a string`);
  });
}

function checkId(v, what) {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new LokiMQError('BAD_ARGUMENT', `${what} must be a whole number ≥ 0, not ${v}`);
  }
  return v;
}

function checkMs(v, what) {
  if (v === undefined || v === null) return -1;
  if (typeof v !== 'number' || !(v >= 0)) {
    throw new LokiMQError('BAD_ARGUMENT', `${what} must be milliseconds ≥ 0`);
  }
  return v;
}

function checkConn(conn) {
  if (!(conn instanceof Connection)) {
    throw new LokiMQError('BAD_ARGUMENT',
      'not a Connection (use what connect() resolved with, or msg.conn)');
  }
  return conn.token;
}

/** A LokiMQ node. Create with {@link LokiMQ#createNode}. */
export class Node {
  #lmq;
  #handle;
  #host;
  #clock;
  #epoch;
  #handlers = [];
  #listeners = new Map();
  #connects = new Map();
  #requests = new Map();
  #allow = new Map();
  #stopped = null;
  #stop = null;
  #pumping = false;
  #timer = null;
  #timerAt = -1;
  #freed = false;
  #started = false;

  /** @hideconstructor */
  constructor(lmq, handle, pubkey, options) {
    this.#lmq = lmq;
    this.#handle = handle;
    /** @type {Uint8Array} this node's public key */
    this.pubkeyBytes = pubkey;
    /** @type {string} this node's public key, hex */
    this.pubkey = toHex(pubkey);
    this.#clock = options.clock ?? (() => performance.now());
    this.#epoch = this.#clock();
    this.#host = options.host ?? null;
    this.#stopped = new Promise((resolve) => { this.#stop = resolve; });
    this.#host?.attach?.(this);
  }

  /** Microseconds on the node's clock. */
  #now() {
    const us = Math.floor((this.#clock() - this.#epoch) * 1000);
    return us > 0 ? us : 0;
  }

  #call(op, writer) {
    if (this.#freed) throw new LokiMQError('UNKNOWN_NODE', 'this node was freed');
    return this.#lmq.call(op, this.#handle, this.#now(), writer);
  }

  #args() {
    return this.#lmq.args();
  }

  #needHost() {
    if (this.#host === null) throw new LokiMQError('BAD_ARGUMENT', 'this node has no host: pass options.host');
  }

  // ---------------------------------------------------------------------------------------
  // building

  /**
   * Adds a command category.
   * @param {string} name 1–50 bytes, no `.`
   * @param {'none'|'basic'|'admin'} [access='none'] the auth level a caller's connection needs
   */
  addCategory(name, access = 'none') {
    this.#call(OP.ADD_CATEGORY, this.#args().str(String(name)).str(String(access)));
    return this;
  }

  /**
   * Adds a request command `category.name`. The handler gets the {@link Message} and either
   * returns the reply parts (an array), returns a Promise of them, or returns nothing and calls
   * `msg.reply(parts)` later. A handler that throws, or whose promise rejects, sends no reply
   * (the caller times out), as in OxenMQ.
   * @param {string} category
   * @param {string} name
   * @param {(msg: Message) => (Part[] | Promise<Part[]> | void)} handler
   */
  addRequestCommand(category, name, handler) {
    return this.#addCommand(category, name, handler, true);
  }

  /**
   * Adds a plain command `category.name` (no reply; the handler's return value is ignored).
   * @param {string} category
   * @param {string} name
   * @param {(msg: Message) => void} handler
   */
  addCommand(category, name, handler) {
    return this.#addCommand(category, name, handler, false);
  }

  #addCommand(category, name, handler, request) {
    if (typeof handler !== 'function') throw new LokiMQError('BAD_ARGUMENT', 'a handler must be a function');
    const r = this.#call(OP.ADD_COMMAND,
      this.#args().str(String(category)).str(String(name)).bool(request));
    this.#handlers[r.u32()] = { handler, request };
    return this;
  }

  /** Makes `from` an alias of the command `to` (`category.name`). */
  addAlias(from, to) {
    this.#call(OP.ADD_ALIAS, this.#args().str(String(from)).str(String(to)));
    return this;
  }

  /** Freezes the registry and starts the node. */
  start() {
    this.#call(OP.START, null);
    this.#started = true;
    this.#pump();
    return this;
  }

  // ---------------------------------------------------------------------------------------
  // application calls

  /**
   * Listens for connections.
   * @param {string} address `tcp://HOST:PORT` (port 0 picks one) or `ipc://PATH`
   * @param {object} [options]
   * @param {boolean} [options.curve=true] CURVE (encrypted, authenticated) or plain text
   * @param {(remote: string, pubkey: string | null, serviceNode: boolean) =>
   *   ('denied'|'none'|'basic'|'admin'|Promise<string>)} [options.allow] the auth level of each
   *   connection once its handshake is verified; default `none` for everyone
   * @returns {Promise<string>} the bound address; for CURVE `curve://HOST:PORT/PUBKEY`, ready
   *   for clients
   */
  listen(address, options = {}) {
    return this.#promise(() => {
      this.#needHost();
      const curve = options.curve ?? true;
      const allow = options.allow ?? (() => 'none');
      if (typeof allow !== 'function') throw new LokiMQError('BAD_ARGUMENT', 'allow must be a function');
      const r = this.#call(OP.LISTEN, this.#args().str(String(address)).bool(Boolean(curve)));
      const listener = r.u32();
      this.#allow.set(listener, allow);
      return new Promise((resolve, reject) => {
        this.#listeners.set(listener, { resolve, reject, curve });
      });
    });
  }

  /**
   * Connects to a remote node and waits for its `HELLO`.
   * @param {string} address `curve://HOST:PORT/PUBKEY` (CURVE) or `tcp://HOST:PORT` (plain)
   * @param {object} [options]
   * @param {number} [options.timeoutMs] how long to wait (default 10 s, `connectTimeoutMs`)
   * @param {'none'|'basic'|'admin'} [options.auth] the level commands the remote sends us on
   *   this connection get (default none)
   * @returns {Promise<Connection>} rejects with `CONNECT_FAILED`
   */
  connect(address, options = {}) {
    return this.#promise(() => {
      this.#needHost();
      const w = this.#args().str(String(address)).f64(checkMs(options.timeoutMs, 'timeoutMs'))
        .str(options.auth ?? '');
      const r = this.#call(OP.CONNECT, w);
      r.bytes(); // the connection's token: the Connection comes with HELLO
      const id = r.f64();
      return new Promise((resolve, reject) => this.#connects.set(id, { resolve, reject }));
    });
  }

  /**
   * Closes an outgoing connection after flushing for at most `lingerMs` (default 0).
   * @param {Connection} conn
   */
  disconnect(conn, lingerMs = 0) {
    this.#call(OP.DISCONNECT, this.#args().bytes(checkConn(conn)).f64(checkMs(lingerMs, 'lingerMs')));
    this.#pump();
  }

  /**
   * Sends a request and resolves with the reply's parts.
   * @param {Connection} conn
   * @param {string} command `category.name`
   * @param {Part[]} [parts]
   * @param {object} [options]
   * @param {number} [options.timeoutMs] default 15 s (`requestTimeoutMs`)
   * @returns {Promise<Uint8Array[]>} rejects with `TIMEOUT`, `FORBIDDEN`, `UNKNOWNCOMMAND`, …,
   *   or `SEND_FAILED` if it could not be sent at all
   */
  request(conn, command, parts = [], options = {}) {
    return this.#promise(() => {
      const w = this.#args().bytes(checkConn(conn)).str(String(command))
        .parts(toParts(parts, 'parts')).f64(checkMs(options.timeoutMs, 'timeoutMs'));
      const id = this.#call(OP.REQUEST, w).f64();
      return new Promise((resolve, reject) => this.#requests.set(id, { resolve, reject }));
    });
  }

  /**
   * Sends a plain command (no reply).
   * @param {Connection} conn
   * @param {string} command
   * @param {Part[]} [parts]
   */
  send(conn, command, parts = []) {
    const w = this.#args().bytes(checkConn(conn)).str(String(command)).parts(toParts(parts, 'parts'));
    this.#call(OP.SEND, w);
    this.#pump();
  }

  /**
   * Shuts down: pending requests are dropped (their promises reject with `STOPPED`), then
   * every connection is closed and listeners stop.
   * @returns {Promise<void>} resolves when the node has stopped
   */
  shutdown() {
    if (!this.#started || this.#freed) {
      this.#stop();
      return this.#stopped;
    }
    this.#call(OP.SHUTDOWN, null);
    const err = new LokiMQError('STOPPED', 'the node shut down');
    for (const p of this.#requests.values()) p.reject(err);
    for (const p of this.#connects.values()) p.reject(err);
    this.#requests.clear();
    this.#connects.clear();
    for (const listener of this.#listeners.keys()) this.#host?.unlisten?.(listener);
    this.#pump();
    return this.#stopped;
  }

  /** Frees the node's memory in the module; the node cannot be used afterwards. */
  free() {
    if (this.#freed) return;
    this.#disarm();
    this.#call(OP.FREE, null);
    this.#freed = true;
  }

  /** For hosts: passes a line to the module's log function (`options.log` of loadLokiMQ). */
  hostLog(level, line) {
    this.#log(level, String(line));
  }

  /** Counters: streams, pendingRequests, pendingReplies, runningJobs, links. */
  info() {
    const r = this.#call(OP.INFO, null);
    return {
      streams: r.u32(), pendingRequests: r.u32(), pendingReplies: r.u32(),
      runningJobs: r.u32(), links: r.u32(),
    };
  }

  // ---------------------------------------------------------------------------------------
  // host side

  /**
   * A connection arrived on `listener`.
   * @param {number} listener
   * @param {string} remote the peer's IP (what allow functions see)
   * @param {(stream: number) => void} register called with the new stream's id before the
   *   node writes its greeting: map your socket to it there
   * @returns {number} the stream id
   */
  accept(listener, remote, register) {
    if (!Number.isInteger(listener) || listener < 0 || listener > 0xffff) {
      throw new LokiMQError('BAD_ARGUMENT', `listener must be a listener id, not ${listener}`);
    }
    const r = this.#call(OP.ACCEPT, this.#args().u32(listener).str(String(remote)));
    const stream = r.f64();
    register?.(stream);
    this.#pump();
    return stream;
  }

  /**
   * Bytes arrived on a stream (any chunking).
   * @param {number} stream
   * @param {Uint8Array} bytes
   */
  receive(stream, bytes) {
    if (!(bytes instanceof Uint8Array)) throw new LokiMQError('BAD_ARGUMENT', 'bytes must be a Uint8Array');
    this.#call(OP.RECEIVED, this.#args().f64(checkId(stream, 'stream')).bytes(bytes));
    this.#pump();
  }

  /** A dial the node asked for succeeded. */
  connected(stream) {
    this.#call(OP.CONNECTED, this.#args().f64(checkId(stream, 'stream')));
    this.#pump();
  }

  /**
   * A dial failed (the node retries with back-off while its connect timeout lasts).
   * @param {number} stream
   * @param {string} reason
   * @param {boolean} [invalidAddress] the address can never work here: do not retry
   */
  connectFailed(stream, reason, invalidAddress = false) {
    const w = this.#args().f64(checkId(stream, 'stream')).u8(invalidAddress ? 3 : 2).str(String(reason));
    this.#call(OP.CLOSED, w);
    this.#pump();
  }

  /**
   * A stream ended: `reason` undefined for a clean end (EOF), else why it failed. Reporting the
   * end of a stream the node closed already is harmless.
   */
  closed(stream, reason) {
    const w = this.#args().f64(checkId(stream, 'stream'))
      .u8(reason === undefined ? 0 : 1).str(reason === undefined ? '' : String(reason));
    this.#call(OP.CLOSED, w);
    this.#pump();
  }

  // ---------------------------------------------------------------------------------------
  // the drain

  #promise(start) {
    try {
      const p = start();
      this.#pump();
      return p;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Acts on every output until the node is idle, then arms the timer. */
  #pump() {
    // A handler's calls land here while the outer drain runs; it picks up their outputs.
    if (this.#pumping || this.#freed) return;
    this.#pumping = true;
    try {
      for (;;) {
        const r = this.#call(OP.POLL, null);
        const kind = r.u8();
        if (kind === OUT.IDLE) {
          this.#arm(r.f64());
          return;
        }
        this.#act(kind, r);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #arm(atUs) {
    // A timer that fires early only costs a spurious timeout, so one already armed for an
    // earlier instant stays: most drains move the deadline later (a new request's), and
    // re-arming each time would cost a clearTimeout and a setTimeout per message.
    if (this.#timer !== null && (atUs < 0 || this.#timerAt <= atUs)) return;
    this.#disarm();
    if (atUs < 0) return;
    this.#timerAt = atUs;
    const delayMs = Math.max(0, (atUs - this.#now()) / 1000);
    // setTimeout takes at most 2^31-1 ms; an earlier wake-up is harmless.
    this.#timer = setTimeout(() => this.#onTimer(), Math.min(Math.ceil(delayMs), 0x7fffffff));
  }

  #disarm() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = -1;
  }

  #onTimer() {
    this.#timer = null;
    this.#timerAt = -1;
    this.#later(() => this.#call(OP.TIMEOUT, null));
  }

  #act(kind, r) {
    switch (kind) {
      case OUT.TRANSMIT: {
        const stream = r.f64();
        const bytes = r.bytes();
        try {
          this.#host.write(stream, bytes);
        } catch (err) {
          this.#log('warn', `writing to stream ${stream} failed: ${err?.message ?? err}`);
          this.#call(OP.CLOSED, this.#args().f64(stream).u8(1).str(String(err?.message ?? err)));
        }
        break;
      }
      case OUT.CONNECT: {
        const stream = r.f64();
        const address = readAddress(r);
        try {
          this.#host.connect(stream, address);
        } catch (err) {
          this.#call(OP.CLOSED, this.#args().f64(stream).u8(3).str(String(err?.message ?? err)));
        }
        break;
      }
      case OUT.CLOSE: {
        const stream = r.f64();
        const linger = r.f64();
        try {
          this.#host.close(stream, linger);
        } catch (err) {
          this.#log('warn', `closing stream ${stream} failed: ${err?.message ?? err}`);
        }
        break;
      }
      case OUT.LISTEN: {
        const listener = r.u32();
        const address = readAddress(r);
        this.#bind(listener, address);
        break;
      }
      case OUT.AUTH:
        this.#auth(r);
        break;
      case OUT.COMMAND:
        this.#command(r);
        break;
      case OUT.REPLY: {
        const id = r.f64();
        const p = this.#requests.get(id);
        this.#requests.delete(id);
        if (r.u8() === 0) {
          const parts = r.parts();
          p?.resolve(parts);
        } else {
          const word = r.str();
          p?.reject(new LokiMQError(word, REQUEST_ERRORS[word] ?? 'the request failed'));
        }
        break;
      }
      case OUT.CONNECTED: {
        const id = r.f64();
        const conn = new Connection(r.bytes(), r.bytes());
        this.#connects.get(id)?.resolve(conn);
        this.#connects.delete(id);
        break;
      }
      case OUT.CONNECT_FAILED: {
        const id = r.f64();
        r.bytes();
        const reason = r.str();
        this.#connects.get(id)?.reject(new LokiMQError('CONNECT_FAILED', reason));
        this.#connects.delete(id);
        break;
      }
      case OUT.STOPPED:
        this.#disarm();
        this.#stop();
        break;
      default:
        throw new LokiMQError('INTERNAL', `unknown output kind ${kind}: glue and module differ`);
    }
  }

  #bind(listener, address) {
    const pending = this.#listeners.get(listener);
    let bound;
    try {
      bound = Promise.resolve(this.#host.listen(listener, address));
    } catch (err) {
      bound = Promise.reject(err);
    }
    bound.then((addr) => {
      pending?.resolve(pending.curve ? withKey(addr, this.pubkey) : addr);
    }, (err) => {
      const reason = String(err?.message ?? err);
      try {
        this.#call(OP.LISTEN_FAILED, this.#args().u32(listener).str(reason));
        this.#pump();
      } catch {
        // The node is gone; the rejection below says it all.
      }
      pending?.reject(new LokiMQError('LISTEN_FAILED', reason));
    });
  }

  #auth(r) {
    const stream = r.f64();
    const listener = r.u32();
    const remote = r.str();
    const key = r.bytes();
    const sn = r.bool();
    const allow = this.#allow.get(listener) ?? (() => 'none');
    const decide = (level) => {
      if (!AUTH_LEVELS.includes(level)) {
        this.#log('warn', `allow function returned ${level}; denying`);
        level = 'denied';
      }
      this.#call(OP.AUTH_DECISION, this.#args().f64(stream).str(level));
    };
    let level;
    try {
      level = allow(remote, key.length ? toHex(key) : null, sn);
    } catch (err) {
      this.#log('warn', `allow function threw (${err}); denying`);
      level = 'denied';
    }
    if (level && typeof level.then === 'function') {
      // Decided later: the connection waits (at most the handshake timeout).
      level.then((l) => this.#later(() => decide(l)), () => this.#later(() => decide('denied')));
    } else {
      decide(level);
    }
  }

  /**
   * Runs `f` from a timer or a settled promise, then drains. Nobody up the stack could catch an
   * error there, so it is logged instead (a stale stream, a node shut down meanwhile).
   */
  #later(f) {
    if (this.#freed) return;
    try {
      f();
      this.#pump();
    } catch (err) {
      this.#log(err instanceof LokiMQError && err.code !== 'INTERNAL' ? 'warn' : 'error',
        String(err?.stack ?? err));
    }
  }

  #log(level, line) {
    this.#lmq.hostLog(level, line);
  }

  #command(r) {
    const worker = r.u32();
    const command = r.u32();
    const replyHandle = r.f64();
    const conn = new Connection(r.bytes(), r.bytes());
    const auth = r.str();
    const remote = r.str();
    const data = r.parts();
    const entry = this.#handlers[command];
    let replied = false;
    const reply = (parts) => {
      if (replyHandle === 0) throw new LokiMQError('BAD_ARGUMENT', 'this message is not a request');
      if (replied) throw new LokiMQError('NO_SUCH_REPLY', 'this request was answered already');
      const w = this.#args().f64(replyHandle).parts(toParts(parts, 'reply'));
      replied = true;
      this.#call(OP.REPLY, w);
      this.#pump();
    };
    const msg = {
      data,
      conn,
      get pubkey() { return conn.pubkey; },
      auth,
      remote,
      isRequest: replyHandle !== 0,
      reply,
    };
    let result;
    try {
      result = entry?.handler(msg);
    } catch (err) {
      this.#log('error', `handler threw: ${err?.stack ?? err}`);
      result = undefined;
      if (replyHandle !== 0 && !replied) {
        replied = true;
        this.#call(OP.FORGET_REPLY, this.#args().f64(replyHandle));
      }
    }
    if (replyHandle !== 0 && !replied) {
      if (Array.isArray(result)) {
        try {
          reply(result);
        } catch (err) {
          this.#log('warn', `could not send the reply: ${err.message}`);
        }
      } else if (result && typeof result.then === 'function') {
        result.then(
          (parts) => this.#later(() => { if (!replied) reply(parts ?? []); }),
          (err) => this.#later(() => {
            this.#log('error', `handler rejected: ${err?.stack ?? err}`);
            if (!replied) {
              replied = true;
              this.#call(OP.FORGET_REPLY, this.#args().f64(replyHandle));
            }
          }),
        );
      }
      // Otherwise the handler replies later with msg.reply.
    }
    this.#call(OP.JOB_FINISHED, this.#args().u32(worker));
  }
}

function readAddress(r) {
  return { address: r.str(), host: r.str(), port: r.u32(), path: r.str() };
}

/** `curve://HOST:PORT/KEY` from a bound `tcp://HOST:PORT`. */
function withKey(bound, pubkeyHex) {
  if (bound.startsWith('tcp://')) return `curve://${bound.slice(6)}/${pubkeyHex}`;
  if (bound.startsWith('ipc://')) return `ipc+curve://${bound.slice(6)}/${pubkeyHex}`;
  return bound;
}
