//! Lambda function `hello`: `GET /hello`, the seed's liveness answer plus the champion's
//! version; `GET /jobs/{job_id}`, a training job's state; `GET /openapi.json`.

use fraudrisk::http::{lambda, router, Endpoint};
use fraudrisk::telemetry;
use lambda_http::{run, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
    // The shared router with only this function's route; lambda_http runs it as a service.
    run(router(app, &[Endpoint::Hello, Endpoint::Jobs])).await
}
