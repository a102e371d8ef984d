//! Lambda function `hello`: `GET /hello`, the seed's liveness answer plus the champion's version.

use fraudrisk::http::{lambda, Endpoint};
use lambda_http::{run, service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
    let app = &app;
    run(service_fn(move |request| {
        lambda::api(app, Endpoint::Hello, request)
    }))
    .await
}
