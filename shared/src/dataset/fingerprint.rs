//! Data fingerprints and train/evaluation overlap.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::schema::{Applicant, LabeledRecord, FEATURES, FEATURE_COUNT, LABEL_COLUMN};

/// Identifies a multiset of labelled records: `"sha256:"` and the hex SHA-256 of a canonical
/// encoding. Row order and keys do not matter (rows are encoded, then sorted); duplicates do.
/// The schema's column names are part of the encoding, so a schema change changes every
/// fingerprint rather than silently matching old data.
pub fn fingerprint(records: &[LabeledRecord]) -> String {
    // The rows' encodings live in one buffer, sorted as (start, end) ranges: at a million rows
    // a String each would be a million allocations and twice the memory.
    let mut text = String::new();
    let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(records.len());
    for record in records {
        let start = text.len();
        write_canonical_row(&mut text, record);
        ranges.push((start, text.len()));
    }
    // Byte order is str order.
    let bytes = text.as_bytes();
    ranges.sort_unstable_by(|a, b| bytes[a.0..a.1].cmp(&bytes[b.0..b.1]));
    let mut hasher = Sha256::new();
    hasher.update(b"fraudrisk-records-v1\n");
    hasher.update(LABEL_COLUMN.as_bytes());
    for feature in FEATURES.iter() {
        hasher.update(b",");
        hasher.update(feature.name.as_bytes());
    }
    hasher.update(b"\n");
    for &(start, end) in &ranges {
        hasher.update(&bytes[start..end]);
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
    let mut out = String::new();
    write_canonical_row(&mut out, record);
    out
}

/// The label, then each value: integers without a decimal point, anything else in its
/// shortest round-trip form, so two different values never encode alike.
fn write_canonical_row(out: &mut String, record: &LabeledRecord) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{}", record.creditability);
    for &value in record.applicant.0.iter() {
        let _ = if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            write!(out, ",{}", value as i64)
        } else {
            write!(out, ",{value:?}")
        };
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
