//! Lambda function `authorizer`: API Gateway's HTTP API Lambda authorizer (payload format
//! 2.0, simple responses). It checks the Basic `Authorization` header against the argon2id
//! users and answers `{"isAuthorized": ..., "context": {"username": ...}}`; API Gateway caches
//! the answer per header and the API functions trust the username it carries. See
//! `fraudrisk::http::lambda_authorizer`.

use fraudrisk::http::lambda_authorizer::Authorizer;
use fraudrisk::telemetry;
use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Lambda's log level and format (advanced logging controls); RUST_LOG wins.
    telemetry::init_lambda();
    // Built once per container: the user store, the verifier with its cache and hashing pool.
    let authorizer = Authorizer::from_env().await?;
    let authorizer = &authorizer;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        authorizer.answer(event.payload).await.map_err(Error::from)
    }))
    .await
}
