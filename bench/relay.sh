#!/usr/bin/env bash
# Side-by-side relay throughput: Outguard and Postfix in the SAME run of the peer harness
# (../shared/bench/peer_relay.sh), smtp-source → relay → smtp-sink on 127.0.0.1.
#
# Outguard runs with its durable spool (fsync file + rename + fsync dir before 250), the spam
# engine and the trace on, relaying through a connector on 127.0.0.1:2600 with a static route
# "*" → the sink at 127.0.0.1:2626, exactly as Postfix relays with relayhost there.
#
#   bench/relay.sh [--messages N] [--scenarios sink,postfix,relay,postfix-outguard]
#                  [--sessions S] [--policy-rounds R]
#
# Scenario `postfix-outguard` (issue 23): the harness's Postfix with Outguard as its policy
# service (`check_policy_service inet:127.0.0.1:10040` at RCPT and end of data) and milter
# (`smtpd_milters = inet:127.0.0.1:11332`, the address the harness gives rspamd's milter), the
# row beside `postfix-rspamd`. Outguard's own CPU for that row is printed separately (the
# harness measures the process tree on the target port, which is Postfix's).
#
# --policy-rounds R adds R alternating pairs of Outguard runs in the same run, policy on
# (the default) and policy off (`serve --bench-policy-off`: no counters, limits or
# restrictions; scan, spool and trace still on), and prints the mean ratio — the cost of the
# policy step on the whole relay path (issue target: policy on within 5 % of policy off).
#
# The harness is copied to a temp dir so ../shared stays untouched; the table is printed and
# kept in bench/results/relay-DATE.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
MESSAGES=5000
SESSIONS=20
SCENARIOS="sink,postfix,relay"
POLICY_ROUNDS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) MESSAGES="$2"; shift 2 ;;
    --sessions) SESSIONS="$2"; shift 2 ;;
    --scenarios) SCENARIOS="$2"; shift 2 ;;
    --policy-rounds) POLICY_ROUNDS="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
cargo build --release --locked -p outguard --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$CARGO_TARGET_DIR/release/outguard"

WORK="$(mktemp -d /tmp/outguard-relay-bench.XXXXXX)"
chmod 755 "$WORK"   # postfix and smtp-sink drop privileges and must reach their files
cp -r "$SHARED/bench" "$WORK/bench"
rm -rf "$WORK/bench/results/raw"/* "$WORK/bench/run"
# CPU per message: the copied load generator also records the CPU time (user+system, all
# threads, live and reaped children) of the process tree listening on the target port over the
# load window — Outguard's one process; Postfix's master with smtpd, cleanup, qmgr, smtp, … —
# as relay_cpu_s and relay_cpu_us_per_msg (÷ messages seen by the sink).
python3 - "$WORK/bench/relay_load.py" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
helper = '''
def tree_cpu(addr):
    """CPU seconds (utime+stime+cutime+cstime) of the process tree listening on addr's port."""
    import re
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{addr[1]}"], capture_output=True,
                         text=True).stdout
    pids = {int(x) for x in re.findall(r"pid=(\\d+)", out)}
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            f = st[st.rindex(")") + 2:].split()
            procs[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]))
    roots = {p for p in pids if procs.get(p, (0,))[0] not in pids}
    total, todo = 0, list(roots)
    while todo:
        p = todo.pop()
        total += procs.get(p, (0, 0))[1]
        todo.extend(c for c, (pp, _) in procs.items() if pp == p)
    return total / os.sysconf("SC_CLK_TCK") if roots else None

'''
edits = [
    ("def main():", helper + "def main():"),
    ("        cpu0 = os.times()\n", "        cpu0 = os.times()\n        tree0 = tree_cpu(target)\n"),
    ("        cpu1 = os.times()\n", "        cpu1 = os.times()\n        tree1 = tree_cpu(target)\n"),
    ("            \"machine_cpu_busy_pct\"",
     "            \"relay_cpu_s\": round(tree1 - tree0, 2) if tree0 is not None and tree1 is not None else None,\n"
     "            \"relay_cpu_us_per_msg\": round((tree1 - tree0) * 1e6 / max(counter.count, 1))"
     " if tree0 is not None and tree1 is not None else None,\n"
     "            \"machine_cpu_busy_pct\""),
]
for old, new in edits:
    assert s.count(old) == 1, f"relay_load.py changed: {old!r}"
    s = s.replace(old, new)
open(p, "w").write(s)
PY
# Scenario postfix-outguard: Postfix's milter section (peerctl `start postfix --milter`) also
# asks the policy service named by $OUTGUARD_POLICY, and peer_relay.sh knows the scenario.
python3 - "$WORK/bench/peerctl.py" "$WORK/bench/peer_relay.sh" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = 'milter_default_action = tempfail\n"""\n'
assert s.count(old) == 1, "peerctl.py changed: milter section"
add = (
    '        if os.environ.get("OUTGUARD_POLICY"):\n'
    '            pol = os.environ["OUTGUARD_POLICY"]\n'
    '            milter_cf += (f"smtpd_recipient_restrictions = check_policy_service inet:{pol}\\n"\n'
    '                          f"smtpd_end_of_data_restrictions = check_policy_service inet:{pol}\\n")\n'
)
s = s.replace(old, old + add)
open(p, "w").write(s)
p = sys.argv[2]
s = open(p).read()
old = "    relay)\n"
assert s.count(old) == 1, "peer_relay.sh changed: scenario list"
case = (
    "    postfix-outguard)\n"
    "      fresh_postfix --milter\n"
    '      load postfix-outguard "$POSTFIX_ADDR" --post-cmd "$POST_CMD"\n'
    '      "${PEERCTL[@]}" stop postfix\n'
    "      ;;\n"
)
s = s.replace(old, case + old)
open(p, "w").write(s)
PY
DATA="$WORK/outguard"
mkdir -p "$DATA"
cat > "$DATA/outguard.toml" <<TOML
[server]
hostname = "bench.outguard.test"
data_dir = "$DATA/data"
[listeners]
max_connections_per_ip = 100000
connector = "127.0.0.1:2600"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
fbl = "127.0.0.1:0"
http = "127.0.0.1:0"
[dns]
resolver = "127.0.0.1:53530"
[[routes]]
domains = ["*"]
next_hop = "127.0.0.1:2626"
TOML
C=(--config "$DATA/outguard.toml")
"$BIN" "${C[@]}" tenant add bench >/dev/null
"$BIN" "${C[@]}" domain add --tenant bench example.com >/dev/null
"$BIN" "${C[@]}" connector add --tenant bench 127.0.0.0/24 >/dev/null

DATE="$(date +%F)"
PEER_SCENARIOS="$(tr ',' '\n' <<< "$SCENARIOS" | grep -vx postfix-outguard | paste -sd, -)"
if [ -n "$PEER_SCENARIOS" ]; then
  "$WORK/bench/peer_relay.sh" --scenarios "$PEER_SCENARIOS" --messages "$MESSAGES" --sessions "$SESSIONS" \
    --relay-port 2600 --relay-label outguard --date "$DATE" \
    --relay-cmd "exec $BIN --config $DATA/outguard.toml serve"
fi
if [[ ",$SCENARIOS," == *",postfix-outguard,"* ]]; then
  # The same tenant, domain and connector (Postfix's client address 127.0.0.1 maps to the
  # connector); the relay's own connector port moved aside; policy service and milter on.
  sed -e 's/^connector = .*/connector = "127.0.0.1:0"/' \
      -e 's/^\[listeners\]$/[listeners]\npolicy = "127.0.0.1:10040"\nmilter = "127.0.0.1:11332"/' \
      "$DATA/outguard.toml" > "$DATA/postfix.toml"
  "$BIN" --config "$DATA/postfix.toml" serve > "$WORK/outguard-postfix.log" 2>&1 &
  OG_PID=$!
  for _ in $(seq 1 300); do
    grep -q "outguard ready" "$WORK/outguard-postfix.log" && break
    kill -0 "$OG_PID" 2>/dev/null || { cat "$WORK/outguard-postfix.log" >&2; exit 1; }
    sleep 0.1
  done
  cpu() { awk '{print $14 + $15}' "/proc/$OG_PID/stat"; }
  c0="$(cpu)"
  OUTGUARD_POLICY=127.0.0.1:10040 "$WORK/bench/peer_relay.sh" --scenarios postfix-outguard \
    --messages "$MESSAGES" --sessions "$SESSIONS" --date "$DATE"
  c1="$(cpu)"
  kill "$OG_PID"; wait "$OG_PID" || true
  OG_CPU_S="$(awk -v a="$c0" -v b="$c1" -v t="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/t}')"
fi
for r in $(seq 1 "$POLICY_ROUNDS"); do
  for mode in on off; do
    flag=""; [ "$mode" = off ] && flag="--bench-policy-off"
    "$WORK/bench/peer_relay.sh" --scenarios relay --messages "$MESSAGES" --sessions "$SESSIONS" \
      --relay-port 2600 --relay-label "outguard-policy-$mode-$r" --date "$DATE" \
      --relay-cmd "exec $BIN --config $DATA/outguard.toml serve $flag"
  done
done

RESULT="$WORK/bench/results/peers-$DATE.md"
mkdir -p "$ROOT/bench/results"
OUT="$ROOT/bench/results/relay-$DATE.md"
{
  echo "# Relay throughput, one run ($DATE): bench/relay.sh --messages $MESSAGES --sessions $SESSIONS"
  echo
  sed -n '/<!-- BEGIN relay -->/,/<!-- END relay -->/p' "$RESULT"
  echo
  if [ -n "${OG_CPU_S:-}" ]; then
    echo "postfix-outguard: Outguard (policy service + milter) used $OG_CPU_S s CPU in that run" \
      "($(awk -v c="$OG_CPU_S" -v m="$MESSAGES" 'BEGIN{printf "%.0f", c*1e6/m}') µs per message submitted)."
    echo
  fi
  python3 - "$WORK/bench/results/raw/$DATE" <<'PY'
import json, os, sys
raw = sys.argv[1]
rows = {}
for f in os.listdir(raw):
    if f.startswith("relay-") and f.endswith(".json"):
        d = json.load(open(os.path.join(raw, f)))
        rows[f[6:-5]] = d
def rate(d):
    for k in ("delivered_per_s", "delivered/s", "delivered_msgs_per_s"):
        if k in d: return d[k]
    return None
pf, og = rows.get("postfix"), rows.get("outguard")
print("CPU per relayed message (process tree on the target port, user+system, load window):")
for k, d in sorted(rows.items()):
    if d.get("relay_cpu_us_per_msg") is not None:
        print(f"  {k}: {d['relay_cpu_us_per_msg']:.0f} µs/msg ({d['relay_cpu_s']} s CPU for "
              f"{d.get('sink_count')} msgs, machine {d.get('machine_cpu_busy_pct')} % busy)")
if pf and og and rate(pf) and rate(og):
    print(f"Outguard / Postfix delivered msg/s: {rate(og):.0f} / {rate(pf):.0f} = {rate(og)/rate(pf):.2f}x")
on = [rate(d) for k, d in sorted(rows.items()) if k.startswith("outguard-policy-on-")]
off = [rate(d) for k, d in sorted(rows.items()) if k.startswith("outguard-policy-off-")]
if on and off:
    m_on, m_off = sum(on) / len(on), sum(off) / len(off)
    print()
    print(f"Policy on, rounds:  {', '.join(f'{x:.0f}' for x in on)} msg/s (mean {m_on:.0f})")
    print(f"Policy off, rounds: {', '.join(f'{x:.0f}' for x in off)} msg/s (mean {m_off:.0f})")
    print(f"Policy on / off = {m_on / m_off:.3f} ({(1 - m_on / m_off) * 100:+.1f} % cost)")
PY
} | tee "$OUT"
echo "kept: $OUT (harness copy and logs in $WORK)" >&2
