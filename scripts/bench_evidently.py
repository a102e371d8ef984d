"""The Evidently side of the drift benchmark: Evidently's data-drift report (DataDriftPreset) on the
same files as shared/examples/bench_table/ and scripts/bench_python.py, with each feature kind's
closest Evidently stattest. Prints one JSON object, as bench_python.py does.

Run through scripts/bench-compare.sh (which also builds this script's own venv); by hand:

    cargo run --release -p fraudrisk --example bench_table -- --write-data DIR
    $(bash scripts/python-env.sh evidently)/bin/python scripts/bench_evidently.py --data-dir DIR

Tests per feature kind (`per_column_method`), against ours (shared/src/drift/):
  numeric  t_test     scipy ttest_ind with its default equal_var=True: Student's pooled t.
                      Ours is Welch's unequal-variance t; Evidently 0.7 has no Welch test.
  binary   z          two-proportion z, pooled, two-sided: the same test as ours.
  nominal  chisquare  scipy chisquare goodness of fit of the current counts against the
                      reference shares; ours is the contingency test (chi2_contingency).
  ordinal  mannw      scipy mannwhitneyu with alternative="less" (one-sided); ours is two-sided.
Bonferroni: Evidently adjusts nothing, so every column's threshold is alpha / 20 (0.0025), which
flags exactly the features whose Bonferroni-adjusted p is below alpha.

Timed: building the two Evidently datasets from the loaded DataFrames and running the report;
the CSV loading is outside the timing, as on the other two sides.
"""

import argparse
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path

# Evidently's usage telemetry would try the network: off.
os.environ.setdefault("DO_NOT_TRACK", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_python import SETS, load_schema, memory, read_frame, reset_peak, timed  # noqa: E402

from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

ALPHA = 0.05
STATTEST = {"numeric": "t_test", "binary": "z", "nominal": "chisquare", "ordinal": "mannw"}
# Evidently's column types: its Mann-Whitney and t tests only take numerical columns.
NUMERICAL = {"numeric", "ordinal"}


def drift(reference, current, schema):
    """Evidently's data-drift report over the 20 features. Returns the drifted names."""
    definition = DataDefinition(
        numerical_columns=[f["name"] for f in schema if f["kind"] in NUMERICAL],
        categorical_columns=[f["name"] for f in schema if f["kind"] not in NUMERICAL],
    )
    preset = DataDriftPreset(
        columns=[f["name"] for f in schema],
        per_column_method={f["name"]: STATTEST[f["kind"]] for f in schema},
        threshold=ALPHA / len(schema),
    )
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    p_values = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith(":ValueDrift"):
            p_values[config["column"]] = float(metric["value"])
    missing = [f["name"] for f in schema if f["name"] not in p_values]
    if missing:
        sys.exit(f"Evidently's report has no drift value for {missing}")
    threshold = ALPHA / len(schema)
    return [f["name"] for f in schema if p_values[f["name"]] < threshold], p_values


def bench_drift(args, schema, task):
    ref_name, cur_name = SETS[task]
    reference = read_frame(args.data_dir / ref_name, schema, with_label=False)
    current = read_frame(args.data_dir / cur_name, schema, with_label=False)
    load_peak = memory("VmHWM")
    reset = reset_peak()
    rss_before = memory("VmRSS")
    drifted, p_values = drift(reference, current, schema)
    big = len(reference) >= 100_000
    timing = timed(lambda: drift(reference, current, schema), 1, args.samples or (3 if big else 7))
    drift_peak = memory("VmHWM")
    return {
        "task": task.replace("-", "_"),
        "what": f"Evidently DataDriftPreset, {len(reference)} vs {len(current)} rows",
        **timing,
        "check": {
            "reference_rows": int(len(reference)),
            "current_rows": int(len(current)),
            "drifted_features": drifted,
            "p_values": p_values,
            "stattests": STATTEST,
            "threshold": ALPHA / len(schema),
        },
        "memory": {
            "peak_rss_bytes_during_drift": drift_peak if reset else None,
            "rss_bytes_before_drift": rss_before,
            "peak_rss_bytes_while_loading": load_peak,
            "peak_rss_bytes_process": max(load_peak, drift_peak) if load_peak and drift_peak else None,
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--task", default="drift-10k,drift-1m")
    parser.add_argument("--samples", type=int, help="samples per task (default 7, 3 for 1M rows)")
    # Accepted and ignored, so that bench-compare.sh passes every side the same arguments.
    parser.add_argument("--train-data", type=Path)
    args = parser.parse_args()
    tasks = [t.strip() for t in args.task.split(",") if t.strip()]
    for t in tasks:
        if t not in SETS:
            parser.error(f"unknown task {t!r} (drift-10k, drift-1m)")
    schema = load_schema(args.data_dir)
    results = [bench_drift(args, schema, task) for task in tasks]
    print(
        json.dumps(
            {
                "side": "evidently",
                "python": sys.version.split()[0],
                "versions": {name: version(name) for name in ("evidently", "pandas", "scipy")},
                "tasks": results,
            }
        )
    )


if __name__ == "__main__":
    main()
