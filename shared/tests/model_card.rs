//! Every trained version gets a model card beside its model and in its run, and what the card
//! says agrees with the training's own summary.

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::pipeline::{PipelineSettings, RetrainMode, RetrainOutcome};
use fraudrisk::ports::RecordRole;
use fraudrisk::services::Services;
use serde_json::Value;

fn rows(kind: GeneratedKind, seed: u64, count: usize) -> Vec<fraudrisk::dataset::SourceRow> {
    let (reference_rows, shifted_rows) = match kind {
        GeneratedKind::Reference => (count, 0),
        GeneratedKind::Shifted => (0, count),
    };
    generated_rows(
        kind,
        GeneratorConfig {
            seed,
            reference_rows,
            shifted_rows,
        },
    )
}

fn read(dir: &std::path::Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn card_json(dir: &std::path::Path, version: u32) -> Value {
    serde_json::from_str(&read(
        dir,
        &format!("artifacts/models/v{version}/model_card.json"),
    ))
    .unwrap()
}

/// The rows of one segment kind add up to the holdout.
fn segment_rows(card: &Value, segment: &str) -> u64 {
    card["segments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["segment"] == segment)
        .map(|s| s["rows"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn initialtrain_and_retrain_write_a_card_that_agrees_with_their_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    let settings = PipelineSettings::default();
    services
        .records
        .load_records(
            "german_reference.csv",
            RecordRole::Reference,
            &rows(GeneratedKind::Reference, 5, 2500),
        )
        .await
        .unwrap();
    let trained = services.initial_train(&settings).await.unwrap();

    let card = card_json(dir.path(), 1);
    assert_eq!(card["version"], 1);
    assert_eq!(card["run_id"], trained.run_id.as_str());
    assert_eq!(card["trained_by"], "initialtrain");
    assert_eq!(card["choices"]["threshold"], trained.threshold);
    assert_eq!(card["choices"]["alpha"], trained.alpha);
    assert_eq!(
        card["training_data"]["data_fingerprint"],
        trained.data_fingerprint.as_str()
    );
    assert_eq!(card["training_data"]["rows"], trained.training_rows);
    let sources = card["training_data"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["source"], "german_reference.csv");
    assert_eq!(sources[0]["rows"], 2500);
    assert_eq!(
        card["holdout"]["metrics"]["roc_auc"],
        trained.metrics.roc_auc
    );
    let holdout = trained.holdout_rows as u64;
    let binned: u64 = card["holdout"]["reliability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(binned, holdout);
    assert_eq!(segment_rows(&card, "age_band"), holdout);
    assert_eq!(segment_rows(&card, "sex_marital_status"), holdout);
    assert_eq!(card["promotion"]["promoted"], true);
    assert!(card["drift"].is_null());

    // The Markdown and the page: beside the model, and the same files in the run.
    let markdown = read(dir.path(), "artifacts/models/v1/model_card.md");
    assert!(markdown.starts_with("# Model card: fraud-risk version 1"));
    assert!(markdown.contains(&trained.data_fingerprint));
    let run = format!("tracking/runs/{}/artifacts", trained.run_id);
    assert_eq!(read(dir.path(), &format!("{run}/model_card.md")), markdown);
    let page = read(dir.path(), "artifacts/models/v1/model_card.html");
    assert_eq!(read(dir.path(), &format!("{run}/model_card.html")), page);
    assert!(page.contains("<h2>Figures per segment (holdout)</h2>"));

    // A retrain's card: its drift test, the gate's criteria and verdict, every source.
    services
        .records
        .load_records(
            "shifted.csv",
            RecordRole::New,
            &rows(GeneratedKind::Shifted, 6, 1500),
        )
        .await
        .unwrap();
    let retrained = services
        .retrain(&settings, RetrainMode::Always)
        .await
        .unwrap();
    let version = retrained.challenger_version.unwrap();
    let card = card_json(dir.path(), version);
    assert_eq!(card["trained_by"], "retrain (always)");
    assert_eq!(card["drift"]["features"].as_array().unwrap().len(), 20);
    let comparison = retrained.comparison.as_ref().unwrap();
    let criteria = card["promotion"]["criteria"].as_array().unwrap();
    assert_eq!(criteria.len(), comparison.criteria.len());
    for (logged, decided) in criteria.iter().zip(&comparison.criteria) {
        assert_eq!(logged["metric"], decided.metric.as_str());
        assert_eq!(logged["passed"], decided.passed);
        assert_eq!(logged["challenger"], decided.challenger);
    }
    assert_eq!(
        card["promotion"]["promoted"],
        retrained.outcome == RetrainOutcome::Promoted
    );
    let names: Vec<&str> = card["training_data"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["german_reference.csv", "shifted.csv"]);
    assert_eq!(
        segment_rows(&card, "age_band"),
        comparison.holdout_rows as u64
    );
    let markdown = read(
        dir.path(),
        &format!("artifacts/models/v{version}/model_card.md"),
    );
    assert!(markdown.contains("## Drift at training time"));
    assert!(markdown.contains("| criterion | rows | challenger | champion | margin | passed |"));
}
