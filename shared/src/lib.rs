//! fraudrisk: the common crate of the fraud-risk service.
//!
//! A domain in the middle (schema, dataset, model, drift, pipeline), ports at its edge
//! (`ports`), adapters behind the ports (`adapters`), and thin entry points elsewhere:
//! the Lambda binaries under `functions/` and the `fraudctl` command line.

pub mod adapters;
pub mod dataset;
pub mod drift;
pub mod model;
pub mod schema;
