//! Datasets: CSV input and output, the built-in generator, fingerprints.
//!
//! - [`read_labeled_csv`] and [`read_applicants_csv`] read the seed's own files as they are
//!   (an unnamed index column or an `id` column, extra columns, header case differences) and
//!   check every value against [`crate::schema::FEATURES`]; a file is returned whole or not at all.
//! - [`read_applicants_tolerant`] reads data that is only examined (the current side of a drift
//!   check): bad values become gaps, counted in a [`DataQuality`] report.
//! - [`generate_reference`] and [`generate_shifted`] are the seed's data_insertion step without
//!   the files: class-conditional draws from tables derived from the seed's data, plus the
//!   documented [`SHIFTS`] for the "new" data.
//! - [`fingerprint`] and [`distinct_overlap`] identify training data and warn of leakage.

mod csv_file;
mod fingerprint;
mod generator;
mod quality;

pub use csv_file::{
    read_applicants_csv, read_applicants_csv_from, read_applicants_tolerant,
    read_applicants_tolerant_from, read_labeled_csv, read_labeled_csv_from, write_labeled_csv,
    CsvError, LabeledCsv, SourceRow,
};
pub use fingerprint::{distinct_overlap, fingerprint, row_hash};
pub use generator::{
    generate_reference, generate_shifted, generated_rows, table_fraud_share, GeneratedKind,
    GeneratorConfig, Shift, ShiftOp, SHIFTS,
};
pub(crate) use quality::{CellAt, QualityTally};
pub use quality::{DataQuality, FeatureQuality, QualityExample, QUALITY_EXAMPLES};

/// Stored rows of one source (a file name, or `outcome`) and role, with when they were loaded:
/// the training data's provenance in a model card.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecordSource {
    pub source: String,
    /// `reference` or `new`.
    pub role: String,
    pub rows: usize,
    pub first_loaded_at: chrono::DateTime<chrono::Utc>,
    pub last_loaded_at: chrono::DateTime<chrono::Utc>,
}
