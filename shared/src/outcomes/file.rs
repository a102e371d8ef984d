//! Outcome files for `fraudctl outcomes load` and the S3 ingest: CSV with a header naming
//! `prediction_id,fraud[,observed_at]`, or JSON lines of the same fields. A file is read and
//! checked whole; the first problem refuses it, naming the line (as an editor numbers it) and
//! the column.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::parse::{parse_fraud, parse_id, parse_time, ID_RULE, OBSERVED_RULE};
use super::{outcomes_from_json, Outcome};

/// Most outcomes in one file (a file is stored in one transaction).
pub const MAX_FILE_OUTCOMES: usize = 1_000_000;

/// Why an outcomes file was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeFileError {
    /// The file could not be read.
    #[error("{origin}: {source}")]
    Io {
        origin: String,
        #[source]
        source: io::Error,
    },
    /// A line broke a rule (the first problem found; nothing of the file is stored).
    #[error("{origin} line {line}, column {column}: {rule}{}", value.as_ref().map(|v| format!(" (got {v:?})")).unwrap_or_default())]
    Invalid {
        origin: String,
        line: u64,
        column: String,
        rule: String,
        value: Option<String>,
    },
}

impl OutcomeFileError {
    fn invalid(
        origin: &str,
        line: u64,
        column: &str,
        rule: impl Into<String>,
        value: Option<&str>,
    ) -> Self {
        OutcomeFileError::Invalid {
            origin: origin.to_string(),
            line,
            column: column.to_string(),
            rule: rule.into(),
            value: value.map(str::to_string),
        }
    }
}

/// An outcomes file, read whole and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomesFile {
    pub outcomes: Vec<Outcome>,
    /// The line each outcome came from (1-based), for the report.
    pub lines: Vec<u64>,
}

/// The cells of one CSV line, trimmed (quotes allowed, as any CSV writer puts them).
fn csv_cells(text: &str, origin: &str, line: u64) -> Result<Vec<String>, OutcomeFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_string).collect()),
        Some(Err(error)) => Err(OutcomeFileError::invalid(
            origin,
            line,
            "line",
            format!("is not valid CSV: {error}"),
            None,
        )),
        None => Ok(Vec::new()),
    }
}

/// Whether a CSV header line names an outcomes file (rather than labelled rows).
pub fn is_outcomes_header(first_line: &str) -> bool {
    first_line
        .trim_start_matches('\u{feff}')
        .split(',')
        .any(|cell| {
            cell.trim()
                .trim_matches('"')
                .eq_ignore_ascii_case("prediction_id")
        })
}

/// Reads an outcomes file: CSV with a header, or JSON lines (the first non-blank character
/// is `{`). `now` is the default `observed_at`.
pub fn read_outcomes_file(
    path: &Path,
    now: DateTime<Utc>,
) -> Result<OutcomesFile, OutcomeFileError> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| OutcomeFileError::Io {
        origin: origin.clone(),
        source,
    })?;
    read_outcomes_from(file, &origin, now)
}

/// Reads outcomes from any reader; `origin` names it in errors.
pub fn read_outcomes_from<R: Read>(
    reader: R,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<OutcomesFile, OutcomeFileError> {
    let mut text = String::new();
    // Bounded: a line is at most a few hundred bytes, so the cap only stops a wrong file.
    let limit = (MAX_FILE_OUTCOMES as u64) * 256;
    reader
        .take(limit + 1)
        .read_to_string(&mut text)
        .map_err(|source| OutcomeFileError::Io {
            origin: origin.to_string(),
            source,
        })?;
    if text.len() as u64 > limit {
        return Err(OutcomeFileError::invalid(
            origin,
            1,
            "file",
            format!("is larger than {limit} bytes"),
            None,
        ));
    }
    let text = text.trim_start_matches('\u{feff}');
    let file = if text.trim_start().starts_with('{') {
        read_json_lines(text, origin, now)?
    } else {
        read_csv(text, origin, now)?
    };
    if file.outcomes.is_empty() {
        return Err(OutcomeFileError::invalid(
            origin,
            1,
            "file",
            "holds no outcomes",
            None,
        ));
    }
    let mut first_line: HashMap<Uuid, u64> = HashMap::with_capacity(file.outcomes.len());
    for (outcome, line) in file.outcomes.iter().zip(&file.lines) {
        if let Some(first) = first_line.insert(outcome.prediction_id, *line) {
            return Err(OutcomeFileError::invalid(
                origin,
                *line,
                "prediction_id",
                format!("occurs more than once in the file (first on line {first})"),
                Some(&outcome.prediction_id.to_string()),
            ));
        }
    }
    Ok(file)
}

fn push_checked(
    file: &mut OutcomesFile,
    outcome: Outcome,
    line: u64,
    origin: &str,
) -> Result<(), OutcomeFileError> {
    if file.outcomes.len() >= MAX_FILE_OUTCOMES {
        return Err(OutcomeFileError::invalid(
            origin,
            line,
            "file",
            format!("holds more than {MAX_FILE_OUTCOMES} outcomes"),
            None,
        ));
    }
    file.outcomes.push(outcome);
    file.lines.push(line);
    Ok(())
}

fn read_json_lines(
    text: &str,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<OutcomesFile, OutcomeFileError> {
    let mut file = OutcomesFile {
        outcomes: Vec::new(),
        lines: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|error| {
            OutcomeFileError::invalid(
                origin,
                number,
                "line",
                format!("is not a JSON object: {error}"),
                None,
            )
        })?;
        let body = serde_json::json!({ "outcomes": [value] });
        let outcome = outcomes_from_json(&body, now).map_err(|errors| {
            let first = &errors[0];
            let column = first.field.trim_start_matches("outcomes[0].");
            OutcomeFileError::invalid(
                origin,
                number,
                column,
                first.rule.clone(),
                first.value.as_deref(),
            )
        })?;
        if let Some(outcome) = outcome.into_iter().next() {
            push_checked(&mut file, outcome, number, origin)?;
        }
    }
    Ok(file)
}

fn read_csv(
    text: &str,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<OutcomesFile, OutcomeFileError> {
    // Line by line (an outcome never spans lines), so every line number is the editor's,
    // blank lines included.
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index as u64 + 1, line))
        .filter(|(_, line)| !line.trim().is_empty());
    let (header_line, header) = lines.next().unwrap_or((1, ""));
    let headers = csv_cells(header, origin, header_line)?;
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(id_column), Some(fraud_column)) = (column("prediction_id"), column("fraud")) else {
        return Err(OutcomeFileError::invalid(
            origin,
            header_line,
            "header",
            "must name the columns prediction_id and fraud (observed_at optional)",
            Some(&headers.join(",")),
        ));
    };
    let observed_column = column("observed_at");
    let mut file = OutcomesFile {
        outcomes: Vec::new(),
        lines: Vec::new(),
    };
    for (line, text) in lines {
        let record = csv_cells(text, origin, line)?;
        let cell = |index: usize| record.get(index).map_or("", String::as_str);
        let id_text = cell(id_column);
        let prediction_id = parse_id(id_text).ok_or_else(|| {
            OutcomeFileError::invalid(origin, line, "prediction_id", ID_RULE, Some(id_text))
        })?;
        let fraud_text = cell(fraud_column);
        let fraud = parse_fraud(fraud_text).ok_or_else(|| {
            OutcomeFileError::invalid(
                origin,
                line,
                "fraud",
                "must be true, false, 1 or 0",
                Some(fraud_text),
            )
        })?;
        let observed_at = match observed_column.map(cell) {
            None | Some("") => now,
            Some(text) => parse_time(text, now).ok_or_else(|| {
                OutcomeFileError::invalid(origin, line, "observed_at", OBSERVED_RULE, Some(text))
            })?,
        };
        push_checked(
            &mut file,
            Outcome {
                prediction_id,
                fraud,
                observed_at,
            },
            line,
            origin,
        )?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0192f0c4-8a4e-7c1b-9d2e-3f4a5b6c7d8e";
    const OTHER: &str = "0192f0c4-8a4e-7c1b-9d2e-3f4a5b6c7d8f";

    #[test]
    fn csv_and_json_lines_read_alike() {
        let now = Utc::now();
        let csv = format!("\u{feff}Prediction_ID,fraud,observed_at\n{ID},1,2026-01-01T00:00:00Z\n\n{OTHER},FALSE,\n");
        let file = read_outcomes_from(csv.as_bytes(), "o.csv", now).unwrap();
        assert_eq!(file.lines, [2, 4]);
        assert!(file.outcomes[0].fraud && !file.outcomes[1].fraud);
        assert_eq!(file.outcomes[1].observed_at, now);

        let lines = format!("{{\"prediction_id\":\"{ID}\",\"fraud\":true}}\n\n{{\"prediction_id\":\"{OTHER}\",\"fraud\":false}}\n");
        let file = read_outcomes_from(lines.as_bytes(), "o.jsonl", now).unwrap();
        assert_eq!(file.lines, [1, 3]);
        assert_eq!(file.outcomes.len(), 2);
    }

    #[test]
    fn a_file_is_refused_whole_naming_line_and_column() {
        let now = Utc::now();
        let cases = [
            (format!("prediction_id,fraud\n{ID},true\n{OTHER},maybe\n"), 3, "fraud"),
            (format!("prediction_id,fraud\n{ID},true\n{ID},true\n"), 3, "prediction_id"),
            ("id,label\n1,0\n".to_string(), 1, "header"),
            ("prediction_id,fraud\n".to_string(), 1, "file"),
            (format!("{{\"prediction_id\":\"{ID}\",\"fraud\":true}}\n{{\"prediction_id\":\"{OTHER}\"}}\n"), 2, "fraud"),
            (format!("{{\"prediction_id\":\"{ID}\",\"fraud\":true}}\nnot json\n"), 2, "line"),
            (format!("prediction_id,fraud,observed_at\n{ID},true,2999-01-01T00:00:00Z\n"), 2, "observed_at"),
        ];
        for (text, line, column) in cases {
            match read_outcomes_from(text.as_bytes(), "f", now) {
                Err(OutcomeFileError::Invalid {
                    line: l, column: c, ..
                }) => {
                    assert_eq!((l, c.as_str()), (line, column), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn headers_tell_outcomes_from_labelled_rows() {
        assert!(is_outcomes_header("prediction_id,fraud"));
        assert!(is_outcomes_header(
            "\u{feff}\"Prediction_Id\",fraud,observed_at"
        ));
        assert!(!is_outcomes_header("Creditability,Account Balance"));
    }
}
