//! Adapters behind the ports.
pub mod local_artifacts;
pub mod local_tracker;
pub mod mlflow;
pub mod postgres;
pub mod s3;
pub mod secrets;
pub mod sqlite;
