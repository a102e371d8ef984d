//! Labelled data arriving as files: an object put under `<prefix>/incoming/` is loaded, then
//! moved to `processed/` (with a `<name>.report.json` beside it) or to `rejected/` (with a
//! `<name>.error.json` naming line, column and rule).
//!
//! A file is either labelled rows in the seed's CSV format (loaded as `load-data --new`
//! loads them: keyed by content, one transaction) or outcomes (a CSV whose header names
//! `prediction_id`, or JSON lines; recorded as `POST /outcomes` records them). Its first line
//! decides. Every step is safe to repeat: a retried invocation after a crash loads nothing
//! twice (rows are keyed by content, outcomes are idempotent), and an object that is gone was
//! handled already. A file over [`MAX_INGEST_BYTES`] is rejected without being read past its
//! first 64 KiB (it is moved by a copy inside the store). A store that fails (the database down) fails the invocation, so Lambda
//! retries it and finally hands it to the dead-letter queue; the file stays in `incoming/`.

mod event;
mod invocation;

use chrono::Utc;
use serde::Serialize;

use crate::dataset::{read_labeled_csv_from, CsvError};
use crate::outcomes::{
    is_outcomes_header, read_outcomes_from, OutcomeCounts, OutcomeFileError, OutcomeItem,
    OutcomeResult,
};
use crate::ports::{
    ArtifactError, ArtifactStore, BoundedObject, LoadSummary, OutcomeStore, RecordRole,
    RecordStore, StoreError,
};

pub use event::{objects_in_event, EventError, ObjectRef};
pub use invocation::{ingest_event, IngestTarget, InvocationError, LOCAL_PREFIX};

/// Where files wait, relative to the artifact prefix.
pub const INCOMING: &str = "incoming/";
/// Where loaded files go.
pub const PROCESSED: &str = "processed/";
/// Where refused files go, each with `<name>.error.json`.
pub const REJECTED: &str = "rejected/";
/// Largest file loaded (the whole file is read into memory and loaded in one transaction).
pub const MAX_INGEST_BYTES: usize = 64 * 1024 * 1024;

/// What kind of file an incoming object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Labelled rows in the seed's CSV format.
    LabelledRows,
    /// Outcomes by prediction id (CSV with `prediction_id` in its header, or JSON lines).
    Outcomes,
}

/// Tells the kinds apart by the first non-blank line.
pub fn file_kind(bytes: &[u8]) -> FileKind {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    if first.trim_start().starts_with('{') || is_outcomes_header(first) {
        FileKind::Outcomes
    } else {
        FileKind::LabelledRows
    }
}

/// Why a file was refused: what `<name>.error.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    /// The object's key below `incoming/`.
    pub file: String,
    pub kind: FileKind,
    /// The line (1-based, as an editor numbers it), when one is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The rule broken.
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The whole message, as `fraudctl` would print it.
    pub error: String,
}

impl Rejection {
    fn from_csv(file: &str, error: &CsvError) -> Self {
        let (line, column, rule, value) = match error {
            CsvError::BadValue {
                line,
                column,
                rule,
                value,
                ..
            } => (
                Some(*line),
                Some(column.clone()),
                rule.clone(),
                Some(value.clone()),
            ),
            CsvError::MissingColumn { column, .. } => (
                Some(1),
                Some(column.clone()),
                "required column missing".to_string(),
                None,
            ),
            CsvError::DuplicateKey { line, key, .. } => (
                Some(*line),
                None,
                "the key occurs more than once in the file".to_string(),
                Some(key.clone()),
            ),
            CsvError::Malformed { line, message, .. } => (Some(*line), None, message.clone(), None),
            CsvError::Empty { .. } => (None, None, "has no data rows".to_string(), None),
            CsvError::Io { source, .. } => (None, None, source.to_string(), None),
        };
        Rejection {
            file: file.to_string(),
            kind: FileKind::LabelledRows,
            line,
            column,
            rule,
            value,
            error: error.to_string(),
        }
    }

    fn from_outcomes(file: &str, error: &OutcomeFileError) -> Self {
        let (line, column, rule, value) = match error {
            OutcomeFileError::Invalid {
                line,
                column,
                rule,
                value,
                ..
            } => (
                Some(*line),
                Some(column.clone()),
                rule.clone(),
                value.clone(),
            ),
            OutcomeFileError::Io { source, .. } => (None, None, source.to_string(), None),
        };
        Rejection {
            file: file.to_string(),
            kind: FileKind::Outcomes,
            line,
            column,
            rule,
            value,
            error: error.to_string(),
        }
    }

    fn too_large(file: &str, kind: FileKind, size: u64) -> Self {
        let rule = format!("is larger than {MAX_INGEST_BYTES} bytes ({size}); split it");
        Self::whole_file(file, kind, rule)
    }

    /// A rule the file breaks as a whole (no line or column at fault).
    fn whole_file(file: &str, kind: FileKind, rule: String) -> Self {
        Rejection {
            file: file.to_string(),
            kind,
            line: None,
            column: None,
            error: format!("{file}: {rule}"),
            rule,
            value: None,
        }
    }
}

/// What one file did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum IngestOutcome {
    /// Labelled rows loaded (waiting for the next retrain); moved to `processed/`.
    Loaded { file: String, summary: LoadSummary },
    /// Outcomes recorded; moved to `processed/`. `notable` lists the items that were not
    /// recorded or unchanged (conflicts, unknown ids), with their lines.
    Recorded {
        file: String,
        counts: OutcomeCounts,
        notable: Vec<OutcomeItem>,
    },
    /// Refused whole; moved to `rejected/` with `<name>.error.json`.
    Rejected(Rejection),
    /// The object is gone: an earlier invocation handled it.
    AlreadyHandled { key: String },
    /// Not under `incoming/` (or another bucket): left alone.
    Ignored { key: String, reason: String },
}

/// A failure that should fail the invocation (so Lambda retries it): the store or the
/// object store did not answer. The file stays in `incoming/`.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot load {file}: {source}")]
    Store {
        file: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot move {file}: {source}")]
    Objects {
        file: String,
        #[source]
        source: ArtifactError,
    },
}

/// The stores an ingest works with.
pub struct IngestStores<'a> {
    pub records: &'a dyn RecordStore,
    pub outcomes: &'a dyn OutcomeStore,
    /// The artifact store: its keys are relative to the artifact prefix.
    pub objects: &'a dyn ArtifactStore,
}

/// Loads the file at `key` (relative to the artifact prefix, under [`INCOMING`]) and moves it.
pub async fn ingest_key(
    stores: &IngestStores<'_>,
    key: &str,
) -> Result<IngestOutcome, IngestError> {
    let Some(name) = key
        .strip_prefix(INCOMING)
        .filter(|n| !n.is_empty() && !n.ends_with('/'))
    else {
        return Ok(IngestOutcome::Ignored {
            key: key.to_string(),
            reason: format!("not a file under {INCOMING}"),
        });
    };
    let objects_error = |source| IngestError::Objects {
        file: name.to_string(),
        source,
    };
    let bytes = match stores
        .objects
        .get_at_most(key, MAX_INGEST_BYTES)
        .await
        .map_err(objects_error)?
    {
        None => {
            return Ok(IngestOutcome::AlreadyHandled {
                key: key.to_string(),
            })
        }
        // Not read past its head: the file is moved aside by a copy inside the store.
        Some(BoundedObject::TooLarge { size, head }) => {
            let rejection = Rejection::too_large(name, file_kind(&head), size);
            return reject(stores, key, name, Content::InPlace, rejection).await;
        }
        Some(BoundedObject::Whole(bytes)) => bytes,
    };
    let kind = file_kind(&bytes);
    let store_error = |source| IngestError::Store {
        file: name.to_string(),
        source,
    };
    let outcome = match kind {
        FileKind::LabelledRows => match read_labeled_csv_from(bytes.as_slice(), name) {
            Err(error) => {
                let rejection = Rejection::from_csv(name, &error);
                return reject(stores, key, name, Content::Read(bytes), rejection).await;
            }
            Ok(csv) => {
                let summary = match stores
                    .records
                    .load_records(name, RecordRole::New, &csv.rows)
                    .await
                {
                    // Retrying cannot help: the file goes aside with the reason.
                    Err(StoreError::Conflict(rule)) => {
                        let rejection = Rejection::whole_file(name, kind, rule);
                        return reject(stores, key, name, Content::Read(bytes), rejection).await;
                    }
                    loaded => loaded.map_err(store_error)?,
                };
                IngestOutcome::Loaded {
                    file: name.to_string(),
                    summary,
                }
            }
        },
        FileKind::Outcomes => match read_outcomes_from(bytes.as_slice(), name, Utc::now()) {
            Err(error) => {
                let rejection = Rejection::from_outcomes(name, &error);
                return reject(stores, key, name, Content::Read(bytes), rejection).await;
            }
            Ok(file) => {
                let decisions = stores
                    .outcomes
                    .record_outcomes(&file.outcomes, false, None)
                    .await
                    .map_err(store_error)?;
                let items: Vec<OutcomeItem> = file
                    .outcomes
                    .iter()
                    .zip(&decisions)
                    .zip(&file.lines)
                    .map(|((outcome, decision), line)| {
                        OutcomeItem::new(*line as usize, outcome.prediction_id, decision)
                    })
                    .collect();
                IngestOutcome::Recorded {
                    file: name.to_string(),
                    counts: OutcomeCounts::of(&items),
                    notable: items
                        .into_iter()
                        .filter(|i| {
                            !matches!(i.result, OutcomeResult::Recorded | OutcomeResult::Unchanged)
                        })
                        .collect(),
                }
            }
        },
    };
    let report = serde_json::to_vec_pretty(&outcome).unwrap_or_default();
    move_object(
        stores,
        key,
        &format!("{PROCESSED}{name}"),
        Content::Read(bytes),
        report,
        "report",
    )
    .await
    .map_err(objects_error)?;
    tracing::info!(file = name, result = ?outcome, "ingested");
    Ok(outcome)
}

async fn reject(
    stores: &IngestStores<'_>,
    key: &str,
    name: &str,
    content: Content,
    rejection: Rejection,
) -> Result<IngestOutcome, IngestError> {
    tracing::warn!(file = name, error = %rejection.error, "file rejected");
    let report = serde_json::to_vec_pretty(&rejection).unwrap_or_default();
    move_object(
        stores,
        key,
        &format!("{REJECTED}{name}"),
        content,
        report,
        "error",
    )
    .await
    .map_err(|source| IngestError::Objects {
        file: name.to_string(),
        source,
    })?;
    Ok(IngestOutcome::Rejected(rejection))
}

/// A file being moved: as read, or left in the store unread (too large to read).
enum Content {
    Read(Vec<u8>),
    InPlace,
}

/// Writes the file and its JSON note at `to`, then removes it from `from`: a crash in between
/// leaves it in both places, and the retry finds it handled by content.
async fn move_object(
    stores: &IngestStores<'_>,
    from: &str,
    to: &str,
    content: Content,
    note: Vec<u8>,
    note_kind: &str,
) -> Result<(), ArtifactError> {
    stores
        .objects
        .put(&format!("{to}.{note_kind}.json"), note, "application/json")
        .await?;
    match content {
        Content::Read(bytes) => stores.objects.put(to, bytes, "text/csv").await?,
        Content::InPlace => stores.objects.copy(from, to).await?,
    }
    stores.objects.delete(from).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_tells_the_kind() {
        assert_eq!(file_kind(b"prediction_id,fraud\n"), FileKind::Outcomes);
        assert_eq!(
            file_kind(b"\xef\xbb\xbf\n\n{\"prediction_id\": 1}"),
            FileKind::Outcomes
        );
        assert_eq!(
            file_kind(b"Creditability,Account Balance\n1,2"),
            FileKind::LabelledRows
        );
        assert_eq!(file_kind(b""), FileKind::LabelledRows);
    }
}
