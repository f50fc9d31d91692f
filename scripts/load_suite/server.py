"""The conformance server as a black box: start it, watch it from /proc, read its stderr, stop it.

Everything here looks at the server from outside: RSS and CPU time come from /proc/PID/status
and /proc/PID/stat, the time to exit after SIGTERM from a pidfd (readable the moment the process
is gone), log lines from its stderr pipe, each stamped with the time it was read.
"""

import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_ports(n):
    """n distinct loopback ports that were free a moment ago (all held at once, so distinct)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Server:
    """One conformance_server process. ``start`` waits for its ``pubkey`` line."""

    START_TIMEOUT = 20

    def __init__(self, binary, workdir):
        self.binary = binary
        self.key_file = os.path.join(workdir, "server.key")
        self.proc = None
        self.pidfd = None
        self.pubkey = None
        self.curve_port = self.plain_port = None
        self.stderr_lines = []          # (monotonic time read, text)
        self._reader = None
        self.exit_code = None

    # ---- life cycle ---------------------------------------------------------------------
    def start(self):
        last_err = ""
        for _ in range(5):
            self.curve_port, self.plain_port = free_ports(2)
            self.proc = subprocess.Popen(
                [self.binary, "--curve", f"tcp://127.0.0.1:{self.curve_port}",
                 "--plain", f"tcp://127.0.0.1:{self.plain_port}", "--key-file", self.key_file],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.pidfd = os.pidfd_open(self.proc.pid)
            self.stderr_lines = []
            self._reader = threading.Thread(target=self._read_stderr, daemon=True)
            self._reader.start()
            ready, _, _ = select.select([self.proc.stdout], [], [], self.START_TIMEOUT)
            line = self.proc.stdout.readline().decode() if ready else ""
            if line.startswith("pubkey "):
                self.pubkey = bytes.fromhex(line.split()[1])
                # Nothing else comes on stdout; close it so the server never blocks on it.
                self.proc.stdout.close()
                return self
            self.kill()
            last_err = "".join(t for _, t in self.stderr_lines)
            if "listen" not in last_err:
                break
        raise RuntimeError(f"conformance_server did not start: {last_err.strip()[:500]}")

    def _read_stderr(self):
        for raw in self.proc.stderr:
            self.stderr_lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate_timed(self, limit=10.0):
        """SIGTERM, then the seconds until the process is gone (pidfd readable), or None if it
        outlived ``limit`` (then it is killed). Returns (seconds or None, t_signal, t_exit)."""
        t0 = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        ready, _, _ = select.select([self.pidfd], [], [], limit)
        t1 = time.monotonic()
        if not ready:
            self.kill()
            return None, t0, t1
        self.exit_code = self.proc.wait()
        self._join_reader()
        return t1 - t0, t0, t1

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.exit_code = self.proc.wait()
        self._join_reader()

    def _join_reader(self):
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    # ---- endpoints ----------------------------------------------------------------------
    def curve_endpoint(self):
        return f"tcp://127.0.0.1:{self.curve_port}"

    # ---- /proc --------------------------------------------------------------------------
    def rss_kb(self):
        """Resident set size in KiB (VmRSS), or None once the process is gone."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def cpu_s(self):
        """User + system CPU seconds of all the server's threads so far."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def fd_count(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return None

    def lines_between(self, t0, t1):
        return [text for (t, text) in list(self.stderr_lines) if t0 <= t <= t1]


class Sampler:
    """Samples the server's RSS, CPU time and open fds every ``interval`` seconds in a thread."""

    def __init__(self, server, interval=0.5):
        self.server, self.interval = server, interval
        self.samples = []  # (t, rss_kb, cpu_s, fds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self):
        while not self._stop.is_set():
            s = self.server
            rss = s.rss_kb()
            if rss is None:
                break
            self.samples.append((time.monotonic(), rss, s.cpu_s(), s.fd_count()))
            self._stop.wait(self.interval)

    def peak_rss_kb(self):
        return max((r for _, r, _, _ in self.samples), default=None)


# ---- log analysis ---------------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+")
HEX = re.compile(r"\b[0-9a-fA-F]{16,}\b")
ADDR = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
NUM = re.compile(r"\d+")


def reason(line):
    """A log line reduced to its message text: no colours, no timestamp, keys, addresses and
    numbers replaced, so lines that differ only in the peer or a count fall together."""
    text = TIMESTAMP.sub("", ANSI.sub("", line)).strip()
    text = HEX.sub("<hex>", text)
    text = ADDR.sub("<addr>", text)
    text = NUM.sub("#", text)
    return text[:200]


def analyze_logs(lines, peers, seconds):
    """Counts lines per reason; the rate target is lines per peer per second per reason.

    Rates are taken over at least one second: "at most one line per peer per second" allows a
    peer one line in any second, so a burst of lines within 3 ms of a shutdown counts as that
    many lines in one second, not as a thousand times that per second."""
    by_reason = {}
    for line in lines:
        r = reason(line)
        by_reason[r] = by_reason.get(r, 0) + 1
    seconds = max(seconds, 1.0)
    peers = max(peers, 1)
    reasons = sorted(by_reason.items(), key=lambda kv: -kv[1])
    worst = reasons[0][1] / peers / seconds if reasons else 0.0
    return {
        "lines": len(lines),
        "seconds": round(seconds, 2),
        "peers": peers,
        "lines_per_peer_per_s": round(len(lines) / peers / seconds, 3),
        "worst_reason_per_peer_per_s": round(worst, 3),
        "reasons": [{"count": c, "per_peer_per_s": round(c / peers / seconds, 3), "text": r}
                    for r, c in reasons[:10]],
        "distinct_reasons": len(reasons),
        "examples": [ANSI.sub("", line) for line in lines[:3]],
    }
