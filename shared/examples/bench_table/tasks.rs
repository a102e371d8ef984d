//! The timed tasks: predict, train, drift (10k and 1M rows), with the drift breakdown.

use std::hint::black_box;

use fraudrisk::drift::{
    detect_drift, drift_threads, population_stability_index, welch_t_test, DriftConfig,
};
use fraudrisk::model::{fit, training_threads, Model, TrainConfig};
use fraudrisk::request::applicants_from_json;
use fraudrisk::schema::{Applicant, FeatureKind, FEATURES};
use serde_json::{json, Value};

use super::data::{applicants, request_row, train_records};
use super::timing::{result, time};
use super::{Args, Result};

pub(crate) fn bench_predict(args: &Args, model: &Model) -> Result<Vec<Value>> {
    let (row, origin) = request_row(args)?;
    // Checked once outside the loop, so that a bad row is an error rather than a no-op.
    let (applicants, _) = applicants_from_json(&row)?;
    let applicant = *applicants
        .first()
        .ok_or("the request row holds no applicant")?;
    let prediction = model.predict(&applicant);
    let samples = args.samples.unwrap_or(21);

    let full = time(1000, samples, || {
        if let Ok((applicants, _)) = applicants_from_json(black_box(&row)) {
            if let Some(applicant) = applicants.first() {
                black_box(model.predict(applicant));
            }
        }
    });
    let score = time(1000, samples, || {
        black_box(model.probability_of_fraud(black_box(&applicant)));
    });
    let top: Vec<&str> = prediction
        .contributions
        .iter()
        .take(3)
        .map(|c| c.feature)
        .collect();
    let check = json!({
        "row": origin,
        "probability_of_fraud": prediction.probability_of_fraud,
        "decision": prediction.decision.as_str(),
        "top_contributions": top,
    });
    Ok(vec![
        result(
            "predict_full",
            "validate JSON + encode + score + explain (Model::predict)",
            &full,
            check.clone(),
        ),
        result(
            "predict_score",
            "encode + score a validated row (probability_of_fraud)",
            &score,
            json!({"probability_of_fraud": prediction.probability_of_fraud}),
        ),
    ])
}

pub(crate) fn bench_train(args: &Args) -> Result<(Value, Model)> {
    let (records, origin) = train_records(args)?;
    let config = TrainConfig::default();
    let outcome = fit(&records, &config)?;
    let samples = args.samples.unwrap_or(5);
    let timing = time(1, samples, || {
        black_box(fit(black_box(&records), &config).ok());
    });
    let best_auc = outcome
        .cv
        .iter()
        .map(|c| c.mean_roc_auc)
        .fold(f64::NEG_INFINITY, f64::max);
    let check = json!({
        "data": origin,
        "rows": records.len(),
        "fraud_rows": records.iter().filter(|r| r.is_fraud()).count(),
        "chosen_c": 1.0 / outcome.chosen_alpha,
        "best_cv_roc_auc": best_auc,
        // The cap FRAUDRISK_TRAINING_THREADS sets (default: every core).
        "threads": training_threads(),
    });
    let what = format!(
        "fit: {} alphas x {} grouped stratified folds + refit",
        config.alphas.len(),
        config.folds
    );
    Ok((result("train", &what, &timing, check), outcome.model))
}

/// Times `detect_drift` on data sets `reference` vs `current` of [`SETS`].
pub(crate) fn bench_drift(
    args: &Args,
    reference: usize,
    current: usize,
    task: &str,
) -> Result<Value> {
    let (ref_rows, ref_origin) = applicants(args, reference)?;
    let (cur_rows, cur_origin) = applicants(args, current)?;
    let config = DriftConfig::default();
    let load_peak = memory("VmHWM");
    // From here on VmHWM counts only the data held and the drift computation.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = memory("VmRSS");

    let report = detect_drift(&ref_rows, &cur_rows, &config);
    let big = ref_rows.len() >= 100_000;
    let samples = args.samples.unwrap_or(if big { 7 } else { 21 });
    let timing = time(1, samples, || {
        black_box(detect_drift(
            black_box(&ref_rows),
            black_box(&cur_rows),
            &config,
        ));
    });
    let drift_peak = memory("VmHWM");
    let drifted: Vec<&str> = report
        .features
        .iter()
        .filter(|f| f.significant)
        .map(|f| f.feature.as_str())
        .collect();
    let check = json!({
        "reference": ref_origin,
        "current": cur_origin,
        "reference_rows": ref_rows.len(),
        "current_rows": cur_rows.len(),
        "drifted_features": drifted,
        "drift": report.drift,
        // The cap FRAUDRISK_DRIFT_THREADS sets (default: every core).
        "threads": drift_threads(),
    });
    let what = format!(
        "detect_drift {} vs {} rows (20 tests + Bonferroni + PSI)",
        ref_rows.len(),
        cur_rows.len()
    );
    let mut out = result(task, &what, &timing, check);
    if let Some(map) = out.as_object_mut() {
        if args.breakdown {
            map.insert(
                "breakdown".to_string(),
                drift_breakdown(&ref_rows, &cur_rows, samples),
            );
        }
        map.insert(
            "memory".to_string(),
            json!({
                "peak_rss_bytes_during_drift": if reset { drift_peak } else { None },
                "rss_bytes_before_drift": rss_before,
                "peak_rss_bytes_while_loading": load_peak,
                "peak_rss_bytes_process": match (load_peak, drift_peak) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                },
            }),
        );
    }
    Ok(out)
}

/// Parts of the drift work on the 5 numeric features, timed with public functions (the report
/// computes them inside `detect_drift`): seconds per call of each part, all features together.
fn drift_breakdown(reference: &[Applicant], current: &[Applicant], samples: usize) -> Value {
    let numeric: Vec<usize> = (0..FEATURES.len())
        .filter(|&j| FEATURES[j].kind == FeatureKind::Numeric)
        .collect();
    let column =
        |rows: &[Applicant], j: usize| -> Vec<f64> { rows.iter().map(|r| r.0[j]).collect() };
    let columns: Vec<(Vec<f64>, Vec<f64>)> = numeric
        .iter()
        .map(|&j| (column(reference, j), column(current, j)))
        .collect();
    let extract = time(1, samples, || {
        for &j in &numeric {
            black_box((column(reference, j), column(current, j)));
        }
    });
    let welch = time(1, samples, || {
        for (r, c) in &columns {
            black_box(welch_t_test(black_box(r), black_box(c)));
        }
    });
    let psi = time(1, samples, || {
        for ((r, c), &j) in columns.iter().zip(&numeric) {
            black_box(population_stability_index(
                black_box(r),
                black_box(c),
                &FEATURES[j],
            ));
        }
    });
    let pass = time(1, samples, || {
        let mut sum = [0.0; FEATURES.len()];
        for row in reference.iter().chain(current) {
            for (s, v) in sum.iter_mut().zip(row.0.iter()) {
                *s += v;
            }
        }
        black_box(sum);
    });
    json!({
        "numeric_columns_extract_seconds": extract.median,
        "numeric_welch_seconds": welch.median,
        "numeric_psi_seconds": psi.median,
        "one_pass_over_all_rows_seconds": pass.median,
    })
}

/// A `/proc/self/status` memory line (e.g. VmHWM, VmRSS) in bytes; None off Linux.
fn memory(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
