//! Lambda function `predict`: `GET /predict?<20 fields>` (JSON, or the HTML page for a
//! browser) and `POST /predict` (one applicant or `{"records": [...]}`).

use fraudrisk::http::{lambda, Endpoint};
use lambda_http::{run, service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
    // Load the champion during the init phase, not in the first caller's request.
    app.warm_up().await;
    let app = &app;
    run(service_fn(move |request| {
        lambda::api(app, Endpoint::Predict, request)
    }))
    .await
}
