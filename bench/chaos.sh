#!/usr/bin/env bash
# Crash under load: senders submit through the connector while the relay is SIGKILLed at
# random moments and restarted; prints acknowledged / lost / duplicate counts. Lost must be 0.
#   bench/chaos.sh [KILLS]   (default 20; CI runs the same test with 5)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/outguard-target}"
CHAOS_KILLS="${1:-20}" cargo test --locked --manifest-path "$ROOT/Cargo.toml" -p outguard --test chaos -- --nocapture 2>&1 \
  | grep -E '^chaos:|test result'
