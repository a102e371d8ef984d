"""The Python side of the benchmark comparison: the work of shared/examples/bench_table/ done with
scikit-learn, scipy and statsmodels, on the same files. Prints one JSON object.

Run through scripts/bench-compare.sh, which writes the data first; by hand:

    cargo run --release -p fraudrisk --example bench_table -- --write-data DIR
    $(bash scripts/python-env.sh)/bin/python scripts/bench_python.py --data-dir DIR [--task LIST]

Tasks (comma-separated; default train,predict,drift-10k,drift-1m):
  predict    one row from a dict: validate, one-row DataFrame, encode (the fitted ColumnTransformer),
             score (LogisticRegression), explain (coef * (x - training mean), per feature, sorted);
             and score alone (pipeline.predict_proba on a one-row DataFrame already built).
  train      GridSearchCV over C = 1/alpha of the Rust grid, StratifiedGroupKFold(5) with groups =
             distinct rows, scoring roc_auc, refit.
  drift-10k  per feature, the test its kind calls for (Welch t, statsmodels proportions_ztest,
             chi2_contingency, mannwhitneyu asymptotic), then Bonferroni: 10,000 vs 2,000 rows.
  drift-1m   the same on 1,000,000 vs 200,000 rows, with the peak RSS during the drift computation
             (/proc/self/clear_refs resets VmHWM once the data are loaded). Run it alone.

Feature names, kinds and codes come from shared/tests/fixtures/model/schema.json (written from the
Rust schema); the integer ranges of the numeric features from the data folder's domains.json
(written by bench_table --write-data). No feature is listed here.

Timing as in bench_table: warm-up, then samples that each run the call often enough to last about
50 ms; the figure is the median of the per-call means.
"""

import argparse
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

# scikit-learn is imported where the model is built, so that a drift-only process (drift-1m,
# whose peak memory is reported) does not carry it.

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "shared" / "tests" / "fixtures" / "model" / "schema.json"
SEED_TRAIN_FILE = ROOT.parent / "shared" / "data" / "german_credit_resampled.csv"
# The Rust default grid (TrainConfig::default().alphas) and fold settings.
ALPHAS = [0.1, 1.0, 10.0, 100.0, 1000.0]
FOLDS = 5
SEED = 42
ALPHA = 0.05
LABEL = "creditability"
SETS = {
    "drift-10k": ("reference_10k.csv", "shifted_2k.csv"),
    "drift-1m": ("reference_1m.csv", "shifted_200k.csv"),
}
SAMPLE_TARGET = 0.05
FRAUD_MESSAGE = "The person might intend to commit fraud."
NOT_FRAUD_MESSAGE = "The person is probably not intending to commit fraud."


# ------------------------------------------------------------------------------------------------
# Timing and memory


def timed(call, warmup, samples):
    """Median (and range) over samples of the mean seconds per call, after a warm-up."""
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        call()
    once = (time.perf_counter() - start) / max(warmup, 1)
    calls = max(1, int(np.ceil(SAMPLE_TARGET / max(once, 1e-9))))
    per_call = []
    for _ in range(max(samples, 1)):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        per_call.append((time.perf_counter() - start) / calls)
    return {
        "seconds": float(np.median(per_call)),
        "min_seconds": float(min(per_call)),
        "max_seconds": float(max(per_call)),
        "samples": len(per_call),
        "calls_per_sample": calls,
    }


def memory(key):
    """A /proc/self/status memory line (VmHWM, VmRSS) in bytes; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.split(":")[0] == key:
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------
# Data


def load_schema(data_dir):
    schema = json.loads(SCHEMA.read_text())
    domains_path = data_dir / "domains.json" if data_dir else None
    if domains_path and domains_path.exists():
        domains = {d["name"]: d for d in json.loads(domains_path.read_text())}
        if sorted(domains) != sorted(f["name"] for f in schema):
            sys.exit(f"{domains_path} and {SCHEMA} list different features")
        for f in schema:
            d = domains[f["name"]]
            f["min"], f["max"] = d.get("min"), d.get("max")
    return schema


def read_frame(path, schema, with_label):
    """The schema's columns (header case ignored, as the Rust reader does), as int64."""
    wanted = {f["name"].lower(): f["name"] for f in schema}
    if with_label:
        wanted[LABEL] = LABEL
    frame = pd.read_csv(path, usecols=lambda c: c.strip().lower() in wanted)
    frame.columns = [wanted[c.strip().lower()] for c in frame.columns]
    return frame[[f["name"] for f in schema] + ([LABEL] if with_label else [])]


def train_path(args):
    if args.train_data:
        return args.train_data
    if SEED_TRAIN_FILE.exists():
        return SEED_TRAIN_FILE
    if args.data_dir and (args.data_dir / "reference_10k.csv").exists():
        return args.data_dir / "reference_10k.csv"
    sys.exit("no training data: give --train-data or --data-dir (bench_table --write-data DIR)")


# ------------------------------------------------------------------------------------------------
# Model


def pipeline(schema, c=1.0):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    scaled = [f["name"] for f in schema if f["kind"] in ("numeric", "ordinal")]
    nominal = [f for f in schema if f["kind"] == "nominal"]
    binary = [f["name"] for f in schema if f["kind"] == "binary"]
    encode = ColumnTransformer(
        [
            ("scale", StandardScaler(), scaled),
            (
                "onehot",
                OneHotEncoder(
                    categories=[f["codes"] for f in nominal],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                [f["name"] for f in nominal],
            ),
            ("keep", "passthrough", binary),
        ]
    )
    # The feature (schema index) of each encoded column, in the transformer's output order.
    index = {f["name"]: i for i, f in enumerate(schema)}
    column_feature = np.array(
        [index[n] for n in scaled]
        + [index[f["name"]] for f in nominal for _ in f["codes"]]
        + [index[n] for n in binary]
    )
    model = Pipeline([("encode", encode), ("model", LogisticRegression(C=c, max_iter=1000))])
    return model, column_feature


def grid_search(x, fraud, schema, n_jobs):
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    names = [f["name"] for f in schema]
    # Groups of identical rows (values and label), as the Rust folds use.
    groups = x.assign(_label=fraud).groupby(names + ["_label"], sort=False).ngroup().to_numpy()
    model, _ = pipeline(schema)
    search = GridSearchCV(
        model,
        {"model__C": [1.0 / a for a in ALPHAS]},
        cv=StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=SEED),
        scoring="roc_auc",
        refit=True,
        n_jobs=n_jobs,
    )
    return search.fit(x, fraud, groups=groups)


def bench_train(args, schema):
    path = train_path(args)
    data = read_frame(path, schema, with_label=True)
    names = [f["name"] for f in schema]
    x, fraud = data[names], (data[LABEL] == 0).astype(int).to_numpy()
    search = grid_search(x, fraud, schema, args.n_jobs)
    timing = timed(lambda: grid_search(x, fraud, schema, args.n_jobs), 1, args.samples or 5)
    check = {
        "data": str(Path(path).resolve()),
        "rows": int(len(data)),
        "fraud_rows": int(fraud.sum()),
        "chosen_c": float(search.best_params_["model__C"]),
        "best_cv_roc_auc": float(search.best_score_),
        "n_jobs": args.n_jobs,
    }
    what = f"GridSearchCV: {len(ALPHAS)} C x StratifiedGroupKFold({FOLDS}) + refit"
    return {"task": "train", "what": what, **timing, "check": check}, search.best_estimator_, x


def validate(row, schema):
    """The row's 20 values as integers, checked as the Rust schema checks them."""
    if not isinstance(row, dict):
        raise ValueError("body must be an object")
    errors = []
    unknown = set(row) - {f["name"] for f in schema}
    errors.extend(f"{name} is not a feature of this model" for name in sorted(unknown))
    values = {}
    for f in schema:
        name = f["name"]
        if name not in row:
            errors.append(f"{name} is required")
            continue
        raw = row[name]
        if isinstance(raw, str):
            try:
                raw = float(raw.strip())
            except ValueError:
                errors.append(f"{name} must be a number")
                continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            errors.append(f"{name} must be a number")
            continue
        if raw != raw or raw in (float("inf"), float("-inf")) or raw != int(raw):
            errors.append(f"{name} must be an integer")
            continue
        code = int(raw)
        if f["codes"] and f["kind"] != "numeric":
            ok = code in f["codes"]
        else:
            lo, hi = f.get("min"), f.get("max")
            ok = (lo is None or code >= lo) and (hi is None or code <= hi)
        if not ok:
            errors.append(f"{name} is out of its domain (got {code})")
            continue
        values[name] = code
    if errors:
        raise ValueError("; ".join(errors))
    return values


def bench_predict(args, schema, fitted, x_train):
    names = [f["name"] for f in schema]
    _, column_feature = pipeline(schema)
    encode, model = fitted.named_steps["encode"], fitted.named_steps["model"]
    coef = model.coef_[0]
    means = encode.transform(x_train).mean(axis=0)
    row_path = args.data_dir / "predict_row.json" if args.data_dir else None
    if not row_path or not row_path.exists():
        sys.exit("no request row: give --data-dir (bench_table --write-data DIR)")
    row = json.loads(row_path.read_text())

    def predict(body):
        values = validate(body, schema)
        frame = pd.DataFrame([values], columns=names)
        encoded = encode.transform(frame)
        probability = float(model.predict_proba(encoded)[0, 1])
        fraud = probability >= 0.5
        per_feature = np.bincount(
            column_feature, weights=coef * (encoded[0] - means), minlength=len(names)
        )
        order = np.argsort(-np.abs(per_feature), kind="stable")
        return {
            "probability_of_fraud": probability,
            "decision": "fraud" if fraud else "not_fraud",
            "message": FRAUD_MESSAGE if fraud else NOT_FRAUD_MESSAGE,
            "contributions": [
                {"feature": names[i], "value": values[names[i]], "contribution": float(per_feature[i])}
                for i in order
            ],
        }

    prediction = predict(row)
    samples = args.samples or 15
    full = timed(lambda: predict(row), 20, samples)
    frame = pd.DataFrame([validate(row, schema)], columns=names)
    score = timed(lambda: fitted.predict_proba(frame)[0, 1], 20, samples)
    check = {
        "row": str(row_path),
        "probability_of_fraud": prediction["probability_of_fraud"],
        "decision": prediction["decision"],
        "top_contributions": [c["feature"] for c in prediction["contributions"][:3]],
    }
    return [
        {
            "task": "predict_full",
            "what": "validate dict + one-row DataFrame + transform + predict_proba + coef*(x-mean)",
            **full,
            "check": check,
        },
        {
            "task": "predict_score",
            "what": "pipeline.predict_proba(one-row DataFrame)",
            **score,
            "check": {"probability_of_fraud": float(fitted.predict_proba(frame)[0, 1])},
        },
    ]


# ------------------------------------------------------------------------------------------------
# Drift


def drift(reference, current, schema):
    """The seed's per-kind tests on every feature, then Bonferroni. Returns the drifted names."""
    p_values = []
    for f in schema:
        a = reference[f["name"]].to_numpy()
        b = current[f["name"]].to_numpy()
        kind = f["kind"]
        if kind == "numeric":
            p = st.ttest_ind(a, b, equal_var=False).pvalue
        elif kind == "binary":
            top = max(f["codes"])
            _, p = proportions_ztest([np.count_nonzero(a == top), np.count_nonzero(b == top)], [len(a), len(b)])
        elif kind == "nominal":
            # Codes are small non-negative integers: counting by bincount, categories seen on
            # either side only.
            size = int(max(a.max(), b.max())) + 1
            counts = np.column_stack([np.bincount(a, minlength=size), np.bincount(b, minlength=size)])
            p = st.chi2_contingency(counts[counts.sum(axis=1) > 0]).pvalue
        elif kind == "ordinal":
            p = st.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue
        else:
            raise ValueError(f"unknown kind {kind!r}")
        p_values.append(float(p))
    reject, _, _, _ = multipletests(p_values, alpha=ALPHA, method="bonferroni")
    return [f["name"] for f, r in zip(schema, reject) if r]


def bench_drift(args, schema, task):
    ref_name, cur_name = SETS[task]
    if not args.data_dir:
        sys.exit("no data: give --data-dir (bench_table --write-data DIR)")
    reference = read_frame(args.data_dir / ref_name, schema, with_label=False)
    current = read_frame(args.data_dir / cur_name, schema, with_label=False)
    load_peak = memory("VmHWM")
    reset = reset_peak()
    rss_before = memory("VmRSS")
    drifted = drift(reference, current, schema)
    big = len(reference) >= 100_000
    timing = timed(lambda: drift(reference, current, schema), 1, args.samples or (5 if big else 15))
    drift_peak = memory("VmHWM")
    return {
        "task": task.replace("-", "_"),
        "what": f"scipy/statsmodels tests per feature + Bonferroni, {len(reference)} vs {len(current)} rows",
        **timing,
        "check": {
            "reference": str(args.data_dir / ref_name),
            "current": str(args.data_dir / cur_name),
            "reference_rows": int(len(reference)),
            "current_rows": int(len(current)),
            "drifted_features": drifted,
            "drift": bool(drifted),
        },
        "memory": {
            "peak_rss_bytes_during_drift": drift_peak if reset else None,
            "rss_bytes_before_drift": rss_before,
            "peak_rss_bytes_while_loading": load_peak,
            "peak_rss_bytes_process": max(load_peak, drift_peak) if load_peak and drift_peak else None,
        },
    }


# ------------------------------------------------------------------------------------------------


def default_jobs():
    """As many workers as the Rust fit uses threads: min(cores, folds)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return min(cores, FOLDS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--train-data", type=Path)
    parser.add_argument("--task", default="train,predict,drift-10k,drift-1m")
    parser.add_argument("--samples", type=int, help="samples per task (default: 5 to 15 by task)")
    parser.add_argument(
        "--n-jobs", type=int, default=1, help="GridSearchCV n_jobs (default 1: faster here than 2, see docs/benchmarks.md)"
    )
    args = parser.parse_args()
    tasks = [t.strip() for t in args.task.split(",") if t.strip()]
    for t in tasks:
        if t not in ("train", "predict", "drift-10k", "drift-1m"):
            parser.error(f"unknown task {t!r}")

    schema = load_schema(args.data_dir)
    results = []
    fitted = x_train = None
    for task in tasks:
        if task == "train":
            result, fitted, x_train = bench_train(args, schema)
            results.append(result)
        elif task == "predict":
            if fitted is None:
                names = [f["name"] for f in schema]
                data = read_frame(train_path(args), schema, with_label=True)
                x_train = data[names]
                fitted = grid_search(x_train, (data[LABEL] == 0).astype(int).to_numpy(), schema, args.n_jobs)
                fitted = fitted.best_estimator_
            results.extend(bench_predict(args, schema, fitted, x_train))
        else:
            results.append(bench_drift(args, schema, task))
    print(
        json.dumps(
            {
                "side": "python",
                "python": sys.version.split()[0],
                "versions": {
                    name: version(name)
                    for name in ("numpy", "pandas", "scikit-learn", "scipy", "statsmodels")
                },
                "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                "tasks": results,
            }
        )
    )


if __name__ == "__main__":
    main()
