//! The responses the OpenAPI document repeats: the refusals every authenticated route may
//! answer (the edge's 403 included), the error and JSON answer shapes, and their headers.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, Response};

use super::openapi::reference;
use super::router::{MAX_HEADERS, MAX_HEADER_BYTES, MAX_URI_BYTES, REQUEST_ID_HEADER};
use super::MAX_BODY_BYTES;

/// What every authenticated route may answer before its own work.
pub(super) fn common_refusals(with_body: bool) -> ResponsesBuilder {
    let mut responses = ResponsesBuilder::new()
        .response("401", unauthorized())
        .response("403", forbidden_at_the_edge())
        .response(
            "408",
            error_response("the request (body included) took longer than allowed"),
        )
        .response(
            "414",
            error_response(&format!(
                "the request target is longer than {MAX_URI_BYTES} bytes"
            )),
        )
        .response(
            "429",
            error_response("too many failed logins from this address or for this user name")
                .header("Retry-After", retry_after_header()),
        )
        .response(
            "431",
            error_response(&format!(
                "more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} bytes of them"
            )),
        )
        .response(
            "502",
            error_response("the database, artifact store or tracking server failed"),
        )
        .response(
            "503",
            error_response(
                "every password-hashing thread stayed busy (Retry-After); for the model \
                 routes also: no model trained yet, or the champion cannot be loaded (hint)",
            )
            .header("Retry-After", retry_after_header()),
        );
    if with_body {
        responses = responses
            .response("400", error_response("the body is not valid JSON"))
            .response(
                "413",
                error_response(&format!("the body is larger than {MAX_BODY_BYTES} bytes")),
            )
            .response(
                "415",
                error_response("the body is not declared `application/json`"),
            );
    }
    responses
}

pub(super) fn serving_refusals(with_body: bool) -> ResponsesBuilder {
    common_refusals(with_body)
}

pub(super) fn training_refusals() -> ResponsesBuilder {
    common_refusals(true)
        .response("409", super::jobs_openapi::conflict())
        .response(
            "422",
            error_response(
                "a parameter broke its rule, or the query and the body give it differently",
            ),
        )
}

fn unauthorized() -> ResponseBuilder {
    error_response("no or wrong credentials").header(
        "WWW-Authenticate",
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)))
            .description(Some("`Basic realm=\"fraud-risk\"`"))
            .build(),
    )
}

/// API Gateway's answer when the Lambda authorizer denies: its own body, not ours.
fn forbidden_at_the_edge() -> Response {
    let message = ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
    let body = ObjectBuilder::new()
        .property("message", message)
        .required("message");
    ResponseBuilder::new()
        .description(
            "in AWS only, behind the Lambda authorizer: wrong credentials (API Gateway's \
             `{\"message\": \"Forbidden\"}`, no WWW-Authenticate); `fraudctl serve` answers 401",
        )
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(body)).build(),
        )
        .build()
}

pub(super) fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(reference("Error")))
                .build(),
        )
        .header(REQUEST_ID_HEADER, request_id_header())
}

pub(super) fn json_response(description: &str, schema: impl Into<RefOr<Schema>>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .header(REQUEST_ID_HEADER, request_id_header())
        .build()
}

pub(super) fn request_id_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)))
        .description(Some(
            "API Gateway's request id in Lambda, a random one otherwise; also in the log \
             lines and error bodies",
        ))
        .build()
}

fn retry_after_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1)),
        )
        .description(Some("seconds to wait before trying again"))
        .build()
}
