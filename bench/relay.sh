#!/usr/bin/env bash
# Side-by-side relay throughput: Outguard and Postfix in the SAME run of the peer harness
# (../shared/bench/peer_relay.sh), smtp-source → relay → smtp-sink on 127.0.0.1.
#
# Outguard runs with its durable spool (fsync file + rename + fsync dir before 250), the spam
# engine and the trace on, relaying through a connector on 127.0.0.1:2600 with a static route
# "*" → the sink at 127.0.0.1:2626, exactly as Postfix relays with relayhost there.
#
#   bench/relay.sh [--messages N] [--scenarios sink,postfix,outguard] [--sessions S]
#                  [--policy-rounds R]
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
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
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
"$WORK/bench/peer_relay.sh" --scenarios "$SCENARIOS" --messages "$MESSAGES" --sessions "$SESSIONS" \
  --relay-port 2600 --relay-label outguard --date "$DATE" \
  --relay-cmd "exec $BIN --config $DATA/outguard.toml serve"
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
