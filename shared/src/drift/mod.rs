//! Drift tests: see the module docs once implemented.
