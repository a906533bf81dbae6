#!/usr/bin/env python3
"""Per-stage share of the relay's CPU samples from `perf script` output (call graphs).

    perf record -F 250 --call-graph dwarf,16384 -p <outguard pid> -o perf.data -- sleep S
    perf script -i perf.data -F comm,tid,time,ip,sym | python3 bench/perf_stages.py

Each sample is attributed to the innermost frame on its stack that names a stage (so an fsync
under the spool counts as spool, sqlx under the trace writer as trace, mail-parser under the
scanner as scan). Samples with no stage frame are runtime/other (tokio scheduler, epoll, the
allocator outside any stage, …). Prints a markdown table; `--top N` lists the hottest leaf
functions of each stage too.
"""
import collections
import re
import sys

# innermost first: the first pattern that matches a frame, scanning leaf → root, wins
STAGES = [
    ("spool write+fsync", r"outguard_store::spool|GroupSync"),
    ("trace (store writer, mail log)", r"outguard_store::trace|write_trace_batch"),
    ("scan", r"outguard_spam::|Relay::scan\b|seams"),
    ("policy (enforce, counters, From: ownership)",
     r"outguard_relay::enforce|outguard_policy::|check_header_from|sender_signals|"
     r"policy_after_scan|fbl::rates::count_sent|redis_counters|memory_counters"),
    ("queue hand-off", r"enqueue_envelope|outguard_delivery::queue"),
    ("delivery (queue runner, SMTP client)", r"outguard_delivery::"),
    ("message path other (headers, Received:, records)", r"outguard_relay::pipeline"),
    ("session / SMTP parse", r"outguard_relay::smtp|outguard_proto::|outguard_relay::server"),
]
COMPILED = [(name, re.compile(p)) for name, p in STAGES]
OTHER = "runtime / other (tokio, epoll, kernel net outside a stage)"


def samples(lines):
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line.startswith(("\t", " ")):
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
    if frames:
        yield frames


def main():
    top = 0
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
    count = collections.Counter()
    leaves = collections.defaultdict(collections.Counter)
    total = 0
    for frames in samples(sys.stdin):
        total += 1
        stage = OTHER
        for f in frames:
            hit = next((n for n, rx in COMPILED if rx.search(f)), None)
            if hit:
                stage = hit
                break
        count[stage] += 1
        leaves[stage][re.sub(r"\+0x[0-9a-f]+.*$", "", frames[0])[:110]] += 1
    print("| stage | samples | % of relay CPU |")
    print("|---|---:|---:|")
    for name in [n for n, _ in STAGES] + [OTHER]:
        print(f"| {name} | {count[name]} | {100.0 * count[name] / max(total, 1):.1f} |")
    print(f"| total | {total} | 100.0 |")
    if top:
        for name in [n for n, _ in STAGES] + [OTHER]:
            if count[name]:
                print(f"\n{name}:")
                for leaf, n in leaves[name].most_common(top):
                    print(f"  {100.0 * n / total:5.1f}%  {leaf}")


if __name__ == "__main__":
    main()
