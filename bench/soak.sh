#!/usr/bin/env bash
# Soak benchmark (issue 17): N messages through one relay process with retention set short
# (trace and messages kept 1 minute, pruned every 10 s) so pruning runs during the run.
# Prints msg/s over the first and last 10 % of the messages, relay RSS start/peak/end, store
# size, and whether the queue is empty at the end; writes bench/results/soak-DATE.md (table)
# and soak-DATE.svg (msg/s and RSS over time). Needs Postfix's smtp-source and smtp-sink.
#
#   bench/soak.sh [--messages N] [--sessions S] [--size BYTES] [--retention DURATION]
#                 (default 1,000,000 messages, 20 sessions, 5000 bytes, 1m)
#
# OUTGUARD_BIN runs a given binary instead of building the release one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --messages|--sessions|--size|--retention) [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 64; }
      ARGS+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
done
for t in smtp-source smtp-sink; do
  [ -x "/usr/sbin/$t" ] || { echo "needs /usr/sbin/$t (apt-get install postfix)" >&2; exit 69; }
done
if [ -z "${OUTGUARD_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
  cargo build --release --locked -p outguard --manifest-path "$ROOT/Cargo.toml" >&2
  OUTGUARD_BIN="$CARGO_TARGET_DIR/release/outguard"
fi
exec python3 "$ROOT/bench/soak.py" --bin "$OUTGUARD_BIN" --results "$ROOT/bench/results" \
  --command "bench/soak.sh ${ARGS[*]:-}" "${ARGS[@]}"
