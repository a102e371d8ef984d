//! The OpenAPI 3.1 document of the API, built from the code: the routes from [`Endpoint`],
//! the 20 applicant fields and their domains from [`crate::schema::FEATURES`], the answers
//! from the types the handlers serialise (`ToSchema`), the refusals from [`ApiError`]'s
//! statuses. Served at `GET /openapi.json` (no credentials) and committed as `openapi.json`
//! at the root of the repository; a test fails when the committed file is stale.

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
};

pub(super) use super::openapi_responses::{common_refusals, error_response, json_response};
use super::openapi_responses::{request_id_header, serving_refusals, training_refusals};

use super::answer::{BatchAnswer, PredictionAnswer};
use super::error::ErrorBody;
use super::handlers::Hello;
use super::router::REQUEST_ID_HEADER;
use super::Endpoint;
use crate::drift::{Correction, DriftReport, FeatureDrift};
use crate::model::metrics::{ConfusionMatrix, Metrics};
use crate::model::{Contribution, Decision, ReasonCode};
use crate::pipeline::promotion::Comparison;
use crate::pipeline::{RetrainMode, RetrainOutcome, RetrainSummary, TrainingSummary};
use crate::request::MAX_BATCH;
use crate::schema::{Domain, Feature, FeatureKind, FieldError, FEATURES};

/// The route of the document itself.
pub const OPENAPI_ROUTE: &str = "/openapi.json";
/// The name of the Basic auth scheme in the document.
const BASIC_AUTH: &str = "basic";

/// The document, as served and as committed.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for endpoint in Endpoint::ALL {
        paths = paths.path(endpoint.route(), path_item(endpoint));
    }
    paths = paths.path(
        OPENAPI_ROUTE,
        PathItem::new(
            HttpMethod::Get,
            OperationBuilder::new()
                .operation_id(Some("openapi"))
                .summary(Some("This document (no credentials needed)"))
                .securities(Some(Vec::<SecurityRequirement>::new()))
                .response(
                    "200",
                    json_response("the OpenAPI 3.1 document", object_schema()),
                ),
        ),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("fraud-risk")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Scores credit applicants for the risk that they might intend to commit \
                     fraud, from the 20 German-credit features, and trains, retrains and \
                     promotes the model behind it. Every route but this document needs HTTP \
                     Basic credentials of a user added with `fraudctl user add`. Every refusal \
                     is the JSON `Error` with the status that names the problem.",
                )),
        )
        .paths(paths.build())
        .components(Some(components()))
        .security(Some(vec![SecurityRequirement::new(
            BASIC_AUTH,
            Vec::<String>::new(),
        )]))
        .build()
}

/// The document as pretty JSON with a final newline: the committed file's exact bytes.
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}

fn components() -> utoipa::openapi::Components {
    ComponentsBuilder::new()
        .security_scheme(
            BASIC_AUTH,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A user added with `fraudctl user add` (argon2id). Failed logins are \
                         limited per client address and per user name (429 with Retry-After).",
                    ))
                    .build(),
            ),
        )
        .schema("Applicant", applicant_schema())
        .schema("BatchRequest", batch_request_schema())
        .schema("OutcomesRequest", super::outcomes::request_schema())
        .schema_from::<super::outcomes::OutcomesAnswer>()
        .schema_from::<crate::outcomes::OutcomeItem>()
        .schema_from::<crate::outcomes::OutcomeResult>()
        .schema_from::<crate::outcomes::OutcomeCounts>()
        .schema_from::<Hello>()
        .schema_from::<PredictionAnswer<'static>>()
        .schema_from::<BatchAnswer<'static>>()
        .schema_from::<Contribution>()
        .schema_from::<ReasonCode>()
        .schema_from::<Decision>()
        .schema_from::<ErrorBody<'static>>()
        .schema_from::<FieldError>()
        .schema_from::<TrainingSummary>()
        .schema_from::<RetrainSummary>()
        .schema_from::<crate::jobs::Job>()
        .schema_from::<crate::jobs::JobKind>()
        .schema_from::<crate::jobs::JobState>()
        .schema_from::<crate::jobs::JobError>()
        .schema_from::<super::jobs::JobAccepted>()
        .schema_from::<RetrainMode>()
        .schema_from::<RetrainOutcome>()
        .schema_from::<Comparison>()
        .schema_from::<crate::pipeline::promotion::Criterion>()
        .schema_from::<crate::pipeline::promotion::GateData>()
        .schema_from::<crate::pipeline::promotion::GateMargins>()
        .schema_from::<crate::pipeline::promotion::Evaluation>()
        .schema_from::<crate::pipeline::promotion::Replay>()
        .schema_from::<crate::model::CostMatrix>()
        .schema_from::<crate::model::Calibration>()
        .schema_from::<crate::model::ReliabilityBin>()
        .schema_from::<crate::monitor::ScoreReferenceSource>()
        .schema_from::<Metrics>()
        .schema_from::<ConfusionMatrix>()
        .schema_from::<DriftReport>()
        .schema_from::<FeatureDrift>()
        .schema_from::<crate::drift::FeatureDistribution>()
        .schema_from::<crate::drift::DistributionBin>()
        .schema_from::<crate::dataset::DataQuality>()
        .schema_from::<crate::dataset::FeatureQuality>()
        .schema_from::<crate::dataset::QualityExample>()
        .schema_from::<crate::monitor::MonitorReport>()
        .schema_from::<crate::monitor::MonitorWindow>()
        .schema_from::<crate::monitor::PredictionDrift>()
        .schema_from::<crate::monitor::ScoreHistogram>()
        .schema_from::<crate::monitor::ReliabilityBin>()
        .schema_from::<crate::monitor::Performance>()
        .schema_from::<crate::monitor::PerformanceFigures>()
        .schema_from::<crate::monitor::VersionPerformance>()
        .schema_from::<crate::monitor::WeekPerformance>()
        .schema_from::<crate::monitor::SegmentPerformance>()
        .schema_from::<crate::monitor::Alert>()
        .schema_from::<crate::monitor::ServedInputDrift>()
        .schema_from::<crate::pipeline::AppliedWindow>()
        .schema_from::<crate::pipeline::TrainingWindow>()
        .schema_from::<Correction>()
        .schema_from::<FeatureKind>()
        .build()
}

fn path_item(endpoint: Endpoint) -> PathItem {
    match endpoint {
        Endpoint::Hello => PathItem::new(
            HttpMethod::Get,
            OperationBuilder::new()
                .operation_id(Some("hello"))
                .summary(Some("Liveness and the champion's version"))
                .description(Some(
                    "The seed's liveness answer plus the champion's version; says whether the \
                     champion is absent (no training yet, with a hint) or broken \
                     (`champion_error`). HEAD is answered too.",
                ))
                .responses(common_refusals(false))
                .response("200", json_response("alive", reference("Hello"))),
        ),
        Endpoint::InitialTrain => training_operation(TrainingOperation {
            id: "initialtrain",
            summary: "Train on the reference rows and promote the result",
            parameter: "force",
            meaning: "Replace a champion that a retrain promoted (409 otherwise).",
            schema: boolean_schema,
            answer: "TrainingSummary",
        }),
        Endpoint::Retrain => training_operation(TrainingOperation {
            id: "retrain",
            summary: "Drift test, challenger, promotion when the challenger is not worse",
            parameter: "mode",
            meaning: "`always` (default) retrains on every waiting row; `if-drift` only when \
                      the drift test finds drift.",
            schema: mode_schema,
            answer: "RetrainSummary",
        }),
        Endpoint::Predict => {
            let mut get = OperationBuilder::new()
                .operation_id(Some("predict_get"))
                .summary(Some("Score one applicant given as 20 query fields"))
                .description(Some(
                    "JSON by default; a client whose `Accept` weighs `text/html` above \
                     `application/json` gets the HTML page with a form and the result.",
                ));
            for feature in &FEATURES {
                get = get.parameter(
                    ParameterBuilder::new()
                        .name(feature.name)
                        .parameter_in(ParameterIn::Query)
                        .required(Required::True)
                        .description(Some(feature_description(feature)))
                        .schema(Some(feature_schema(feature))),
                );
            }
            let page = ContentBuilder::new()
                .schema(Some(
                    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)),
                ))
                .build();
            let get = get
                .responses(serving_refusals(false))
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("the prediction (JSON), or the page for browsers")
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(reference("PredictionAnswer")))
                                .build(),
                        )
                        .content("text/html", page.clone())
                        .header(REQUEST_ID_HEADER, request_id_header()),
                )
                .response(
                    "422",
                    error_response("invalid fields, every one listed").content("text/html", page),
                );
            let post = OperationBuilder::new()
                .operation_id(Some("predict_post"))
                .summary(Some("Score one applicant, or a batch of 1 to 1,000"))
                .responses(serving_refusals(true))
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(
                                    OneOfBuilder::new()
                                        .item(reference("Applicant"))
                                        .item(reference("BatchRequest")),
                                ))
                                .build(),
                        )
                        .build(),
                ))
                .response(
                    "200",
                    json_response(
                        "the prediction; `{\"predictions\": [...]}` for a batch",
                        OneOfBuilder::new()
                            .item(reference("PredictionAnswer"))
                            .item(reference("BatchAnswer")),
                    ),
                )
                .response(
                    "422",
                    error_response("invalid fields, every one listed (`records[3].age_years`)"),
                );
            PathItem::new(HttpMethod::Get, get).merge_operations_into(HttpMethod::Post, post)
        }
        Endpoint::Outcomes => super::outcomes::path_item(),
        Endpoint::Monitor => super::monitor::path_item(),
        Endpoint::Jobs => super::jobs_openapi::path_item(),
    }
}

/// A training route: one optional parameter, in the query or a JSON body (both must agree).
struct TrainingOperation {
    id: &'static str,
    summary: &'static str,
    parameter: &'static str,
    meaning: &'static str,
    schema: fn() -> ObjectBuilder,
    answer: &'static str,
}

fn training_operation(operation: TrainingOperation) -> PathItem {
    let body = ObjectBuilder::new()
        .property(operation.parameter, (operation.schema)())
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
        .description(Some(format!(
            "Optional; `{}` as in the query (when both give it, they must agree).",
            operation.parameter
        )));
    PathItem::new(
        HttpMethod::Post,
        OperationBuilder::new()
            .operation_id(Some(operation.id))
            .summary(Some(operation.summary))
            .parameter(
                ParameterBuilder::new()
                    .name(operation.parameter)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(operation.meaning))
                    .schema(Some((operation.schema)())),
            )
            .parameter(super::jobs_openapi::wait_parameter())
            .request_body(Some(optional_body(body.into())))
            .responses(training_refusals())
            .response(
                "200",
                json_response(
                    &format!("with wait=true: the {} summary", operation.id),
                    reference(operation.answer),
                ),
            )
            .response("202", super::jobs_openapi::accepted()),
    )
}

/// `PathItem::new` takes one method; this adds another.
trait MergeOperation {
    fn merge_operations_into(self, method: HttpMethod, operation: OperationBuilder) -> PathItem;
}

impl MergeOperation for PathItem {
    fn merge_operations_into(
        mut self,
        method: HttpMethod,
        operation: OperationBuilder,
    ) -> PathItem {
        self.merge_operations(PathItem::new(method, operation));
        self
    }
}

fn optional_body(schema: RefOr<Schema>) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::False))
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

pub(super) fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn boolean_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Boolean))
}

fn mode_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(["always", "if-drift"]))
}

fn object_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object))
}

/// One feature's values: its codes, or its integer range.
fn feature_schema(feature: &Feature) -> ObjectBuilder {
    let integer = ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer));
    match feature.domain {
        Domain::Codes(codes) => integer.enum_values(Some(codes.iter().map(|(code, _)| *code))),
        Domain::Range { min, max } => integer.minimum(Some(min)).maximum(Some(max)),
    }
}

fn feature_description(feature: &Feature) -> String {
    match feature.domain {
        Domain::Codes(codes) => {
            let meanings: Vec<String> = codes
                .iter()
                .map(|(code, meaning)| format!("{code} = {meaning}"))
                .collect();
            format!(
                "{} ({}): {}",
                feature.label,
                feature.kind,
                meanings.join("; ")
            )
        }
        Domain::Range { .. } => format!(
            "{} ({}): {}",
            feature.label,
            feature.kind,
            feature.domain.describe()
        ),
    }
}

/// The 20 fields of one applicant, every one required, nothing else.
fn applicant_schema() -> Schema {
    let mut object = object_schema()
        .description(Some(
            "One applicant: the 20 German-credit fields as JSON integers. Every field is \
             required and no other key is accepted; every broken rule is listed in the 422.",
        ))
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for feature in &FEATURES {
        object = object
            .property(
                feature.name,
                feature_schema(feature).description(Some(feature_description(feature))),
            )
            .required(feature.name);
    }
    object.into()
}

fn batch_request_schema() -> Schema {
    object_schema()
        .description(Some("A batch: 1 to 1,000 applicants, answered in order."))
        .property(
            "records",
            ArrayBuilder::new()
                .items(reference("Applicant"))
                .min_items(Some(1))
                .max_items(Some(MAX_BATCH)),
        )
        .required("records")
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_every_feature_is_described() {
        let value: serde_json::Value =
            serde_json::from_str(&document_json()).unwrap_or(serde_json::Value::Null);
        assert_eq!(value["openapi"], "3.1.0");
        for endpoint in Endpoint::ALL {
            assert!(
                value["paths"][endpoint.route()].is_object(),
                "{} is missing",
                endpoint.name()
            );
        }
        let applicant = &value["components"]["schemas"]["Applicant"];
        assert_eq!(applicant["required"].as_array().map(Vec::len), Some(20));
        let query = value["paths"]["/predict"]["get"]["parameters"]
            .as_array()
            .map(Vec::len);
        assert_eq!(query, Some(20));
        assert_eq!(
            value["components"]["securitySchemes"]["basic"]["scheme"],
            "basic"
        );
        assert_eq!(
            value["paths"][OPENAPI_ROUTE]["get"]["security"],
            serde_json::json!([])
        );
    }
}
