//! Lambda function `outcomes`: `POST /outcomes` with `{"outcomes": [{"prediction_id",
//! "fraud", "observed_at"}, ...]}`; each recorded outcome becomes a labelled row waiting for
//! the next retrain.

use fraudrisk::http::{lambda, router, Endpoint};
use fraudrisk::telemetry;
use lambda_http::{run, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: services (the database pool), authenticator with its cache.
    let app = lambda::app_from_env().await?;
    // The shared router with only this function's route; lambda_http runs it as a service.
    run(router(app, &[Endpoint::Outcomes])).await
}
