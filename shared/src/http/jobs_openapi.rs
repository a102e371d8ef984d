//! The OpenAPI pieces of the training jobs: `GET /jobs/{job_id}`, the `wait` parameter and
//! the 202 answer of the training routes.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{Required, Response};

use super::openapi::{common_refusals, error_response, json_response, reference};

/// `GET /jobs/{job_id}`.
pub(super) fn path_item() -> PathItem {
    PathItem::new(
        HttpMethod::Get,
        OperationBuilder::new()
            .operation_id(Some("job"))
            .summary(Some("A training job's state"))
            .description(Some(
                "`queued`, `running`, `succeeded` (with the training or retrain summary) or \
                 `failed` (with `error.code` and `error.message`). A job queued or running \
                 longer than the job timeout (FRAUDRISK_JOB_TIMEOUT_SECS) reads as failed \
                 with the code `timed_out`.",
            ))
            .parameter(
                ParameterBuilder::new()
                    .name("job_id")
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some("The id a training route answered with."))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(SchemaType::Type(Type::String))
                            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
                    )),
            )
            .responses(common_refusals(false))
            .response("200", json_response("the job", reference("Job")))
            .response("404", error_response("no job has this id"))
            .response("422", error_response("the id is not a UUID (names job_id)")),
    )
}

/// The `wait` query parameter of the training routes.
pub(super) fn wait_parameter() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("wait")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "`true` runs the training within the request and answers 200 with its summary \
             (small data, tests); `false` (default) answers 202 with a job id at once.",
        ))
        .schema(Some(
            ObjectBuilder::new().schema_type(SchemaType::Type(Type::Boolean)),
        ))
}

/// The 202 answer of the training routes.
pub(super) fn accepted() -> Response {
    let mut response = json_response(
        "the job is queued; follow it at status_url (also in Location)",
        reference("JobAccepted"),
    );
    let location = HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)))
        .description(Some("`/jobs/<job_id>`"))
        .build();
    response.headers.insert("Location".to_string(), location);
    response
}

/// The 409 of the training routes.
pub(super) fn conflict() -> ResponseBuilder {
    error_response(
        "a training job is queued or running already (`job_id` names it); with wait=true also: \
         the training lock is held, there is no reference data yet, or initialtrain without \
         force would replace a champion that retrain promoted",
    )
}
