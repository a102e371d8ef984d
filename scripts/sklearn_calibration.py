"""scikit-learn reference for calibration (checked by shared/src/model/calibration_tests.rs and
the metrics tests).

Run from the repository root:

    $(bash scripts/python-env.sh)/bin/python scripts/sklearn_calibration.py

It writes shared/tests/fixtures/calibration.json: for a few fixed sets of labels (1 = fraud),
log-odds and probabilities,

- `curve`: sklearn.calibration.calibration_curve(labels, probabilities, n_bins=10,
  strategy="uniform"), i.e. `prob_true` and `prob_pred` of the NON-EMPTY bins only (scikit-learn
  drops empty bins);
- `bin_counts`: the number of probabilities in each of the 10 bins, binned exactly as
  calibration_curve bins them (np.searchsorted(np.linspace(0, 1, 11)[1:-1], p));
- `ece`: the expected calibration error, sum over bins of count / n * |prob_true - prob_pred|,
  in numpy;
- `platt` (sets with log-odds only): sklearn.calibration._sigmoid_calibration(log_odds, labels)
  as scikit-learn returns it, `sklearn_a` and `sklearn_b`, modelling
  P(fraud | f) = 1 / (1 + exp(sklearn_a * f + sklearn_b)); and `a`, `b`, the same curve in the
  Rust convention P(fraud | f) = sigmoid(a * f + b), so a = -sklearn_a, b = -sklearn_b, taken
  from a tight optimisation of the same objective (Platt's prior-smoothed targets, the same
  start) with scipy's trust-exact Newton method, polished as the root of the gradient
  (scipy.optimize.root, hybr, with the exact Hessian). scikit-learn stops its
  L-BFGS-B at a gradient of 1e-6 (ftol 64 eps), so its own figures are only that close to the
  optimum; this script checks that they agree with the tight optimum to 1e-5.
"""

import argparse
import json
from math import log
from pathlib import Path

import numpy as np
import scipy
import sklearn
from scipy.optimize import minimize, root
from scipy.special import expit, log_expit
from sklearn.calibration import _sigmoid_calibration, calibration_curve

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "shared" / "tests" / "fixtures" / "calibration.json"
N_BINS = 10


def bin_counts(probabilities):
    bins = np.linspace(0.0, 1.0, N_BINS + 1)
    ids = np.searchsorted(bins[1:-1], probabilities)
    return np.bincount(ids, minlength=N_BINS)


def ece(labels, probabilities):
    bins = np.linspace(0.0, 1.0, N_BINS + 1)
    ids = np.searchsorted(bins[1:-1], probabilities)
    counts = np.bincount(ids, minlength=N_BINS)
    sums = np.bincount(ids, weights=probabilities, minlength=N_BINS)
    trues = np.bincount(ids, weights=labels, minlength=N_BINS)
    nonzero = counts > 0
    gaps = np.abs(trues[nonzero] / counts[nonzero] - sums[nonzero] / counts[nonzero])
    return float(np.sum(counts[nonzero] / len(probabilities) * gaps))


def tight_platt(f, y):
    """The optimum of _sigmoid_calibration's objective, in the Rust signs (a, b)."""
    prior1 = float(np.sum(y > 0))
    prior0 = len(y) - prior1
    t = np.where(y > 0, (prior1 + 1.0) / (prior1 + 2.0), 1.0 / (prior0 + 2.0))

    # Rust convention: p = sigmoid(a f + b).
    def loss(ab):
        z = ab[0] * f + ab[1]
        return -np.sum(t * log_expit(z) + (1 - t) * log_expit(-z))

    def grad(ab):
        d = expit(ab[0] * f + ab[1]) - t
        return np.array([d @ f, d.sum()])

    def hess(ab):
        p = expit(ab[0] * f + ab[1])
        w = p * (1 - p)
        return np.array([[w @ (f * f), w @ f], [w @ f, w.sum()]])

    start = np.array([0.0, -log((prior0 + 1.0) / (prior1 + 1.0))])
    # Near the optimum the loss (a sum of n terms) stops resolving the improvements a minimiser
    # compares, so the minimum is polished as the root of the gradient (Newton's system with
    # the exact Hessian), which does not depend on loss differences.
    coarse = minimize(loss, start, jac=grad, hess=hess, method="trust-exact")
    result = root(grad, coarse.x, jac=hess, method="hybr", tol=1e-15)
    g = grad(result.x)
    scale = len(f) * max(1.0, float(np.max(np.abs(f))))
    if np.max(np.abs(g)) > 1e-12 * scale:
        raise SystemExit(f"tight Platt fit failed: {result.message} (gradient {g})")
    return float(result.x[0]), float(result.x[1])


def sets():
    rng = np.random.default_rng(20261201)
    out = []
    # Values on the bin edges as numpy.linspace computes them (0.30000000000000004, ...), the
    # ends 0 and 1, and empty bins: binning by hand.
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    p = np.array([0.0, edges[1], edges[2], edges[3], 0.05, 0.15, 0.31, 0.5, edges[6], 0.95, 1.0, 0.999])
    y = np.array([0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0])
    out.append({"name": "edges_and_empty_bins", "labels": y, "probabilities": p, "log_odds": None})
    # A logistic model whose true curve is sigmoid(0.6 f - 0.4).
    f = rng.normal(0.0, 2.0, 200)
    y = (rng.random(200) < expit(0.6 * f - 0.4)).astype(int)
    out.append({"name": "logistic_200", "labels": y, "log_odds": f})
    # Over-confident scores of an imbalanced problem (about 30 % fraud, as the German data).
    f = rng.normal(-1.0, 3.0, 1000)
    y = (rng.random(1000) < expit(f / 3.0 - 0.3)).astype(int)
    out.append({"name": "overconfident_1000", "labels": y, "log_odds": f})
    # Large log-odds: scikit-learn rescales F when max |F| >= 30.
    f = rng.normal(0.0, 15.0, 500)
    y = (rng.random(500) < expit(0.1 * f + 0.2)).astype(int)
    out.append({"name": "large_log_odds_500", "labels": y, "log_odds": f})
    # Perfectly separated classes: only the smoothed targets keep the fit finite.
    f = np.concatenate([rng.normal(-2.0, 0.5, 40), rng.normal(2.0, 0.5, 20)])
    f = np.where(np.arange(60) < 40, np.minimum(f, -0.1), np.maximum(f, 0.1))
    y = (np.arange(60) >= 40).astype(int)
    out.append({"name": "separated_60", "labels": y, "log_odds": f})
    for s in out:
        if s["log_odds"] is not None:
            s["probabilities"] = expit(s["log_odds"])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    records = []
    for s in sets():
        y, p = np.asarray(s["labels"]), np.asarray(s["probabilities"], dtype=np.float64)
        prob_true, prob_pred = calibration_curve(y, p, n_bins=N_BINS, strategy="uniform")
        record = {
            "name": s["name"],
            "labels": [int(v) for v in y],
            "probabilities": [float(v) for v in p],
            "curve": {"prob_true": prob_true.tolist(), "prob_pred": prob_pred.tolist()},
            "bin_counts": [int(c) for c in bin_counts(p)],
            "ece": ece(y, p),
            "log_odds": None,
            "platt": None,
        }
        if s["log_odds"] is not None:
            f = np.asarray(s["log_odds"], dtype=np.float64)
            sk_a, sk_b = _sigmoid_calibration(f, y)
            a, b = tight_platt(f, y)
            if abs(a + sk_a) > 1e-5 or abs(b + sk_b) > 1e-5:
                raise SystemExit(f"{s['name']}: scikit-learn ({sk_a}, {sk_b}) vs tight ({a}, {b})")
            record["log_odds"] = [float(v) for v in f]
            record["platt"] = {"sklearn_a": float(sk_a), "sklearn_b": float(sk_b), "a": a, "b": b}
        records.append(record)
    out = {
        "generated_by": "scripts/sklearn_calibration.py",
        "versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__},
        "n_bins": N_BINS,
        "bin_edges": np.linspace(0.0, 1.0, N_BINS + 1).tolist(),
        "sets": records,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for r in records:
        platt = r["platt"] and f", Platt a {r['platt']['a']:.6f} b {r['platt']['b']:.6f}"
        print(f"{r['name']}: n {len(r['labels'])}, ECE {r['ece']:.6f}{platt or ''}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
