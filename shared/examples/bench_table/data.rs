//! The benchmark's inputs: written once as CSV (and the request row as JSON) with
//! `--write-data`, read back with `--data-dir`, generated in memory otherwise.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use fraudrisk::dataset::{
    generate_reference, generate_shifted, generated_rows, read_applicants_csv, read_labeled_csv,
    write_labeled_csv, GeneratedKind, GeneratorConfig,
};
use fraudrisk::request::seed_example_corrected;
use fraudrisk::schema::{Applicant, Domain, LabeledRecord, FEATURES};
use serde_json::{json, Value};

use super::{Args, Result};

/// Seed of every generated data set.
const SEED: u64 = 42;
/// The data sets: file name, kind, rows.
pub(crate) const SETS: [(&str, GeneratedKind, usize); 4] = [
    ("reference_10k.csv", GeneratedKind::Reference, 10_000),
    ("shifted_2k.csv", GeneratedKind::Shifted, 2_000),
    ("reference_1m.csv", GeneratedKind::Reference, 1_000_000),
    ("shifted_200k.csv", GeneratedKind::Shifted, 200_000),
];
const ROW_FILE: &str = "predict_row.json";
const DOMAINS_FILE: &str = "domains.json";
/// The seed's reference file, beside the checkout.
const SEED_TRAIN_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/german_credit_resampled.csv"
);

/// Writes the four generated sets, the request row and the feature domains to `dir`.
pub(crate) fn write_data(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, kind, rows) in SETS {
        let config = GeneratorConfig {
            seed: SEED,
            reference_rows: rows,
            shifted_rows: rows,
        };
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        write_labeled_csv(
            BufWriter::with_capacity(1 << 20, file),
            &generated_rows(kind, config),
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {} ({rows} rows)", path.display());
    }
    write_json(&dir.join(ROW_FILE), &seed_example_corrected())?;
    // Each feature's allowed values, so that the Python side validates by the same rules.
    let domains: Vec<Value> = FEATURES
        .iter()
        .map(|f| match f.domain {
            Domain::Range { min, max } => json!({"name": f.name, "min": min, "max": max}),
            Domain::Codes(codes) => {
                json!({"name": f.name, "codes": codes.iter().map(|c| c.0).collect::<Vec<_>>()})
            }
        })
        .collect();
    write_json(&dir.join(DOMAINS_FILE), &Value::from(domains))?;
    Ok(())
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(file, "{value:#}").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// The applicants of data set `index` of [`SETS`]: from the data folder when the file is
/// there, else generated (the same rows). Returns where they came from.
pub(crate) fn applicants(args: &Args, index: usize) -> Result<(Vec<Applicant>, String)> {
    let (name, kind, rows) = SETS[index];
    if let Some(path) = args.data_dir.as_ref().map(|d| d.join(name)) {
        if path.exists() {
            // Loading must not count as drift memory, so two things the reader leaves resident
            // are given back (about 75 MiB for the 1M/200k files): its small allocations (a key
            // string per row, to catch duplicate keys) go to the glibc arena of a thread of
            // their own, released once they are freed; and the returned Vec, which keeps the
            // capacity of the reader's larger parse rows (in-place collect), is shrunk.
            let mut rows =
                std::thread::scope(|scope| scope.spawn(|| read_applicants_csv(&path)).join())
                    .map_err(|_| format!("{}: the reader thread panicked", path.display()))??;
            rows.shrink_to_fit();
            return Ok((rows, path.display().to_string()));
        }
    }
    let records = match kind {
        GeneratedKind::Reference => generate_reference(rows, SEED),
        GeneratedKind::Shifted => generate_shifted(rows, SEED),
    };
    let origin = format!("generated {} ({rows} rows, seed {SEED})", kind.as_str());
    let mut applicants: Vec<Applicant> = records.into_iter().map(|r| r.applicant).collect();
    applicants.shrink_to_fit(); // collected in place from the larger records
    Ok((applicants, origin))
}

/// The training records: `--train-data`, else the seed's reference file, else the generated
/// 10,000 reference rows.
pub(crate) fn train_records(args: &Args) -> Result<(Vec<LabeledRecord>, String)> {
    let path = match &args.train_data {
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(SEED_TRAIN_FILE)).filter(|p| p.exists()),
    };
    if let Some(path) = path {
        let rows = read_labeled_csv(&path)?.rows;
        let origin = path.canonicalize().unwrap_or(path).display().to_string();
        return Ok((rows.into_iter().map(|r| r.record).collect(), origin));
    }
    let (_, _, rows) = SETS[0];
    Ok((
        generate_reference(rows, SEED),
        format!("generated reference ({rows} rows, seed {SEED})"),
    ))
}

/// The request body to predict: the data folder's row, else the seed's corrected example.
pub(crate) fn request_row(args: &Args) -> Result<(Value, String)> {
    if let Some(path) = args.data_dir.as_ref().map(|d| d.join(ROW_FILE)) {
        if path.exists() {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok((value, path.display().to_string()));
        }
    }
    Ok((
        seed_example_corrected(),
        "the seed's example (no_of_dependents=1)".to_string(),
    ))
}
