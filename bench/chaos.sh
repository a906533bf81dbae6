#!/usr/bin/env bash
# Crash under load: senders submit through the connector while the relay is SIGKILLed at
# random moments and restarted; prints acknowledged / lost / duplicate counts. Lost must be 0.
#
#   bench/chaos.sh [KILLS] [PAUSE_MS]
#       the old shape: one next hop, 4 senders, KILLS kills PAUSE_MS-3*PAUSE_MS apart
#       (default 20 kills, 200-600 ms apart; CI runs 5)
#   bench/chaos.sh --domains 50 --concurrency 20 [--messages 2000] [--kills 5] [--seed N]
#       issue 17's shape: 50 destination domains (each its own MX and sink), 20 concurrent
#       senders, every other message with a second recipient in another domain; 2,000
#       acknowledged messages with 5 kills at random points of the run. Target: 0 lost,
#       <= 0.1 % duplicates.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
usage() { sed -n '2,12p' "$0" >&2; exit 64; }
if [[ "${1:-}" == --* ]]; then
  export CHAOS_KILLS=5 CHAOS_MESSAGES=2000 CHAOS_DOMAINS=50 CHAOS_SENDERS=20
  while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage
    case "$1" in
      --domains) CHAOS_DOMAINS="$2" ;;
      --concurrency) CHAOS_SENDERS="$2" ;;
      --messages) CHAOS_MESSAGES="$2" ;;
      --kills) CHAOS_KILLS="$2" ;;
      --seed) export CHAOS_SEED="$2" ;;
      *) usage ;;
    esac
    shift 2
  done
else
  export CHAOS_KILLS="${1:-20}" CHAOS_PAUSE_MS="${2:-200}"
fi
cargo test --locked --manifest-path "$ROOT/Cargo.toml" -p outguard --test chaos -- --nocapture 2>&1 \
  | grep -E '^chaos:|test result|panicked|assert'
