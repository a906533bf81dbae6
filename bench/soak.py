#!/usr/bin/env python3
"""Soak run (issue 17): N messages through one relay process, retention set short so pruning runs
during the run; does throughput, memory and the store stay flat?

  smtp-source (S sessions) -> outguard connector -> static route "*" -> smtp-sink (-c counts)

Every --every seconds it samples: messages counted by the sink, relay RSS (/proc/PID/status),
store size (the SQLite file + WAL), spool files, queue depth (/metrics). At the end it checks
the queue is empty and writes bench/results/soak-DATE.md (summary + the samples as a table) and
soak-DATE.svg (msg/s and RSS over time). Called by bench/soak.sh, which builds the binary.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SMTP_SOURCE = "/usr/sbin/smtp-source"
SMTP_SINK = "/usr/sbin/smtp-sink"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, secs, what):
    end = time.time() + secs
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"timeout waiting for {what} on 127.0.0.1:{port}")


class SinkCounter:
    """smtp-sink -c writes running counters ("... mesg=N") to stdout, '\\r'-separated."""

    def __init__(self, proc):
        self.proc, self.count = proc, 0
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        buf = b""
        while True:
            b = self.proc.stdout.read1(4096)
            if not b:
                return
            buf += b
            parts = re.split(rb"[\r\n]", buf)
            buf = parts[-1]
            for p in parts[:-1]:
                m = re.search(rb"mesg=(\d+)", p)
                if m:
                    self.count = int(m.group(1))


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def store_bytes(data):
    return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data)
               if f.startswith("outguard.db"))


def spool_files(data):
    q = os.path.join(data, "spool", "queue")
    return len(os.listdir(q)) if os.path.isdir(q) else 0


def metric_sum(http, name):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read().decode()
    except OSError:
        return None
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith(name) and not l.startswith("#"))


def svg(samples, path, title):
    """Two lines over time: msg/s (left axis) and RSS MB (right axis)."""
    w, h, pad = 900, 360, 60
    t_max = max(s["t"] for s in samples) or 1
    r_max = max(s["rate"] for s in samples) * 1.1 or 1
    m_max = max(s["rss_mb"] for s in samples) * 1.1 or 1
    x = lambda t: pad + (w - 2 * pad) * t / t_max
    y = lambda v, top: h - pad - (h - 2 * pad) * v / top
    line = lambda key, top: " ".join(f"{x(s['t']):.1f},{y(s[key], top):.1f}" for s in samples)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#1f77b4"/>',
           f'<line x1="{w - pad}" y1="{pad}" x2="{w - pad}" y2="{h - pad}" stroke="#d62728"/>']
    for i in range(5):
        f = i / 4
        out.append(f'<text x="{pad - 5}" y="{y(r_max * f, r_max) + 4:.1f}" text-anchor="end" fill="#1f77b4">{r_max * f:.0f}</text>')
        out.append(f'<text x="{w - pad + 5}" y="{y(m_max * f, m_max) + 4:.1f}" fill="#d62728">{m_max * f:.0f}</text>')
        out.append(f'<text x="{x(t_max * f):.1f}" y="{h - pad + 18}" text-anchor="middle">{t_max * f:.0f}</text>')
    out += [f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">seconds</text>',
            f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle" fill="#1f77b4">delivered msg/s</text>',
            f'<text x="{w - 12}" y="{h / 2}" transform="rotate(90 {w - 12} {h / 2})" text-anchor="middle" fill="#d62728">relay RSS MB</text>',
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{line("rate", r_max)}"/>',
            f'<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="{line("rss_mb", m_max)}"/>',
            "</svg>"]
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=5000, help="message body bytes")
    ap.add_argument("--retention", default="1m", help="trace and messages windows")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--results", required=True, help="directory for soak-DATE.md/.svg")
    ap.add_argument("--command", default="", help="the command line, for the report")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="outguard-soak.")
    os.chmod(work, 0o755)  # smtp-sink drops to the postfix user
    data = os.path.join(work, "data")
    conn, http, sink = free_port(), free_port(), free_port()
    cfg = os.path.join(work, "outguard.toml")
    with open(cfg, "w") as fh:
        fh.write(f"""[server]
hostname = "soak.outguard.test"
data_dir = "{data}"
[listeners]
max_connections_per_ip = 100000
connector = "127.0.0.1:{conn}"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
fbl = "127.0.0.1:0"
http = "127.0.0.1:{http}"
[dns]
resolver = "127.0.0.1:{free_port()}"
[[routes]]
domains = ["*"]
next_hop = "127.0.0.1:{sink}"
[retention]
trace = "{a.retention}"
messages = "{a.retention}"
interval = "10s"
""")
    og = [a.bin, "--config", cfg]
    for args in (["tenant", "add", "soak"], ["domain", "add", "--tenant", "soak", "example.com"],
                 ["connector", "add", "--tenant", "soak", "127.0.0.0/24"]):
        subprocess.run(og + args, check=True, stdout=subprocess.DEVNULL)
    msgfile = os.path.join(work, "message.txt")
    body = ("Soak test line of ordinary text about the quarterly report and the meeting.\n"
            * (a.size // 76 + 1))[: a.size]
    with open(msgfile, "w") as fh:
        fh.write("From: soak@example.com\nTo: rcpt@dest.example\nSubject: soak\n"
                 "Message-ID: <soak@example.com>\n\n" + body)

    sink_cmd = [SMTP_SINK] + (["-u", "postfix"] if os.geteuid() == 0 else []) + \
        ["-c", "-4", f"127.0.0.1:{sink}", "1024"]
    sinkp = subprocess.Popen(sink_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    counter = SinkCounter(sinkp)
    relay = subprocess.Popen(og + ["serve"], stdout=open(os.path.join(work, "relay.out"), "wb"),
                             stderr=open(os.path.join(work, "relay.err"), "wb"),
                             stdin=subprocess.DEVNULL, start_new_session=True)
    samples, ok = [], False
    try:
        wait_port(sink, 10, "smtp-sink")
        wait_port(conn, 120, "outguard")
        src_cmd = [SMTP_SOURCE, "-4", "-s", str(a.sessions), "-m", str(a.messages), "-N",
                   "-F", msgfile, "-f", "soak@example.com", "-t", "rcpt@dest.example",
                   "-M", "loadgen.example.com", f"127.0.0.1:{conn}"]
        t0 = time.time()
        src = subprocess.Popen(src_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, start_new_session=True)
        last_n, last_t, stalled = 0, t0, 0.0
        while True:
            time.sleep(a.every)
            now, n = time.time(), counter.count
            depth = metric_sum(http, "outguard_queue_depth")
            s = {"t": round(now - t0, 1), "delivered": n,
                 "rate": (n - last_n) / (now - last_t), "rss_mb": rss_kb(relay.pid) / 1024,
                 "store_mb": store_bytes(data) / 1e6, "spool": spool_files(data),
                 "queue": depth, "cpu_s": cpu_s(relay.pid)}
            samples.append(s)
            print(f"soak: t={s['t']:>7.1f}s delivered={n:>8} {s['rate']:7.1f} msg/s "
                  f"rss={s['rss_mb']:.1f}MB store={s['store_mb']:.1f}MB queue={depth}", flush=True)
            stalled = stalled + a.every if n == last_n else 0.0
            last_n, last_t = n, now
            if relay.poll() is not None:
                print("soak: the relay exited", file=sys.stderr)
                break
            if n >= a.messages and not depth:
                ok = True
                break
            if src.poll() is not None and stalled >= 120:
                print("soak: nothing delivered for 120 s after the load ended", file=sys.stderr)
                break
        src_rc = src.wait()
    finally:
        if relay.poll() is None:
            os.killpg(relay.pid, signal.SIGTERM)
            try:
                relay.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(relay.pid, signal.SIGKILL)
        if sinkp.poll() is None:
            sinkp.terminate()
            sinkp.wait(10)
    if not samples:
        sys.exit("soak: no samples")
    # Rates over the first and last 10 % of the messages, from the samples crossing them.
    def t_at(count):
        prev = {"t": 0.0, "delivered": 0}
        for s in samples:
            if s["delivered"] >= count:
                span = s["delivered"] - prev["delivered"]
                f = (count - prev["delivered"]) / span if span else 1.0
                return prev["t"] + f * (s["t"] - prev["t"])
            prev = s
        return None
    total = samples[-1]["delivered"]
    tenth = a.messages / 10
    t1, t9, tn = t_at(tenth), t_at(a.messages - tenth), t_at(a.messages)
    first = tenth / t1 if t1 else None
    last = tenth / (tn - t9) if tn and t9 and tn > t9 else None
    rss = [s["rss_mb"] for s in samples]
    store = [s["store_mb"] for s in samples]
    cpu_us = samples[-1]["cpu_s"] * 1e6 / total if total else None
    date = time.strftime("%Y-%m-%d")
    os.makedirs(a.results, exist_ok=True)
    md, chart = os.path.join(a.results, f"soak-{date}.md"), os.path.join(a.results, f"soak-{date}.svg")
    fmt = lambda v, f="{:.0f}": "n/a" if v is None else f.format(v)
    lines = [f"# Soak run ({date}): {a.command or 'bench/soak.sh'}", "",
             f"{a.messages} messages of {a.size} bytes, {a.sessions} smtp-source sessions -> "
             f"connector -> static route -> smtp-sink; retention trace/messages {a.retention}, "
             f"pruned every 10 s. Chart: soak-{date}.svg.", "",
             "| figure | value |", "|---|---|",
             f"| delivered (smtp-sink count) | {total} of {a.messages} |",
             f"| msg/s, first 10 % of messages | {fmt(first)} |",
             f"| msg/s, last 10 % of messages | {fmt(last)} |",
             f"| last / first | {fmt(last / first if first and last else None, '{:.2f}')} |",
             f"| relay RSS start / peak / end (MB) | {rss[0]:.1f} / {max(rss):.1f} / {rss[-1]:.1f} |",
             f"| store size start / peak / end (MB) | {store[0]:.1f} / {max(store):.1f} / {store[-1]:.1f} |",
             f"| relay CPU per delivered message (µs) | {fmt(cpu_us)} |",
             f"| queue empty at end | {'yes' if ok else 'NO'} (depth {samples[-1]['queue']}, spool files {samples[-1]['spool']}) |",
             f"| smtp-source exit code | {src_rc} |", "",
             "| t (s) | delivered | msg/s | RSS MB | store MB | spool files | queue |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {s['t']} | {s['delivered']} | {s['rate']:.0f} | {s['rss_mb']:.1f} | "
              f"{s['store_mb']:.1f} | {s['spool']} | {fmt(s['queue'])} |" for s in samples]
    with open(md, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    svg(samples, chart, f"Outguard soak, {a.messages} messages ({date})")
    print("\n".join(lines[:15]))
    print(f"soak: wrote {md} and {chart} (run dir {work})")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
