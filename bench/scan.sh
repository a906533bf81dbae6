#!/usr/bin/env bash
# Side-by-side spam-scanner benchmark: Outguard's in-process engine vs the peers.
#   bench/scan.sh [--no-peers] [--passes N] [--check-model]
# 1. builds release; 2. `spam eval` at the default thresholds on the SpamAssassin TEST split and
#    on the modern corpus's validation split (../shared/corpus/modern, when present), each
#    reported separately with the modern corpus's source groups (commercial ham apart);
# 3. in-process throughput over the TEST split on 2 threads (msgs/s, p50/p95/p99);
# 4. if rspamd is installed and the outguard binary has `spam scan`, runs
#    ../shared/bench/peer_scan.py --scanners rspamd --external 'outguard=…' in the same run;
# 5. prints one table with our figures beside the peers' (live run, else the recorded
#    ../shared/bench/results/peers-*.md figures) and the throughput ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHARED=${SHARED:-$ROOT/../shared}
CORPUS=${CORPUS:-$SHARED/corpus/spamassassin}
MODERN=${MODERN:-$SHARED/corpus/modern}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/outguard-target}
PEERS=1
PASSES=5
CHECK_MODEL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-peers) PEERS=0 ;;
    --check-model) CHECK_MODEL=1 ;;
    --passes) PASSES=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "== build (release)" >&2
cargo build --release -q -p outguard-spam --example eval --example throughput --example train
BIN="$CARGO_TARGET_DIR/release"

EVAL_DIRS=("$CORPUS")
if [ -f "$MODERN/manifest.csv" ]; then
  EVAL_DIRS+=("$MODERN")
else
  echo "(no modern corpus at $MODERN: SpamAssassin figures only)" >&2
fi

if [ "$CHECK_MODEL" = 1 ]; then
  echo "== the shipped model is what training produces (SpamAssassin TRAIN + modern train)" >&2
  "$BIN/examples/train" "$OUT/model.bin" "$CORPUS" "$MODERN" >&2
  cmp "$OUT/model.bin" crates/spam/model/default.bin \
    || { echo "crates/spam/model/default.bin is stale: regenerate it (crates/spam/README.md)" >&2; exit 1; }
fi

echo "== spam eval (default thresholds): SpamAssassin TEST, modern validation" >&2
"$BIN/examples/eval" "${EVAL_DIRS[@]}" --json > "$OUT/eval.json"
"$BIN/examples/eval" "${EVAL_DIRS[@]}" >&2

echo "== throughput (in-process, 2 threads, $PASSES passes over TEST)" >&2
"$BIN/examples/throughput" "$CORPUS" 2 "$PASSES" --json > "$OUT/tput.json"
cat "$OUT/tput.json" >&2

PEER_LIVE=0
if [ "$PEERS" = 1 ] && command -v rspamd >/dev/null 2>&1 && [ -f "$SHARED/bench/peer_scan.py" ]; then
  if cargo build --release -q -p outguard --bin outguard 2>/dev/null && "$BIN/outguard" spam scan --help >/dev/null 2>&1; then
    echo "== peers: rspamd + outguard via peer_scan.py (same run)" >&2
    # The harness writes its runtime state and results beside itself: run a copy, so ../shared
    # stays untouched (the corpus is linked, never copied).
    HARNESS="$(mktemp -d /tmp/outguard-scan-bench.XXXXXX)"
    chmod 755 "$HARNESS"
    cp -r "$SHARED/bench" "$HARNESS/bench"
    rm -rf "$HARNESS/bench/run"
    ln -s "$SHARED/corpus" "$HARNESS/corpus"
    (cd "$HARNESS" && python3 bench/peer_scan.py --scanners rspamd \
        --external "outguard=$BIN/outguard spam scan --peer-line -") >&2 && PEER_LIVE=1 || echo "peer run failed" >&2
    python3 "$HARNESS/bench/peerctl.py" stop all >/dev/null 2>&1 || true
    RESULTS="$HARNESS/bench/results"
  else
    echo "(outguard binary has no 'spam scan' yet: peers from the recorded results)" >&2
  fi
else
  echo "(rspamd not installed or --no-peers: peers from the recorded results)" >&2
fi

python3 - "$OUT/eval.json" "$OUT/tput.json" "${RESULTS:-$SHARED/bench/results}" "$PEER_LIVE" <<'PY'
import glob, json, os, re, sys
evs = json.load(open(sys.argv[1])); tp = json.load(open(sys.argv[2]))
results, live = sys.argv[3], sys.argv[4] == "1"
ev = evs[0]
files = sorted(glob.glob(os.path.join(results, "peers-*.md")))
acc, speed = {}, {}
if files:
    text = open(files[-1]).read()
    for m in re.finditer(r"^\| ([a-z0-9-]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \|", text, re.M):
        acc.setdefault(m.group(1), [float(x) for x in m.groups()[1:]])
    for m in re.finditer(r"^\| ([a-z0-9-]+) \| (\d{3,}) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| ([0-9-]+) \|$", text, re.M):
        speed.setdefault(m.group(1), (float(m.group(3)), float(m.group(4)), float(m.group(5))))
rows = [("outguard (in-process)", ev["precision"], ev["recall"], ev["f1"], ev["fpr"], ev["accuracy"], ev["auc"],
         tp["msgs_per_s"], tp["p50_ms"], tp["p95_ms"], tp["p99_ms"])]
for name in ("spamassassin-bayes", "rspamd-bayes", "spamassassin-default", "rspamd-default"):
    if name in acc:
        s = speed.get(name, (float("nan"),) * 3)
        rows.append((name, *acc[name][:6], s[0], s[1], s[2], float("nan")))
src = ("live + " if live else "") + (f"recorded in {os.path.basename(files[-1])}" if files else "none recorded")
print(f"\nSpam scanners on the SpamAssassin TEST split ({ev['messages']} msgs), default thresholds "
      f"(outguard suspicious {ev['suspicious_threshold']:.2f}); peers {src}")
print("| scanner | precision | recall | F1 | FPR | accuracy | AUC | msgs/s | p50 ms | p95 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join([r[0]] + [f"{x:.4f}" for x in r[1:7]] + [f"{r[7]:.1f}"] + [("-" if x != x else f"{x:.2f}") for x in r[8:]]) + " |")
for m in evs[1:]:
    c = m["confusion"]
    print(f"\nModern corpus, {m['split']} split ({m['messages']} msgs), same defaults "
          f"(suspicious {m['suspicious_threshold']:.2f}, spam {m['spam_threshold']:.2f}); "
          "peers: not measured on this corpus (rspamd/SpamAssassin not installed here, none recorded)")
    print("| scanner | precision | recall | F1 | FPR | AUC | TP | FP | TN | FN |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| outguard (in-process) | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['fpr']:.4f} | {m['auc']:.4f} | {c['tp']} | {c['fp']} | {c['tn']} | {c['fn']} |")
    print("\n| source group | called spam / messages | rate |\n|---|---|---|")
    for g in m["groups"]:
        what = "recall" if g["is_spam"] else "FPR"
        print(f"| {g['group']} | {g['called_spam']}/{g['messages']} | {what} {g['rate']:.4f} |")
    com = next((g for g in m["groups"] if g["group"] == "commercial ham"), None)
    print(f"\nmodern targets: recall >= 0.90 ({m['recall']:.4f}), FPR <= 0.01 ({m['fpr']:.4f}), "
          f"commercial-ham FPR <= 0.02 ({com['rate'] if com else float('nan'):.4f})")
if "rspamd-bayes" in speed:
    print(f"\nthroughput ratio outguard / rspamd-bayes: {tp['msgs_per_s'] / speed['rspamd-bayes'][0]:.1f}x "
          f"(target >= 10x = {10 * speed['rspamd-bayes'][0]:.0f} msgs/s); p99 {tp['p99_ms']:.2f} ms (target <= 5 ms)")
print(f"SpamAssassin targets: F1 >= 0.975 ({ev['f1']:.4f}), FPR <= 0.004 ({ev['fpr']:.4f})")
PY
