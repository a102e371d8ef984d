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

use super::quality::{CellAt, DataQuality, QualityTally};
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
        parse(file, &origin, LabelRule::Required, Some(&step), None)?,
        &origin,
    )
}

/// Reads labelled CSV from any reader; `origin` names it in errors.
pub fn read_labeled_csv_from<R: io::Read>(reader: R, origin: &str) -> Result<LabeledCsv, CsvError> {
    labeled_from_parsed(
        parse(reader, origin, LabelRule::Required, None, None)?,
        origin,
    )
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
    let parsed = parse(reader, origin, LabelRule::Optional, None, None)?;
    // Collecting in place would keep the larger parse rows' capacity; give it back.
    let mut applicants: Vec<Applicant> = parsed.rows.into_iter().map(|row| row.applicant).collect();
    applicants.shrink_to_fit();
    Ok(applicants)
}

/// Reads applicants as [`read_applicants_csv`] does, except that a feature value that is
/// missing, not a number or outside its domain does not refuse the file: it is NaN in the
/// returned row (drift tests leave it out) and counted in the [`DataQuality`]. For data that is
/// examined, never for data that is trained on.
pub fn read_applicants_tolerant(path: &Path) -> Result<(Vec<Applicant>, DataQuality), CsvError> {
    let origin = path.display().to_string();
    let file = File::open(path).map_err(|source| CsvError::Io {
        origin: origin.clone(),
        source,
    })?;
    read_applicants_tolerant_from(file, &origin)
}

/// Reads applicants tolerantly from any reader; see [`read_applicants_tolerant`].
pub fn read_applicants_tolerant_from<R: io::Read>(
    reader: R,
    origin: &str,
) -> Result<(Vec<Applicant>, DataQuality), CsvError> {
    let mut tally = QualityTally::new();
    let parsed = parse(reader, origin, LabelRule::Optional, None, Some(&mut tally))?;
    let applicants = parsed.rows.into_iter().map(|row| row.applicant).collect();
    Ok((applicants, tally.finish()))
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

/// Reads and checks the whole file. With `tally`, a feature cell that is empty, not a number
/// or outside its domain becomes NaN (left out of drift tests) and is counted there instead of
/// refusing the file; structural faults (columns, field counts, keys, labels) still refuse it.
fn parse<R: io::Read>(
    mut reader: R,
    origin: &str,
    label_rule: LabelRule,
    progress: Option<&Step>,
    mut tally: Option<&mut QualityTally>,
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
        for (j, ((slot, feature), &column)) in values
            .iter_mut()
            .zip(FEATURES.iter())
            .zip(layout.features.iter())
            .enumerate()
        {
            let code = cell(column)
                .parse::<f64>()
                .map_err(|_| format!("must be {}", feature.domain.describe()))
                .and_then(|number| feature.check(number).map_err(|e| e.rule));
            *slot = match (code, tally.as_deref_mut()) {
                (Ok(code), _) => code as f64,
                (Err(rule), Some(tally)) => {
                    tally.bad_cell(j, CellAt::Line(line), cell(column), &rule);
                    f64::NAN
                }
                (Err(rule), None) => return Err(bad(column, rule)),
            };
        }
        if let Some(tally) = tally.as_deref_mut() {
            tally.end_row();
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
#[path = "csv_file_tests.rs"]
mod tests;
