"""MLflow ``python_function`` loader for fraudrisk models.

The fraudrisk crate (Rust) writes this file beside ``model.json`` as ``code/fraudrisk_pyfunc.py``
and names it in the ``MLmodel``'s ``python_function`` flavor, so that

    import mlflow
    model = mlflow.pyfunc.load_model("models:/fraud-risk@champion")   # or a local model folder
    model.predict(applicants)   # a DataFrame with the 20 feature columns

gives P(fraud) per row, the same numbers as the Rust service (its log-odds are summed in the same
order, with the same operations, and a Platt calibration stored in model.json maps them through
sigmoid(a * z + b) as the service does), and ``mlflow models serve`` can serve it.

Only numpy and pandas (both come with mlflow). Inputs are checked as the service checks them:
a missing or unknown column, or a value outside its feature's domain, is a ValueError that names
the column, the row and the rule; nothing is scored then.
"""

import json
import math
import numbers

import numpy as np
import pandas as pd

# The model.json format this loader reads (fraudrisk's FORMAT_VERSION).
FORMAT_VERSION = 1

# The output column, as in the MLmodel's signature.
OUTPUT_COLUMN = "probability_of_fraud"

# The 20 features in schema order: (name, kind, domain), domain ("codes", (...)) or
# ("range", (min, max)). Must equal shared/src/schema/features.rs: a Rust test compares the block.
# BEGIN FEATURES
FEATURES = (
    ("account_balance", "nominal", ("codes", (1, 2, 3, 4))),
    ("duration_of_credit_month", "numeric", ("range", (1, 120))),
    ("payment_status_of_previous_credit", "nominal", ("codes", (0, 1, 2, 3, 4))),
    ("purpose", "nominal", ("codes", (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10))),
    ("credit_amount", "numeric", ("range", (1, 1000000))),
    ("value_savings_stocks", "nominal", ("codes", (1, 2, 3, 4, 5))),
    ("length_of_current_employment", "ordinal", ("codes", (1, 2, 3, 4, 5))),
    ("instalment_per_cent", "numeric", ("range", (1, 4))),
    ("sex_marital_status", "nominal", ("codes", (1, 2, 3, 4))),
    ("guarantors", "nominal", ("codes", (1, 2, 3))),
    ("duration_in_current_address", "ordinal", ("codes", (1, 2, 3, 4))),
    ("most_valuable_available_asset", "nominal", ("codes", (1, 2, 3, 4))),
    ("age_years", "numeric", ("range", (18, 120))),
    ("concurrent_credits", "nominal", ("codes", (1, 2, 3))),
    ("type_of_apartment", "nominal", ("codes", (1, 2, 3))),
    ("no_of_credits_at_this_bank", "numeric", ("range", (1, 4))),
    ("occupation", "ordinal", ("codes", (1, 2, 3, 4))),
    ("no_of_dependents", "binary", ("codes", (0, 1))),
    ("telephone", "binary", ("codes", (0, 1))),
    ("foreign_worker", "binary", ("codes", (0, 1))),
)
# END FEATURES

# How many problems one error message lists before it only counts the rest.
_MAX_LISTED = 10


def _describe(domain):
    """The rule as the service words it (schema.rs, Domain::describe)."""
    form, values = domain
    if form == "range":
        return f"an integer from {values[0]} to {values[1]}"
    return "one of the codes " + ", ".join(str(c) for c in values)


def _format_value(value):
    """A value as the service prints it: integral numbers without a fraction."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_artifact(artifact):
    """What the Rust loader checks (ModelArtifact::model), so a model this module cannot score
    exactly as the service does is refused instead of silently shifted. Returns the column
    offset of each feature."""
    version = artifact.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"model.json has format_version {version!r}, this loader reads only version "
            f"{FORMAT_VERSION}"
        )
    names = [name for name, _, _ in FEATURES]
    if artifact.get("features") != names:
        raise ValueError(
            f"model.json lists the features {artifact.get('features')!r}, expected {names!r}"
        )
    encoding = artifact.get("encoding")
    if not isinstance(encoding, list) or len(encoding) != len(FEATURES):
        raise ValueError("model.json's encoding must list one entry per feature")
    offsets = [0]
    columns = []
    for enc, (name, kind, domain) in zip(encoding, FEATURES):
        if enc.get("name") != name or enc.get("kind") != kind:
            raise ValueError(
                f"model.json encodes {enc.get('name')!r} ({enc.get('kind')}) where {name} ({kind}) "
                "belongs"
            )
        how = enc.get("encoding")
        if kind in ("numeric", "ordinal") and how == "standardized":
            mean, std = enc.get("mean"), enc.get("std")
            if not all(_finite(v) for v in (mean, std)) or std <= 0:
                raise ValueError(
                    f"{name} has mean {mean!r} and std {std!r}; both must be finite and std positive"
                )
            columns.append(name)
        elif kind == "nominal" and how == "one_hot":
            if tuple(enc.get("codes", ())) != domain[1]:
                raise ValueError(
                    f"{name} is one-hot over codes {enc.get('codes')!r}, "
                    f"the schema's codes are {list(domain[1])}"
                )
            columns.extend(f"{name}={code}" for code in domain[1])
        elif kind == "binary" and how == "passthrough":
            columns.append(name)
        else:
            raise ValueError(f"{name} ({kind}) has the wrong encoding {how!r}")
        offsets.append(len(columns))
    coefficients = artifact.get("coefficients")
    if not isinstance(coefficients, list) or [c.get("column") for c in coefficients] != columns:
        raise ValueError(
            f"model.json's coefficients must name the encoded columns {columns!r} in order"
        )
    weights = [c.get("weight") for c in coefficients]
    if not all(_finite(v) for v in [artifact.get("intercept"), artifact.get("threshold")] + weights):
        raise ValueError("model.json's intercept, threshold and weights must be finite numbers")
    _check_calibration(artifact.get("calibration"))
    return offsets


def _check_calibration(calibration):
    """None (absent), or {"method": "platt", "a": finite, "b": finite} (Calibration::Platt)."""
    if calibration is None:
        return
    if not isinstance(calibration, dict) or calibration.get("method") != "platt":
        raise ValueError(
            f"model.json's calibration must be Platt scaling (method \"platt\"), got {calibration!r}"
        )
    if not all(_finite(calibration.get(k)) for k in ("a", "b")):
        raise ValueError(f"model.json's Platt calibration needs finite a and b, got {calibration!r}")


class FraudRiskModel:
    """A fraudrisk logistic regression read from model.json."""

    def __init__(self, artifact):
        self._offsets = _check_artifact(artifact)
        self.artifact = artifact
        self.intercept = float(artifact["intercept"])
        self.weights = [float(c["weight"]) for c in artifact["coefficients"]]
        self.threshold = float(artifact["threshold"])
        calibration = artifact.get("calibration")
        # (a, b) of P(fraud) = sigmoid(a * z + b) on the log-odds z, or None.
        self.platt = None if calibration is None else (float(calibration["a"]), float(calibration["b"]))
        self.version = (artifact.get("provenance") or {}).get("version")

    def predict(self, model_input, params=None):
        """P(fraud) per row of a DataFrame with the 20 feature columns (integer codes and
        counts), as a one-column DataFrame named probability_of_fraud on the input's index."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        values = _validated(frame)
        z = self._log_odds(values)
        if self.platt is not None:
            # Calibration::probability: a * z + b (two roundings, as in Rust), then the sigmoid.
            a, b = self.platt
            z = a * z + b
        return pd.DataFrame({OUTPUT_COLUMN: _sigmoid(z)}, index=frame.index)

    def _log_odds(self, values):
        """Model::log_odds, a column at a time: start at the intercept, add each feature's term in
        schema order; a standardised term is weight * (x - mean) / std, evaluated left to right."""
        n = values.shape[0]
        z = np.full(n, self.intercept, dtype=np.float64)
        for i, enc in enumerate(self.artifact["encoding"]):
            x = values[:, i]
            start = self._offsets[i]
            how = enc["encoding"]
            if how == "standardized":
                term = self.weights[start] * (x - float(enc["mean"])) / float(enc["std"])
            elif how == "one_hot":
                term = np.zeros(n, dtype=np.float64)
                for position, code in enumerate(enc["codes"]):
                    term[x == float(code)] = self.weights[start + position]
            else:
                term = self.weights[start] * x
            z = z + term
        return z


def _validated(frame):
    """The 20 columns as a float matrix, in schema order, or a ValueError listing every problem
    (missing and unknown columns first, then up to ten bad cells)."""
    names = [name for name, _, _ in FEATURES]
    problems = []
    for name, _, domain in FEATURES:
        if name not in frame.columns:
            problems.append(f"column {name} is required: {_describe(domain)}")
    for column in frame.columns:
        if column not in names:
            problems.append(f"column {column} is not a feature of this model")
    for column in frame.columns[frame.columns.duplicated()].unique():
        problems.append(f"column {column} is given more than once")
    if problems:
        raise ValueError("; ".join(problems))
    values = np.empty((len(frame), len(FEATURES)), dtype=np.float64)
    bad = []
    for i, (name, _, domain) in enumerate(FEATURES):
        values[:, i] = _column_values(frame[name], name, domain, frame.index, bad)
    if bad:
        listed = "; ".join(bad[:_MAX_LISTED])
        more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise ValueError(listed + more)
    return values


def _column_values(series, name, domain, index, bad):
    """One column as floats; each refused cell appends 'row R, column C must be ... (got V)'."""
    rule = _describe(domain)
    out = np.zeros(len(series), dtype=np.float64)
    for position, value in enumerate(series.tolist()):
        row = index[position]
        # bool is a numbers.Real in Python, but not a number to the service.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            bad.append(f"row {row}, column {name} must be a number: {rule} (got {_format_value(value)})")
            continue
        number = float(value)
        # Feature::check: finite, whole, at most 1e15 in size, then in the domain.
        ok = math.isfinite(number) and number.is_integer() and abs(number) <= 1e15
        if ok:
            code = int(number)
            form, allowed = domain
            ok = allowed[0] <= code <= allowed[1] if form == "range" else code in allowed
        if not ok:
            bad.append(f"row {row}, column {name} must be {rule} (got {_format_value(number)})")
            continue
        out[position] = number
    return out


def _sigmoid(z):
    """The Rust sigmoid: 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) below, so neither overflows."""
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def load_model_json(path):
    """A FraudRiskModel from a model.json file."""
    with open(path, encoding="utf-8") as f:
        return FraudRiskModel(json.load(f))


def _load_pyfunc(data_path, model_config=None):
    """MLflow's loader contract: data_path is the flavor's `data`, the model.json file."""
    return load_model_json(data_path)
