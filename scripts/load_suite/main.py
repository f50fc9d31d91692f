"""Load and abuse suite for the conformance server: runs the scenarios, prints each one's
figures, then a summary against the reliability targets. Started by scripts/load (which builds
the server and installs pyzmq and PyNaCl); see docs/reliability.md.

    python3 scripts/load_suite/main.py --binary PATH [--quick] [--json FILE]
                                       [--only 1,2,3,4,5,6] [--clients 1000,5000]
"""

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

import scenarios

# The targets (docs/reliability.md). Each: key, text, how the figure is judged.
TARGETS = [
    ("flood_answered", "a well-behaved client keeps >= 99% of its requests answered during any "
                       "single-peer flood (scenarios 3 and 5)", ">=", 99.0, "%"),
    ("stream_p99", "other clients' p99 <= 50 ms during 1 MiB streaming (scenario 4)",
     "<=", 50.0, "ms"),
    ("shutdown_idle", "shutdown <= 100 ms with idle peers (scenario 6a, the worse of libzmq "
                      "peers and raw peers)", "<=", 100.0, "ms"),
    ("log_rate", "log output <= 1 line per peer per second per reason, under any scenario",
     "<=", 1.0, "lines/peer/s"),
    ("idle_conn_mem", "memory per idle CURVE connection <= 4 KB (4096 B; scenario 1, largest N)",
     "<=", 4096.0, "B"),
    # Two checks the scenarios call for besides the five targets.
    ("half_open_closed", "check: every half-open or slow connection is closed by the 10 s "
                         "handshake timeout (scenario 2; latest close, 12 s allowed)", "<=", 12.0,
     "s"),
    ("rss_levels_off", "check: server RSS levels off under a peer that never reads (scenario 5; "
                       "peak of the last third minus the middle third's, <= max(4 MiB, 5%))",
     "levels", None, "MiB"),
]


def raise_fd_limit(want=65536):
    """Thousands of sockets need thousands of fds, here and in the server (which inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((want, max(hard, want)), (hard, hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def judge(results):
    """Each target's measured figure (the worst over the scenarios it covers) and verdict."""
    figures = {}
    s3 = results.get("s3_flood", {})
    s5 = results.get("s5_never_reads")
    answered = [(f"3 {k}", v["client_b"]["answered_pct"]) for k, v in s3.items()]
    if s5:
        answered.append(("5", s5["client_b"]["answered_pct"]))
    answered = [(w, v) for w, v in answered if v is not None]
    if answered:
        figures["flood_answered"] = min(answered, key=lambda x: x[1])[::-1]
    s4 = results.get("s4_streaming")
    if s4:
        figures["stream_p99"] = (s4["streaming"]["worst_p99_ms"], "4")
    s6 = results.get("s6_shutdown")
    if s6:
        cands = [(s6[k]["exit_s"], k) for k in ("libzmq_idle", "raw_idle") if k in s6]
        cands = [(1e9 if v is None else v * 1e3, k) for v, k in cands]
        if cands:
            figures["shutdown_idle"] = max(cands)
    logs = []
    for name, res in results.items():
        for path, a in walk_logs(res, name):
            logs.append((a["worst_reason_per_peer_per_s"], path))
    if logs:
        figures["log_rate"] = max(logs)
    s1 = results.get("s1_many_clients")
    if s1:
        biggest = max(s1, key=int)
        v = s1[biggest]["bytes_per_idle_connection"]
        if v is not None:
            figures["idle_conn_mem"] = (v, f"1 N={biggest}")
    s2 = results.get("s2_half_open")
    if s2:
        kinds = s2["kinds"].values()
        if all(k["open_at_bound"] == 0 for k in kinds):
            figures["half_open_closed"] = (max(k.get("max_s", 0) for k in kinds), "2")
        else:
            figures["half_open_closed"] = (float("inf"), "2: some still open at the bound")
    levels = None
    s5 = results.get("s5_never_reads")
    if s5 and s5.get("rss_peak_growth_kb_last_vs_middle_third") is not None:
        figures["rss_levels_off"] = (s5["rss_peak_growth_kb_last_vs_middle_third"] / 1024, "5")
        levels = s5["levels_off"]
    out = []
    for key, text, op, limit, unit in TARGETS:
        if key not in figures:
            out.append({"target": key, "text": text, "measured": None, "where": None,
                        "met": None, "unit": unit, "limit": limit})
            continue
        value, where = figures[key]
        met = (levels if op == "levels" else value >= limit if op == ">=" else value <= limit)
        out.append({"target": key, "text": text, "measured": value, "where": where, "met": met,
                    "unit": unit, "limit": limit})
    return out


def walk_logs(res, path):
    """Every log analysis (dicts with worst_reason_per_peer_per_s) inside a result tree."""
    if isinstance(res, dict):
        if "worst_reason_per_peer_per_s" in res:
            yield path, res
            return
        for k, v in res.items():
            yield from walk_logs(v, f"{path}/{k}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", required=True, help="the conformance_server executable")
    ap.add_argument("--quick", action="store_true", help="small N, short runs (< 2 minutes)")
    ap.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    ap.add_argument("--only", default="1,2,3,4,5,6", help="scenarios to run, e.g. 1,6")
    ap.add_argument("--clients", help="client counts of scenario 1 (default 1000,5000; "
                                      "quick 100,300)")
    args = ap.parse_args()
    only = {int(x) for x in args.only.split(",") if x}
    counts = ([int(x) for x in args.clients.split(",")] if args.clients
              else [100, 300] if args.quick else [1000, 5000])

    def on_signal(signum, _frame):
        scenarios.kill_all()
        sys.stdout.flush()
        os._exit(128 + signum)  # at once: pending client tasks need no tidying
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    nofile = raise_fd_limit()
    machine = {
        "nproc": os.cpu_count(),
        "cpu": sh("lscpu | sed -n 's/^Model name: *//p' | head -1"),
        "kernel": os.uname().release,
        "load_start": loadavg(),
        "commit": sh("git rev-parse --short HEAD"),
        "dirty": bool(sh("git status --porcelain --untracked-files=no")),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nofile": nofile,
        "python": sys.version.split()[0],
    }
    try:
        import zmq
        import nacl
        machine["pyzmq"] = f"{zmq.__version__} (libzmq {zmq.zmq_version()})"
        machine["pynacl"] = nacl.__version__
    except ImportError as e:
        sys.exit(f"load: {e} (scripts/load installs pyzmq and pynacl)")
    print(f"== load suite ({'quick' if args.quick else 'full'}): commit {machine['commit']}"
          f"{' (dirty)' if machine['dirty'] else ''}; {machine['nproc']} CPUs ({machine['cpu']}); "
          f"load average {machine['load_start']}; open-file limit {nofile}", flush=True)

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lokimq-load-") as workdir:
        suite = scenarios.Suite(os.path.abspath(args.binary), workdir, args.quick)
        steps = [(1, lambda: suite.s1_many_clients(counts)), (2, suite.s2_half_open),
                 (3, suite.s3_flood), (4, suite.s4_streaming), (5, suite.s5_never_reads),
                 (6, suite.s6_shutdown)]
        failures = {}
        try:
            for n, step in steps:
                if n in only:
                    try:
                        step()
                    except Exception as e:  # noqa: BLE001 -- one broken scenario, not the run
                        import traceback
                        traceback.print_exc()
                        failures[n] = f"{type(e).__name__}: {e}"
                        print(f"!! scenario {n} failed: {failures[n]}", flush=True)
                        scenarios.kill_all()
        finally:
            scenarios.kill_all()
            suite.loop.close()
    machine["load_end"] = loadavg()
    machine["elapsed_s"] = round(time.monotonic() - t_start, 1)

    verdicts = judge(suite.results)
    print(f"\n== summary: {machine['elapsed_s'] / 60:.1f} min; load average "
          f"{machine['load_start']} at start, {machine['load_end']} at end")
    print("| target | measured (worst) | where | met |")
    print("|---|---|---|---|")
    for v in verdicts:
        meas = "—" if v["measured"] is None else f"{v['measured']:.4g} {v['unit']}"
        met = "—" if v["met"] is None else ("met" if v["met"] else "**not met**")
        print(f"| {v['text']} | {meas} | {v['where'] or '—'} | {met} |")
    if failures:
        print(f"\n!! {len(failures)} scenario(s) failed to run: {failures}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "quick": args.quick, "results": suite.results,
                       "targets": verdicts, "failures": failures}, f, indent=1)
        print(f"\nall figures written to {args.json}")
    # The suite measures; missing a target is a finding, not an error. Broken runs are.
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
