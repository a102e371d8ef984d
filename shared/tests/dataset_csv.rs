//! The CSV reader against the seed's own files and against one fixture per failure mode.

use std::path::{Path, PathBuf};

use fraudrisk::dataset::{
    distinct_overlap, fingerprint, read_applicants_csv, read_labeled_csv, write_labeled_csv,
    CsvError, LabeledCsv,
};
use fraudrisk::schema::{feature_index, LabeledRecord, FEATURES};

const RESAMPLED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/german_credit_resampled.csv"
);
const SHIFTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/shifted_data.csv"
);

/// The seed's files live beside the project, not in it: skip locally when absent, fail in CI.
fn seed_file(path: &str) -> Option<&Path> {
    let path = Path::new(path);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("seed data file {} is missing in CI", path.display());
    }
    eprintln!(
        "skipping: seed data file {} not found (set CI=true to make this a failure)",
        path.display()
    );
    None
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csv")
        .join(name)
}

fn read_fixture(name: &str) -> Result<LabeledCsv, CsvError> {
    read_labeled_csv(&fixture(name))
}

fn records(csv: &LabeledCsv) -> Vec<LabeledRecord> {
    csv.rows.iter().map(|r| r.record).collect()
}

#[test]
fn the_resampled_reference_file_reads_with_index_keys() {
    let Some(path) = seed_file(RESAMPLED) else {
        return;
    };
    let csv = read_labeled_csv(path).unwrap();
    assert_eq!(csv.rows.len(), 10_000);
    assert_eq!(csv.key_column.as_deref(), Some(""), "unnamed index column");
    assert!(csv.ignored_columns.is_empty(), "{:?}", csv.ignored_columns);
    assert_eq!(csv.rows[0].key, "0");
    assert_eq!(csv.rows[9_999].key, "9999");

    // First data line: 0,0,1,18,2,3,2600,1,3,4,3,1,4,4,65,3,3,2,3,0,0,0
    let first = &csv.rows[0].record;
    assert_eq!(first.creditability, 0);
    let expected = [
        1.0, 18.0, 2.0, 3.0, 2600.0, 1.0, 3.0, 4.0, 3.0, 1.0, 4.0, 4.0, 65.0, 3.0, 3.0, 2.0, 3.0,
        0.0, 0.0, 0.0,
    ];
    assert_eq!(first.applicant.0, expected);
    // The header spells no_of_credits_at_this_Bank; it must land on the schema's feature.
    let credits = feature_index("no_of_credits_at_this_bank").unwrap();
    assert_eq!(first.applicant.0[credits], 2.0);
    assert!(csv
        .rows
        .iter()
        .all(|r| (1.0..=4.0).contains(&r.record.applicant.0[credits])));

    let all = records(&csv);
    let fraud = all.iter().filter(|r| r.is_fraud()).count();
    assert_eq!(fraud, 2_977, "the seed's 29.8 % fraud");
    // 10,000 resampled rows, 1,000 distinct applicants.
    assert_eq!(distinct_overlap(&all, &all), 1_000);

    let applicants = read_applicants_csv(path).unwrap();
    assert_eq!(applicants.len(), 10_000);
    assert_eq!(applicants[0], first.applicant);
}

#[test]
fn the_shifted_file_reads_with_id_keys_and_reports_extra_columns() {
    let Some(path) = seed_file(SHIFTED) else {
        return;
    };
    let csv = read_labeled_csv(path).unwrap();
    assert_eq!(csv.rows.len(), 1_000);
    assert_eq!(csv.key_column.as_deref(), Some("id"));
    assert_eq!(csv.ignored_columns, ["new_column", "model_version"]);
    assert_eq!(csv.rows[0].key, "6299");
    assert_eq!(csv.rows[0].record.creditability, 0);
    let amount = feature_index("credit_amount").unwrap();
    assert_eq!(csv.rows[0].record.applicant.0[amount], 939.0);
    assert_eq!(csv.rows[1].key, "2707");

    // The seed evaluated its retraining on rows it had largely trained on: 375 of the 768
    // distinct applicants of the "new" file occur in the reference file.
    let Some(reference) = seed_file(RESAMPLED) else {
        return;
    };
    let reference = read_labeled_csv(reference).unwrap();
    assert_eq!(distinct_overlap(&records(&reference), &records(&csv)), 375);
}

#[test]
fn the_seed_files_survive_a_write_and_read_round_trip() {
    let Some(path) = seed_file(SHIFTED) else {
        return;
    };
    let csv = read_labeled_csv(path).unwrap();
    let mut out = Vec::new();
    write_labeled_csv(&mut out, &csv.rows).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    let header = text.lines().next().unwrap();
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    assert_eq!(header, format!("id,creditability,{}", names.join(",")));
    let back = fraudrisk::dataset::read_labeled_csv_from(out.as_slice(), "round trip").unwrap();
    assert_eq!(back.rows, csv.rows);
    assert_eq!(fingerprint(&records(&back)), fingerprint(&records(&csv)));
}

#[test]
fn a_missing_feature_column_is_named() {
    let err = read_fixture("missing_column.csv").unwrap_err();
    match &err {
        CsvError::MissingColumn { column, origin } => {
            assert_eq!(column, "purpose");
            assert!(origin.ends_with("missing_column.csv"), "{origin}");
        }
        other => panic!("expected MissingColumn, got {other:?}"),
    }
    assert!(err
        .to_string()
        .ends_with("required column missing: purpose"));
}

#[test]
fn a_bad_value_names_file_line_column_rule_and_value() {
    let err = read_fixture("bad_value.csv").unwrap_err();
    match &err {
        CsvError::BadValue {
            line,
            column,
            value,
            ..
        } => {
            assert_eq!(*line, 5, "fourth data row, header is line 1");
            assert_eq!(column, "credit_amount");
            assert_eq!(value, "abc");
        }
        other => panic!("expected BadValue, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.ends_with(
            "bad_value.csv line 5, column credit_amount: must be an integer from 1 to 1000000 (got \"abc\")"
        ),
        "{message}"
    );
}

#[test]
fn an_empty_cell_is_a_bad_value() {
    let err = read_fixture("empty_cell.csv").unwrap_err();
    assert!(
        matches!(&err, CsvError::BadValue { line: 4, column, value, .. }
            if column == "credit_amount" && value.is_empty()),
        "{err:?}"
    );
}

#[test]
fn a_fractional_integer_code_is_a_bad_value() {
    let err = read_fixture("fractional_code.csv").unwrap_err();
    assert!(
        matches!(&err, CsvError::BadValue { line: 6, column, value, .. }
            if column == "duration_of_credit_month" && value == "12.5"),
        "{err:?}"
    );
}

#[test]
fn a_label_of_two_is_a_bad_value() {
    let err = read_fixture("label_two.csv").unwrap_err();
    match &err {
        CsvError::BadValue {
            line,
            column,
            rule,
            value,
            ..
        } => {
            assert_eq!(*line, 3);
            assert_eq!(column, "creditability");
            assert!(rule.contains("0") && rule.contains("1"), "{rule}");
            assert_eq!(value, "2");
        }
        other => panic!("expected BadValue, got {other:?}"),
    }
    // An applicant-only read does not need the label but still refuses a wrong one.
    assert!(read_applicants_csv(&fixture("label_two.csv")).is_err());
}

#[test]
fn a_duplicate_key_is_an_error_at_its_second_line() {
    let err = read_fixture("duplicate_key.csv").unwrap_err();
    assert!(
        matches!(&err, CsvError::DuplicateKey { line: 7, key, .. } if key == "2707"),
        "{err:?}"
    );
}

#[test]
fn empty_and_header_only_files_are_errors() {
    for name in ["empty.csv", "header_only.csv"] {
        let err = read_fixture(name).unwrap_err();
        assert!(matches!(err, CsvError::Empty { .. }), "{name}: {err:?}");
        assert!(read_applicants_csv(&fixture(name)).is_err(), "{name}");
    }
}

#[test]
fn a_bom_and_crlf_line_endings_are_accepted() {
    let csv = read_fixture("bom_crlf.csv").unwrap();
    assert_eq!(csv.rows.len(), 6);
    // Had the BOM stayed on the first header cell, `id` would not be recognised as the key.
    assert_eq!(csv.key_column.as_deref(), Some("id"));
    assert_eq!(csv.rows[0].key, "6299");
    // The last column is a feature here, so the CRLF ending sits right after a value cell.
    assert!(csv.ignored_columns.is_empty(), "{:?}", csv.ignored_columns);
    assert_eq!(csv.rows[5].record.applicant.0[19], 0.0);
}

#[test]
fn integer_codes_written_as_floats_are_accepted() {
    let floats = read_fixture("float_codes.csv").unwrap();
    let plain = read_fixture("bom_crlf.csv").unwrap();
    assert_eq!(floats.rows, plain.rows);
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = read_fixture("no_such_file.csv").unwrap_err();
    assert!(matches!(err, CsvError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such_file.csv"));
}
