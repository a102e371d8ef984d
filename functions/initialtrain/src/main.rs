//! Lambda function `initialtrain`: `POST /initialtrain`, train on the reference rows and
//! promote the result to champion.

use fraudrisk::http::{lambda, router, Endpoint};
use lambda_http::{run, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    // Built once per container: services, authenticator with its cache, champion cache.
    let app = lambda::app_from_env().await?;
    // The shared router with only this function's route; lambda_http runs it as a service.
    run(router(app, &[Endpoint::InitialTrain])).await
}
