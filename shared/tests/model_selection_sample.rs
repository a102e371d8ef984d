//! Model selection on a stratified sample picks an alpha all the rows cannot tell from theirs,
//! and the final fit still uses every row.

use fraudrisk::dataset::generate_reference;
use fraudrisk::model::{fit, TrainConfig};

#[test]
fn the_sample_picks_an_alpha_all_rows_cannot_tell_from_the_best() {
    let records = generate_reference(40_000, 11);
    let everything = TrainConfig {
        selection_rows: 1_000_000,
        ..TrainConfig::default()
    };
    let sampled = TrainConfig {
        selection_rows: 10_000,
        ..TrainConfig::default()
    };
    let all = fit(&records, &everything).unwrap();
    let sample = fit(&records, &sampled).unwrap();
    assert_eq!(all.selection_rows.len(), records.len());
    let n = sample.selection_rows.len();
    assert!((9_000..=11_000).contains(&n), "sample of {n} rows");
    assert_eq!(sample.oof_probabilities.len(), n);
    // Past a few thousand rows the penalty barely matters next to the summed loss, so the
    // weaker alphas' AUCs differ by less than their spread over the folds: the sample must
    // choose one that all rows cannot tell from the best, and the same model in practice.
    let best = all.cv.iter().find(|c| c.alpha == all.chosen_alpha).unwrap();
    let picked = all
        .cv
        .iter()
        .find(|c| c.alpha == sample.chosen_alpha)
        .unwrap();
    assert!(
        picked.mean_roc_auc >= best.mean_roc_auc - best.std_roc_auc,
        "sample CV {:?}\nall rows CV {:?}",
        sample.cv,
        all.cv
    );
    let largest_gap = records
        .iter()
        .map(|r| {
            (sample.model.probability_of_fraud(&r.applicant)
                - all.model.probability_of_fraud(&r.applicant))
            .abs()
        })
        .fold(0.0, f64::max);
    assert!(
        largest_gap < 0.01,
        "probabilities differ by up to {largest_gap}"
    );
}

#[test]
fn a_sample_of_the_same_alpha_refits_the_same_model() {
    // One alpha: the sample changes nothing but the threshold's data; the refit on every row
    // is the same model to the solver's precision.
    let records = generate_reference(30_000, 5);
    let config = |selection_rows| TrainConfig {
        alphas: vec![1.0],
        selection_rows,
        ..TrainConfig::default()
    };
    let all = fit(&records, &config(1_000_000)).unwrap();
    let sample = fit(&records, &config(5_000)).unwrap();
    assert!(sample.selection_rows.len() < 6_000);
    for (a, b) in sample.model.weights().iter().zip(all.model.weights()) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
}
