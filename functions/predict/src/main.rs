//! Lambda function `predict`: `GET /predict?<20 fields>` (JSON, or the HTML page for a
//! browser) and `POST /predict` (one applicant or `{"records": [...]}`).

use fraudrisk::http::{lambda, router, Endpoint};
use lambda_http::{run, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
    // Load the champion during the init phase, not in the first caller's request.
    app.warm_up().await;
    // The shared router with only this function's route; lambda_http runs it as a service.
    run(router(app, &[Endpoint::Predict])).await
}
