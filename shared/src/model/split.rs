//! Splits over distinct rows.
//!
//! The seed's reference file holds about 1,000 distinct applicants, each repeated 3 to 22
//! times. A split by row would put copies of one applicant on both sides and overstate every
//! score, so both the holdout split and the cross-validation folds assign whole groups of
//! identical rows (same 20 values and same label), stratified by label.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::ModelError;
use crate::schema::{LabeledRecord, FEATURE_COUNT};

/// ChaCha stream of the holdout split (the folds use another, so the two draws are independent
/// for one seed).
const SPLIT_STREAM: u64 = 1;
/// ChaCha stream of the cross-validation folds.
const FOLD_STREAM: u64 = 2;
/// ChaCha stream of the model-selection sample.
const SAMPLE_STREAM: u64 = 3;

/// Groups of identical rows, numbered in order of first appearance.
#[derive(Clone, Debug)]
pub(crate) struct Groups {
    /// The group of each row.
    pub group_of_row: Vec<u32>,
    /// Whether each group's label is fraud.
    pub is_fraud: Vec<bool>,
}

impl Groups {
    pub fn len(&self) -> usize {
        self.is_fraud.len()
    }

    /// The groups of `rows` (indices of the grouped rows, ascending) alone, renumbered in order
    /// of first appearance: what [`group_rows`] gives for those rows' records.
    pub fn restricted(&self, rows: &[u32]) -> Groups {
        let mut renumbered = vec![u32::MAX; self.len()];
        let mut groups = Groups {
            group_of_row: Vec::with_capacity(rows.len()),
            is_fraud: Vec::new(),
        };
        for &row in rows {
            let old = self.group_of_row[row as usize] as usize;
            if renumbered[old] == u32::MAX {
                renumbered[old] = groups.is_fraud.len() as u32;
                groups.is_fraud.push(self.is_fraud[old]);
            }
            groups.group_of_row.push(renumbered[old]);
        }
        groups
    }

    /// Per row, the value `per_group` gives its group.
    pub fn spread<T: Copy>(&self, per_group: &[T]) -> Vec<T> {
        self.group_of_row
            .iter()
            .map(|&g| per_group[g as usize])
            .collect()
    }
}

/// The identity of a row: the bits of its 20 values (with -0.0 read as 0.0) and its label.
fn row_key(record: &LabeledRecord) -> [u64; FEATURE_COUNT + 1] {
    let mut key = [0u64; FEATURE_COUNT + 1];
    for (slot, value) in key.iter_mut().zip(record.applicant.0.iter()) {
        *slot = (value + 0.0).to_bits();
    }
    key[FEATURE_COUNT] = u64::from(record.creditability);
    key
}

/// A 128-bit fingerprint of a row's identity: two SipHashes of the key under different
/// prefixes. At a million distinct rows two of them share one with probability about
/// 10^-27, so it stands for the 168-byte key in the map at a tenth of the memory.
fn row_fingerprint(record: &LabeledRecord) -> u128 {
    let key = row_key(record);
    let half = |prefix: u64| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        prefix.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0x9e37_79b9_7f4a_7c15)) << 64) | u128::from(half(0xc2b2_ae3d_27d4_eb4f))
}

pub(crate) fn group_rows(records: &[LabeledRecord]) -> Groups {
    let mut index: HashMap<u128, u32> = HashMap::new();
    let mut groups = Groups {
        group_of_row: Vec::with_capacity(records.len()),
        is_fraud: Vec::new(),
    };
    for record in records {
        let next = groups.is_fraud.len() as u32;
        let g = *index.entry(row_fingerprint(record)).or_insert(next);
        if g == next {
            groups.is_fraud.push(record.is_fraud());
        }
        groups.group_of_row.push(g);
    }
    groups
}

/// Number of distinct rows (identical values and label count once).
pub fn distinct_row_count(records: &[LabeledRecord]) -> usize {
    group_rows(records).len()
}

/// Group ids of each class, shuffled by `rng`: fraud first, then not fraud.
fn shuffled_by_class(groups: &Groups, rng: &mut ChaCha8Rng) -> [Vec<usize>; 2] {
    let mut by_class = [Vec::new(), Vec::new()];
    for (g, fraud) in groups.is_fraud.iter().enumerate() {
        by_class[usize::from(!fraud)].push(g);
    }
    for class in &mut by_class {
        class.shuffle(rng);
    }
    by_class
}

/// Splits records into (train, holdout) by distinct rows, stratified by label: in each class
/// `round(holdout_fraction × distinct rows)` distinct rows go to the holdout, with all their
/// copies; at least one stays on each side when the class has two or more distinct rows.
/// A fraction of 0 or less (or NaN) holds out nothing; 1 or more holds out everything.
/// Both parts keep the input order. Deterministic for a seed.
pub fn stratified_split(
    records: &[LabeledRecord],
    holdout_fraction: f64,
    seed: u64,
) -> (Vec<LabeledRecord>, Vec<LabeledRecord>) {
    let row_in_holdout = holdout_mask(records, holdout_fraction, seed);
    let (mut train, mut holdout) = (Vec::new(), Vec::new());
    for (record, held) in records.iter().zip(row_in_holdout) {
        if held {
            holdout.push(*record);
        } else {
            train.push(*record);
        }
    }
    (train, holdout)
}

/// [`stratified_split`] of rows the caller owns: the training part stays in their buffer, so
/// only the holdout is copied (at a million rows, 130 MB less than two fresh copies).
pub fn stratified_split_owned(
    mut records: Vec<LabeledRecord>,
    holdout_fraction: f64,
    seed: u64,
) -> (Vec<LabeledRecord>, Vec<LabeledRecord>) {
    let row_in_holdout = holdout_mask(&records, holdout_fraction, seed);
    let holdout = records
        .iter()
        .zip(&row_in_holdout)
        .filter(|(_, &held)| held)
        .map(|(record, _)| *record)
        .collect();
    let mut held = row_in_holdout.into_iter();
    records.retain(|_| !held.next().unwrap_or(false));
    records.shrink_to_fit();
    (records, holdout)
}

/// Per row, whether [`stratified_split`] puts it in the holdout.
fn holdout_mask(records: &[LabeledRecord], holdout_fraction: f64, seed: u64) -> Vec<bool> {
    let groups = group_rows(records);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SPLIT_STREAM);
    let mut in_holdout = vec![false; groups.len()];
    for class in shuffled_by_class(&groups, &mut rng) {
        let n = class.len();
        let take = if holdout_fraction.is_nan() || holdout_fraction <= 0.0 {
            0
        } else if holdout_fraction >= 1.0 {
            n
        } else {
            let wanted = (holdout_fraction * n as f64).round() as usize;
            if n >= 2 {
                wanted.clamp(1, n - 1)
            } else {
                0
            }
        };
        for &g in &class[..take] {
            in_holdout[g] = true;
        }
    }
    groups.spread(&in_holdout)
}

/// Assigns every row to one of `folds` folds: distinct rows of each class are shuffled and
/// dealt round-robin, so each fold gets about the same number of distinct rows of each class
/// and all copies of a row share a fold. Needs `folds` distinct rows of each class, so every
/// validation fold has both classes.
#[cfg(test)]
pub(crate) fn stratified_group_folds(
    records: &[LabeledRecord],
    folds: usize,
    seed: u64,
) -> Result<Vec<usize>, ModelError> {
    stratified_group_folds_of(&group_rows(records), folds, seed)
}

/// [`stratified_group_folds`] of rows already grouped.
pub(crate) fn stratified_group_folds_of(
    groups: &Groups,
    folds: usize,
    seed: u64,
) -> Result<Vec<usize>, ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(FOLD_STREAM);
    let mut fold_of_group = vec![0; groups.len()];
    for (class, name) in shuffled_by_class(groups, &mut rng)
        .iter()
        .zip(["fraud", "not_fraud"])
    {
        if class.len() < folds {
            return Err(ModelError::TooFewDistinctRows(format!(
                "{folds}-fold cross-validation needs at least {folds} distinct {name} rows, \
                 the training data has {}",
                class.len()
            )));
        }
        for (position, &g) in class.iter().enumerate() {
            fold_of_group[g] = position % folds;
        }
    }
    let fold_of_row = groups.spread(&fold_of_group);
    Ok(fold_of_row)
}

/// The rows model selection runs on when there are more than `cap`: in each class
/// `round(cap / rows × its distinct rows)` distinct rows drawn at random, with all their
/// copies: about `cap` rows, stratified by label, copies together as the folds need them.
/// `None` when there are `cap` rows or fewer (all of them are used). Ascending row indices;
/// deterministic for a seed.
#[cfg(test)]
pub(crate) fn selection_sample(
    records: &[LabeledRecord],
    cap: usize,
    seed: u64,
) -> Option<Vec<u32>> {
    selection_sample_of(&group_rows(records), cap, seed)
}

/// [`selection_sample`] of rows already grouped.
pub(crate) fn selection_sample_of(groups: &Groups, cap: usize, seed: u64) -> Option<Vec<u32>> {
    let rows = groups.group_of_row.len();
    if rows <= cap {
        return None;
    }
    let share = cap as f64 / rows as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SAMPLE_STREAM);
    let mut chosen = vec![false; groups.len()];
    for class in shuffled_by_class(groups, &mut rng) {
        let take = ((share * class.len() as f64).round() as usize).clamp(1, class.len());
        for &g in &class[..take] {
            chosen[g] = true;
        }
    }
    let taken = groups.spread(&chosen);
    Some(
        taken
            .iter()
            .enumerate()
            .filter(|(_, t)| **t)
            .map(|(row, _)| row as u32)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testdata;
    use std::collections::HashSet;

    fn keys(records: &[LabeledRecord]) -> HashSet<[u64; FEATURE_COUNT + 1]> {
        records.iter().map(row_key).collect()
    }

    fn fraud_share(records: &[LabeledRecord]) -> f64 {
        let distinct = group_rows(records);
        distinct.is_fraud.iter().filter(|f| **f).count() as f64 / distinct.is_fraud.len() as f64
    }

    #[test]
    fn no_distinct_row_is_on_both_sides_and_the_class_ratio_holds() {
        let records = testdata::records(500, 4, 11);
        let (train, holdout) = stratified_split(&records, 0.2, 42);
        assert_eq!(train.len() + holdout.len(), records.len());
        assert!(keys(&train).is_disjoint(&keys(&holdout)));
        // Every copy went along: 4 copies of each distinct row, all on one side.
        assert_eq!(holdout.len() % 4, 0);
        let distinct_holdout = distinct_row_count(&holdout) as f64;
        assert!((distinct_holdout / 500.0 - 0.2).abs() < 0.01);
        let overall = fraud_share(&records);
        assert!((fraud_share(&holdout) - overall).abs() < 0.02);
        assert!((fraud_share(&train) - overall).abs() < 0.02);
    }

    #[test]
    fn split_is_deterministic_for_a_seed_and_varies_with_it() {
        let records = testdata::records(200, 2, 3);
        let a = stratified_split(&records, 0.25, 9);
        let b = stratified_split(&records, 0.25, 9);
        assert_eq!(a, b);
        let c = stratified_split(&records, 0.25, 10);
        assert_ne!(a.1, c.1);
    }

    #[test]
    fn owned_split_equals_the_borrowed_one() {
        let records = testdata::records(300, 3, 11);
        for fraction in [0.0, 0.2, 0.5, 1.0] {
            assert_eq!(
                stratified_split_owned(records.clone(), fraction, 4),
                stratified_split(&records, fraction, 4)
            );
        }
    }

    #[test]
    fn split_extremes_do_not_panic() {
        let records = testdata::records(20, 1, 3);
        assert_eq!(stratified_split(&records, 0.0, 1).1.len(), 0);
        assert_eq!(stratified_split(&records, f64::NAN, 1).1.len(), 0);
        assert_eq!(stratified_split(&records, 1.0, 1).0.len(), 0);
        let (train, holdout) = stratified_split(&[], 0.2, 1);
        assert!(train.is_empty() && holdout.is_empty());
        // A tiny fraction still holds out one distinct row per class.
        let (_, holdout) = stratified_split(&records, 0.001, 1);
        assert_eq!(distinct_row_count(&holdout), 2);
    }

    #[test]
    fn folds_keep_copies_together_and_hold_both_classes() {
        let records = testdata::records(200, 3, 5);
        let folds = stratified_group_folds(&records, 5, 42).unwrap();
        let groups = group_rows(&records);
        for (row, &g) in groups.group_of_row.iter().enumerate() {
            let first = groups.group_of_row.iter().position(|&h| h == g).unwrap();
            assert_eq!(folds[row], folds[first]);
        }
        for fold in 0..5 {
            let fraud = records
                .iter()
                .zip(&folds)
                .filter(|(r, f)| **f == fold && r.is_fraud())
                .count();
            let not = records
                .iter()
                .zip(&folds)
                .filter(|(r, f)| **f == fold && !r.is_fraud())
                .count();
            assert!(
                fraud > 0 && not > 0,
                "fold {fold}: {fraud} fraud, {not} not"
            );
        }
        assert_eq!(folds, stratified_group_folds(&records, 5, 42).unwrap());
    }

    #[test]
    fn the_selection_sample_is_stratified_and_keeps_copies_together() {
        let records = testdata::records(1000, 3, 12);
        assert!(selection_sample(&records, records.len(), 1).is_none());
        let sample = selection_sample(&records, 600, 1).unwrap();
        assert!(sample.windows(2).all(|w| w[0] < w[1]), "ascending");
        let chosen: Vec<LabeledRecord> = sample.iter().map(|&r| records[r as usize]).collect();
        // 600 of 3,000 rows: a fifth of the distinct rows of each class, with their 3 copies.
        assert!(
            (chosen.len() as f64 - 600.0).abs() <= 6.0,
            "{}",
            chosen.len()
        );
        assert_eq!(chosen.len() % 3, 0);
        assert!((fraud_share(&chosen) - fraud_share(&records)).abs() < 0.01);
        let left: Vec<LabeledRecord> = records
            .iter()
            .enumerate()
            .filter(|(r, _)| sample.binary_search(&(*r as u32)).is_err())
            .map(|(_, r)| *r)
            .collect();
        assert!(keys(&chosen).is_disjoint(&keys(&left)));
        assert_eq!(Some(sample.clone()), selection_sample(&records, 600, 1));

        // The groups of the sample, taken from the groups of every row, are the sample's own.
        let restricted = group_rows(&records).restricted(&sample);
        let own = group_rows(&chosen);
        assert_eq!(restricted.group_of_row, own.group_of_row);
        assert_eq!(restricted.is_fraud, own.is_fraud);
    }

    #[test]
    fn folds_need_enough_distinct_rows_per_class() {
        let mut records = testdata::records(50, 3, 5);
        for r in &mut records {
            r.creditability = 1;
        }
        records[0].creditability = 0;
        let err = stratified_group_folds(&records, 5, 1).unwrap_err();
        assert!(err.to_string().contains("distinct fraud rows"), "{err}");
    }
}
