#!/usr/bin/env bash
# Cluster throughput: one node vs two nodes in the SAME run, both on shared PostgreSQL records
# and shared Redis counters (SPEC §6, issue 8), relaying through a connector to smtp-sink.
#
#   smtp-source --> node 1 (127.0.0.1:2600) --\
#   smtp-source --> node 2 (127.0.0.1:2601) ----> smtp-sink 127.0.0.1:2626
#
# Each node has its own data dir and spool (durable: fsync before 250), the spam engine and
# the trace on; every message reserves in Redis (connector window) and records its verdict.
# Accepted msg/s = messages acknowledged / wall time of the load (two loads run in parallel
# in the two-node case, half the messages and sessions each).
#
#   bench/cluster.sh [--messages N] [--sessions S]
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust, database test), Redis on 127.0.0.1:6379 and
# Postfix's smtp-source/smtp-sink. Uses a fresh schema and key prefix, removed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
MESSAGES=4000
SESSIONS=20
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) MESSAGES="$2"; shift 2 ;;
    --sessions) SESSIONS="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
cargo build --release -p outguard --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$CARGO_TARGET_DIR/release/outguard"
MSG="$SHARED/bench/data/relay-msg-5k.eml"
TAG="b$(date +%s)$$"
SCHEMA="bench_$TAG"
STORE="postgres://postgres@127.0.0.1:5432/test?schema=$SCHEMA"
COUNTERS="redis://127.0.0.1:6379?prefix=bench-$TAG"
WORK="$(mktemp -d /tmp/outguard-cluster-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA IF EXISTS \"$SCHEMA\" CASCADE" >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "bench-$TAG:*" | xargs -r redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null || true
}
trap cleanup EXIT

node_config() {  # n port pool-ip
  mkdir -p "$WORK/n$1"
  cat > "$WORK/n$1/outguard.toml" <<TOML
store = "$STORE"
counters = "$COUNTERS"
[server]
node = "n$1"
hostname = "n$1.bench.outguard.test"
data_dir = "$WORK/n$1/data"
[listeners]
max_connections_per_ip = 100000
connector = "127.0.0.1:$2"
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
fbl = "127.0.0.1:0"
http = "127.0.0.1:0"
[dns]
resolver = "127.0.0.1:53530"
[[pools]]
name = "regular"
source_ips = ["$3"]
[[pools]]
name = "high-risk"
source_ips = ["$3"]
[[pools]]
name = "relay"
source_ips = ["$3"]
[[routes]]
domains = ["*"]
next_hop = "127.0.0.1:2626"
TOML
}
node_config 1 2600 127.0.0.2
node_config 2 2601 127.0.0.5
C=(--config "$WORK/n1/outguard.toml")
"$BIN" "${C[@]}" tenant add bench >/dev/null
"$BIN" "${C[@]}" domain add --tenant bench example.com >/dev/null
"$BIN" "${C[@]}" connector add --tenant bench 127.0.0.0/24 >/dev/null

/usr/sbin/smtp-sink -u postfix -4 127.0.0.1:2626 1024 &
PIDS+=($!)

start_node() {  # n
  "$BIN" --config "$WORK/n$1/outguard.toml" serve >"$WORK/n$1/stdout.log" 2>"$WORK/n$1/stderr.log" &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    grep -q "outguard ready" "$WORK/n$1/stdout.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "node $1 did not start:" >&2; cat "$WORK/n$1/stderr.log" >&2; exit 1
}

load() {  # port messages sessions -> prints the wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  /usr/sbin/smtp-source -4 -s "$3" -m "$2" -r 1 -N -F "$MSG" -f sender@example.com \
    -t rcpt@example.net -M loadgen.example.com "127.0.0.1:$1" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

start_node 1
start_node 2
load 2600 200 10 >/dev/null; load 2601 200 10 >/dev/null   # warm up both nodes

ONE=$(load 2600 "$MESSAGES" "$SESSIONS")
HALF=$((MESSAGES / 2)); HS=$((SESSIONS / 2))
T0=$(date +%s.%N)
load 2600 "$HALF" "$HS" >"$WORK/l1" & L1=$!
load 2601 "$HALF" "$HS" >"$WORK/l2" & L2=$!
wait $L1 $L2
T1=$(date +%s.%N)
TWO=$(echo "$T1 - $T0" | bc -l)

mkdir -p "$ROOT/bench/results"
OUT="$ROOT/bench/results/cluster-$(date +%F).md"
{ echo "# Cluster throughput ($(date -u +%FT%TZ)): bench/cluster.sh --messages $MESSAGES --sessions $SESSIONS"
  echo
python3 - "$MESSAGES" "$ONE" "$TWO" "$(nproc)" <<'PY'
import sys
n, one, two, cores = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
r1, r2 = n / one, n / two
print(f"| setup ({cores} cores, shared PostgreSQL + Redis) | accepted msg/s |")
print("|---|---|")
print(f"| one node | {r1:.0f} |")
print(f"| two nodes | {r2:.0f} |")
print(f"| speed-up | {r2 / r1:.2f}x |")
PY
  echo; echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
