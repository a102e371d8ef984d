//! fraudrisk: the common crate of the fraud-risk service.
//!
//! A domain in the middle (schema, dataset, model, drift, pipeline), ports at its edge
//! (`ports`), adapters behind the ports (`adapters`), and thin entry points elsewhere:
//! the Lambda binaries under `functions/` and the `fraudctl` command line.

pub mod adapters;
pub mod artifact_store;
pub mod auth;
pub mod config;
pub mod dataset;
pub mod drift;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod lock_owner;
pub mod model;
pub mod monitor;
pub mod outcomes;
pub mod pipeline;
pub mod ports;
pub mod progress;
pub mod report;
pub mod request;
pub mod schema;
pub mod services;
pub mod telemetry;

/// An underlying error kept as the `source()` of the crate's own errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
