//! Datasets: CSV input, the built-in generator, fingerprints.
