//! Lambda function `initialtrain`: `POST /initialtrain` through API Gateway (202 with a job
//! id, or 200 with `?wait=true`), and the training jobs it hands to itself as asynchronous
//! invocations (`{"job_id": ..., "kind": "initialtrain"}`); see
//! `fraudrisk::http::lambda_jobs::initialtrain_event`.

use fraudrisk::http::{lambda_jobs, router, Endpoint};
use fraudrisk::telemetry;
use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: services, authenticator with its cache, champion cache, and
    // the Lambda client that hands jobs over.
    let app = lambda_jobs::training_app_from_env().await?;
    let router = router(app.clone(), &[Endpoint::InitialTrain]);
    let (app, router) = (&app, &router);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        lambda_jobs::initialtrain_event(app, router, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
