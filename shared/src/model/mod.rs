//! Model: encoding, logistic regression, metrics, artifact.
