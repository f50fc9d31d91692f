"""A minimal asyncio ZMTP 3.1 client (NULL and CURVE, DEALER socket type), for the load suite.

Why not pyzmq here: the mass-connection and abuse scenarios need thousands of connections in
one process with the handshake phases timed separately (TCP connect, then greeting + CURVE
handshake), and connections that misbehave on purpose (half a greeting, one byte per second).
With raw sockets every connection costs one file descriptor and the timing is exact.

The bytes are those of docs/protocol.md sections 4-6 (libzmq 4.3 as a DEALER):

* greeting: FF 00*8 7F, version 3.1, mechanism padded to 20 bytes, as-server 0, 31 zeros;
* frames: flags (MORE 01, LONG 02, COMMAND 04), a 1- or 8-byte size, the body;
* CURVE (RFC 26): HELLO, WELCOME, INITIATE (with the vouch), READY, then every frame is a
  MESSAGE data frame ``07 'MESSAGE' nonce Box[flags || payload]``.

The cryptography is libsodium's crypto_box through PyNaCl (boxes are tag-first, as on the wire).
"""

import asyncio
import os
import struct
import time

from nacl import bindings as sodium

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"


def greeting(mechanism: bytes) -> bytes:
    """The 64-byte ZMTP 3.1 greeting of a client (as-server 0)."""
    return SIGNATURE + b"\x03\x01" + mechanism.ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def metadata(props) -> bytes:
    """ZMTP metadata: name length (1 byte), name, value length (u32 BE), value."""
    out = b""
    for name, value in props:
        out += bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return out


# What libzmq's DEALER announces: its type and its (empty) routing id.
DEALER_METADATA = metadata([(b"Socket-Type", b"DEALER"), (b"Identity", b"")])


def frame(body: bytes, flags: int = 0) -> bytes:
    """One ZMTP frame; the long (8-byte) size form iff the body is over 255 bytes."""
    if len(body) > 255:
        return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def nonce8(n: int) -> bytes:
    return struct.pack(">Q", n)


class HandshakeError(Exception):
    pass


class ClientKeys:
    """A client's keys for one CURVE handshake: its permanent pair C (unique per client, since
    the server knows peers by key), its transient pair C', and the precomputed C'-S box key
    (HELLO and WELCOME). Made ahead of time so that a burst of handshakes spends the client's
    CPU only on what depends on the server's reply (two x25519 operations)."""

    def __init__(self, server_key: bytes):
        self.c_pub, self.c_sec = sodium.crypto_box_keypair()
        self.cp_pub, self.cp_sec = sodium.crypto_box_keypair()
        self.k_hello = sodium.crypto_box_beforenm(server_key, self.cp_sec)


async def read_frame(reader: asyncio.StreamReader):
    """(flags, body) of the next frame."""
    head = await reader.readexactly(2)
    flags = head[0]
    if flags & 0x02:
        size = struct.unpack(">Q", head[1:] + await reader.readexactly(7))[0]
    else:
        size = head[1]
    return flags, await reader.readexactly(size)


class Connection:
    """One DEALER connection. ``connect`` opens and handshakes; ``send``/``recv`` carry
    multipart messages (lists of bytes). Timings (seconds, monotonic) are kept for reports."""

    def __init__(self):
        self.reader = None
        self.writer = None
        self.curve = False
        self.key = None        # the CURVE session key (beforenm of S' and C')
        self.send_nonce = 0
        self.t_start = self.t_tcp = self.t_ready = None

    @classmethod
    async def connect(cls, host: str, port: int, server_key: bytes = None, sndbuf: int = None,
                      rcvbuf: int = None, keys: ClientKeys = None):
        """Opens a connection; CURVE if server_key (32 raw bytes) is given, NULL otherwise
        (``keys``: made in advance, else now). Raises HandshakeError, OSError or
        asyncio.IncompleteReadError on failure."""
        self = cls()
        self.t_start = time.monotonic()
        self.reader, self.writer = await asyncio.open_connection(host, port, limit=1 << 22)
        sock = self.writer.get_extra_info("socket")
        import socket as _s
        if sndbuf:
            sock.setsockopt(_s.SOL_SOCKET, _s.SO_SNDBUF, sndbuf)
        if rcvbuf:
            sock.setsockopt(_s.SOL_SOCKET, _s.SO_RCVBUF, rcvbuf)
        self.t_tcp = time.monotonic()
        if server_key is None:
            await self._null()
        else:
            await self._curve(server_key, keys or ClientKeys(server_key))
        self.t_ready = time.monotonic()
        return self

    async def _greet(self, mechanism: bytes):
        self.writer.write(greeting(mechanism))
        theirs = await self.reader.readexactly(64)
        if theirs[0] != 0xFF or theirs[9] != 0x7F or theirs[10] < 3:
            raise HandshakeError(f"bad greeting {theirs[:12].hex()}")
        if theirs[12:32].rstrip(b"\x00") != mechanism:
            raise HandshakeError(f"server mechanism {theirs[12:32]!r}")

    async def _expect_command(self, name: bytes) -> bytes:
        flags, body = await read_frame(self.reader)
        if not flags & 0x04:
            raise HandshakeError(f"expected the {name!r} command, got a data frame")
        if body[:1 + len(name)] == b"\x05ERROR":
            raise HandshakeError(f"server ERROR {body[7:7 + body[6]]!r}")
        if body[0] != len(name) or body[1:1 + len(name)] != name:
            raise HandshakeError(f"expected {name!r}, got {body[:12]!r}")
        return body[1 + len(name):]

    async def _null(self):
        await self._greet(b"NULL")
        self.writer.write(frame(b"\x05READY" + DEALER_METADATA, 0x04))
        await self._expect_command(b"READY")

    async def _curve(self, server_key: bytes, keys: ClientKeys):
        self.curve = True
        c_pub, c_sec, cp_pub, cp_sec = keys.c_pub, keys.c_sec, keys.cp_pub, keys.cp_sec
        await self._greet(b"CURVE")
        # HELLO, nonce 1: Box[64 zeros](C' -> S).
        hello_box = sodium.crypto_box_afternm(b"\x00" * 64, b"CurveZMQHELLO---" + nonce8(1),
                                              keys.k_hello)
        body = b"\x05HELLO\x01\x00" + b"\x00" * 72 + cp_pub + nonce8(1) + hello_box
        self.writer.write(frame(body, 0x04))
        # WELCOME: W (16), Box[S' || cookie](S -> C').
        welcome = await self._expect_command(b"WELCOME")
        plain = sodium.crypto_box_open_afternm(welcome[16:], b"WELCOME-" + welcome[:16],
                                               keys.k_hello)
        sp_pub, cookie = plain[:32], plain[32:128]
        self.key = sodium.crypto_box_beforenm(sp_pub, cp_sec)
        # INITIATE, nonce 2: cookie, Box[C || Vn || vouch || metadata](C' -> S'),
        # vouch = Box[C' || S](C -> S') under VOUCH---Vn.
        vn = os.urandom(16)
        vouch = sodium.crypto_box(cp_pub + server_key, b"VOUCH---" + vn, sp_pub, c_sec)
        box = sodium.crypto_box_afternm(c_pub + vn + vouch + DEALER_METADATA,
                                        b"CurveZMQINITIATE" + nonce8(2), self.key)
        self.writer.write(frame(b"\x08INITIATE" + cookie + nonce8(2) + box, 0x04))
        # READY: nonce, Box[metadata](S' -> C').
        ready = await self._expect_command(b"READY")
        sodium.crypto_box_open_afternm(ready[8:], b"CurveZMQREADY---" + ready[:8], self.key)
        self.send_nonce = 2

    def send(self, parts):
        """Queues one multipart message (a list of bytes); ``drain`` to wait for the socket."""
        out = []
        for i, part in enumerate(parts):
            more = i + 1 < len(parts)
            if self.curve:
                self.send_nonce += 1
                n = nonce8(self.send_nonce)
                box = sodium.crypto_box_afternm(bytes([1 if more else 0]) + part,
                                                b"CurveZMQMESSAGEC" + n, self.key)
                out.append(frame(b"\x07MESSAGE" + n + box))
            else:
                out.append(frame(part, 0x01 if more else 0))
        self.writer.write(b"".join(out))

    async def drain(self):
        await self.writer.drain()

    async def recv(self):
        """The next multipart message (a list of bytes); commands (PING) are answered or
        skipped."""
        parts = []
        while True:
            flags, body = await read_frame(self.reader)
            if self.curve:
                if body[:8] != b"\x07MESSAGE":
                    raise HandshakeError(f"expected MESSAGE, got {body[:10]!r}")
                plain = sodium.crypto_box_open_afternm(body[16:], b"CurveZMQMESSAGES" + body[8:16],
                                                       self.key)
                flags, body = (0x04 if plain[0] & 0x02 else 0) | (plain[0] & 0x01), plain[1:]
            if flags & 0x04:
                if body[:5] == b"\x04PING":
                    self._pong(body[7:7 + 16])
                continue
            parts.append(body)
            if not flags & 0x01:
                return parts

    def _pong(self, context: bytes):
        if self.curve:
            self.send_nonce += 1
            n = nonce8(self.send_nonce)
            box = sodium.crypto_box_afternm(b"\x02\x04PONG" + context,
                                            b"CurveZMQMESSAGEC" + n, self.key)
            self.writer.write(frame(b"\x07MESSAGE" + n + box))
        else:
            self.writer.write(frame(b"\x04PONG" + context, 0x04))

    async def request(self, command: bytes, tag: bytes, *data: bytes):
        """Sends ``[command, tag, data...]`` and waits for ``[REPLY, tag, ...]``; returns the
        reply's data parts."""
        self.send([command, tag, *data])
        await self.drain()
        while True:
            msg = await self.recv()
            if len(msg) >= 2 and msg[0] == b"REPLY" and msg[1] == tag:
                return msg[2:]

    def close(self):
        if self.writer is not None:
            self.writer.close()
