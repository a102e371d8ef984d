#!/usr/bin/env bash
# Times the same work in Rust (shared/examples/bench_table/), in scikit-learn / scipy /
# statsmodels (scripts/bench_python.py) and, for drift, in Evidently (scripts/bench_evidently.py),
# in one run, on the same files, and prints one table: task, Rust time, Python time, ratio,
# Evidently time, ratio, plus the peak memory of the 1M/200k drift on each side.
#
#   bash scripts/bench-compare.sh [--samples N] [--json FILE] [--skip-1m] [--no-evidently]
#
#   --samples N      samples per task on every side (default: 21 / 15 for the fast tasks, 3 to 7
#                    for training and the 1M drift)
#   --json FILE      also write every side's raw results and the table's figures as JSON
#   --skip-1m        leave out the 1,000,000 vs 200,000 drift (and its 80 MB of CSV)
#   --no-evidently   leave out Evidently (else its own venv is installed on first use:
#                    `bash scripts/python-env.sh evidently`)
#
# Training runs twice on each side: on one thread (Rust FRAUDRISK_TRAINING_THREADS=1;
# GridSearchCV n_jobs=1 with OMP / OpenBLAS / MKL pinned to 1 thread) and on every core (the
# variable unset; n_jobs=-1, BLAS left to joblib). The 1M drift also runs once with
# FRAUDRISK_DRIFT_THREADS=1, since scipy and Evidently count on one core.
#
# Settings (environment):
#   FRAUDRISK_CACHE        cache folder (default ~/.cache/fraudrisk): target dir, venvs, data
#   FRAUDRISK_BENCH_DATA   where the input CSV files go (default $FRAUDRISK_CACHE/bench-data)
#
# Steps: build the example in release (once), write every input as CSV once
# (`bench_table --write-data`: generator seed 42), then each side reads the same files:
# training on the seed's ../shared/data/german_credit_resampled.csv when it is there (else the
# generated 10,000 reference rows), prediction of the seed's example row, drift on generated
# reference vs shifted rows. The 1M/200k drift runs as its own process on each side, so that its
# peak memory is that task's alone. Results: docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

samples=()
json_out=""
skip_1m=0
evidently=1
while [ $# -gt 0 ]; do
  case "$1" in
    --samples) samples=(--samples "${2:?--samples needs a number}"); shift 2 ;;
    --json) json_out="${2:?--json needs a file}"; shift 2 ;;
    --skip-1m) skip_1m=1; shift ;;
    --no-evidently) evidently=0; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cache=${FRAUDRISK_CACHE:-$HOME/.cache/fraudrisk}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
data=${FRAUDRISK_BENCH_DATA:-$cache/bench-data}
seed_train=../shared/data/german_credit_resampled.csv

python="$(bash scripts/python-env.sh)/bin/python"
evidently_python=""
if [ "$evidently" = 1 ]; then
  evidently_python="$(bash scripts/python-env.sh evidently)/bin/python"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== building the bench binary (release, LTO: slow the first time)" >&2
cargo build --release --quiet -p fraudrisk --example bench_table
bin="$CARGO_TARGET_DIR/release/examples/bench_table"

echo "== writing the input data to $data" >&2
"$bin" --write-data "$data" 2>"$work/write.log" || { cat "$work/write.log" >&2; exit 1; }
if [ -f "$seed_train" ]; then
  train="$(cd "$(dirname "$seed_train")" && pwd)/$(basename "$seed_train")"
else
  echo "   ($seed_train not found: training on the generated reference rows)" >&2
  train="$data/reference_10k.csv"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

# run NAME COMMAND...: runs one side, its JSON to $work/NAME.json, its log shown on failure.
run() {
  local name=$1
  shift
  echo "== $name" >&2
  "$@" >"$work/$name.json" 2>"$work/$name.log" || {
    cat "$work/$name.log" >&2
    echo "bench-compare.sh: $name failed" >&2
    exit 1
  }
}
common=(--data-dir "$data" --train-data "$train" "${samples[@]}")
one_thread=(env FRAUDRISK_TRAINING_THREADS=1 FRAUDRISK_DRIFT_THREADS=1 OMP_NUM_THREADS=1
  OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1)
all_cores=(env -u FRAUDRISK_TRAINING_THREADS -u FRAUDRISK_DRIFT_THREADS -u OMP_NUM_THREADS
  -u OPENBLAS_NUM_THREADS -u MKL_NUM_THREADS)
run rust "${all_cores[@]}" "$bin" --json "${common[@]}" --task predict,drift-10k
run python "${one_thread[@]}" "$python" scripts/bench_python.py "${common[@]}" --task predict,drift-10k
run rust_train_1thread "${one_thread[@]}" "$bin" --json "${common[@]}" --task train
run python_train_1thread "${one_thread[@]}" "$python" scripts/bench_python.py "${common[@]}" \
  --task train --n-jobs 1
run rust_train_all "${all_cores[@]}" "$bin" --json "${common[@]}" --task train
run python_train_all "${all_cores[@]}" "$python" scripts/bench_python.py "${common[@]}" \
  --task train --n-jobs -1
# The seed's file repeats each applicant about ten times and the Rust fit passes once over each
# distinct row (weighted by its copies): the same grid on 10,000 rows that are all distinct
# shows the speed without that.
distinct=(--data-dir "$data" --train-data "$data/reference_10k.csv" "${samples[@]}")
run rust_train_distinct "${one_thread[@]}" "$bin" --json "${distinct[@]}" --task train
run python_train_distinct "${one_thread[@]}" "$python" scripts/bench_python.py "${distinct[@]}" \
  --task train --n-jobs 1
if [ "$evidently" = 1 ]; then
  run evidently "${one_thread[@]}" "$evidently_python" scripts/bench_evidently.py \
    "${common[@]}" --task drift-10k
fi
if [ "$skip_1m" = 0 ]; then
  run rust_1m "${all_cores[@]}" "$bin" --json "${common[@]}" --task drift-1m
  run rust_1m_1thread "${one_thread[@]}" "$bin" --json "${common[@]}" --task drift-1m
  run python_1m "${one_thread[@]}" "$python" scripts/bench_python.py "${common[@]}" --task drift-1m
  if [ "$evidently" = 1 ]; then
    run evidently_1m "${one_thread[@]}" "$evidently_python" scripts/bench_evidently.py \
      "${common[@]}" --task drift-1m
  fi
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")

"$python" - "$work" "$json_out" "$load_before" "$load_after" <<'PY'
import json
import os
import platform
import sys
from pathlib import Path

work, json_out, load_before, load_after = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def tasks(*names):
    out, meta = {}, {}
    for name in names:
        path = work / f"{name}.json"
        if path.exists():
            doc = json.loads(path.read_text())
            meta.update({k: v for k, v in doc.items() if k != "tasks"})
            out.update({t["task"]: t for t in doc["tasks"]})
    return out, meta


def renamed(source, suffix):
    """One run's tasks with a suffix on their names (train -> train_1thread)."""
    found, meta = tasks(source)
    return {f"{k}{suffix}": dict(v, task=f"{k}{suffix}") for k, v in found.items()}, meta


rust, rust_meta = tasks("rust", "rust_1m", "rust_train_all")
python, python_meta = tasks("python", "python_1m", "python_train_all")
evidently, evidently_meta = tasks("evidently", "evidently_1m")
for side, name in ((rust, "rust"), (python, "python")):
    side.update(renamed(f"{name}_train_1thread", "_1thread")[0])
    side.update(renamed(f"{name}_train_distinct", "_distinct_1thread")[0])
rust.update(renamed("rust_1m_1thread", "_1thread")[0])
# scipy and Evidently count on one core: their 1M figure is also the one-thread row's.
for side in (python, evidently):
    if "drift_1m" in side:
        side["drift_1m_1thread"] = side["drift_1m"]

ROWS = [
    ("predict_full", "predict 1 row: validate+encode+score+explain", 2e-6, "< 2 µs"),
    ("predict_score", "predict 1 row: score only (validated row)", 2e-6, "< 2 µs"),
    ("train_1thread", "train 10,000 rows: 5 C x 5 folds + refit, 1 thread", 0.3, "< 0.3 s"),
    ("train", "train 10,000 rows: 5 C x 5 folds + refit, all cores", 0.3, "< 0.3 s"),
    (
        "train_distinct_1thread",
        "train 10,000 distinct rows (generated), 1 thread",
        0.3,
        "< 0.3 s",
    ),
    ("drift_10k", "drift 10,000 vs 2,000 rows", 5e-3, "< 5 ms"),
    ("drift_1m", "drift 1,000,000 vs 200,000 rows, all cores", 0.03, "< 30 ms"),
    # The 30 ms aim is the default (every core) path's; one thread is the like-for-like row.
    ("drift_1m_1thread", "drift 1,000,000 vs 200,000 rows, 1 thread", None, ""),
]


def human(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def drifted(t):
    return (t or {}).get("check", {}).get("drifted_features")


def agreement(task, r, p, e):
    """Whether the sides computed the same thing (a cheap cross-check, not a test)."""
    rc, pc = r.get("check", {}), p.get("check", {})
    if task.startswith("predict"):
        a, b = rc.get("probability_of_fraud"), pc.get("probability_of_fraud")
        return f"P(fraud) {a:.4f} vs {b:.4f}" if a is not None and b is not None else ""
    if task.startswith("train"):
        return (
            f"C {rc.get('chosen_c'):g} vs {pc.get('chosen_c'):g}; "
            f"CV AUC {rc.get('best_cv_roc_auc', 0):.3f} vs {pc.get('best_cv_roc_auc', 0):.3f}; "
            f"threads {rc.get('threads')} vs n_jobs {pc.get('n_jobs')}"
        )
    if task.startswith("drift"):
        n = len(drifted(r) or [])
        text = f"{n} drifted; scipy {'same' if drifted(r) == drifted(p) else 'DIFFERENT'}"
        if e:
            ours, theirs = set(drifted(r) or []), set(drifted(e) or [])
            text += f"; Evidently {len(theirs)}"
            if ours != theirs:
                only = sorted(theirs - ours), sorted(ours - theirs)
                text += f" (+{','.join(only[0]) or '-'} / -{','.join(only[1]) or '-'})"
        return text
    return ""


def ratio(other, ours):
    return other / ours if ours and other else None


table = [("task", "Rust", "Python", "Py/Rust", "Evidently", "Ev/Rust", "aim (Rust)", "cross-check")]
figures = []
for key, label, limit, aim in ROWS:
    r, p, e = rust.get(key), python.get(key), evidently.get(key)
    if r is None and p is None:
        continue
    rs, ps, es = ((t or {}).get("seconds") for t in (r, p, e))
    pr, er = ratio(ps, rs), ratio(es, rs)
    verdict = "" if rs is None or limit is None else f"{aim} {'met' if rs < limit else 'MISSED'}"
    table.append(
        (
            label,
            human(rs),
            human(ps),
            f"{pr:,.1f}x" if pr else "-",
            human(es) if e else "-",
            f"{er:,.1f}x" if er else "-",
            verdict,
            agreement(key, r or {}, p or {}, e) if r and p else "",
        )
    )
    figures.append(
        {
            "task": key,
            "rust_seconds": rs,
            "python_seconds": ps,
            "ratio": pr,
            "evidently_seconds": es,
            "evidently_ratio": er,
        }
    )

mib = 1 << 20
r_mem = rust.get("drift_1m", {}).get("memory", {})
p_mem = python.get("drift_1m", {}).get("memory", {})
e_mem = evidently.get("drift_1m", {}).get("memory", {})
if r_mem or p_mem:
    for field, label in (
        ("peak_rss_bytes_during_drift", "drift 1M/200k: peak RSS during the drift"),
        ("rss_bytes_before_drift", "drift 1M/200k: RSS with the data loaded"),
        ("peak_rss_bytes_process", "drift 1M/200k: peak RSS incl. CSV loading"),
    ):
        rb, pb, eb = r_mem.get(field), p_mem.get(field), e_mem.get(field)
        verdict = ""
        if field == "peak_rss_bytes_during_drift" and rb is not None:
            verdict = f"< 300 MB {'met' if rb < 300e6 else 'MISSED'}"
        table.append(
            (
                label,
                f"{rb / mib:.0f} MiB" if rb else "-",
                f"{pb / mib:.0f} MiB" if pb else "-",
                f"{pb / rb:.1f}x" if rb and pb else "-",
                f"{eb / mib:.0f} MiB" if eb else "-",
                f"{eb / rb:.1f}x" if rb and eb else "-",
                verdict,
                "",
            )
        )
        figures.append(
            {"task": f"drift_1m_{field}", "rust_bytes": rb, "python_bytes": pb, "evidently_bytes": eb}
        )

widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
lines = []
for i, row in enumerate(table):
    lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if i == 0:
        lines.append("  ".join("-" * w for w in widths))

cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
versions = dict(python_meta.get("versions", {}))
versions.update({k: v for k, v in evidently_meta.get("versions", {}).items() if k == "evidently"})
print(
    f"machine: {cpu}, {rust_meta.get('cores', '?')} cores available; "
    f"load average {load_before} before, {load_after} after"
)
print(
    "python " + python_meta.get("python", "?") + ", "
    + ", ".join(f"{k} {v}" for k, v in versions.items())
)
print("times: median over samples of the mean per call; ratio = Python time / Rust time\n")
print("\n".join(lines))
if evidently:
    print(
        "\nEvidently: DataDriftPreset with t_test (Student, pooled) / z / chisquare (goodness of "
        "fit) / mannw (one-sided 'less'),\nthreshold alpha/20 per column; see "
        "scripts/bench_evidently.py for how each differs from ours."
    )

if json_out:
    Path(json_out).write_text(
        json.dumps(
            {
                "load_average_before": load_before,
                "load_average_after": load_after,
                "cpu": cpu,
                "platform": platform.platform(),
                "figures": figures,
                "rust": rust,
                "python": python,
                "python_meta": python_meta,
                "evidently": evidently,
                "evidently_meta": evidently_meta,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nraw results: {json_out}")
PY
