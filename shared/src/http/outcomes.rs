//! `POST /outcomes`: fraud outcomes reported by prediction id, and the route's OpenAPI
//! operation.
//!
//! The body is checked whole first (422 naming `outcomes[i].field`, nothing stored); then
//! every outcome is recorded in one transaction and the answer says, per item, what became
//! of it ([`OutcomeResult`]). `?overwrite=true` replaces a different stored outcome whose
//! labelled row no version has trained on yet.

use bytes::Bytes;
use chrono::Utc;
use http::{Request, Response, StatusCode};
use serde::Serialize;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, Required, SchemaFormat};
use utoipa::ToSchema;

use super::error::json_response;
use super::handlers::{parse_body, query_pairs, require_json};
use super::openapi::{common_refusals, error_response, json_response as json_answer, reference};
use super::{ApiError, App};
use crate::outcomes::{outcomes_from_json, OutcomeCounts, OutcomeItem, MAX_OUTCOMES};
use crate::schema::FieldError;

/// The answer of `POST /outcomes`.
#[derive(Serialize, ToSchema)]
pub(super) struct OutcomesAnswer {
    /// How many items had each result.
    counts: OutcomeCounts,
    /// One entry per reported outcome, in the request's order.
    outcomes: Vec<OutcomeItem>,
}

/// `POST /outcomes`.
pub(super) async fn record_outcomes(
    app: &App,
    request: &Request<Bytes>,
    user: &str,
) -> Result<Response<Bytes>, ApiError> {
    let mut errors = Vec::new();
    let mut overwrite: Option<bool> = None;
    for (key, value) in query_pairs(request) {
        if key != "overwrite" {
            errors.push(FieldError::new(
                &key,
                "is not a parameter of outcomes (only overwrite)".to_string(),
                None,
            ));
        } else if overwrite.is_some() {
            errors.push(FieldError::new(
                &key,
                "is given more than once".to_string(),
                None,
            ));
        } else {
            match value.as_ref() {
                "true" => overwrite = Some(true),
                "false" => overwrite = Some(false),
                other => errors.push(FieldError::new(
                    "overwrite",
                    "must be true or false".to_string(),
                    Some(other.to_string()),
                )),
            }
        }
    }
    require_json(request.headers())?;
    let body = parse_body(request.body())?;
    let outcomes = match outcomes_from_json(&body, Utc::now()) {
        Ok(outcomes) => outcomes,
        Err(fields) => {
            errors.extend(fields);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    // `fraudctl serve` logs in the background: what it answered must be findable now.
    app.log.flush().await;
    let decisions = app
        .services
        .outcomes
        .record_outcomes(&outcomes, overwrite.unwrap_or(false), Some(user))
        .await?;
    let items: Vec<OutcomeItem> = outcomes
        .iter()
        .zip(&decisions)
        .enumerate()
        .map(|(index, (outcome, decision))| {
            OutcomeItem::new(index, outcome.prediction_id, decision)
        })
        .collect();
    let counts = OutcomeCounts::of(&items);
    tracing::info!(
        reported = items.len(),
        recorded = counts.recorded,
        replaced = counts.replaced,
        conflict = counts.conflict + counts.absorbed,
        unknown = counts.unknown_prediction,
        "outcomes reported"
    );
    Ok(json_response(
        StatusCode::OK,
        &OutcomesAnswer {
            counts,
            outcomes: items,
        },
    ))
}

/// The request body's schema.
pub(super) fn request_schema() -> Schema {
    let string = || ObjectBuilder::new().schema_type(SchemaType::Type(Type::String));
    let item = ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .description(Some(
            "One outcome. `prediction_id` occurs once per request; `observed_at` is not in the \
             future (5 minutes of clock skew allowed) and defaults to the time of the request.",
        ))
        .property(
            "prediction_id",
            string()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                .description(Some("the id the prediction's answer carried")),
        )
        .required("prediction_id")
        .property(
            "fraud",
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Boolean))
                .description(Some("whether the applicant turned out to commit fraud")),
        )
        .required("fraud")
        .property(
            "observed_at",
            string()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("when the outcome was observed (RFC 3339)")),
        )
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::Object))
        .description(Some(
            "1 to 1,000 outcomes, each for a different prediction.",
        ))
        .property(
            "outcomes",
            ArrayBuilder::new()
                .items(item)
                .min_items(Some(1))
                .max_items(Some(MAX_OUTCOMES)),
        )
        .required("outcomes")
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
        .into()
}

/// The OpenAPI operation of `POST /outcomes`.
pub(super) fn path_item() -> PathItem {
    PathItem::new(
        HttpMethod::Post,
        OperationBuilder::new()
            .operation_id(Some("outcomes"))
            .summary(Some(
                "Report fraud outcomes of served predictions by prediction id",
            ))
            .description(Some(
                "Each recorded outcome turns its prediction's inputs into a labelled row \
                 (source `outcome`) that waits for the next retrain. Per item: `recorded` \
                 (201), `unchanged` (the same outcome again, 200), `conflict` (a different one \
                 is stored, 409; `overwrite=true` replaces it and keeps the old one in the \
                 audit trail: `replaced`, 200), `absorbed` (409: a version has trained on the \
                 stored outcome) or `unknown_prediction` (404). The request is 200 whenever \
                 the body was valid; an invalid body stores nothing (422).",
            ))
            .parameter(
                ParameterBuilder::new()
                    .name("overwrite")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(
                        "Replace a different stored outcome whose row is still waiting.",
                    ))
                    .schema(Some(
                        ObjectBuilder::new().schema_type(SchemaType::Type(Type::Boolean)),
                    )),
            )
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(reference("OutcomesRequest")))
                            .build(),
                    )
                    .build(),
            ))
            .responses(common_refusals(true))
            .response(
                "200",
                json_answer("what became of each outcome", reference("OutcomesAnswer")),
            )
            .response(
                "422",
                error_response(
                    "the body or a parameter broke a rule, every one listed \
                     (`outcomes[3].fraud`); nothing was stored",
                ),
            ),
    )
}
