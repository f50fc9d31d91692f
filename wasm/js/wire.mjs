/**
 * The byte format of lokimq-wasm's calls, mirrored from `wasm/src/wire.rs`.
 *
 * WebAssembly functions take numbers only, so a call's arguments are written as bytes into the
 * module's input buffer and its result is read back from the output buffer: u8, u32 and f64
 * little-endian, ids as f64, bytes and strings with a u32 length, parts as a u32 count of bytes.
 * This module is internal to `lokimq.mjs`.
 *
 * @module wire
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Builds an argument buffer. */
export class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }

  /** Empties the writer for the next call. */
  reset() {
    this.len = 0;
    return this;
  }

  #room(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** One byte. */
  u8(v) {
    this.#room(1);
    this.buf[this.len++] = v;
    return this;
  }

  /** A boolean byte (0 or 1). */
  bool(v) {
    return this.u8(v ? 1 : 0);
  }

  /** A little-endian u32. */
  u32(v) {
    this.#room(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
    return this;
  }

  /** A little-endian f64 (also ids: whole numbers up to 2^53). */
  f64(v) {
    this.#room(8);
    this.view.setFloat64(this.len, v, true);
    this.len += 8;
    return this;
  }

  /** Length-prefixed bytes (a Uint8Array). */
  bytes(v) {
    this.u32(v.length);
    this.#room(v.length);
    this.buf.set(v, this.len);
    this.len += v.length;
    return this;
  }

  /** Length-prefixed UTF-8. */
  str(s) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.#room(4 + s.length * 3);
    const { written } = encoder.encodeInto(s, this.buf.subarray(this.len + 4));
    this.view.setUint32(this.len, written, true);
    this.len += 4 + written;
    return this;
  }

  /** A list of Uint8Arrays. */
  parts(list) {
    this.u32(list.length);
    for (const p of list) this.bytes(p);
    return this;
  }

  /** The bytes written so far (a view, valid until the next write). */
  get view8() {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads a result from the module's memory. Byte strings are copied out. */
export class Reader {
  /**
   * @param {Uint8Array} buf the whole memory (or any buffer)
   * @param {DataView} view a view of the same buffer
   * @param {number} start where the result starts in `buf`
   * @param {number} end where it ends
   */
  constructor(buf, view, start = 0, end = buf.length) {
    this.buf = buf;
    this.view = view;
    this.pos = start;
    this.end = end;
  }

  #need(n) {
    if (this.pos + n > this.end) {
      throw new Error(`lokimq-wasm: truncated result (needed ${n} bytes at ${this.pos})`);
    }
  }

  /** One byte. */
  u8() {
    this.#need(1);
    return this.buf[this.pos++];
  }

  /** A boolean byte. */
  bool() {
    return this.u8() !== 0;
  }

  /** A little-endian u32. */
  u32() {
    this.#need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A little-endian f64. */
  f64() {
    this.#need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Bytes, copied out of the module's memory (which the next call may overwrite). */
  bytes() {
    const n = this.u32();
    this.#need(n);
    const v = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Length-prefixed UTF-8 (invalid UTF-8 throws: the module only writes valid text). */
  str() {
    const n = this.u32();
    this.#need(n);
    const v = decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }

  /** A list of byte strings, copied out. */
  parts() {
    const n = this.u32();
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.bytes();
    return out;
  }
}

/** UTF-8 bytes of a string. */
export function utf8(s) {
  return encoder.encode(s);
}

/** A string from UTF-8 bytes (lenient: invalid sequences become U+FFFD). */
export function text(bytes) {
  return new TextDecoder().decode(bytes);
}

/** Lower-case hex of bytes. */
export function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Bytes from hex; null if `s` is not hex of even length. */
export function fromHex(s) {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(i * 2, 2), 16);
  return out;
}
