//! Unit tests of the CSV reader and writer, in their own file to keep the reader short.

use super::*;

fn header() -> String {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    format!("{LABEL_COLUMN},{}", names.join(","))
}

const ROW: &str = "1,4,12,4,3,618,1,5,4,3,1,4,2,56,3,2,1,1,1,0,0";

#[test]
fn a_file_without_key_column_keys_rows_by_data_row_number() {
    let text = format!("{}\n{ROW}\n{ROW}\n", header());
    let csv = read_labeled_csv_from(text.as_bytes(), "t.csv").unwrap();
    assert_eq!(csv.key_column, None);
    let keys: Vec<&str> = csv.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["1", "2"]);
    assert_eq!(csv.rows[0].record.applicant.0[4], 618.0);
}

#[test]
fn the_label_is_optional_only_for_applicant_reads() {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    let text = format!("{}\n{}\n", names.join(","), &ROW[2..]);
    let applicants = read_applicants_csv_from(text.as_bytes(), "a.csv").unwrap();
    assert_eq!(applicants.len(), 1);
    assert_eq!(applicants[0].0[12], 56.0);
    let err = read_labeled_csv_from(text.as_bytes(), "a.csv").unwrap_err();
    assert!(
        matches!(&err, CsvError::MissingColumn { column, .. } if column == LABEL_COLUMN),
        "{err}"
    );
}

#[test]
fn an_unnamed_column_that_is_not_first_is_ignored_and_reported_by_position() {
    let text = format!("{},\n{ROW},x\n", header());
    let csv = read_labeled_csv_from(text.as_bytes(), "t.csv").unwrap();
    assert_eq!(csv.key_column, None);
    assert_eq!(csv.ignored_columns, ["(unnamed column 22)"]);
}

#[test]
fn a_short_row_is_malformed_at_its_line() {
    let text = format!("{}\n{ROW}\n1,2,3\n", header());
    let err = read_labeled_csv_from(text.as_bytes(), "t.csv").unwrap_err();
    assert!(matches!(err, CsvError::Malformed { line: 3, .. }), "{err}");
}

#[test]
fn errors_name_the_real_line_after_blank_lines() {
    // Line 1 header, 2 blank, 3 a row, 4 and 5 blank (one CRLF), 6 the bad row.
    let bad_row = ROW.replacen("618", "abc", 1);
    let text = format!("{}\n\n{ROW}\n\r\n\n{bad_row}\n", header());
    let err = read_labeled_csv_from(text.as_bytes(), "t.csv").unwrap_err();
    assert!(matches!(err, CsvError::BadValue { line: 6, .. }), "{err}");
    let short = format!("{}\n\n\n{ROW}\n\n1,2,3\n", header());
    let err = read_labeled_csv_from(short.as_bytes(), "t.csv").unwrap_err();
    assert!(matches!(err, CsvError::Malformed { line: 6, .. }), "{err}");
}

#[test]
fn a_column_given_twice_in_different_case_is_malformed() {
    let text = format!("{},PURPOSE\n{ROW},3\n", header());
    let err = read_labeled_csv_from(text.as_bytes(), "t.csv").unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.csv line 1: column purpose appears more than once"
    );
}

#[test]
fn writing_rejects_nothing_and_reads_back_identically() {
    let text = format!("id,{}\nk1,{ROW}\nk2,{ROW}\n", header());
    let csv = read_labeled_csv_from(text.as_bytes(), "t.csv").unwrap();
    let mut out = Vec::new();
    write_labeled_csv(&mut out, &csv.rows).unwrap();
    let back = read_labeled_csv_from(out.as_slice(), "out").unwrap();
    assert_eq!(back.rows, csv.rows);
    assert_eq!(back.key_column.as_deref(), Some("id"));
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("id,creditability,account_balance,"));
}

#[test]
fn a_tolerant_read_turns_bad_cells_into_gaps_and_counts_them() {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    let good = &ROW[2..];
    // Line 3: account_balance 9 (no such code); line 4: age empty; line 5: purpose "x".
    let unknown_code = good.replacen('4', "9", 1);
    let mut cells: Vec<&str> = good.split(',').collect();
    cells[12] = "";
    let missing_age = cells.join(",");
    cells[12] = "56";
    cells[3] = "x";
    let text_purpose = cells.join(",");
    let text = format!(
        "{}\n{good}\n{unknown_code}\n{missing_age}\n{text_purpose}\n",
        names.join(",")
    );
    let (applicants, quality) = read_applicants_tolerant_from(text.as_bytes(), "c.csv").unwrap();
    assert_eq!(applicants.len(), 4);
    assert!(applicants[1].0[0].is_nan() && applicants[1].0[1] == 12.0);
    assert!(applicants[2].0[12].is_nan());
    assert!(applicants[3].0[3].is_nan());
    assert_eq!((quality.rows, quality.rows_with_issues), (4, 3));
    let balance = &quality.features[0];
    assert_eq!(balance.out_of_domain, 1);
    assert_eq!(balance.examples[0].line, Some(3));
    assert_eq!(balance.examples[0].value, "9");
    assert!(
        balance.examples[0].rule.starts_with("must be"),
        "{balance:?}"
    );
    assert_eq!(quality.features[12].missing, 1);
    assert_eq!(quality.features[3].out_of_domain, 1);
    // The strict reader refuses the same file at the first bad cell.
    let err = read_applicants_csv_from(text.as_bytes(), "c.csv").unwrap_err();
    assert!(matches!(err, CsvError::BadValue { line: 3, .. }), "{err}");
}

#[test]
fn a_tolerant_read_still_refuses_a_structural_fault() {
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    let text = format!("{}\n{}\n1,2\n", names.join(","), &ROW[2..]);
    let err = read_applicants_tolerant_from(text.as_bytes(), "c.csv").unwrap_err();
    assert!(matches!(err, CsvError::Malformed { line: 3, .. }), "{err}");
}
