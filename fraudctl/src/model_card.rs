//! `fraudctl model card [--version N] [--html FILE]`: prints the model card a training stored
//! beside its version (`models/v<N>/model_card.md`), by default the champion's.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use fraudrisk::pipeline::model_card::model_card_key;
use fraudrisk::pipeline::read_champion_pointer;
use fraudrisk::report::{MODEL_CARD_HTML, MODEL_CARD_JSON, MODEL_CARD_MARKDOWN};

use crate::output;
use crate::state::open;
use crate::Format;

/// Prints the card (Markdown; the stored JSON with `--format json`) and writes its HTML page
/// to `html` when given.
pub async fn print(
    state: &Path,
    version: Option<u32>,
    html: Option<&Path>,
    format: Format,
) -> Result<ExitCode> {
    let services = open(state).await?;
    let artifacts = services.artifacts.as_ref();
    let version = match version {
        Some(version) => version,
        None => match read_champion_pointer(artifacts).await? {
            Some(pointer) => pointer.version,
            None => bail!("no champion yet: train the first model (fraudctl initialtrain)"),
        },
    };
    let file = match format {
        Format::Json => MODEL_CARD_JSON,
        Format::Table => MODEL_CARD_MARKDOWN,
    };
    let Some(card) = artifacts.get(&model_card_key(version, file)).await? else {
        bail!(
            "version {version} has no model card (no such version, or trained before model \
             cards were written; `fraudctl retrain --mode always` trains a version with one)"
        );
    };
    if let Some(path) = html {
        let page = artifacts
            .get(&model_card_key(version, MODEL_CARD_HTML))
            .await?
            .with_context(|| format!("version {version}'s {MODEL_CARD_HTML} is missing"))?;
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    match format {
        Format::Json => {
            let value: serde_json::Value = serde_json::from_slice(&card)
                .with_context(|| format!("version {version}'s {MODEL_CARD_JSON} is damaged"))?;
            output::emit(format, &value, || {});
        }
        Format::Table => outln!("{}", String::from_utf8_lossy(&card)),
    }
    Ok(ExitCode::SUCCESS)
}
