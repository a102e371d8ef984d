//! The one axum [`Router`] of the API, served by `lambda_http::run` in each Lambda function
//! and by `axum::serve` in `fraudctl serve`.
//!
//! Layers, outermost first: request id (API Gateway's in Lambda, generated otherwise, echoed
//! in `x-request-id`), a trace span per request carrying that id, the JSON error shape for
//! every refusal (with the request id), protocol limits (414, 431), credentials (401, 429,
//! 503, before any body byte is read), the body limit (413), then the stage-prefix rewrite
//! and the routes, each with its timeout (408) covering the body read and the work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, StatusCode, Uri};
use lambda_http::request::RequestContext;
use tower::util::MapRequestLayer;
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::openapi::{self, OPENAPI_ROUTE};
use super::{handlers, ApiError, App, Endpoint};

/// How long a prediction or `/hello` may take, body included (the Lambda timeout is 10 s).
pub const SERVING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a training request may take, body included (the Lambda timeout is 300 s).
pub const TRAINING_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest accepted request target (414 above it).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header fields accepted (431 above it); hyper itself stops at 100.
pub const MAX_HEADERS: usize = 64;
/// Largest total size of the header fields (431 above it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The name of the request id header.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The authenticated user, put in the request's extensions by the credentials layer.
#[derive(Clone, Debug)]
pub struct User(pub String);

/// The router for `endpoints` (each Lambda function mounts its own; `fraudctl serve` all).
/// Unknown routes, and routes of other functions, are the JSON 404.
pub fn router(app: Arc<App>, endpoints: &[Endpoint]) -> Router {
    let mut routes = Router::new();
    for endpoint in endpoints {
        routes = routes.route(endpoint.route(), method_router(*endpoint));
    }
    // The document rides with `/hello`: every deployment has that function.
    if endpoints.contains(&Endpoint::Hello) {
        routes = routes.route(
            OPENAPI_ROUTE,
            get(openapi_json).layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                SERVING_TIMEOUT,
            )),
        );
    }
    let routes = routes.fallback(not_found).with_state(app.clone());
    Router::new()
        .fallback_service(routes)
        // A stage or API mapping before the route (`/prod/predict`) is stripped before the
        // inner router routes, so the Lambda functions and `fraudctl serve` route alike.
        // Plain request maps (tower's, not axum's middleware::map_request): no boxed future
        // and no clone of the inner stack per request.
        .layer(MapRequestLayer::new(strip_stage))
        .layer(RequestBodyLimitLayer::new(app.max_body_bytes()))
        // Error shape, protocol limits and credentials in one middleware: one boxed future
        // per request instead of three.
        .layer(middleware::from_fn_with_state(app, admit))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeId))
        .layer(MapRequestLayer::new(drop_client_request_id))
}

fn method_router(endpoint: Endpoint) -> MethodRouter<Arc<App>> {
    let timeout = |seconds: Duration| {
        tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, seconds)
    };
    match endpoint {
        // `get` answers HEAD too, without the body.
        Endpoint::Hello => get(hello).layer(timeout(SERVING_TIMEOUT)),
        Endpoint::InitialTrain => post(initial_train).layer(timeout(TRAINING_TIMEOUT)),
        Endpoint::Retrain => post(retrain).layer(timeout(TRAINING_TIMEOUT)),
        Endpoint::Predict => get(predict_get)
            .post(predict_post)
            .layer(timeout(SERVING_TIMEOUT)),
        Endpoint::Outcomes => post(record_outcomes).layer(timeout(SERVING_TIMEOUT)),
        // Reads the whole window and scores the training data: a training-sized budget.
        Endpoint::Monitor => post(monitor).layer(timeout(TRAINING_TIMEOUT)),
        Endpoint::Jobs => get(job).layer(timeout(SERVING_TIMEOUT)),
    }
}

/// A request with its body read: within the size limit (413) and the body read timeout
/// (408: a client that sends its headers and then trickles its body is cut off). Our own
/// extractor, so every refusal has the JSON error shape.
pub struct Buffered(pub http::Request<Bytes>);

impl FromRequest<Arc<App>> for Buffered {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let read = axum::body::to_bytes(body, usize::MAX);
        let limit = app.body_read_timeout();
        let bytes = match tokio::time::timeout(limit, read).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) if is_length_limit(&error) => {
                return Err(ApiError::PayloadTooLarge {
                    limit: app.max_body_bytes(),
                })
            }
            Ok(Err(error)) => {
                return Err(ApiError::MalformedJson(format!(
                    "the request body could not be read: {error}"
                )))
            }
            Err(_) => {
                return Err(ApiError::Timeout {
                    seconds: limit.as_secs(),
                })
            }
        };
        Ok(Buffered(http::Request::from_parts(parts, bytes)))
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

fn answer(result: Result<http::Response<Bytes>, ApiError>) -> Response {
    match result {
        Ok(response) => response.map(Body::from),
        Err(error) => IntoResponse::into_response(error),
    }
}

async fn hello(State(app): State<Arc<App>>) -> Response {
    handlers::hello(&app).await.map(Body::from)
}

async fn initial_train(
    State(app): State<Arc<App>>,
    Extension(user): Extension<User>,
    Buffered(request): Buffered,
) -> Response {
    answer(handlers::initial_train(&app, &request, &user.0).await)
}

async fn retrain(
    State(app): State<Arc<App>>,
    Extension(user): Extension<User>,
    Buffered(request): Buffered,
) -> Response {
    answer(handlers::retrain(&app, &request, &user.0).await)
}

async fn job(State(app): State<Arc<App>>, Path(job_id): Path<String>) -> Response {
    answer(super::jobs::get(&app, &job_id).await)
}

async fn predict_get(
    State(app): State<Arc<App>>,
    Extension(user): Extension<User>,
    Buffered(request): Buffered,
) -> Response {
    answer(handlers::predict_get(&app, &request, &user.0).await)
}

async fn predict_post(
    State(app): State<Arc<App>>,
    Extension(user): Extension<User>,
    Buffered(request): Buffered,
) -> Response {
    answer(handlers::predict_post(&app, &request, &user.0).await)
}

async fn record_outcomes(
    State(app): State<Arc<App>>,
    Extension(user): Extension<User>,
    Buffered(request): Buffered,
) -> Response {
    answer(super::outcomes::record_outcomes(&app, &request, &user.0).await)
}

async fn monitor(State(app): State<Arc<App>>, Buffered(request): Buffered) -> Response {
    answer(super::monitor::monitor(&app, &request).await)
}

/// `GET /openapi.json`: the document, made once per container.
async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let bytes = DOCUMENT.get_or_init(|| Bytes::from(openapi::document_json()));
    let mut response = Response::new(Body::from(bytes.clone()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Routes anyone may read: the API's description.
fn is_public(path: &str) -> bool {
    path.trim_end_matches('/').ends_with(OPENAPI_ROUTE)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// `/prod/predict`, `/v1/fraud/predict/` → `/predict`: API Gateway has routed the request
/// already and may put a stage or mapping before the route. Paths whose last segment is no
/// endpoint are left alone (404).
fn strip_stage(mut request: Request) -> Request {
    let path = request.uri().path();
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let last = segments.next().unwrap_or("");
    let before = segments.next();
    let jobs = Endpoint::Jobs.name();
    let route = match Endpoint::ALL.into_iter().find(|e| e.name() == last) {
        Some(Endpoint::Jobs) => return request,
        Some(endpoint) => format!("/{}", endpoint.name()),
        None if format!("/{last}") == OPENAPI_ROUTE => OPENAPI_ROUTE.to_string(),
        // `/prod/jobs/<id>` → `/jobs/<id>`.
        None if before == Some(jobs) && !last.is_empty() => format!("/{jobs}/{last}"),
        None => return request,
    };
    if path == route {
        return request;
    }
    // What preceded the route, so answers that name a URL (a job's status_url) keep it.
    let prefix = route_prefix(path, &route);
    let target = match request.uri().query() {
        Some(query) => format!("{route}?{query}"),
        None => route,
    };
    if let Ok(uri) = target.parse::<Uri>() {
        *request.uri_mut() = uri;
        if !prefix.is_empty() {
            request.extensions_mut().insert(RoutePrefix(prefix));
        }
    }
    request
}

/// What precedes `route` in `path`, as `/segment/…` with empty segments dropped: a path such as
/// `//evil.example/retrain` must not turn into a protocol-relative `Location`.
fn route_prefix(path: &str, route: &str) -> String {
    path.trim_end_matches('/')
        .strip_suffix(route)
        .unwrap_or("")
        .split('/')
        .filter(|segment| !segment.is_empty())
        .fold(String::new(), |prefix, segment| prefix + "/" + segment)
}

/// The stage or mapping [`strip_stage`] took off the path (`/prod`), for URLs in answers.
#[derive(Clone, Debug)]
pub(crate) struct RoutePrefix(pub String);

/// Request ids: API Gateway's in Lambda (so the log lines match its access log), else a
/// fresh random one.
#[derive(Clone, Copy)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, request: &http::Request<B>) -> Option<RequestId> {
        let from_gateway = match request.extensions().get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.request_id.as_deref(),
            _ => None,
        };
        let value = match from_gateway {
            Some(id) => HeaderValue::from_str(id).ok(),
            None => {
                // 32 hex digits, written in place (no intermediate String).
                let mut digits = [0u8; 32];
                hex::encode_to_slice(rand::random::<u128>().to_be_bytes(), &mut digits).ok()?;
                HeaderValue::from_bytes(&digits).ok()
            }
        };
        value.map(RequestId::new)
    }
}

/// The id is ours to give: a client's own `x-request-id` would let it forge log lines.
fn drop_client_request_id(mut request: Request) -> Request {
    request.headers_mut().remove(REQUEST_ID_HEADER);
    request
}

fn request_span(request: &http::Request<Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        request_id = id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// The client's address: API Gateway's `sourceIp`, else the TCP peer (`fraudctl serve`).
fn client_address(extensions: &http::Extensions) -> Option<String> {
    if let Some(RequestContext::ApiGatewayV2(context)) = extensions.get::<RequestContext>() {
        return context.http.source_ip.clone();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string())
}

/// The refusals every request may get, in the JSON shape with the request id: protocol
/// limits (414, 431), then credentials (401, 429, 503) before any body byte is read; the
/// routes' own refusals and the bare ones of axum and tower-http get their shape here too.
async fn admit(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let request_id = request.headers().get(REQUEST_ID_HEADER).cloned();
    let method = request.method().clone();
    let response = match protocol_limits(&request) {
        Some(refusal) => IntoResponse::into_response(refusal),
        None => authenticate(&app, request, next).await,
    };
    error_shape(response, request_id, &method).await
}

/// Credentials before bodies: nothing of the body is read for an unauthenticated request.
async fn authenticate(app: &App, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    // Behind API Gateway's Lambda authorizer the password was checked (and its answer
    // cached) at the edge: no argon2 here. Only Lambda requests carry that context.
    if app.trusts_authorizer() {
        if let Some(user) = super::lambda::authorizer_username(request.extensions()) {
            request.extensions_mut().insert(User(user));
            return next.run(request).await;
        }
    }
    // The address is only needed when the credentials are not in the cache.
    let extensions = request.extensions();
    match app
        .authenticate(request.headers(), || client_address(extensions))
        .await
    {
        Ok(user) => {
            request.extensions_mut().insert(User(user));
            next.run(request).await
        }
        Err(error) => IntoResponse::into_response(error),
    }
}

/// The length of the request target as written (`Uri`'s `Display`), without writing it.
fn uri_len(uri: &Uri) -> usize {
    uri.scheme_str().map_or(0, |scheme| scheme.len() + 3)
        + uri
            .authority()
            .map_or(0, |authority| authority.as_str().len())
        + uri.path().len()
        + uri.query().map_or(0, |query| query.len() + 1)
}

/// 414 and 431 in the JSON shape, below hyper's own (bare) limits.
fn protocol_limits(request: &Request) -> Option<ApiError> {
    if uri_len(request.uri()) > MAX_URI_BYTES {
        return Some(ApiError::Protocol {
            status: StatusCode::URI_TOO_LONG,
            message: format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        });
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::Protocol {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!(
                "the request has more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} \
                 bytes of them"
            ),
        });
    }
    None
}

/// Every refusal in the JSON shape, with the request id: ours already are JSON; the bare
/// answers of axum and tower-http (405, 408, 413) get a body here. Other answers pass
/// untouched.
async fn error_shape(
    response: Response,
    request_id: Option<HeaderValue>,
    method: &Method,
) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("text/html") {
        // The browser page shows its own errors.
        return Response::from_parts(parts, body);
    }
    let ours = if content_type.starts_with("application/json") {
        axum::body::to_bytes(body, 1024 * 1024)
            .await
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .filter(serde_json::Value::is_object)
    } else {
        None
    };
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum lists "GET,HEAD,POST"; the README's form is "GET, HEAD, POST".
        let allow = parts
            .headers
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').map(str::trim).collect::<Vec<_>>().join(", "));
        if let Some(allow) = allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            parts.headers.insert(ALLOW, allow);
        }
    }
    let mut value = ours.unwrap_or_else(|| {
        let message = match status {
            StatusCode::METHOD_NOT_ALLOWED => format!(
                "method {method} is not allowed here; use {}",
                parts
                    .headers
                    .get(ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("another method")
            ),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
                limit: super::MAX_BODY_BYTES,
            }
            .to_string(),
            StatusCode::REQUEST_TIMEOUT => "the request took too long (body included) and was \
                                           cut off"
                .to_string(),
            other => other
                .canonical_reason()
                .unwrap_or("request refused")
                .to_ascii_lowercase(),
        };
        serde_json::json!({ "error": message })
    });
    let request_id = request_id.and_then(|id| id.to_str().ok().map(str::to_string));
    if let (Some(id), Some(object)) = (request_id, value.as_object_mut()) {
        object.insert("request_id".to_string(), serde_json::Value::String(id));
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// Answers one request with `router` (tests, and the `retrain` function's API events).
pub async fn call(router: &Router, request: http::Request<Body>) -> http::Response<Bytes> {
    let response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    http::Response::from_parts(parts, bytes)
}

#[cfg(test)]
mod tests {
    use super::route_prefix;

    #[test]
    fn a_route_prefix_keeps_its_segments_and_never_starts_with_two_slashes() {
        assert_eq!(route_prefix("/prod/retrain", "/retrain"), "/prod");
        assert_eq!(route_prefix("/v1/fraud/retrain/", "/retrain"), "/v1/fraud");
        assert_eq!(
            route_prefix("//evil.example/retrain", "/retrain"),
            "/evil.example"
        );
        assert_eq!(route_prefix("/a//b/jobs/x", "/jobs/x"), "/a/b");
        assert_eq!(route_prefix("/retrain", "/retrain"), "");
    }
}
