//! Lambda function `retrain`: `POST /retrain` through API Gateway, and the EventBridge
//! schedules (a Scheduled Event, or a constant input such as `{"mode": "if-drift"}`), in the
//! same function. The event's shape decides; see `fraudrisk::http::lambda::retrain_event`.

use fraudrisk::http::lambda;
use fraudrisk::telemetry;
use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
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
