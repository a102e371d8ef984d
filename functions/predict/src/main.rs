//! Lambda function `predict`: `GET /predict?<20 fields>` (JSON, or the HTML page for a
//! browser) and `POST /predict` (one applicant or `{"records": [...]}`).

use fraudrisk::http::{lambda, router, Endpoint};
use fraudrisk::telemetry;
use lambda_http::{run, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
    // Load the champion during the init phase, not in the first caller's request.
    app.warm_up().await;
    // The shared router with only this function's route; lambda_http runs it as a service.
    run(router(app, &[Endpoint::Predict])).await
}
