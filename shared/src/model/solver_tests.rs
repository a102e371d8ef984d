//! The Newton solver against linfa-logistic (the cross-check the README promises) and its
//! warm starts.

use super::*;
use crate::model::encoding::Encoder;
use crate::model::testdata;
use linfa_logistic::LogisticRegression;
use ndarray::Axis;

fn config() -> TrainConfig {
    TrainConfig {
        alphas: vec![0.1, 1.0, 10.0, 100.0],
        ..TrainConfig::default()
    }
}

/// linfa-logistic's weights and intercept on the log-odds of fraud, to a tight tolerance.
/// Its L-BFGS also stops when the cost stops changing by much, short of the optimum on weakly
/// penalised fits, so it is restarted from its own result until its gradient is tiny: linfa
/// alone, from a cold start, reaching the optimum.
fn linfa_logistic(records: &[LabeledRecord], alpha: f64) -> (Vec<f64>, f64) {
    let encoder = Encoder::fit(records.iter().map(|r| &r.applicant)).unwrap();
    let x = encoder.encode_records(records.iter());
    let y: Array1<bool> = records.iter().map(|r| r.is_fraud()).collect();
    let dataset = DatasetBase::new(x.view(), y.view());
    let params = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(20_000)
        .gradient_tolerance(1e-11);
    let mut fitted = params.clone().fit(&dataset).unwrap();
    for _ in 0..10 {
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        let weights: Vec<f64> = fitted.params().iter().map(|w| w * sign).collect();
        let intercept = fitted.intercept() * sign;
        let g = largest_gradient(records, &weights, intercept, alpha);
        if g < 1e-7 * records.len() as f64 {
            return (weights, intercept);
        }
        let mut start = fitted.params().to_vec();
        start.push(fitted.intercept());
        fitted = params
            .clone()
            .initial_params(Array1::from(start))
            .fit(&dataset)
            .unwrap();
    }
    panic!("linfa-logistic did not reach a gradient of 1e-7 per row at alpha {alpha}");
}

/// The largest component of the objective's gradient (summed loss + α/2‖w‖²) at (w, b), on
/// the standardised columns: zero at the optimum.
fn largest_gradient(records: &[LabeledRecord], weights: &[f64], intercept: f64, alpha: f64) -> f64 {
    let encoder = Encoder::fit(records.iter().map(|r| &r.applicant)).unwrap();
    let x = encoder.encode_records(records.iter());
    let w = Array1::from(weights.to_vec());
    let mut g = w.clone() * alpha;
    let mut g_intercept = 0.0;
    for (row, record) in x.rows().into_iter().zip(records) {
        let p = 1.0 / (1.0 + (-(row.dot(&w) + intercept)).exp());
        let residual = p - f64::from(u8::from(record.is_fraud()));
        g.scaled_add(residual, &row);
        g_intercept += residual;
    }
    g.iter().fold(g_intercept.abs(), |m, v| m.max(v.abs()))
}

#[test]
fn newton_finds_linfa_logistics_coefficients() {
    // Seed-like data (the generator's tables), over the default grid.
    let records = crate::dataset::generate_reference(5_000, 7);
    for alpha in TrainConfig::default().alphas {
        let newton = fit_one(&records, alpha, &config(), None).unwrap();
        let (weights, intercept) = linfa_logistic(&records, alpha);
        let gap = newton
            .weights()
            .iter()
            .zip(&weights)
            .map(|(a, b)| (a - b).abs())
            .fold((newton.intercept() - intercept).abs(), f64::max);
        let g_newton = largest_gradient(&records, newton.weights(), newton.intercept(), alpha);
        let g_linfa = largest_gradient(&records, &weights, intercept, alpha);
        // Newton is at the optimum to rounding; linfa's L-BFGS stops where its cost no longer
        // changes, with a gradient 10^6 to 10^8 times larger. Both are the same optimum: the
        // coefficients agree to 1e-6 wherever linfa's own error allows it (its distance to the
        // optimum is at most its gradient over the smallest curvature, alpha).
        assert!(
            g_newton < 1e-9,
            "alpha {alpha}: Newton's gradient {g_newton:e}"
        );
        assert!(g_newton <= g_linfa, "alpha {alpha}");
        let linfa_error_bound = g_linfa / alpha;
        assert!(
            gap < 1e-6_f64.max(linfa_error_bound),
            "alpha {alpha}: largest difference {gap:e} (linfa gradient {g_linfa:e})"
        );
        if alpha >= 10.0 {
            assert!(gap < 1e-6, "alpha {alpha}: largest difference {gap:e}");
        }
    }
}

#[test]
fn warm_starts_do_not_move_the_optimum() {
    let records = testdata::records(300, 3, 21);
    let cold = fit_one(&records, 10.0, &config(), None).unwrap();
    let mut stacked: Array1<f64> = cold.weights().iter().copied().collect();
    stacked = ndarray::concatenate![Axis(0), stacked, Array1::from(vec![cold.intercept()])];
    // A start on the wrong side of every weight still ends at the same optimum.
    let far = fit_one(&records, 10.0, &config(), Some(stacked * -3.0)).unwrap();
    let gap = cold
        .weights()
        .iter()
        .zip(far.weights())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(gap < 1e-9, "{gap}");
}

#[test]
fn a_warm_start_from_a_folds_solution_takes_fewer_steps() {
    // The refit on all rows starts from the folds' solution: 4/5 of the same rows.
    let records = testdata::records(300, 3, 4);
    let design = Design::new(&records).unwrap();
    let rows = design.all_rows();
    let fold: Vec<u32> = rows.iter().copied().filter(|r| r % 5 != 0).collect();
    let on_fold = fit_rows(&design, &fold, 10.0, &config(), None).unwrap();
    let cold = fit_rows(&design, &rows, 10.0, &config(), None).unwrap();
    let warm = fit_rows(&design, &rows, 10.0, &config(), Some(on_fold.stacked)).unwrap();
    assert!(
        warm.iterations < cold.iterations,
        "{} vs {}",
        warm.iterations,
        cold.iterations
    );
    for (a, b) in warm.weights.iter().zip(&cold.weights) {
        assert!((a - b).abs() < 1e-9);
    }
}

#[test]
fn a_row_set_fits_what_its_records_alone_fit() {
    let records = testdata::records(300, 3, 6);
    let design = Design::new(&records).unwrap();
    let rows: Vec<u32> = (0..records.len() as u32).filter(|r| r % 4 != 0).collect();
    let subset: Vec<LabeledRecord> = rows.iter().map(|&r| records[r as usize]).collect();
    let on_rows = model_on_rows(&design, &rows, 1.0, &config(), None).unwrap();
    let alone = fit_one(&subset, 1.0, &config(), None).unwrap();
    assert_eq!(on_rows.encoder(), alone.encoder());
    for (a, b) in on_rows.weights().iter().zip(alone.weights()) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    // Log-odds of the rows left out, from the design and from the model's own encoding.
    let fitted = fit_rows(&design, &rows, 1.0, &config(), None).unwrap();
    for r in (0..records.len() as u32).filter(|r| r % 4 == 0) {
        let from_model = alone.log_odds(&records[r as usize].applicant);
        assert!((fitted.log_odds(&design, r) - from_model).abs() < 1e-10);
    }
}

/// A dataset of `rows` passed over one by one: no grouping, no weights.
fn every_row<'a>(
    design: &'a Design,
    rows: &'a [u32],
    targets: Array1<bool>,
) -> DatasetBase<DesignRows<'a>, Array1<bool>> {
    DatasetBase::new(
        DesignRows {
            design,
            rows,
            distinct: rows,
        },
        targets,
    )
}

#[test]
fn a_targets_count_that_differs_from_the_rows_is_refused() {
    let records = testdata::records(50, 1, 2);
    let design = Design::new(&records).unwrap();
    let rows = design.all_rows();
    let targets: Array1<bool> = Array1::from(vec![true; 3]);
    let dataset = every_row(&design, &rows, targets);
    assert!(NewtonLogistic::new(1.0).fit(&dataset).is_err());
    let targets: Array1<bool> = rows.iter().map(|&r| design.is_fraud(r)).collect();
    let dataset = every_row(&design, &rows, targets).with_weights(Array1::from(vec![1.0f32; 3]));
    assert!(NewtonLogistic::new(1.0).fit(&dataset).is_err());
}

#[test]
fn distinct_rows_weighted_by_their_copies_fit_as_every_copy_does() {
    // 250 applicants, each 4 times, in blocks: fit_rows passes over 250 weighted rows.
    let records = testdata::records(250, 4, 8);
    let design = Design::new(&records).unwrap();
    let rows: Vec<u32> = design
        .all_rows()
        .into_iter()
        .filter(|r| r % 7 != 3)
        .collect();
    let distinct = design.distinct(&rows);
    assert_eq!(distinct.rows.len(), 250);
    assert_eq!(distinct.copies.iter().sum::<f32>() as usize, rows.len());
    for alpha in [0.1, 10.0] {
        let weighted = fit_rows(&design, &rows, alpha, &config(), None).unwrap();
        let targets: Array1<bool> = rows.iter().map(|&r| design.is_fraud(r)).collect();
        let every_copy = NewtonLogistic::new(alpha)
            .fit(&every_row(&design, &rows, targets))
            .unwrap();
        assert_eq!(
            weighted.encoder, every_copy.encoder,
            "the same standardisation"
        );
        for (a, b) in weighted.stacked.iter().zip(every_copy.stacked.iter()) {
            assert!((a - b).abs() < 1e-9, "alpha {alpha}: {a} vs {b}");
        }
    }
}
