"""Client roles on pyzmq (libzmq 4.3.5 DEALER sockets, CURVE by libsodium), each run in its own
process so that one role's Python work never delays another's timing (no shared GIL).

    python3 roles.py ROLE 'JSON options'

Protocol with the orchestrator (scenarios.py, class Role): the role connects and prepares, prints
``READY <json>`` on stdout, waits for a line on stdin (``go``), runs, and prints ``RESULT <json>``.
Every role bounds its own run time (``seconds``, plus a hard cap) and exits by itself; the
orchestrator kills it if it does not.

Roles:
  echo       a well-behaved client: public.echo of ``size`` bytes, one at a time, ``gap_ms``
             apart, each answered within ``timeout`` s or counted as unanswered.
  flood      sends ``command`` with ``data`` (or ``size`` bytes) as fast as libzmq takes them and
             never reads: RCVHWM 1 and a small SO_RCVBUF, so libzmq stops reading the socket
             (``sndhwm``: libzmq's send queue, default 1000 messages).
  stream     public.echo of ``size`` bytes with ``outstanding`` in flight, reading the replies.
  idle       ``count`` sockets, one echo each to be sure the handshake is done, then idle until
             stdin closes.
  reconnect  ``count`` sockets with a 10 ms reconnect interval, each with one echo in flight
             (re-sent after 200 ms without reply), from ``go`` until stdin closes.
"""

import json
import select
import sys
import time

import zmq
from zmq.utils import z85

HARD_CAP_S = 300  # no role outlives this, whatever it was told


def say(kind, obj):
    sys.stdout.write(f"{kind} {json.dumps(obj)}\n")
    sys.stdout.flush()


def wait_go(limit=120):
    """Blocks until the orchestrator writes a line (or closes stdin); bounded."""
    ready, _, _ = select.select([sys.stdin], [], [], limit)
    if ready:
        sys.stdin.readline()


def dealer(ctx, o, **opts):
    s = ctx.socket(zmq.DEALER)
    pub, sec = zmq.curve_keypair()
    s.curve_publickey, s.curve_secretkey = pub, sec
    s.curve_serverkey = z85.encode(bytes.fromhex(o["server_key"]))
    s.linger = 0
    for k, v in opts.items():
        s.setsockopt(getattr(zmq, k), v)
    s.connect(o["endpoint"])
    return s


def percentiles(values):
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    v = sorted(values)

    def q(p):
        return round(v[min(len(v) - 1, int(p * len(v)))] * 1e3, 3)
    return {"p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99),
            "max_ms": round(v[-1] * 1e3, 3), "mean_ms": round(sum(v) / len(v) * 1e3, 3)}


def first_echo(s, limit=15.0):
    """One echo to be sure the connection is up; seconds it took, or None."""
    t0 = time.monotonic()
    s.send_multipart([b"public.echo", b"hello", b"x"])
    if s.poll(int(limit * 1000)):
        s.recv_multipart()
        return time.monotonic() - t0
    return None


def role_echo(o):
    ctx = zmq.Context()
    s = dealer(ctx, o)
    first = first_echo(s)
    say("READY", {"connected": first is not None})
    wait_go()
    size, gap, timeout = o.get("size", 100), o.get("gap_ms", 5) / 1000, o.get("timeout", 1.0)
    payload = b"b" * size
    lat, asked, late, timeline = [], 0, 0, []
    t_start = time.monotonic()
    end = t_start + min(o["seconds"], HARD_CAP_S)
    n = 0
    while time.monotonic() < end:
        n += 1
        tag = b"%d" % n
        t0 = time.monotonic()
        s.send_multipart([b"public.echo", tag, payload])
        asked += 1
        got = None
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not s.poll(max(1, int(left * 1000))):
                break
            msg = s.recv_multipart()
            if len(msg) >= 3 and msg[0] == b"REPLY" and msg[1] == tag and msg[2] == payload:
                got = time.monotonic() - t0
                break
            late += 1  # a reply to an earlier request that had timed out already
        if got is not None:
            lat.append(got)
        timeline.append((round(t0 - t_start, 3), None if got is None else round(got * 1e3, 3)))
        if gap:
            time.sleep(gap)
    r = {"asked": asked, "answered": len(lat), "late": late,
         "answered_pct": round(100 * len(lat) / asked, 3) if asked else None,
         "timeout_s": timeout, "gap_ms": o.get("gap_ms", 5), "size": size}
    r.update(percentiles(lat))
    # The worst second of the run: the lowest share of answered requests (a starvation window).
    per_s = {}
    for t, l in timeline:
        b = per_s.setdefault(int(t), [0, 0])
        b[0] += 1
        b[1] += l is not None
    worst = min(per_s.items(), key=lambda kv: kv[1][1] / kv[1][0], default=None)
    r["worst_second"] = (None if worst is None else
                         {"second": worst[0], "asked": worst[1][0], "answered": worst[1][1]})
    say("RESULT", r)
    s.close()
    ctx.term()


def role_flood(o):
    ctx = zmq.Context()
    # A small SNDHWM for big messages, so that "sent" is close to what went into the socket
    # rather than what piles up in libzmq's queue.
    s = dealer(ctx, o, RCVHWM=1, RCVBUF=4096, SNDHWM=o.get("sndhwm", 1000))
    say("READY", {"connected": True})
    wait_go()
    cmd = o["command"].encode()
    data = o["data"].encode() if "data" in o else b"f" * o["size"]
    sent = 0
    t_start = time.monotonic()
    end = t_start + min(o["seconds"], HARD_CAP_S)
    while time.monotonic() < end:
        try:
            s.send_multipart([cmd, b"%d" % sent, data], flags=zmq.NOBLOCK, copy=False)
            sent += 1
        except zmq.Again:
            s.poll(50, zmq.POLLOUT)   # HWM reached: the server is not taking more
    wall = time.monotonic() - t_start
    say("RESULT", {"sent": sent, "rate_per_s": round(sent / wall, 1),
                   "mib_per_s": round(sent * len(data) / wall / 2**20, 2), "size": len(data)})
    s.close()
    ctx.term()


def role_stream(o):
    ctx = zmq.Context()
    s = dealer(ctx, o)
    first_echo(s)
    say("READY", {"connected": True})
    wait_go()
    payload = b"s" * o["size"]
    k = o.get("outstanding", 4)
    inflight, lat, bad = {}, [], 0
    n = 0
    t_start = time.monotonic()
    end = t_start + min(o["seconds"], HARD_CAP_S)
    while time.monotonic() < end:
        while len(inflight) < k:
            n += 1
            tag = b"%d" % n
            inflight[tag] = time.monotonic()
            s.send_multipart([b"public.echo", tag, payload], copy=False)
        if s.poll(100):
            msg = s.recv_multipart()
            t = inflight.pop(msg[1], None) if len(msg) >= 2 else None
            if t is None or len(msg) < 3 or len(msg[2]) != len(payload):
                bad += 1
            else:
                lat.append(time.monotonic() - t)
        elif time.monotonic() - min(inflight.values(), default=time.monotonic()) > 10:
            inflight.clear()   # replies lost (the server dropped them): send new ones
    wall = time.monotonic() - t_start
    r = {"replies": len(lat), "bad": bad, "mib_per_s": round(len(lat) * len(payload) / wall / 2**20, 2),
         "size": len(payload), "outstanding": k}
    r.update(percentiles(lat))
    say("RESULT", r)
    s.close()
    ctx.term()


def role_idle(o):
    ctx = zmq.Context()
    ctx.max_sockets = o["count"] + 100
    socks = [dealer(ctx, o) for _ in range(o["count"])]
    for s in socks:
        s.send_multipart([b"public.echo", b"hi", b"x"])
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    answered, deadline = set(), time.monotonic() + 30
    while len(answered) < len(socks) and time.monotonic() < deadline:
        for s, _ in poller.poll(200):
            s.recv_multipart()
            answered.add(s)
    say("READY", {"connected": len(answered)})
    wait_go(limit=min(o.get("seconds", 60), HARD_CAP_S))
    say("RESULT", {"connected": len(answered)})
    for s in socks:
        s.close()
    ctx.term()


def role_reconnect(o):
    ctx = zmq.Context()
    ctx.max_sockets = o["count"] + 100
    socks = [dealer(ctx, o, RECONNECT_IVL=10, RECONNECT_IVL_MAX=0) for _ in range(o["count"])]
    poller = zmq.Poller()
    sent_at = {}
    for s in socks:
        poller.register(s, zmq.POLLIN)
    sends = replies = 0

    def send(s):
        nonlocal sends
        try:
            s.send_multipart([b"public.echo", b"r", b"x" * 100], flags=zmq.NOBLOCK)
            sends += 1
        except zmq.Again:
            pass
        sent_at[s] = time.monotonic()
    for s in socks:
        send(s)
    t_ready = time.monotonic() + 15
    while replies < len(socks) and time.monotonic() < t_ready:
        for s, _ in poller.poll(100):
            s.recv_multipart()
            replies += 1
            send(s)
    say("READY", {"replies": replies})
    wait_go()
    replies_at_go = replies
    end = time.monotonic() + min(o.get("seconds", 60), HARD_CAP_S)
    while time.monotonic() < end:
        if select.select([sys.stdin], [], [], 0)[0]:
            break
        for s, _ in poller.poll(20):
            s.recv_multipart()
            replies += 1
            send(s)
        now = time.monotonic()
        for s in socks:
            if now - sent_at[s] > 0.2:
                send(s)
    say("RESULT", {"sends": sends, "replies": replies, "replies_after_go": replies - replies_at_go})
    for s in socks:
        s.close()
    ctx.term()


ROLES = {"echo": role_echo, "flood": role_flood, "stream": role_stream, "idle": role_idle,
         "reconnect": role_reconnect}

if __name__ == "__main__":
    ROLES[sys.argv[1]](json.loads(sys.argv[2]))
