#!/usr/bin/env python3
"""Derives the built-in data generator's tables from the seed's reference data.

Run from the repository root (standard library only, any Python 3.8+):

    python3 scripts/derive_generator_tables.py \
        [--data ../shared/data/german_credit_resampled.csv] \
        [--out shared/src/dataset/generator_tables.json]

german_credit_resampled.csv holds 10,000 rows resampled from the 1,000 rows of the German
Credit data. The tables are derived from the distinct rows (the original 1,000), so the
resampling's duplicate weights do not leak into the generator. For each class of the label
(creditability 0 = fraud, 1 = good) the output gives the row count (the class balance) and,
for every feature, the empirical frequency table of its values as [value, count] pairs.

Feature names are taken from the file's header (lower-cased, as the Rust schema matches them
ignoring case); the Rust side checks them against the schema when it loads the tables, so
this script lists no feature names of its own. Output is deterministic (sorted keys and
values), so rerunning on the same file reproduces the committed JSON byte for byte.
"""

import argparse
import csv
import hashlib
import json
import os
import sys

LABEL = "creditability"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "german_credit_resampled.csv")
DEFAULT_OUT = os.path.join(ROOT, "shared", "src", "dataset", "generator_tables.json")


def as_int(text, column, line):
    value = float(text)
    if value != int(value):
        sys.exit(f"line {line}, column {column}: not an integer: {text!r}")
    return int(value)


def read_distinct_rows(path):
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader)]
        # The first column is the resample's unnamed row index, not a feature.
        columns = [i for i, name in enumerate(header) if name not in ("", "id")]
        names = [header[i] for i in columns]
        if LABEL not in names:
            sys.exit(f"{path}: no {LABEL} column")
        rows = set()
        total = 0
        for line, record in enumerate(reader, start=2):
            rows.add(tuple(as_int(record[i], header[i], line) for i in columns))
            total += 1
    return names, sorted(rows), total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()

    names, rows, total = read_distinct_rows(args.data)
    label_at = names.index(LABEL)
    features = [(i, name) for i, name in enumerate(names) if i != label_at]

    class_counts = {}
    tables = {name: {} for _, name in features}
    for cls in (0, 1):
        members = [row for row in rows if row[label_at] == cls]
        class_counts[str(cls)] = len(members)
        for i, name in features:
            counts = {}
            for row in members:
                counts[row[i]] = counts.get(row[i], 0) + 1
            tables[name][str(cls)] = sorted(counts.items())

    with open(args.data, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()

    # Hand-laid JSON: one line per feature and class keeps the file compact and diffable.
    dump = lambda value: json.dumps(value, separators=(",", ":"))
    lines = [
        "{",
        f'  "source": {dump(os.path.basename(args.data))},',
        f'  "source_sha256": {dump(digest)},',
        f'  "source_rows": {total},',
        f'  "distinct_rows": {len(rows)},',
        '  "generated_by": "scripts/derive_generator_tables.py",',
        f'  "class_counts": {dump(class_counts)},',
        '  "features": {',
    ]
    for n, (_, name) in enumerate(features):
        lines.append(f"    {dump(name)}: {{")
        lines.append(f'      "0": {dump([list(p) for p in tables[name]["0"]])},')
        lines.append(f'      "1": {dump([list(p) for p in tables[name]["1"]])}')
        lines.append("    }" + ("," if n + 1 < len(features) else ""))
    lines += ["  }", "}"]
    with open(args.out, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")

    fraud = class_counts["0"] / len(rows)
    print(
        f"{args.out}: {len(rows)} distinct of {total} rows, {len(features)} features, "
        f"fraud share {fraud:.3f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
