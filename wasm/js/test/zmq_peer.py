#!/usr/bin/env python3
"""A libzmq peer (pyzmq) that speaks OxenMQ's protocol, for the wasm interop test.

    zmq_peer.py server           ROUTER, CURVE server on 127.0.0.1 (a random port); prints
                                 {"port": P, "pubkey": HEX}, answers until `peer.quit` or
                                 PEER_SECONDS (default 30) pass, then prints a summary
    zmq_peer.py client ADDR KEY  DEALER, CURVE client of tcp://ADDR with server key KEY (hex);
                                 runs the request script below and prints {"ok": true, ...}

The server answers like an OxenMQ node: HI -> HELLO; `rpc.echo` replies its data;
`rpc.whoami` replies [client pubkey hex (from libzmq's ZAP User-Id), routing id hex];
`admin.*` is FORBIDDEN ([FORBIDDEN, REPLY, tag]); anything else UNKNOWNCOMMAND
([UNKNOWNCOMMAND, command]).

The client checks what an OxenMQ server must answer: HELLO to HI, echo, whoami (`[our pubkey,
basic]`), FORBIDDEN for `admin.secret`, UNKNOWNCOMMAND for `rpc.nope`, a deferred reply, ten
pipelined requests, and a plain command. Exit status 0 on success, 1 with a message otherwise.
Every receive is bounded (5 s), and so is the whole run.
"""

import json
import os
import sys
import time

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

RECV_MS = 5000


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}), flush=True)
    sys.exit(1)


def recv(sock, what):
    if not sock.poll(RECV_MS):
        fail(f"no answer within {RECV_MS} ms: {what}")
    return sock.recv_multipart()


def server(ctx):
    deadline = time.monotonic() + float(os.environ.get("PEER_SECONDS", "30"))
    auth = ThreadAuthenticator(ctx)
    auth.start()
    # Any client key; the ZAP reply's User-Id is the client's key (z85), as OxenMQ's is.
    auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
    pub, sec = zmq.curve_keypair()
    sock = ctx.socket(zmq.ROUTER)
    sock.curve_server = True
    sock.curve_publickey = pub
    sock.curve_secretkey = sec
    sock.linger = 0
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    print(json.dumps({"port": port, "pubkey": z85.decode(pub).hex()}), flush=True)
    handled = {}
    try:
        while time.monotonic() < deadline:
            if not sock.poll(100):
                continue
            frames = sock.recv_multipart(copy=False)
            ident = frames[0].bytes
            cmd = frames[1].bytes
            rest = [f.bytes for f in frames[2:]]
            name = cmd.decode(errors="replace")
            handled[name] = handled.get(name, 0) + 1
            if cmd == b"HI":
                sock.send_multipart([ident, b"HELLO"])
            elif cmd in (b"rpc.echo", b"peer.quit"):
                sock.send_multipart([ident, b"REPLY", *rest])
                if cmd == b"peer.quit":
                    break
            elif cmd == b"rpc.whoami":
                user = frames[1].get("User-Id")
                key = z85.decode(user.encode()).hex() if user else ""
                sock.send_multipart([ident, b"REPLY", rest[0], key.encode(), ident.hex().encode()])
            elif cmd.startswith(b"admin."):
                sock.send_multipart([ident, b"FORBIDDEN", b"REPLY", rest[0]])
            else:
                sock.send_multipart([ident, b"UNKNOWNCOMMAND", cmd])
    finally:
        sock.close()
        auth.stop()
    print(json.dumps({"handled": handled}), flush=True)


def client(ctx, addr, key_hex):
    pub, sec = zmq.curve_keypair()
    raw_pub = z85.decode(pub)
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = z85.encode(bytes.fromhex(key_hex))
    sock.curve_publickey = pub
    sock.curve_secretkey = sec
    # OxenMQ's routing id: "L" + our public key.
    sock.routing_id = b"L" + raw_pub
    sock.linger = 1000
    sock.connect(f"tcp://{addr}")
    steps = 0

    def expect(request, want, what):
        nonlocal steps
        sock.send_multipart(request)
        got = recv(sock, what)
        if got != want:
            fail(f"{what}: sent {request!r}, expected {want!r}, got {got!r}")
        steps += 1

    expect([b"HI"], [b"HELLO"], "HI")
    expect([b"rpc.echo", b"t1", b"a", b"\x00\xff"], [b"REPLY", b"t1", b"a", b"\x00\xff"], "echo")
    expect([b"rpc.whoami", b"t2"], [b"REPLY", b"t2", raw_pub.hex().encode(), b"basic"], "whoami")
    expect([b"admin.secret", b"t3"], [b"FORBIDDEN", b"REPLY", b"t3"], "forbidden")
    expect([b"rpc.nope", b"t4"], [b"UNKNOWNCOMMAND", b"rpc.nope"], "unknown command")
    expect([b"rpc.later", b"t5", b"x"], [b"REPLY", b"t5", b"later", b"x"], "deferred reply")
    tags = [f"p{i}".encode() for i in range(10)]
    for tag in tags:
        sock.send_multipart([b"rpc.echo", tag, tag + b"!"])
    replies = {}
    for _ in tags:
        got = recv(sock, "pipelined echo")
        if len(got) != 3 or got[0] != b"REPLY":
            fail(f"pipelined echo: got {got!r}")
        replies[got[1]] = got[2]
    if replies != {tag: tag + b"!" for tag in tags}:
        fail(f"pipelined echo: got {replies!r}")
    steps += 1
    sock.send_multipart([b"rpc.note", b"from-libzmq"])
    # The plain command has no answer; a last request makes sure it was read first.
    expect([b"rpc.echo", b"t6"], [b"REPLY", b"t6"], "final echo")
    sock.close()
    print(json.dumps({"ok": True, "pubkey": raw_pub.hex(), "steps": steps}), flush=True)


def main():
    ctx = zmq.Context()
    try:
        if sys.argv[1:2] == ["server"]:
            server(ctx)
        elif sys.argv[1:2] == ["client"] and len(sys.argv) == 4:
            client(ctx, sys.argv[2], sys.argv[3])
        else:
            fail("usage: zmq_peer.py server | client HOST:PORT SERVER_KEY_HEX")
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
