//! Lambda function `retrain`: `POST /retrain` through API Gateway (202 with a job id, or 200
//! with `?wait=true`), the training jobs it hands to itself as asynchronous invocations
//! (`{"job_id": ..., "kind": "retrain"}`), and the EventBridge schedules (a Scheduled Event,
//! or a constant input such as `{"mode": "if-drift"}`), in the same function. The event's shape decides; see `fraudrisk::http::lambda::retrain_event`.

use fraudrisk::http::{lambda, lambda_jobs};
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
    // API Gateway events go through the same router as everywhere else.
    let router = lambda::retrain_router(app.clone());
    let (app, router) = (&app, &router);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        lambda::retrain_event(app, router, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
