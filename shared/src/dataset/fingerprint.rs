//! Data fingerprints and train/evaluation overlap.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::schema::{Applicant, LabeledRecord, FEATURES, FEATURE_COUNT, LABEL_COLUMN};

/// Identifies a multiset of labelled records: `"sha256:"` and the hex SHA-256 of a canonical
/// encoding. Row order and keys do not matter (rows are encoded, then sorted); duplicates do.
/// The schema's column names are part of the encoding, so a schema change changes every
/// fingerprint rather than silently matching old data.
pub fn fingerprint(records: &[LabeledRecord]) -> String {
    let mut rows: Vec<String> = records.iter().map(canonical_row).collect();
    rows.sort_unstable();
    let mut hasher = Sha256::new();
    hasher.update(b"fraudrisk-records-v1\n");
    hasher.update(LABEL_COLUMN.as_bytes());
    for feature in FEATURES.iter() {
        hasher.update(b",");
        hasher.update(feature.name.as_bytes());
    }
    hasher.update(b"\n");
    for row in &rows {
        hasher.update(row.as_bytes());
        hasher.update(b"\n");
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Identifies one row's values (label and features): the hex SHA-256 of its canonical
/// encoding. Loads key rows by source, key and this hash, so a file reloaded under the same
/// name with changed values is seen as changed.
pub fn row_hash(record: &LabeledRecord) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"fraudrisk-row-v1\n");
    hasher.update(canonical_row(record).as_bytes());
    hex::encode(hasher.finalize())
}

fn canonical_row(record: &LabeledRecord) -> String {
    let mut out = record.creditability.to_string();
    for value in record.applicant.0.iter() {
        out.push(',');
        out.push_str(&canonical_number(*value));
    }
    out
}

/// Checked values are integers, written without a decimal point; anything else in its
/// shortest round-trip form, so two different values never encode alike.
fn canonical_number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        (value as i64).to_string()
    } else {
        format!("{value:?}")
    }
}

/// Hashable identity of an applicant's features; `+ 0.0` folds -0.0 into 0.0.
fn applicant_key(applicant: &Applicant) -> [u64; FEATURE_COUNT] {
    let mut key = [0u64; FEATURE_COUNT];
    for (slot, value) in key.iter_mut().zip(applicant.0.iter()) {
        *slot = (value + 0.0).to_bits();
    }
    key
}

/// How many distinct applicants (features only, labels ignored) of `eval` also occur in
/// `train`. Non-zero means evaluation scores are inflated by rows the model has seen, which
/// is easy to do with the seed's resampled file (10,000 rows, 1,000 distinct).
pub fn distinct_overlap(train: &[LabeledRecord], eval: &[LabeledRecord]) -> usize {
    let seen: HashSet<[u64; FEATURE_COUNT]> =
        train.iter().map(|r| applicant_key(&r.applicant)).collect();
    let distinct_eval: HashSet<[u64; FEATURE_COUNT]> =
        eval.iter().map(|r| applicant_key(&r.applicant)).collect();
    distinct_eval.iter().filter(|k| seen.contains(*k)).count()
}
