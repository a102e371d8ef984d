//! One L2-penalised logistic regression on a row set of the design, on the log-odds of fraud,
//! with an optional warm start: linfa's `Fit` with [`NewtonLogistic`].

use linfa::prelude::*;
use ndarray::Array1;

use super::design::{Design, Rows};
use super::newton::{DesignRows, Fitted, NewtonLogistic};
use super::train::TrainConfig;
use super::{Model, ModelError};
#[cfg(test)]
use crate::schema::LabeledRecord;

/// Fits the standardisation and the weights on `rows` of `design` with one alpha. The passes
/// run over the distinct rows, each weighted by its copies (linfa's sample weights).
pub(super) fn fit_rows(
    design: &Design,
    rows: &Rows,
    alpha: f64,
    config: &TrainConfig,
    warm: Option<Array1<f64>>,
) -> Result<Fitted, ModelError> {
    let distinct = design.distinct(rows);
    let targets: Array1<bool> = distinct.rows.iter().map(|&r| design.is_fraud(r)).collect();
    let records = DesignRows {
        design,
        rows,
        distinct: &distinct.rows,
    };
    let dataset = if distinct.rows.len() == rows.len() {
        DatasetBase::new(records, targets)
    } else {
        DatasetBase::new(records, targets).with_weights(Array1::from(distinct.copies))
    };
    NewtonLogistic::new(alpha)
        .max_iterations(config.max_iterations)
        .warm_start(warm)
        .fit(&dataset)
}

/// The model [`fit_rows`] fits, with the encoded columns' means over those rows.
pub(super) fn model_on_rows(
    design: &Design,
    rows: &Rows,
    alpha: f64,
    config: &TrainConfig,
    warm: Option<Array1<f64>>,
) -> Result<Model, ModelError> {
    let fitted = fit_rows(design, rows, alpha, config, warm)?;
    tracing::debug!(
        alpha,
        rows = rows.len(),
        iterations = fitted.iterations,
        "Newton fit"
    );
    let column_means = design.column_means(&fitted.encoder, rows);
    Model::from_parts(
        fitted.encoder,
        fitted.intercept,
        fitted.weights.to_vec(),
        column_means,
        // `fit` then moves it to the cost-minimising threshold.
        super::DEFAULT_THRESHOLD,
    )
}

/// Fits encoder and weights on all `records` with one alpha.
#[cfg(test)]
pub(super) fn fit_one(
    records: &[LabeledRecord],
    alpha: f64,
    config: &TrainConfig,
    warm: Option<Array1<f64>>,
) -> Result<Model, ModelError> {
    let design = Design::new(records)?;
    model_on_rows(&design, &design.all_rows(), alpha, config, warm)
}

#[cfg(test)]
#[path = "solver_tests.rs"]
mod tests;
