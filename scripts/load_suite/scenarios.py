"""The scenarios. Each starts a fresh conformance server (so RSS, CPU and log counts belong to that
scenario alone), runs its clients for a bounded time, prints its figures and returns them as a
dict (which goes into --json). See docs/reliability.md for what each one shows.

Clients: the raw asyncio ZMTP client of zmtp.py runs inside this process (mass connections,
abusive connections, idle peers that never react); pyzmq roles (roles.py) run as child processes
(well-behaved clients, flooders, streamers, self-reconnecting libzmq peers).
"""

import asyncio
import json
import os
import select
import subprocess
import sys
import time

import zmtp
from server import Sampler, Server, analyze_logs

HERE = os.path.dirname(os.path.abspath(__file__))
# "~1 MiB" messages: under CURVE the 1 MiB frame limit counts the encrypted body, which is the
# payload + 33 bytes, so the largest echo that fits is 1,048,543 bytes; this leaves some room.
STREAM_SIZE = 1_048_000
LIVE = []  # every child process started and not yet reaped (servers and roles)


def kill_all():
    for p in list(LIVE):
        try:
            p.kill()
        except Exception:
            pass
    LIVE.clear()


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def dist_ms(values):
    """p50/p90/p99/max of a list of seconds, in ms."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50_ms": round(pct(values, .5) * 1e3, 2),
            "p90_ms": round(pct(values, .9) * 1e3, 2), "p99_ms": round(pct(values, .99) * 1e3, 2),
            "max_ms": round(max(values) * 1e3, 2)}


def fmt_dist(d):
    if not d.get("n"):
        return "no samples"
    return (f"p50 {d['p50_ms']:.1f} ms, p90 {d['p90_ms']:.1f} ms, p99 {d['p99_ms']:.1f} ms, "
            f"max {d['max_ms']:.1f} ms (n={d['n']})")


def fmt_lat(r):
    if r.get("p50_ms") is None:
        return "no answers"
    return f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms"


def say(msg=""):
    print(msg, flush=True)


def listen_overflows():
    """The kernel's TcpExt ListenOverflows counter (connections dropped because an accept
    queue was full). It counts for the whole network namespace, so other work on the machine
    may add to it; on loopback during scenario 1 it is ours."""
    try:
        with open("/proc/net/netstat") as f:
            rows = [line.split() for line in f if line.startswith("TcpExt:")]
        return int(dict(zip(rows[0][1:], rows[1][1:]))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def listen_backlog(port):
    """The listening socket's backlog as the kernel reports it (ss: Send-Q of a LISTEN socket)."""
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10).stdout.split()
        return int(out[2]) if len(out) > 2 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


class Role:
    """A pyzmq client role in a child process (see roles.py for the READY/go/RESULT protocol)."""

    def __init__(self, name, server, **opts):
        self.name = name
        opts.update(endpoint=server.curve_endpoint(), server_key=server.pubkey.hex())
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "roles.py"), name,
                                      json.dumps(opts)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        LIVE.append(self.proc)

    def _line(self, kind, timeout):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise RuntimeError(f"role {self.name}: no {kind} within {timeout} s")
            line = self.proc.stdout.readline().decode()
            if not line:
                err = self.proc.stderr.read().decode()[-800:]
                raise RuntimeError(f"role {self.name} exited before {kind}: {err}")
            if line.startswith(kind + " "):
                return json.loads(line[len(kind) + 1:])

    def ready(self, timeout=60):
        return self._line("READY", timeout)

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def result(self, timeout):
        try:
            return self._line("RESULT", timeout)
        finally:
            self.reap()

    def reap(self):
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc in LIVE:
            LIVE.remove(self.proc)


class Suite:
    def __init__(self, binary, workdir, quick):
        self.binary, self.workdir, self.quick = binary, workdir, quick
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)  # gather() outside the loop must find this one
        self.results = {}

    # ---- helpers ----------------------------------------------------------------------------
    def server(self):
        s = Server(self.binary, self.workdir).start()
        LIVE.append(s.proc)
        return s

    def done(self, server):
        """Stops a scenario's server (SIGTERM, then SIGKILL after 10 s)."""
        if server.running():
            server.terminate_timed(limit=10)
        server.kill()
        if server.proc in LIVE:
            LIVE.remove(server.proc)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def logs(self, server, t0, t1, peers):
        a = analyze_logs(server.lines_between(t0, t1), peers, t1 - t0)
        say(f"  server stderr: {a['lines']} lines in {a['seconds']:.1f} s "
            f"({a['distinct_reasons']} distinct texts); worst text "
            f"{a['worst_reason_per_peer_per_s']:.2f} lines/peer/s over {peers} peer(s)")
        for r in a["reasons"][:3]:
            say(f"    {r['count']:>7} x  {r['text'][:150]}")
        return a

    # ---- 1. many CURVE clients ----------------------------------------------------------------
    def s1_many_clients(self, counts):
        out = {}
        for n in counts:
            say(f"\n== 1. {n} concurrent CURVE clients: handshake, then one public.echo each")
            out[str(n)] = self._many(n)
        self.results["s1_many_clients"] = out

    def _many(self, n):
        srv = self.server()
        port, key = srv.curve_port, srv.pubkey
        limit = 30 if self.quick else 60    # for all handshakes to finish
        echo_limit = 10 if self.quick else 15  # for every echo reply (a dropped one never comes)
        conns = []
        try:
            # Warm up with one connection (first-use allocations), then take the baseline.
            c = self.run(zmtp.Connection.connect("127.0.0.1", port, key))
            self.run(asyncio.wait_for(c.request(b"public.echo", b"w", b"w"), 10))
            c.close()
            time.sleep(1.0)
            keys = [zmtp.ClientKeys(key) for _ in range(n)]
            backlog = listen_backlog(port)
            rss0, cpu0, fd0 = srv.rss_kb(), srv.cpu_s(), srv.fd_count()
            t0, ccpu0 = time.monotonic(), time.process_time()
            overflows0 = listen_overflows()

            async def one(k):
                try:
                    return await asyncio.wait_for(
                        zmtp.Connection.connect("127.0.0.1", port, key, keys=k), limit), None
                except Exception as e:  # noqa: BLE001 -- every failure is counted by kind
                    return None, type(e).__name__
            with Sampler(srv, 0.5) as smp:
                res = self.run(asyncio.gather(*(one(k) for k in keys)))
                t_hs = time.monotonic() - t0
                ccpu_hs = time.process_time() - ccpu0
                conns = [c for c, _ in res if c]
                n_ok = len(conns)
                errors = {}
                for _, e in res:
                    if e:
                        errors[e] = errors.get(e, 0) + 1
                cpu_hs = srv.cpu_s() - cpu0
                time.sleep(1.0)   # let the server settle (its buffers are freed or kept)
                rss_hs, fd_hs = srv.rss_kb(), srv.fd_count()
                tcp = [c.t_tcp - c.t_start for c in conns]
                hs = [c.t_ready - c.t_tcp for c in conns]
                total = [c.t_ready - c.t_start for c in conns]
                slow_syn = sum(1 for t in tcp if t >= 1.0)
                overflows = (listen_overflows() - overflows0) if overflows0 is not None else None
                say(f"  handshakes: {len(conns)}/{n} done in {t_hs:.2f} s"
                    + (f"; failures {errors}" if errors else ""))
                say(f"  TCP connect:        {fmt_dist(dist_ms(tcp))}")
                say(f"  greeting+CURVE:     {fmt_dist(dist_ms(hs))}")
                say(f"  connect+handshake:  {fmt_dist(dist_ms(total))}")
                per_conn = ((rss_hs - rss0) * 1024 / len(conns)) if conns else None
                say(f"  server RSS {rss0} KiB idle -> {rss_hs} KiB with {len(conns)} idle CURVE "
                    f"connections: {per_conn:.0f} B per connection; fds {fd0} -> {fd_hs}"
                    if conns else "  no connection")
                say(f"  server CPU for the handshakes: {cpu_hs:.2f} s in {t_hs:.2f} s "
                    f"({100 * cpu_hs / t_hs:.0f}% of one core); the client's own CPU "
                    f"{ccpu_hs:.2f} s")
                say(f"  TCP connects that took >= 1 s (as the client saw them): {slow_syn}; "
                    f"listen backlog (ss Send-Q) {backlog}; kernel ListenOverflows "
                    f"+{overflows} (accept queue full: SYN or ACK dropped, the client retries)")

                # Phase 2: one public.echo on every connection, all at once.
                cpu1, t1 = srv.cpu_s(), time.monotonic()

                async def echo(c, i):
                    t = time.monotonic()
                    try:
                        r = await asyncio.wait_for(
                            c.request(b"public.echo", b"%d" % i, b"e" * 100), echo_limit)
                        return time.monotonic() - t if r == [b"e" * 100] else None
                    except Exception:  # noqa: BLE001
                        return None
                lat = self.run(asyncio.gather(*(echo(c, i) for i, c in enumerate(conns))))
                t_echo = time.monotonic() - t1
                cpu_echo = srv.cpu_s() - cpu1
                ok = [x for x in lat if x is not None]
                time.sleep(1.0)
                rss_echo = srv.rss_kb()
                say(f"  public.echo: {len(ok)}/{len(conns)} answered in {t_echo:.2f} s; "
                    f"{fmt_dist(dist_ms(ok))}")
                say(f"  server CPU for the echoes: {cpu_echo:.2f} s; RSS after the echoes "
                    f"{rss_echo} KiB ({(rss_echo - rss0) * 1024 / max(1, len(conns)):.0f} B per "
                    f"connection)")
            for c in conns:
                c.close()
            self.run(asyncio.sleep(0.2))
            conns = []
            time.sleep(2.0)
            rss_closed = srv.rss_kb()
            say(f"  all closed: server RSS {rss_closed} KiB, fds {srv.fd_count()}; "
                f"peak RSS {smp.peak_rss_kb()} KiB")
            t_end = time.monotonic()
            logs = self.logs(srv, t0, t_end, n)
            return {
                "clients": n, "handshakes_ok": n_ok, "failures": errors,
                "handshake_wall_s": round(t_hs, 3), "tcp_connect": dist_ms(tcp),
                "curve_handshake": dist_ms(hs), "connect_plus_handshake": dist_ms(total),
                "echo_ok": len(ok), "echo_latency": dist_ms(ok), "echo_wall_s": round(t_echo, 3),
                "rss_kb_base": rss0, "rss_kb_after_handshakes": rss_hs,
                "rss_kb_after_echo": rss_echo, "rss_kb_after_close": rss_closed,
                "rss_kb_peak": smp.peak_rss_kb(),
                "bytes_per_idle_connection": round(per_conn) if per_conn is not None else None,
                "bytes_per_connection_after_echo": round((rss_echo - rss0) * 1024 / max(1, n_ok)),
                "server_cpu_s_handshakes": round(cpu_hs, 3),
                "client_cpu_s_handshakes": round(ccpu_hs, 3),
                "tcp_connects_over_1s": slow_syn, "listen_backlog": backlog,
                "listen_overflows": overflows, "server_cpu_s_echo": round(cpu_echo, 3),
                "fds_base": fd0, "fds_after_handshakes": fd_hs, "logs": logs,
            }
        finally:
            for c in conns:
                c.close()
            self.done(srv)

    # ---- 2. half-open and slow connections ----------------------------------------------------
    def s2_half_open(self):
        per_kind = 10 if self.quick else 100
        kinds = ["silent", "half-greeting", "greeting-only", "drip-1B/s"]
        bound = 16.0 if self.quick else 25.0
        say(f"\n== 2. half-open and slow connections: {per_kind} each of {', '.join(kinds)}; "
            f"a well-behaved client meanwhile; bound {bound:.0f} s")
        srv = self.server()
        b = None
        try:
            b = Role("echo", srv, seconds=12 if self.quick else 15, size=100, gap_ms=10,
                     timeout=1.0)
            b.ready()
            port = srv.curve_port
            full = zmtp.greeting(b"CURVE")

            async def abuser(kind):
                t0 = time.monotonic()
                try:
                    r, w = await asyncio.open_connection("127.0.0.1", port)
                except OSError as e:
                    return kind, None, f"connect {type(e).__name__}"
                drip = None
                if kind == "half-greeting":
                    w.write(full[:32])
                elif kind == "greeting-only":
                    w.write(full)
                elif kind == "drip-1B/s":
                    async def dripper():
                        for byte in full:
                            w.write(bytes([byte]))
                            await asyncio.sleep(1.0)
                    drip = asyncio.ensure_future(dripper())
                how = "open at the bound"
                closed = None
                try:
                    while True:
                        left = t0 + bound - time.monotonic()
                        if left <= 0:
                            break
                        data = await asyncio.wait_for(r.read(65536), left)
                        if not data:
                            closed, how = time.monotonic() - t0, "EOF"
                            break
                except asyncio.TimeoutError:
                    pass
                except OSError as e:
                    closed, how = time.monotonic() - t0, type(e).__name__
                if drip:
                    drip.cancel()
                w.close()
                return kind, closed, how

            async def all_abusers():
                tasks = [abuser(k) for k in kinds for _ in range(per_kind)]
                return await asyncio.gather(*tasks)
            t0 = time.monotonic()
            b.go()
            with Sampler(srv, 0.5) as smp:
                res = self.run(all_abusers())
            t1 = time.monotonic()
            br = b.result(timeout=30)
            out = {"per_kind": per_kind, "bound_s": bound, "kinds": {}}
            for k in kinds:
                times = [c for kk, c, _ in res if kk == k and c is not None]
                hows = {}
                for kk, _, h in res:
                    if kk == k:
                        hows[h] = hows.get(h, 0) + 1
                d = {"closed": len(times), "open_at_bound": per_kind - len(times), "how": hows}
                if times:
                    d.update(min_s=round(min(times), 2), median_s=round(pct(times, .5), 2),
                             max_s=round(max(times), 2))
                out["kinds"][k] = d
                say(f"  {k:14} closed by the server {len(times)}/{per_kind}"
                    + (f" after {d['min_s']:.2f}-{d['max_s']:.2f} s (median {d['median_s']:.2f})"
                       if times else "") + f"; {hows}")
            fds = [f for _, _, _, f in smp.samples if f is not None]
            out["server_fds_peak"] = max(fds) if fds else None
            out["server_fds_end"] = fds[-1] if fds else None
            out["rss_kb_peak"] = smp.peak_rss_kb()
            out["good_client"] = br
            say(f"  well-behaved client: {br['answered']}/{br['asked']} answered "
                f"({br['answered_pct']}%), {fmt_lat(br)}")
            out["logs"] = self.logs(srv, t0, t1, per_kind * len(kinds))
            self.results["s2_half_open"] = out
        finally:
            if b:
                b.proc.kill()
                b.reap()
            self.done(srv)

    # ---- 3. single-peer flood -----------------------------------------------------------------
    def s3_flood(self):
        secs = 5 if self.quick else 20
        variants = [("echo-64KiB", {"command": "public.echo", "size": 65536, "sndhwm": 16}),
                    ("echo-100B", {"command": "public.echo", "size": 100}),
                    ("slow.sleep-100ms", {"command": "slow.sleep", "data": "100"})]
        out = {}
        for name, opts in variants:
            say(f"\n== 3. flood by one client ({name}, never reads replies) next to a "
                f"well-behaved client, {secs} s")
            out[name] = self._flood(secs, opts, with_stream=False)
        self.results["s3_flood"] = out

    def _flood(self, secs, flood_opts, with_stream):
        srv = self.server()
        roles = []
        try:
            b = Role("echo", srv, seconds=secs, size=100, gap_ms=5, timeout=1.0)
            a = Role("flood", srv, seconds=secs, **flood_opts)
            roles = [a, b]
            for r in roles:
                r.ready()
            cpu0, rss0 = srv.cpu_s(), srv.rss_kb()
            t0 = time.monotonic()
            with Sampler(srv, 0.5) as smp:
                for r in roles:
                    r.go()
                br = b.result(timeout=secs + 30)
                ar = a.result(timeout=secs + 30)
            t1 = time.monotonic()
            cpu = srv.cpu_s() - cpu0
            say(f"  flooder A: {ar['sent']} requests sent (into its libzmq) "
                f"({ar['rate_per_s']}/s, {ar['mib_per_s']} MiB/s)")
            say(f"  client B: {br['answered']}/{br['asked']} answered ({br['answered_pct']}%), "
                f"{fmt_lat(br)}" + ("" if not br["worst_second"] else
                                     f"; worst second: {br['worst_second']['answered']}/"
                                     f"{br['worst_second']['asked']} answered"))
            say(f"  server: CPU {cpu:.1f} s in {t1 - t0:.1f} s, RSS {rss0} -> peak "
                f"{smp.peak_rss_kb()} KiB")
            return {"flooder": ar, "client_b": br, "server_cpu_s": round(cpu, 2),
                    "wall_s": round(t1 - t0, 2), "rss_kb_start": rss0,
                    "rss_kb_peak": smp.peak_rss_kb(),
                    "logs": self.logs(srv, t0, t1, 1)}
        finally:
            for r in roles:
                r.proc.kill()
                r.reap()
            self.done(srv)

    # ---- 4. 1 MiB streaming -------------------------------------------------------------------
    def s4_streaming(self):
        secs = 5 if self.quick else 20
        base_secs = 2 if self.quick else 5
        size = STREAM_SIZE
        say(f"\n== 4. 1 MiB streaming: A streams public.echo of {size} B (4 outstanding); "
            f"B, C, D echo 100 B; {base_secs} s without A, then {secs} s with A")
        srv = self.server()
        roles = []
        try:
            out = {"size": size}
            for phase, seconds in (("baseline", base_secs), ("streaming", secs)):
                roles = [Role("echo", srv, seconds=seconds, size=100, gap_ms=5, timeout=2.0)
                         for _ in range(3)]
                if phase == "streaming":
                    roles.insert(0, Role("stream", srv, seconds=seconds, size=size,
                                         outstanding=4))
                for r in roles:
                    r.ready()
                cpu0, t0 = srv.cpu_s(), time.monotonic()
                with Sampler(srv, 0.5) as smp:
                    for r in roles:
                        r.go()
                    res = [r.result(timeout=seconds + 40) for r in roles]
                t1 = time.monotonic()
                d = {"server_cpu_s": round(srv.cpu_s() - cpu0, 2), "wall_s": round(t1 - t0, 2),
                     "rss_kb_peak": smp.peak_rss_kb()}
                if phase == "streaming":
                    d["streamer"] = res.pop(0)
                    s = d["streamer"]
                    say(f"  A: {s['replies']} replies of {size} B, {s['mib_per_s']} MiB/s, "
                        f"round trip {fmt_lat(s)}")
                d["clients"] = res
                for name, r in zip("BCD", res):
                    say(f"  {phase:9} {name}: {r['answered']}/{r['asked']} answered, {fmt_lat(r)}")
                d["worst_p99_ms"] = max((r["p99_ms"] or 1e9) for r in res)
                d["logs"] = self.logs(srv, t0, t1, 1)
                out[phase] = d
                roles = []
            self.results["s4_streaming"] = out
        finally:
            for r in roles:
                r.proc.kill()
                r.reap()
            self.done(srv)

    # ---- 5. a peer that never reads -----------------------------------------------------------
    def s5_never_reads(self):
        secs = 8 if self.quick else 60
        say(f"\n== 5. a peer that never reads: {STREAM_SIZE} B public.echo requests (as big "
            f"replies), "
            f"{secs} s; server RSS over time; a well-behaved client meanwhile")
        srv = self.server()
        roles = []
        try:
            b = Role("echo", srv, seconds=secs, size=100, gap_ms=5, timeout=1.0)
            a = Role("flood", srv, seconds=secs, command="public.echo", size=STREAM_SIZE,
                     sndhwm=2)
            roles = [a, b]
            for r in roles:
                r.ready()
            rss0, t0 = srv.rss_kb(), time.monotonic()
            with Sampler(srv, 0.5) as smp:
                for r in roles:
                    r.go()
                br = b.result(timeout=secs + 30)
                ar = a.result(timeout=secs + 30)
            t1 = time.monotonic()
            timeline = [(round(t - t0, 1), rss) for t, rss, _, _ in smp.samples]
            # Level-off check: the peak of the last third of the run against the peak of the
            # middle third (single samples swing as the allocator takes and returns buffers).
            n = len(timeline)
            mid = [r for _, r in timeline[n // 3:(2 * n) // 3]]
            last = [r for _, r in timeline[(2 * n) // 3:]]
            rss_end = timeline[-1][1] if n else None
            growth = (max(last) - max(mid)) if mid and last else None
            level = growth is not None and growth <= max(4096, 0.05 * max(last))
            windows = {}
            for t, r in timeline:
                w = int(t // 5) * 5
                windows[w] = max(windows.get(w, 0), r)
            say("  peak RSS per 5 s window (s: MiB): "
                + ", ".join(f"{w}: {r / 1024:.0f}" for w, r in sorted(windows.items())))
            say(f"  RSS {rss0 / 1024:.1f} MiB at start, peak {smp.peak_rss_kb() / 1024:.1f} MiB; "
                f"peak of the last third vs the middle third {growth / 1024:+.1f} MiB -> "
                f"{'levels off' if level else 'STILL GROWING'}")
            say(f"  A: {ar['sent']} requests sent (into its libzmq); B: {br['answered']}/{br['asked']} "
                f"answered ({br['answered_pct']}%), {fmt_lat(br)}")
            self.results["s5_never_reads"] = {
                "flooder": ar, "client_b": br, "rss_kb_start": rss0,
                "rss_kb_peak": smp.peak_rss_kb(), "rss_kb_end": rss_end,
                "rss_peak_growth_kb_last_vs_middle_third": growth, "levels_off": level,
                "rss_peak_kb_per_5s": sorted(windows.items()),
                "rss_timeline": timeline, "logs": self.logs(srv, t0, t1, 1)}
        finally:
            for r in roles:
                r.proc.kill()
                r.reap()
            self.done(srv)

    # ---- 6. shutdown --------------------------------------------------------------------------
    def s6_shutdown(self):
        out = {}
        idle_n = 30 if self.quick else 100
        rec_n = 50 if self.quick else 200
        say("\n== 6a. shutdown with idle peers: SIGTERM to process exit, timed through a pidfd")

        # No peers at all: the floor.
        srv = self.server()
        try:
            time.sleep(0.5)
            out["no_peers"] = self._term(srv, 1, "no peers")
        finally:
            self.done(srv)

        # libzmq peers: they close their end as soon as the server closes its own.
        srv = self.server()
        role = None
        try:
            role = Role("idle", srv, count=idle_n, seconds=60)
            got = role.ready()["connected"]
            time.sleep(0.5)
            out["libzmq_idle"] = self._term(srv, idle_n, f"{got} idle libzmq peers")
            out["libzmq_idle"]["connected"] = got
        finally:
            if role:
                role.stop()
                role.reap()
            self.done(srv)

        # Raw peers that completed the CURVE handshake and then never react (never read, never
        # close): the server waits for an EOF that does not come.
        srv = self.server()
        conns = []
        try:
            async def open_idle():
                return await asyncio.gather(*(zmtp.Connection.connect(
                    "127.0.0.1", srv.curve_port, srv.pubkey) for _ in range(idle_n)),
                    return_exceptions=True)
            conns = [c for c in self.run(open_idle()) if isinstance(c, zmtp.Connection)]
            time.sleep(0.5)
            # The event loop is not running now: these peers really do nothing.
            out["raw_idle"] = self._term(srv, idle_n, f"{len(conns)} idle raw peers that never "
                                                      "read or close")
            out["raw_idle"]["connected"] = len(conns)
        finally:
            for c in conns:
                c.close()
            self.run(asyncio.sleep(0.1))
            self.done(srv)

        say(f"\n== 6b. shutdown under load: {rec_n} libzmq clients with echoes in flight that "
            "reconnect every 10 ms")
        srv = self.server()
        role = None
        try:
            role = Role("reconnect", srv, count=rec_n, seconds=60)
            role.ready()
            role.go()
            time.sleep(1.0 if self.quick else 2.0)
            out["reconnecting"] = self._term(srv, rec_n, f"{rec_n} reconnecting clients")
            role.stop()
            cr = out["reconnecting"]["client"] = role.result(timeout=20)
            say(f"  the clients: {cr['replies_after_go']} echo replies between go and the end "
                f"(2 s or 1 s of load before SIGTERM), {cr['sends']} sends in all")
        finally:
            if role:
                role.proc.kill()
                role.reap()
            self.done(srv)
        self.results["s6_shutdown"] = out

    def _term(self, srv, peers, what):
        secs, t_sig, t_exit = srv.terminate_timed(limit=10)
        # Every stderr line read after the signal (the pipe is at EOF once the process is gone).
        lines = [text for (t, text) in srv.stderr_lines if t >= t_sig]
        a = analyze_logs(lines, peers, secs or 10)
        d = {"exit_s": round(secs, 4) if secs is not None else None, "exit_code": srv.exit_code,
             "logs": a}
        say(f"  {what}: exit {secs * 1e3:.1f} ms after SIGTERM (code {srv.exit_code}); "
            f"{a['lines']} stderr lines meanwhile" if secs is not None else
            f"  {what}: still running 10 s after SIGTERM (killed)")
        for r in a["reasons"][:3]:
            say(f"    {r['count']:>7} x  {r['text'][:150]}")
        return d
