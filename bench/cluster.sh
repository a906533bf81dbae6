#!/usr/bin/env bash
# Cluster scaling under CPU quotas (issue 18): 1, 2, 3 … nodes in the SAME run, each node in
# its own cgroup v1 `cpu` group capped at the same quota, all on one PostgreSQL database and
# one Redis, relaying through a connector to smtp-sink.
#
#   smtp-source --> node 1 (127.0.0.1:2600, cgroup outguard-node1, Q CPU) --\
#   smtp-source --> node 2 (127.0.0.1:2601, cgroup outguard-node2, Q CPU) ----> smtp-sink
#   …                                                                           127.0.0.1:2626
#
# The load generators, the sink, PostgreSQL and Redis run OUTSIDE the caps, so the nodes are
# the bottleneck and the ratio measures the design. Each node has its own data dir and durable
# spool (fsync before 250), the spam engine and the trace on; every message reserves in Redis
# (connector window) and is recorded in PostgreSQL.
#
#   bench/cluster.sh [--cpu-quota Q] [--nodes 1,2,3] [--messages M] [--sessions S]
#
#   --cpu-quota Q  CPUs per node (0.3 = 30 ms per 100 ms period); 0 = no cap (default 0.3)
#   --nodes LIST   node counts to measure, in one run (default 1,2,3)
#   --messages M   messages PER NODE per measurement (default 1000)
#   --sessions S   concurrent SMTP sessions PER NODE (default 10)
#
# Printed per node count: accepted msg/s (all nodes), speed-up over the first count, CPU per
# node (from /proc/PID/stat, in CPUs), and the shared services as seen over the same interval:
# Redis commands/s and round trips per message (INFO stats/commandstats of a redis-server of
# this run's own, so other users of the machine do not count), PostgreSQL transactions/s,
# rows written per message and table bytes per message (pg_stat_database/pg_stat_user_tables of
# a database of this run's own). The table is kept in bench/results/cluster-DATE.md.
#
# Needs root (cgroup v1 cpu controller at /sys/fs/cgroup/cpu), PostgreSQL on 127.0.0.1:5432
# (trust, user postgres), redis-server, and Postfix's smtp-source/smtp-sink
# (apt-get install postfix).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
QUOTA=0.3
NODES=1,2,3
MESSAGES=1000
SESSIONS=10
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-quota) QUOTA="$2"; shift 2 ;;
    --nodes) NODES="$2"; shift 2 ;;
    --messages) MESSAGES="$2"; shift 2 ;;
    --sessions) SESSIONS="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
done
case "$NODES" in *[!0-9,]*|"") echo "--nodes: a list like 1,2,3" >&2; exit 64 ;; esac
MAXN=$(tr ',' '\n' <<<"$NODES" | sort -n | tail -1)
[ "$MAXN" -ge 1 ] && [ "$MAXN" -le 8 ] || { echo "--nodes: 1 to 8 nodes" >&2; exit 64; }
python3 -c "import sys; q=float(sys.argv[1]); sys.exit(0 if 0 <= q <= 64 else 1)" "$QUOTA" \
  || { echo "--cpu-quota: CPUs per node, e.g. 0.3 (0 = no cap)" >&2; exit 64; }
CG=/sys/fs/cgroup/cpu
PERIOD=100000
QUOTA_US=$(python3 -c "import sys; print(int(float(sys.argv[1]) * $PERIOD))" "$QUOTA")
if [ "$QUOTA_US" -gt 0 ]; then
  if [ ! -w "$CG/cpu.cfs_quota_us" ]; then
    echo "the cgroup v1 cpu controller is not available here: $CG/cpu.cfs_quota_us is missing or not writable (mount -t cgroup -o cpu cgroup $CG, as root)" >&2
    exit 69
  fi
fi
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink redis-server redis-cli psql bc; do
  command -v "$t" >/dev/null || { echo "$t is missing (apt-get install postfix redis-server postgresql-client bc)" >&2; exit 69; }
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
cargo build --release --locked -p outguard --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$CARGO_TARGET_DIR/release/outguard"
MSG="$SHARED/bench/data/relay-msg-5k.eml"
TAG="b$(date +%s)$$"
DB="bench_$TAG"
PSQL=(psql -h 127.0.0.1 -U postgres -X -qAt)
STORE="postgres://postgres@127.0.0.1:5432/$DB"
RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COUNTERS="redis://127.0.0.1:$RPORT?prefix=bench"
WORK="$(mktemp -d /tmp/outguard-cluster-bench.XXXXXX)"
chmod 755 "$WORK"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for k in $(seq 1 "$MAXN"); do
    [ -d "$CG/outguard-node$k" ] && rmdir "$CG/outguard-node$k" 2>/dev/null || true
  done
  "${PSQL[@]}" -d test -c "DROP DATABASE IF EXISTS \"$DB\"" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

redis-server --bind 127.0.0.1 --port "$RPORT" --save "" --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
"${PSQL[@]}" -d test -c "CREATE DATABASE \"$DB\"" >/dev/null
# BENCH_PG_LOG=/var/log/postgresql/postgresql-15-main.log: log this database's statements
# during the measurements and print them by kind, per message (PostgreSQL's log must be there).
if [ -n "${BENCH_PG_LOG:-}" ]; then
  "${PSQL[@]}" -d test -c "ALTER DATABASE \"$DB\" SET log_statement = 'all'" >/dev/null
fi

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
for k in $(seq 1 "$MAXN"); do node_config "$k" $((2599 + k)) "127.0.0.$((k + 1))"; done
for _ in $(seq 1 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
C=(--config "$WORK/n1/outguard.toml")
"$BIN" "${C[@]}" tenant add bench >/dev/null
"$BIN" "${C[@]}" domain add --tenant bench example.com >/dev/null
"$BIN" "${C[@]}" connector add --tenant bench 127.0.0.0/24 >/dev/null

/usr/sbin/smtp-sink -u postfix -4 127.0.0.1:2626 1024 &
PIDS+=($!)

NODE_PID=()
start_node() {  # k: started inside its cgroup (the subshell joins it, then execs the node)
  local k=$1 g="$CG/outguard-node$1"
  if [ "$QUOTA_US" -gt 0 ]; then
    mkdir -p "$g"
    echo "$PERIOD" >"$g/cpu.cfs_period_us"
    echo "$QUOTA_US" >"$g/cpu.cfs_quota_us"
  fi
  (
    [ "$QUOTA_US" -gt 0 ] && echo "$BASHPID" >"$g/cgroup.procs"
    exec "$BIN" --config "$WORK/n$k/outguard.toml" serve
  ) >"$WORK/n$k/stdout.log" 2>"$WORK/n$k/stderr.log" &
  PIDS+=($!)
  NODE_PID[$k]=$!
  for _ in $(seq 1 300); do
    grep -q "outguard ready" "$WORK/n$k/stdout.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "node $k did not start:" >&2; cat "$WORK/n$k/stderr.log" >&2; exit 1
}

load() {  # port messages sessions
  /usr/sbin/smtp-source -4 -s "$3" -m "$2" -r 1 -N -F "$MSG" -f sender@example.com \
    -t rcpt@example.net -M loadgen.example.com "127.0.0.1:$1" >/dev/null
}

cpu_ticks() {  # pid -> utime+stime of the process (all threads)
  awk '{print $14 + $15}' "/proc/$1/stat"
}
redis_calls() {  # -> "commands in_bytes out_bytes evalsha_calls"
  redis-cli -p "$RPORT" info all | tr -d '\r' | awk -F'[:=,]' '
    /^total_commands_processed:/ {c=$2} /^total_net_input_bytes:/ {i=$2}
    /^total_net_output_bytes:/ {o=$2} /^cmdstat_evalsha:/ {e=$3}
    END {print c+0, i+0, o+0, e+0}'
}
cmdstats() {  # -> "command calls" lines (Redis counts a script's own calls under their names)
  redis-cli -p "$RPORT" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\).*/\1 \2/p' | sort
}
tablestats() {  # -> "table ins upd del" lines
  "${PSQL[@]}" -d "$DB" -F' ' -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables ORDER BY relname"
}
pg_stats() {  # -> "xacts rows_written table_bytes"
  "${PSQL[@]}" -d "$DB" -F' ' -c "SELECT
      (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()),
      (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables),
      (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_stat_user_tables)"
}

for k in $(seq 1 "$MAXN"); do start_node "$k"; done
for k in $(seq 1 "$MAXN"); do load $((2599 + k)) 100 5; done   # warm up every node
sleep 2

ROWS="$WORK/rows"
: >"$ROWS"
: >"$WORK/detail"
TCK=$(getconf CLK_TCK)
for n in $(tr ',' ' ' <<<"$NODES"); do
  sleep 3   # let the previous round's deliveries and trace flushes drain
  "${PSQL[@]}" -d "$DB" -c "SELECT pg_stat_clear_snapshot()" >/dev/null
  cmdstats >"$WORK/cmd0"; tablestats >"$WORK/tab0"
  read -r c0 i0 o0 e0 < <(redis_calls)
  read -r x0 w0 b0 < <(pg_stats)
  CPU0=(); for k in $(seq 1 "$n"); do CPU0[$k]=$(cpu_ticks "${NODE_PID[$k]}"); done
  T0=$(date +%s.%N)
  LP=()
  for k in $(seq 1 "$n"); do load $((2599 + k)) "$MESSAGES" "$SESSIONS" & LP+=($!); done
  wait "${LP[@]}"
  T1=$(date +%s.%N)
  CPUS=""
  for k in $(seq 1 "$n"); do CPUS="$CPUS $(( $(cpu_ticks "${NODE_PID[$k]}") - CPU0[k] ))"; done
  sleep 2   # the trace writer flushes in batches: count its writes for this round
  read -r c1 i1 o1 e1 < <(redis_calls)
  sleep 0.5
  read -r x1 w1 b1 < <(pg_stats)
  cmdstats >"$WORK/cmd1"; tablestats >"$WORK/tab1"
  { echo "nodes=$n per message: Redis calls by command (script-internal calls included; evalsha/ping are round trips):"
    join -a2 -e0 -o 0,1.2,2.2 "$WORK/cmd0" "$WORK/cmd1" | awk -v m=$((n * MESSAGES)) '{d=$3-$2; if (d>0) printf "  %s %.2f\n", $1, d/m}'
    echo "nodes=$n per message: PostgreSQL rows by table (inserted updated deleted):"
    join -a2 -e0 -o 0,1.2,1.3,1.4,2.2,2.3,2.4 "$WORK/tab0" "$WORK/tab1" | awk -v m=$((n * MESSAGES)) '{i=$5-$2; u=$6-$3; d=$7-$4; if (i+u+d>0) printf "  %s %.2f %.2f %.2f\n", $1, i/m, u/m, d/m}'
  } >>"$WORK/detail"
  echo "$n $(echo "$T1 - $T0" | bc -l) $((c1 - c0)) $((i1 - i0 + o1 - o0)) $((e1 - e0)) $((x1 - x0)) $((w1 - w0)) $((b1 - b0)) $CPUS" >>"$ROWS"
done

if [ -n "${BENCH_PG_LOG:-}" ]; then
  TOTAL=$(awk '{s += $1} END {print s}' "$ROWS" | head -1)
  TOTAL=0; for n in $(tr ',' ' ' <<<"$NODES"); do TOTAL=$((TOTAL + n * MESSAGES)); done
  { echo "PostgreSQL statements per message (all rounds, log_statement = all):"
    grep "@$DB " "$BENCH_PG_LOG" | sed -n 's/.*\(statement\|execute [^:]*\): *//p' \
      | sed -E 's/\$[0-9]+/?/g; s/VALUES \(.*/VALUES (…)/; s/ +/ /g' | cut -c1-90 | sort | uniq -c | sort -rn \
      | awk -v m="$TOTAL" '$1 / m >= 0.01 {c=$1; $1=""; printf "  %.2f %s\n", c / m, $0}'
  } >>"$WORK/detail"
fi
mkdir -p "$ROOT/bench/results"
OUT="$ROOT/bench/results/cluster-$(date +%F).md"
{ echo "# Cluster scaling ($(date -u +%FT%TZ)): bench/cluster.sh --cpu-quota $QUOTA --nodes $NODES --messages $MESSAGES --sessions $SESSIONS"
  echo
  python3 - "$MESSAGES" "$QUOTA" "$TCK" "$(nproc)" "$ROWS" <<'PY'
import sys
m, quota, tck, cores, rows = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"| nodes ({quota} CPU each, {cores} cores) | msg/s | speed-up | CPU per node | Redis cmd/s | Redis cmd/msg | Redis bytes/msg | PG xact/s | PG xact/msg | PG rows/msg | PG table bytes/msg |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
base = None
for line in open(rows):
    f = line.split()
    n, secs = int(f[0]), float(f[1])
    cmds, rbytes, _evalsha, xacts, rw, tb = (int(x) for x in f[2:8])
    cpus = [int(x) / tck / secs for x in f[8:]]
    total = n * m
    rate = total / secs
    base = base or rate
    cpu = " / ".join(f"{c:.2f}" for c in cpus)
    print(f"| {n} | {rate:.0f} | {rate / base:.2f}x | {cpu} | {cmds / secs:.0f} | {cmds / total:.2f} | "
          f"{rbytes / total:.0f} | {xacts / secs:.0f} | {xacts / total:.2f} | {rw / total:.2f} | {tb / total:.0f} |")
PY
  echo; echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo; echo '```'; cat "$WORK/detail"; echo '```'
} | tee "$OUT"
