#!/usr/bin/env bash
# Crash under load: senders submit through the connector while the relay is SIGKILLed at
# random moments and restarted; prints acknowledged / lost / duplicate counts. Lost must be 0.
#   bench/chaos.sh [KILLS] [PAUSE_MS]   (default 20 kills, 200-600 ms apart; CI runs 5)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
CHAOS_KILLS="${1:-20}" CHAOS_PAUSE_MS="${2:-200}" cargo test --locked --manifest-path "$ROOT/Cargo.toml" -p outguard --test chaos -- --nocapture 2>&1 \
  | grep -E '^chaos:|test result'
