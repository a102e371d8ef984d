"""scikit-learn reference for the Rust model (checked by shared/tests/model_sklearn.rs).

Run from the repository root (the seed data sits beside the checkout, in ../shared/data):

    $(bash scripts/python-env.sh)/bin/python scripts/sklearn_reference.py

It writes shared/tests/fixtures/model/sklearn_reference.json: the holdout rows of a stratified
80/20 split by distinct rows, scikit-learn's cross-validated choice of C, its holdout ROC AUC and
accuracy, its coefficients at the chosen C, and two classification_report examples.

Feature names, kinds and codes come from shared/tests/fixtures/model/schema.json, which the
Rust test writes from `schema::FEATURES` (`UPDATE_MODEL_FIXTURES=1 cargo test -p fraudrisk
--test model_sklearn`) and checks on every run, so no feature is listed here.

The encoding mirrors the Rust encoder: numeric and ordinal columns standardised (population
std), nominal columns one-hot over every schema code (unknown codes ignored), binary columns as
they are. The target is fraud = (creditability == 0). C is 1 / alpha of the Rust grid.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "shared" / "tests" / "fixtures" / "model"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "german_credit_resampled.csv"
# The Rust default grid (TrainConfig::default().alphas).
ALPHAS = [0.1, 1.0, 10.0, 100.0, 1000.0]
LABEL = "creditability"


def load(path, schema):
    frame = pd.read_csv(path, index_col=0)
    # Headers differ in case between the seed's files (no_of_credits_at_this_Bank).
    by_lower = {c.lower(): c for c in frame.columns}
    columns = {by_lower[f["name"].lower()]: f["name"] for f in schema}
    data = frame[list(columns) + [LABEL]].rename(columns=columns)
    return data.reset_index(drop=True)


def split_by_distinct_rows(data, names, fraction, seed):
    """Stratified split that keeps every copy of a row on one side (as the Rust split)."""
    group = data.groupby(names + [LABEL], sort=False).ngroup().to_numpy()
    label_of_group = data.groupby(group)[LABEL].first()
    rng = np.random.default_rng(seed)
    held = set()
    for label in sorted(label_of_group.unique()):
        groups = label_of_group.index[label_of_group == label].to_numpy()
        rng.shuffle(groups)
        n = len(groups)
        take = min(max(int(round(fraction * n)), 1), n - 1)
        held.update(groups[:take].tolist())
    holdout = np.array([g in held for g in group])
    return holdout, group


def pipeline(schema):
    scaled = [f["name"] for f in schema if f["kind"] in ("numeric", "ordinal")]
    nominal = [f for f in schema if f["kind"] == "nominal"]
    binary = [f["name"] for f in schema if f["kind"] == "binary"]
    encode = ColumnTransformer(
        [
            ("scale", StandardScaler(), scaled),
            (
                "onehot",
                OneHotEncoder(
                    categories=[f["codes"] for f in nominal], handle_unknown="ignore"
                ),
                [f["name"] for f in nominal],
            ),
            ("keep", "passthrough", binary),
        ]
    )
    column_names = (
        scaled
        + [f"{f['name']}={c}" for f in nominal for c in f["codes"]]
        + binary
    )
    return encode, column_names


def report_example(tp, fp, tn, fn):
    """classification_report for given counts, classes in creditability order."""
    # creditability: 0 = fraud, 1 = not fraud.
    y_true = [0] * tp + [1] * fp + [1] * tn + [0] * fn
    y_pred = [0] * tp + [0] * fp + [1] * tn + [1] * fn
    text = classification_report(
        y_true,
        y_pred,
        labels=[0, 1],
        target_names=["fraud", "not_fraud"],
        zero_division=0,
    )
    return {
        "true_positive": tp,
        "false_positive": fp,
        "true_negative": tn,
        "false_negative": fn,
        "report": text,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=FIXTURES / "sklearn_reference.json")
    args = parser.parse_args()

    schema = json.loads((FIXTURES / "schema.json").read_text())
    names = [f["name"] for f in schema]
    data = load(args.data, schema)
    holdout, group = split_by_distinct_rows(data, names, 0.2, args.seed)
    x, fraud = data[names], (data[LABEL] == 0).astype(int).to_numpy()

    encode, column_names = pipeline(schema)
    search = GridSearchCV(
        Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=1000))]),
        {"model__C": [1.0 / a for a in ALPHAS]},
        cv=StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=args.seed),
        scoring="roc_auc",
    )
    search.fit(x[~holdout], fraud[~holdout], groups=group[~holdout])
    probability = search.predict_proba(x[holdout])[:, 1]
    best_c = search.best_params_["model__C"]

    # Coefficients at the chosen C, solved tightly, for a like-for-like comparison.
    tight = Pipeline(
        [("encode", encode), ("model", LogisticRegression(C=best_c, tol=1e-10, max_iter=10000))]
    ).fit(x[~holdout], fraud[~holdout])
    model = tight.named_steps["model"]
    tight_probability = tight.predict_proba(x[holdout])[:, 1]

    out = {
        "generated_by": "scripts/sklearn_reference.py",
        "sklearn_version": sklearn.__version__,
        "data_file": args.data.name,
        "seed": args.seed,
        "rows": int(len(data)),
        "distinct_rows": int(group.max() + 1),
        "holdout_indices": np.flatnonzero(holdout).tolist(),
        "alphas": ALPHAS,
        "cv": [
            {"C": float(c["model__C"]), "mean_roc_auc": float(m), "std_roc_auc": float(s)}
            for c, m, s in zip(
                search.cv_results_["params"],
                search.cv_results_["mean_test_score"],
                search.cv_results_["std_test_score"],
            )
        ],
        "chosen_c": float(best_c),
        "chosen_alpha": float(1.0 / best_c),
        "holdout_roc_auc": float(roc_auc_score(fraud[holdout], probability)),
        "holdout_accuracy": float(accuracy_score(fraud[holdout], search.predict(x[holdout]))),
        "tight_fit": {
            "alpha": float(1.0 / best_c),
            "intercept": float(model.intercept_[0]),
            "coefficients": dict(zip(column_names, map(float, model.coef_[0]))),
            "holdout_roc_auc": float(roc_auc_score(fraud[holdout], tight_probability)),
        },
        "report_examples": [report_example(37, 21, 118, 24), report_example(0, 0, 9, 3)],
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(
        f"holdout rows {int(holdout.sum())}, chosen C {best_c}, "
        f"ROC AUC {out['holdout_roc_auc']:.4f}, accuracy {out['holdout_accuracy']:.4f} -> {args.out}"
    )


if __name__ == "__main__":
    main()
