//! Reading and writing labelled CSV files.
//!
//! The reader takes the seed's files as they are: header names are matched to the schema
//! ignoring ASCII case and surrounding spaces, a key comes from an `id` column or an unnamed
//! first column (the row index pandas writes), unknown columns are skipped and reported, a
//! UTF-8 BOM and CRLF line endings are accepted. Every value is checked before anything is
//! returned, so a caller gets the whole file or one error naming file, line, column and rule.

use crate::progress::{Step, Unit};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::Path;

use crate::schema::{
    feature_index, Applicant, LabeledRecord, FEATURES, FEATURE_COUNT, LABEL_COLUMN,
};

/// The key column's name when a file has one.
const ID_COLUMN: &str = "id";

/// Name used in messages about output (a writer has no file name).
const OUTPUT_ORIGIN: &str = "CSV output";

/// One labelled row and the key that identifies it within its source file.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRow {
    /// The row's `id`, its unnamed index cell, or its 1-based data row number (see
    /// [`LabeledCsv::key_column`]). Unique within one file, so reloading a file is idempotent.
    pub key: String,
    /// The applicant and its label.
    pub record: LabeledRecord,
}

/// A labelled CSV file, fully read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledCsv {
    /// Rows in file order.
    pub rows: Vec<SourceRow>,
    /// Where the keys came from: `Some("id")` (as spelled in the header), `Some("")` for an
    /// unnamed first column, `None` when the file has neither (keys are then 1-based data row
    /// numbers: the first row under the header is "1").
    pub key_column: Option<String>,
    /// Header names of columns that were present but not used, in file order. An unnamed
    /// column that is not the key is listed as "(unnamed column N)", N counting from 1.
    pub ignored_columns: Vec<String>,
}

/// Why a CSV file could not be read or written. Every variant names its origin (the path as
/// given, or the name the caller chose); line numbers count as a text editor does (header = 1).
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened, read or written.
    #[error("{origin}: {source}")]
    Io {
        /// The file or stream.
        origin: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A required column is absent from the header (several are joined with ", ").
    #[error("{origin} line 1: required column missing: {column}")]
    MissingColumn {
        /// The file or stream.
        origin: String,
        /// The schema name(s) of the missing column(s).
        column: String,
    },
    /// A cell broke its column's rule.
    #[error("{origin} line {line}, column {column}: {rule} (got {value:?})")]
    BadValue {
        /// The file or stream.
        origin: String,
        /// The line the row starts on.
        line: u64,
        /// The column as spelled in the header.
        column: String,
        /// The rule, e.g. "must be an integer from 1 to 1000000".
        rule: String,
        /// The cell as written.
        value: String,
    },
    /// A key occurs on more than one row.
    #[error("{origin} line {line}: key {key:?} occurs more than once in the file")]
    DuplicateKey {
        /// The file or stream.
        origin: String,
        /// The line of the repeated occurrence.
        line: u64,
        /// The repeated key.
        key: String,
    },
    /// The file has no data rows (it is empty or has only a header).
    #[error("{origin}: no data rows (the file is empty or has only a header)")]
    Empty {
        /// The file or stream.
        origin: String,
    },
    /// The file is not well-formed CSV for this purpose (wrong field count, repeated header,
    /// invalid UTF-8).
    #[error("{origin} line {line}: {message}")]
    Malformed {
        /// The file or stream.
        origin: String,
        /// The offending line.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Reads a labelled CSV file: all 20 features and `creditability` are required.
pub fn read_labeled_csv(path: &Path) -> Result<LabeledCsv, CsvError> {
    let origin = path.display().to_string();
    let file = File::open(path).map_err(|source| CsvError::Io {
        origin: origin.clone(),
        source,
    })?;
    // The bar counts bytes: the row count is unknown until the end.
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let step = Step::start(format!("parse {origin}"), Unit::Bytes, size);
    labeled_from_parsed(
        parse(file, &origin, LabelRule::Required, Some(&step))?,
        &origin,
    )
}

/// Reads labelled CSV from any reader; `origin` names it in errors.
pub fn read_labeled_csv_from<R: io::Read>(reader: R, origin: &str) -> Result<LabeledCsv, CsvError> {
    labeled_from_parsed(parse(reader, origin, LabelRule::Required, None)?, origin)
}

fn labeled_from_parsed(parsed: Parsed, origin: &str) -> Result<LabeledCsv, CsvError> {
    let mut rows = Vec::with_capacity(parsed.rows.len());
    for row in parsed.rows {
        // The layout check already required the label column, so this never fires.
        let creditability = row.label.ok_or_else(|| CsvError::MissingColumn {
            origin: origin.to_string(),
            column: LABEL_COLUMN.to_string(),
        })?;
        rows.push(SourceRow {
            key: row.key,
            record: LabeledRecord {
                applicant: row.applicant,
                creditability,
            },
        });
    }
    Ok(LabeledCsv {
        rows,
        key_column: parsed.key_column,
        ignored_columns: parsed.ignored_columns,
    })
}

/// Reads applicants from a CSV file, e.g. new data to drift-test. The label column may be
/// absent; when present it is still checked (0 or 1), since a bad label means a bad file.
/// Keys are checked for duplicates as in [`read_labeled_csv`].
pub fn read_applicants_csv(path: &Path) -> Result<Vec<Applicant>, CsvError> {
    let origin = path.display().to_string();
    let file = File::open(path).map_err(|source| CsvError::Io {
        origin: origin.clone(),
        source,
    })?;
    read_applicants_csv_from(file, &origin)
}

/// Reads applicants from any reader; see [`read_applicants_csv`].
pub fn read_applicants_csv_from<R: io::Read>(
    reader: R,
    origin: &str,
) -> Result<Vec<Applicant>, CsvError> {
    let parsed = parse(reader, origin, LabelRule::Optional, None)?;
    // Collecting in place would keep the larger parse rows' capacity; give it back.
    let mut applicants: Vec<Applicant> = parsed.rows.into_iter().map(|row| row.applicant).collect();
    applicants.shrink_to_fit();
    Ok(applicants)
}

/// Writes rows with the header `id`, `creditability`, then the 20 features by schema name,
/// values as integers. [`read_labeled_csv`] reads the result back unchanged.
pub fn write_labeled_csv<W: io::Write>(writer: W, rows: &[SourceRow]) -> Result<(), CsvError> {
    let mut out = csv::Writer::from_writer(writer);
    let header = [ID_COLUMN, LABEL_COLUMN]
        .into_iter()
        .chain(FEATURES.iter().map(|f| f.name));
    out.write_record(header).map_err(write_error)?;
    for row in rows {
        let mut cells = Vec::with_capacity(FEATURE_COUNT + 2);
        cells.push(row.key.clone());
        cells.push(row.record.creditability.to_string());
        cells.extend(row.record.applicant.0.iter().map(|v| format_number(*v)));
        out.write_record(&cells).map_err(write_error)?;
    }
    out.flush().map_err(|source| CsvError::Io {
        origin: OUTPUT_ORIGIN.to_string(),
        source,
    })
}

fn write_error(error: csv::Error) -> CsvError {
    let source = match error.into_kind() {
        csv::ErrorKind::Io(source) => source,
        other => io::Error::other(format!("{other:?}")),
    };
    CsvError::Io {
        origin: OUTPUT_ORIGIN.to_string(),
        source,
    }
}

/// Integers without a decimal point; anything else (never produced by a checked reader) as
/// Rust prints it, so nothing is silently rounded.
fn format_number(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        (value as i64).to_string()
    } else {
        value.to_string()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LabelRule {
    Required,
    Optional,
}

struct ParsedRow {
    key: String,
    applicant: Applicant,
    label: Option<u8>,
}

struct Parsed {
    rows: Vec<ParsedRow>,
    key_column: Option<String>,
    ignored_columns: Vec<String>,
}

/// Which column holds what, decided from the header.
struct Layout {
    /// Column index of each feature, in schema order.
    features: [usize; FEATURE_COUNT],
    label: Option<usize>,
    key: Option<usize>,
    /// Header spelling of every column, for messages.
    names: Vec<String>,
    key_column: Option<String>,
    ignored_columns: Vec<String>,
}

fn malformed(origin: &str, line: u64, message: String) -> CsvError {
    CsvError::Malformed {
        origin: origin.to_string(),
        line,
        message,
    }
}

fn read_error(origin: &str, bytes: &[u8], error: csv::Error) -> CsvError {
    let line = record_line(bytes, error.position());
    let message = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(source) => CsvError::Io {
            origin: origin.to_string(),
            source,
        },
        csv::ErrorKind::Utf8 { err, .. } => malformed(
            origin,
            line,
            format!("field {} is not valid UTF-8", err.field() + 1),
        ),
        _ => malformed(origin, line, message),
    }
}

fn unnamed(index: usize) -> String {
    format!("(unnamed column {})", index + 1)
}

fn layout(
    origin: &str,
    header: &csv::StringRecord,
    label_rule: LabelRule,
) -> Result<Layout, CsvError> {
    let names: Vec<String> = header
        .iter()
        .enumerate()
        // csv-core strips a leading BOM; trimming it again costs nothing and guards any reader.
        .map(|(i, raw)| {
            let raw = if i == 0 {
                raw.trim_start_matches('\u{feff}')
            } else {
                raw
            };
            raw.trim().to_string()
        })
        .collect();
    let mut features: [Option<usize>; FEATURE_COUNT] = [None; FEATURE_COUNT];
    let mut label = None;
    let mut id = None;
    let mut extras = Vec::new();
    let twice = |name: &str| malformed(origin, 1, format!("column {name} appears more than once"));
    for (i, name) in names.iter().enumerate() {
        if let Some(f) = feature_index(name) {
            if features[f].replace(i).is_some() {
                return Err(twice(FEATURES[f].name));
            }
        } else if name.eq_ignore_ascii_case(LABEL_COLUMN) {
            if label.replace(i).is_some() {
                return Err(twice(LABEL_COLUMN));
            }
        } else if name.eq_ignore_ascii_case(ID_COLUMN) {
            if id.replace(i).is_some() {
                return Err(twice(ID_COLUMN));
            }
        } else {
            extras.push(i);
        }
    }

    let mut missing: Vec<&str> = FEATURES
        .iter()
        .zip(features.iter())
        .filter(|(_, column)| column.is_none())
        .map(|(f, _)| f.name)
        .collect();
    if label.is_none() && label_rule == LabelRule::Required {
        missing.insert(0, LABEL_COLUMN);
    }
    if !missing.is_empty() {
        return Err(CsvError::MissingColumn {
            origin: origin.to_string(),
            column: missing.join(", "),
        });
    }

    // An `id` column wins; otherwise an unnamed first column (a pandas index) is the key.
    let unnamed_first = extras.first() == Some(&0) && names.first().is_some_and(|n| n.is_empty());
    let key = match id {
        Some(i) => Some(i),
        None if unnamed_first => Some(0),
        None => None,
    };
    let ignored_columns = extras
        .iter()
        .filter(|i| Some(**i) != key)
        .map(|&i| {
            if names[i].is_empty() {
                unnamed(i)
            } else {
                names[i].clone()
            }
        })
        .collect();
    let mut resolved = [0; FEATURE_COUNT];
    for (slot, column) in resolved.iter_mut().zip(features.iter()) {
        *slot = column.unwrap_or_default();
    }
    Ok(Layout {
        features: resolved,
        label,
        key,
        key_column: key.map(|i| names[i].clone()),
        names,
        ignored_columns,
    })
}

/// The line a record starts on. The csv crate places a record at the end of the previous
/// one, so the blank lines it skips before the record would count as the record's line;
/// counting them here gives the line a text editor shows.
fn record_line(bytes: &[u8], position: Option<&csv::Position>) -> u64 {
    let Some(position) = position else {
        return 0;
    };
    let start = usize::try_from(position.byte()).unwrap_or(usize::MAX);
    let skipped = bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|b| **b == b'\n')
        .count();
    position.line() + skipped as u64
}

fn parse<R: io::Read>(
    mut reader: R,
    origin: &str,
    label_rule: LabelRule,
    progress: Option<&Step>,
) -> Result<Parsed, CsvError> {
    // Read whole, so a record's line can be found from its byte offset (see `record_line`).
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|source| CsvError::Io {
            origin: origin.to_string(),
            source,
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Field counts are checked here, so the message can name the line and both counts.
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut records = reader.records();
    let header = match records.next() {
        None => {
            return Err(CsvError::Empty {
                origin: origin.to_string(),
            })
        }
        Some(header) => header.map_err(|e| read_error(origin, &bytes, e))?,
    };
    let layout = layout(origin, &header, label_rule)?;
    let column_name = |i: usize| {
        if layout.names[i].is_empty() {
            unnamed(i)
        } else {
            layout.names[i].clone()
        }
    };

    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (index, record) in records.enumerate() {
        let record = record.map_err(|e| read_error(origin, &bytes, e))?;
        let line = record_line(&bytes, record.position());
        if let (Some(step), Some(position)) = (progress, record.position()) {
            step.set_done(position.byte());
        }
        if record.len() != layout.names.len() {
            return Err(malformed(
                origin,
                line,
                format!(
                    "the row has {} fields but the header has {}",
                    record.len(),
                    layout.names.len()
                ),
            ));
        }
        let cell = |i: usize| record.get(i).unwrap_or_default().trim();
        let bad = |i: usize, rule: String| CsvError::BadValue {
            origin: origin.to_string(),
            line,
            column: column_name(i),
            rule,
            value: record.get(i).unwrap_or_default().to_string(),
        };

        let key = match layout.key {
            Some(i) if cell(i).is_empty() => {
                return Err(bad(
                    i,
                    "must not be empty (it is the row's key)".to_string(),
                ))
            }
            Some(i) => cell(i).to_string(),
            None => (index + 1).to_string(),
        };
        if seen.insert(key.clone(), line).is_some() {
            return Err(CsvError::DuplicateKey {
                origin: origin.to_string(),
                line,
                key,
            });
        }

        let mut values = [0.0; FEATURE_COUNT];
        for ((slot, feature), &column) in values
            .iter_mut()
            .zip(FEATURES.iter())
            .zip(layout.features.iter())
        {
            let rule = || format!("must be {}", feature.domain.describe());
            let number: f64 = cell(column).parse().map_err(|_| bad(column, rule()))?;
            let code = feature.check(number).map_err(|e| bad(column, e.rule))?;
            *slot = code as f64;
        }

        let label = match layout.label {
            Some(i) => match cell(i).parse::<f64>() {
                Ok(0.0) => Some(0),
                Ok(1.0) => Some(1),
                _ => return Err(bad(i, "must be 0 (bad) or 1 (good)".to_string())),
            },
            None => None,
        };

        rows.push(ParsedRow {
            key,
            applicant: Applicant(values),
            label,
        });
    }
    if rows.is_empty() {
        return Err(CsvError::Empty {
            origin: origin.to_string(),
        });
    }
    Ok(Parsed {
        rows,
        key_column: layout.key_column,
        ignored_columns: layout.ignored_columns,
    })
}

#[cfg(test)]
mod tests {
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
}
