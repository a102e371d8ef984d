//! Lambda function `ingest`: EventBridge's S3 "Object Created" events for keys under
//! `<prefix>/incoming/` (or S3 event notifications). Each file is loaded as labelled rows or
//! outcomes, then moved to `processed/` or `rejected/`; see `fraudrisk::ingest`.

use fraudrisk::config::Config;
use fraudrisk::http::lambda::state_dir;
use fraudrisk::ingest::{ingest_event, IngestStores, IngestTarget};
use fraudrisk::services::Services;
use fraudrisk::telemetry;
use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: the database pool and the S3 client.
    let config = Config::from_env()?;
    let services = Services::production(&config, &state_dir()).await?;
    let target = IngestTarget::from_config(&config);
    let (services, target) = (&services, &target);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let stores = IngestStores {
            records: services.records.as_ref(),
            outcomes: services.outcomes.as_ref(),
            objects: services.artifacts.as_ref(),
        };
        let outcomes = ingest_event(&stores, target, &event.payload).await?;
        Ok::<Value, Error>(serde_json::json!({ "files": outcomes }))
    }))
    .await
}
