//! Tests of `train`: settings, determinism, the grid, the holdout, the threshold, calibration.

use super::*;
use crate::model::solver::fit_one;
use crate::model::testdata;
use crate::model::{distinct_row_count, evaluate};

fn config() -> TrainConfig {
    TrainConfig {
        alphas: vec![0.1, 1.0, 10.0, 100.0],
        ..TrainConfig::default()
    }
}

#[test]
fn default_config_is_valid_and_has_a_grid() {
    let c = TrainConfig::default();
    c.validate().unwrap();
    assert!(c.alphas.len() >= 4);
    assert_eq!((c.seed, c.folds), (42, 5));
}

#[test]
fn invalid_settings_are_named() {
    for (bad, word) in [
        (
            TrainConfig {
                alphas: vec![],
                ..config()
            },
            "alphas",
        ),
        (
            TrainConfig {
                alphas: vec![1.0, -1.0],
                ..config()
            },
            "alpha",
        ),
        (
            TrainConfig {
                folds: 1,
                ..config()
            },
            "folds",
        ),
        (
            TrainConfig {
                holdout_fraction: 1.0,
                ..config()
            },
            "holdout_fraction",
        ),
        (
            TrainConfig {
                costs: CostMatrix {
                    false_negative: -1.0,
                    false_positive: 1.0,
                },
                ..config()
            },
            "false negative",
        ),
        (
            TrainConfig {
                max_iterations: 0,
                ..config()
            },
            "max_iterations",
        ),
    ] {
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains(word), "{err}");
    }
}

#[test]
fn fit_is_deterministic_for_a_seed() {
    let records = testdata::records(300, 3, 21);
    let a = fit(&records, &config()).unwrap();
    let b = fit(&records, &config()).unwrap();
    assert_eq!(a.model, b.model);
    assert_eq!(a.cv, b.cv);
    assert_eq!(a.chosen_alpha, b.chosen_alpha);
    // Another seed draws other folds, so the CV scores differ.
    let c = fit(
        &records,
        &TrainConfig {
            seed: 7,
            ..config()
        },
    )
    .unwrap();
    assert_ne!(a.cv, c.cv);
}

#[test]
fn cv_reports_every_alpha_in_order_and_picks_the_best() {
    let records = testdata::records(300, 3, 21);
    let outcome = fit(&records, &config()).unwrap();
    let alphas: Vec<f64> = outcome.cv.iter().map(|c| c.alpha).collect();
    assert_eq!(alphas, config().alphas);
    let best = outcome
        .cv
        .iter()
        .map(|c| c.mean_roc_auc)
        .fold(0.0, f64::max);
    let chosen = outcome
        .cv
        .iter()
        .find(|c| c.alpha == outcome.chosen_alpha)
        .unwrap();
    assert_eq!(chosen.mean_roc_auc, best);
    for c in &outcome.cv {
        assert!(c.mean_roc_auc > 0.5 && c.mean_roc_auc <= 1.0, "{c:?}");
        assert!(c.std_roc_auc >= 0.0 && c.std_roc_auc < 0.2, "{c:?}");
    }
}

#[test]
fn ties_go_to_the_stronger_penalty() {
    let cv = [
        CvResult {
            alpha: 1.0,
            mean_roc_auc: 0.8,
            std_roc_auc: 0.0,
        },
        CvResult {
            alpha: 10.0,
            mean_roc_auc: 0.8,
            std_roc_auc: 0.0,
        },
        CvResult {
            alpha: 100.0,
            mean_roc_auc: 0.7,
            std_roc_auc: 0.0,
        },
    ];
    assert_eq!(choose_alpha(&cv), 10.0);
}

#[test]
fn stronger_penalty_shrinks_the_weights() {
    let records = testdata::records(300, 3, 21);
    let norm = |alpha: f64| {
        let m = fit_one(&records, alpha, &config(), None).unwrap();
        m.weights().iter().map(|w| w * w).sum::<f64>()
    };
    assert!(norm(1000.0) < norm(1.0));
}

#[test]
fn holdout_training_reports_sizes_and_metrics() {
    let records = testdata::records(400, 3, 8);
    let outcome = train_with_holdout(records.clone(), &config()).unwrap();
    assert_eq!(outcome.train_rows + outcome.holdout_rows, records.len());
    assert_eq!(outcome.metrics.support, outcome.holdout_rows);
    assert!(
        (distinct_row_count(&records) as f64 * 0.2 - outcome.holdout_rows as f64 / 3.0).abs()
            <= 2.0
    );
    // The synthetic rule is learnable: clearly better than chance on unseen rows.
    assert!(outcome.metrics.roc_auc > 0.7, "{:?}", outcome.metrics);
    let again = evaluate(&outcome.model, &records, &config().costs).unwrap();
    assert!(again.roc_auc.is_finite());
}

#[test]
fn degenerate_inputs_are_errors_not_panics() {
    assert!(matches!(fit(&[], &config()), Err(ModelError::Empty(_))));
    let mut one_class = testdata::records(50, 2, 1);
    for r in &mut one_class {
        r.creditability = 1;
    }
    assert!(matches!(
        fit(&one_class, &config()),
        Err(ModelError::OneClass { .. })
    ));
    assert!(matches!(
        train_with_holdout(one_class.clone(), &config()),
        Err(ModelError::OneClass { .. })
    ));
    let few = testdata::records(6, 1, 1);
    assert!(fit(&few, &config()).is_err());
    let mut bad = testdata::records(50, 2, 1);
    bad[3].applicant.0[1] = f64::INFINITY;
    assert!(matches!(
        fit(&bad, &config()),
        Err(ModelError::NonFinite(_))
    ));
}

#[test]
fn the_threshold_minimises_the_cost_on_the_out_of_fold_probabilities() {
    let records = testdata::records(300, 3, 21);
    let outcome = fit(&records, &config()).unwrap();
    let threshold = outcome.model.threshold();
    let costs = config().costs;
    let is_fraud: Vec<bool> = records.iter().map(LabeledRecord::is_fraud).collect();
    let oof = &outcome.oof_probabilities;
    assert_eq!(oof.len(), records.len());
    let at_threshold = costs.expected_cost(&is_fraud, oof, threshold);
    assert_eq!(at_threshold, outcome.cv_expected_cost);
    // Brute force: no threshold on a fine grid does better on the same probabilities.
    for step in 1..10_000 {
        let t = f64::from(step) / 10_000.0;
        let cost = costs.expected_cost(&is_fraud, oof, t);
        assert!(cost >= at_threshold - 1e-12, "{t}: {cost} < {at_threshold}");
    }
    // Out of fold, not in sample: the refitted model scores the same rows differently.
    let in_sample: Vec<f64> = records
        .iter()
        .map(|r| outcome.model.probability_of_fraud(&r.applicant))
        .collect();
    assert!(oof
        .iter()
        .zip(&in_sample)
        .any(|(a, b)| (a - b).abs() > 1e-6));
    // 5:1 costs: a missed fraud is dearer, so the threshold sits below 0.5.
    assert!(threshold < 0.5, "{threshold}");
}

#[test]
fn equal_costs_keep_the_threshold_near_one_half_and_dearer_misses_lower_it() {
    let records = testdata::records(300, 3, 21);
    let with = |false_negative: f64| {
        let config = TrainConfig {
            costs: CostMatrix {
                false_negative,
                false_positive: 1.0,
            },
            ..config()
        };
        fit(&records, &config).unwrap().model.threshold()
    };
    let (even, five, twenty) = (with(1.0), with(5.0), with(20.0));
    assert!(five <= even && twenty <= five, "{even} {five} {twenty}");
}

#[test]
fn platt_calibration_is_fitted_out_of_fold_and_every_probability_uses_it() {
    let records = testdata::records(300, 3, 21);
    let plain = fit(&records, &config()).unwrap();
    assert!(plain.model.calibration().is_none());
    let config = TrainConfig {
        calibration: CalibrationMethod::Platt,
        ..config()
    };
    let outcome = fit(&records, &config).unwrap();
    let is_fraud: Vec<bool> = records.iter().map(LabeledRecord::is_fraud).collect();
    // The same folds and fits: the uncalibrated out-of-fold log-odds are those of the plain run.
    assert_eq!(outcome.oof_log_odds, plain.oof_log_odds);
    for (p, z) in plain.oof_probabilities.iter().zip(&plain.oof_log_odds) {
        assert_eq!(*p, sigmoid(*z));
    }
    // The calibration is Platt's fit on those log-odds, and the OOF probabilities go through it.
    let calibration = *outcome.model.calibration().expect("a calibration");
    assert_eq!(
        calibration,
        platt_scaling(&outcome.oof_log_odds, &is_fraud).unwrap()
    );
    for (p, z) in outcome.oof_probabilities.iter().zip(&outcome.oof_log_odds) {
        assert_eq!(*p, calibration.probability(*z));
    }
    // The threshold is the cost-minimising one on the CALIBRATED out-of-fold probabilities.
    let expected =
        cost_minimising_threshold(&is_fraud, &outcome.oof_probabilities, &config.costs).unwrap();
    assert_eq!(outcome.model.threshold(), expected);
    assert_eq!(
        outcome.cv_expected_cost,
        config
            .costs
            .expected_cost(&is_fraud, &outcome.oof_probabilities, expected)
    );
    // The refitted model's predictions use it; the log-odds (and contributions) do not.
    assert_eq!(
        outcome.model.log_odds(&records[0].applicant),
        plain.model.log_odds(&records[0].applicant)
    );
    let mut moved = false;
    for r in records.iter().take(50) {
        let z = outcome.model.log_odds(&r.applicant);
        let p = outcome.model.probability_of_fraud(&r.applicant);
        assert_eq!(p, calibration.probability(z));
        assert_eq!(outcome.model.predict(&r.applicant).probability_of_fraud, p);
        moved |= (p - sigmoid(z)).abs() > 1e-6;
    }
    assert!(moved, "{calibration:?} changes no probability");
}
