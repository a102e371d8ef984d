//! `fraudctl outcomes load FILE`: fraud outcomes from a CSV or JSON-lines file, recorded as
//! `POST /outcomes` records them, with the same per-item report.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::Utc;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Table};
use fraudrisk::outcomes::{read_outcomes_file, OutcomeCounts, OutcomeItem, OutcomeResult};

use crate::output::emit;
use crate::state::open;
use crate::Format;

/// Items listed one by one in the table format (all of them in JSON).
const LISTED_ITEMS: usize = 20;

/// Reads the whole file (refused whole, naming line and column, when any line is wrong),
/// records every outcome in one transaction, and reports what became of each.
pub async fn load(state: &Path, file: &Path, overwrite: bool, format: Format) -> Result<ExitCode> {
    let parsed = read_outcomes_file(file, Utc::now())?;
    let services = open(state).await?;
    let decisions = services
        .outcomes
        .record_outcomes(&parsed.outcomes, overwrite, None)
        .await
        .with_context(|| format!("cannot record the outcomes of {}", file.display()))?;
    let items: Vec<OutcomeItem> = parsed
        .outcomes
        .iter()
        .zip(&decisions)
        .zip(&parsed.lines)
        .map(|((outcome, decision), line)| {
            OutcomeItem::new(*line as usize, outcome.prediction_id, decision)
        })
        .collect();
    let counts = OutcomeCounts::of(&items);
    let value = serde_json::json!({
        "file": file,
        "counts": counts,
        "outcomes": items,
    });
    emit(format, &value, || print_report(file, &counts, &items));
    Ok(ExitCode::SUCCESS)
}

fn print_report(file: &Path, counts: &OutcomeCounts, items: &[OutcomeItem]) {
    let mut totals = Table::new();
    totals
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["result", "outcomes"]);
    for result in OutcomeResult::ALL {
        totals.add_row(vec![
            Cell::new(result.as_str()),
            Cell::new(counts.get(result)),
        ]);
    }
    outln!("Outcomes of {}:\n{totals}", file.display());
    // The recorded and unchanged ones need nothing; the rest are listed with their line.
    let notable: Vec<&OutcomeItem> = items
        .iter()
        .filter(|i| !matches!(i.result, OutcomeResult::Recorded | OutcomeResult::Unchanged))
        .collect();
    if notable.is_empty() {
        return;
    }
    let mut list = Table::new();
    list.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "line",
        "prediction_id",
        "result",
        "what to do",
    ]);
    for item in notable.iter().take(LISTED_ITEMS) {
        list.add_row(vec![
            Cell::new(item.index),
            Cell::new(item.prediction_id),
            Cell::new(item.result.as_str()),
            Cell::new(item.hint.unwrap_or("")),
        ]);
    }
    outln!("{list}");
    if notable.len() > LISTED_ITEMS {
        outln!(
            "... and {} more (--format json lists every item)",
            notable.len() - LISTED_ITEMS
        );
    }
}
