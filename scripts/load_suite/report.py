"""Markdown tables of one or more --json files of the load suite, one column per run (this is
how the tables of docs/reliability.md are made).

    python3 scripts/load_suite/report.py run1.json [run2.json ...]
"""

import json
import sys


def g(d, *path):
    """d[path...] or None when any step is missing."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def ms(v, digits=1):
    return "—" if v is None else f"{v:.{digits}f}"


def rows(runs):
    """(section, figure, [cell per run]) for every figure the tables show."""
    out = []

    def add(section, name, fn):
        cells = []
        for r in runs:
            try:
                cells.append(fn(r["results"]))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                cells.append("—")
        out.append((section, name, cells))

    s1_counts = sorted({int(n) for r in runs for n in g(r, "results", "s1_many_clients") or {}})
    for n in s1_counts:
        sec = f"1. {n} CURVE clients"
        k = str(n)

        def s1(res, k=k):
            return res["s1_many_clients"][k]
        add(sec, "handshakes completed", lambda x: f"{s1(x)['handshakes_ok']}/{s1(x)['clients']}"
            + (f" ({s1(x)['failures']})" if s1(x)["failures"] else ""))
        add(sec, "wall time for all handshakes", lambda x: f"{s1(x)['handshake_wall_s']:.2f} s")
        add(sec, "TCP connect p50 / p99 (ms)", lambda x: f"{ms(s1(x)['tcp_connect']['p50_ms'], 0)}"
            f" / {ms(s1(x)['tcp_connect']['p99_ms'], 0)}")
        add(sec, "TCP connects >= 1 s; listen backlog",
            lambda x: f"{s1(x)['tcp_connects_over_1s']}; {s1(x)['listen_backlog']}")
        add(sec, "kernel ListenOverflows during the burst",
            lambda x: f"{s1(x)['listen_overflows']}")
        add(sec, "greeting + CURVE handshake p50 / p99 (ms)",
            lambda x: f"{ms(s1(x)['curve_handshake']['p50_ms'], 0)} / "
                      f"{ms(s1(x)['curve_handshake']['p99_ms'], 0)}")
        add(sec, "connect + handshake p50 / p99 / max (ms)",
            lambda x: f"{ms(s1(x)['connect_plus_handshake']['p50_ms'], 0)} / "
                      f"{ms(s1(x)['connect_plus_handshake']['p99_ms'], 0)} / "
                      f"{ms(s1(x)['connect_plus_handshake']['max_ms'], 0)}")
        add(sec, "server CPU (per handshake) / client CPU during the handshakes",
            lambda x: f"{s1(x)['server_cpu_s_handshakes']:.2f} s "
                      f"({s1(x)['server_cpu_s_handshakes'] / s1(x)['handshakes_ok'] * 1e6:.0f} µs)"
                      f" / {s1(x)['client_cpu_s_handshakes']:.2f} s")
        add(sec, "server RSS idle -> with N idle CURVE connections",
            lambda x: f"{s1(x)['rss_kb_base'] / 1024:.1f} -> "
                      f"{s1(x)['rss_kb_after_handshakes'] / 1024:.1f} MiB")
        add(sec, "**RSS per idle CURVE connection**",
            lambda x: f"**{s1(x)['bytes_per_idle_connection']} B**")
        add(sec, "public.echo answered (15 s bound)",
            lambda x: f"{s1(x)['echo_ok']}/{s1(x)['handshakes_ok']}")
        add(sec, "echo latency p50 / p99 (ms), all sent at once",
            lambda x: f"{ms(s1(x)['echo_latency']['p50_ms'], 0)} / "
                      f"{ms(s1(x)['echo_latency']['p99_ms'], 0)}")
        add(sec, "RSS per connection after one echo each",
            lambda x: f"{s1(x)['bytes_per_connection_after_echo']} B")
        add(sec, "server stderr lines", lambda x: f"{s1(x)['logs']['lines']}")

    sec = "2. half-open / slow"
    for kind in ("silent", "half-greeting", "greeting-only", "drip-1B/s"):
        add(sec, f"{kind}: closed by the server, after (s)",
            lambda x, kind=kind: (lambda d: f"{d['closed']}/{d['closed'] + d['open_at_bound']}, "
                                            f"{d['min_s']:.2f}-{d['max_s']:.2f}")(
                x["s2_half_open"]["kinds"][kind]))
    add(sec, "well-behaved client answered",
        lambda x: f"{x['s2_half_open']['good_client']['answered']}/"
                  f"{x['s2_half_open']['good_client']['asked']}")
    add(sec, "its latency p50 / p99 / max (ms)",
        lambda x: (lambda b: f"{ms(b['p50_ms'], 2)} / {ms(b['p99_ms'])} / {ms(b['max_ms'])}")(
            x["s2_half_open"]["good_client"]))

    for var in ("echo-64KiB", "echo-100B", "slow.sleep-100ms"):
        sec = f"3. flood: {var}"

        def s3(x, var=var):
            return x["s3_flood"][var]
        add(sec, "flooder A: requests sent / s", lambda x: f"{s3(x)['flooder']['rate_per_s']:.0f}")
        add(sec, "**B answered / asked** (late: answered after 1 s)",
            lambda x: f"**{s3(x)['client_b']['answered']}/{s3(x)['client_b']['asked']}** "
                      f"({s3(x)['client_b']['late']} late)")
        add(sec, "B latency p50 / p99 / max (ms)",
            lambda x: (lambda b: f"{ms(b['p50_ms'])} / {ms(b['p99_ms'])} / {ms(b['max_ms'])}")(
                s3(x)["client_b"]))
        add(sec, "server CPU; peak RSS",
            lambda x: f"{s3(x)['server_cpu_s']:.1f} s in {s3(x)['wall_s']:.0f} s; "
                      f"{s3(x)['rss_kb_peak'] / 1024:.0f} MiB")
        add(sec, "server stderr lines; worst text per peer per s",
            lambda x: f"{s3(x)['logs']['lines']}; {s3(x)['logs']['worst_reason_per_peer_per_s']:.0f}")

    sec = "4. 1 MiB streaming"
    add(sec, "baseline (no A): worst p99 of B, C, D (ms)",
        lambda x: ms(x["s4_streaming"]["baseline"]["worst_p99_ms"]))
    add(sec, "A: MiB/s; its round trip p50 / p99 (ms)",
        lambda x: (lambda a: f"{a['mib_per_s']:.0f}; {ms(a['p50_ms'])} / {ms(a['p99_ms'])}")(
            x["s4_streaming"]["streaming"]["streamer"]))
    add(sec, "B, C, D answered",
        lambda x: ", ".join(f"{c['answered']}/{c['asked']}"
                            for c in x["s4_streaming"]["streaming"]["clients"]))
    add(sec, "B, C, D p50 (ms)", lambda x: ", ".join(
        ms(c["p50_ms"]) for c in x["s4_streaming"]["streaming"]["clients"]))
    add(sec, "**B, C, D p99 (ms)**", lambda x: "**" + ", ".join(
        ms(c["p99_ms"]) for c in x["s4_streaming"]["streaming"]["clients"]) + "**")
    add(sec, "B, C, D max (ms)", lambda x: ", ".join(
        ms(c["max_ms"], 0) for c in x["s4_streaming"]["streaming"]["clients"]))

    sec = "5. never reads"

    def s5(x):
        return x["s5_never_reads"]
    add(sec, "requests sent by A", lambda x: f"{s5(x)['flooder']['sent']}")
    add(sec, "server RSS start / peak (MiB)",
        lambda x: f"{s5(x)['rss_kb_start'] / 1024:.1f} / {s5(x)['rss_kb_peak'] / 1024:.0f}")
    add(sec, "peak RSS per 10 s (MiB)", lambda x: " ".join(
        f"{max(r for w, r in s5(x)['rss_peak_kb_per_5s'] if lo <= w < lo + 10) / 1024:.0f}"
        for lo in range(0, int(max(w for w, _ in s5(x)['rss_peak_kb_per_5s'])) + 1, 10)))
    add(sec, "levels off (last third vs middle third)",
        lambda x: f"{'yes' if s5(x)['levels_off'] else 'NO'} "
                  f"({s5(x)['rss_peak_growth_kb_last_vs_middle_third'] / 1024:+.0f} MiB)")
    add(sec, "**B answered / asked**",
        lambda x: f"**{s5(x)['client_b']['answered']}/{s5(x)['client_b']['asked']}**")
    add(sec, "B latency p50 / p99 / max (ms)",
        lambda x: (lambda b: f"{ms(b['p50_ms'])} / {ms(b['p99_ms'])} / {ms(b['max_ms'])}")(
            s5(x)["client_b"]))
    add(sec, "server stderr lines; worst text per peer per s",
        lambda x: f"{s5(x)['logs']['lines']}; {s5(x)['logs']['worst_reason_per_peer_per_s']:.0f}")

    sec = "6. shutdown"
    for key, name in (("no_peers", "no peers"), ("libzmq_idle", "idle libzmq peers"),
                      ("raw_idle", "**idle raw peers (never read, never close)**"),
                      ("reconnecting", "reconnecting libzmq clients under load")):
        add(sec, f"{name}: SIGTERM -> exit (ms); stderr lines",
            lambda x, key=key: (lambda d: f"{ms(d['exit_s'] * 1e3)}; {d['logs']['lines']}")(
                x["s6_shutdown"][key]))
    return out


def render(runs, names):
    lines = ["| scenario | figure | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    last = None
    for sec, name, cells in rows(runs):
        lines.append(f"| {sec if sec != last else ''} | {name} | " + " | ".join(cells) + " |")
        last = sec
    lines.append("")
    lines.append("| target | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    keys = []
    for r in runs:
        keys += [(t["target"], t["text"]) for t in r["targets"] if (t["target"], t["text"]) not in keys
                 and t["target"] not in [k for k, _ in keys]]
    for key, text in keys:
        cells = []
        for r in runs:
            t = next((t for t in r["targets"] if t["target"] == key), None)
            if t is None or t["measured"] is None:
                cells.append("—")
                continue
            v = t["measured"]
            val = f"{v:.4g} {t['unit']}" if v != float("inf") else "∞"
            cells.append(f"{val} ({t['where']}): {'met' if t['met'] else '**not met**'}")
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    names = []
    for i, r in enumerate(runs):
        m = r["machine"]
        names.append(f"run {i + 1} ({m['commit']}, load {m['load_start'].split()[0]}"
                     f"→{m['load_end'].split()[0]})")
    print(render(runs, names))


if __name__ == "__main__":
    main(sys.argv[1:])
