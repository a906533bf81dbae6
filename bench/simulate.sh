#!/usr/bin/env bash
# What-if simulator benchmark (issue 22): one week of 1 M messages/day of synthetic traffic
# replayed through the production policy decisions on the embedded counters. Target: < 60 s.
#   bench/simulate.sh [--days N] [--per-day N]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --locked --release -q -p outguard-policy --example simulate_bench -- "$@"
