//! Lambda function `monitor`: `POST /monitor` through API Gateway, and the daily EventBridge
//! schedule, in the same function. The event's shape decides; see
//! `fraudrisk::http::lambda_monitor::monitor_event`.

use fraudrisk::http::{lambda, lambda_monitor};
use fraudrisk::telemetry;
use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: services, authenticator with its cache.
    let app = lambda::app_from_env().await?;
    let router = lambda_monitor::monitor_router(app.clone());
    let (app, router) = (&app, &router);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        lambda_monitor::monitor_event(app, router, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
