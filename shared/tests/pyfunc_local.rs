//! The model folder loads in MLflow's Python client and scores as the Rust model does, on the
//! embedded defaults (no services): `mlflow.pyfunc.load_model(<folder>)` in the project's venv
//! (scripts/pyfunc_check.py), on both folders training writes (the artifact store's
//! `models/v1/` and the local tracker's logged model), to 1e-12 on every applicant; and the
//! loader refuses out-of-domain codes and missing columns, naming the column and the rule. A
//! Platt-calibrated model (FRAUDRISK_CALIBRATION=platt) scores the same in Python too.

mod it_common;
mod pyfunc_common;

use std::path::{Path, PathBuf};

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::model::pyfunc::{PYFUNC_CODE_FILE, PYFUNC_SOURCE};
use fraudrisk::model::{Calibration, CalibrationMethod};
use fraudrisk::pipeline::{self, PipelineSettings};
use fraudrisk::ports::RecordRole;
use fraudrisk::schema::FEATURES;
use fraudrisk::services::Services;
use pyfunc_common::{applicants, assert_same_probabilities, pyfunc_check, write_applicants};

/// Every folder below `root` that holds an `MLmodel`.
fn model_folders(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "MLmodel") {
                found.push(dir.clone());
            }
        }
    }
    found.sort();
    found
}

/// Local services in `dir` with a champion trained by initialtrain on generated rows.
async fn trained(dir: &Path, calibration: CalibrationMethod) -> Services {
    let services = Services::local(dir).await.unwrap();
    let mut settings = PipelineSettings::default();
    settings.training.alphas = vec![0.1, 1.0, 10.0];
    settings.training.folds = 3;
    settings.training.calibration = calibration;
    let reference = generated_rows(
        GeneratedKind::Reference,
        GeneratorConfig {
            seed: 7,
            reference_rows: 3000,
            shifted_rows: 0,
        },
    );
    services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    services.initial_train(&settings).await.unwrap();
    services
}

#[tokio::test]
async fn a_platt_calibrated_model_scores_the_same_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained(dir.path(), CalibrationMethod::Platt).await;
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .expect("a champion");
    let Some(Calibration::Platt { a, b }) = champion.model.calibration().copied() else {
        panic!("the champion has no Platt calibration");
    };
    let applicants = applicants();
    // The calibration moves the probabilities, so agreeing below proves Python applies it.
    let moved = applicants
        .iter()
        .map(|x| {
            let z = champion.model.log_odds(x);
            (champion.model.probability_of_fraud(x) - 1.0 / (1.0 + (-z).exp())).abs()
        })
        .fold(0.0f64, f64::max);
    assert!(
        moved > 1e-6,
        "Platt a {a}, b {b} leaves every probability in place"
    );
    let input = dir.path().join("applicants.json");
    write_applicants(&input, &applicants);
    let folder = dir.path().join("artifacts/models/v1");
    let model_json = std::fs::read_to_string(folder.join("model.json")).unwrap();
    assert!(model_json.contains("\"method\": \"platt\""), "{model_json}");
    for extra in [None, Some("--direct")] {
        let mut args = vec![
            "predict",
            "--model-uri",
            folder.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ];
        args.extend(extra);
        let answer = pyfunc_check(&args);
        assert_same_probabilities(&answer["probabilities"], &champion.model, &applicants);
    }
}

#[tokio::test]
async fn mlflow_pyfunc_loads_the_model_folder_and_scores_as_rust_does() {
    let dir = tempfile::tempdir().unwrap();
    let services = trained(dir.path(), CalibrationMethod::None).await;
    let champion = pipeline::load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .expect("a champion");

    // Both copies of the model folder: the artifact store's and the logged model's.
    let store_folder = dir.path().join("artifacts/models/v1");
    let folders = model_folders(dir.path());
    assert!(folders.contains(&store_folder), "{folders:?}");
    assert_eq!(folders.len(), 2, "{folders:?}");
    for folder in &folders {
        assert_eq!(
            std::fs::read_to_string(folder.join(PYFUNC_CODE_FILE)).unwrap(),
            PYFUNC_SOURCE
        );
        let mlmodel = std::fs::read_to_string(folder.join("MLmodel")).unwrap();
        assert!(
            mlmodel.contains("  python_function:\n"),
            "{}",
            folder.display()
        );
    }

    let applicants = applicants();
    let input = dir.path().join("applicants.json");
    write_applicants(&input, &applicants);
    let input_arg = input.to_str().unwrap();
    for folder in &folders {
        let answer = pyfunc_check(&[
            "predict",
            "--model-uri",
            folder.to_str().unwrap(),
            "--input",
            input_arg,
        ]);
        assert_eq!(answer["loader_module"], "fraudrisk_pyfunc");
        assert_eq!(answer["output_columns"][0], "probability_of_fraud");
        assert_same_probabilities(&answer["probabilities"], &champion.model, &applicants);
    }
    let store_arg = store_folder.to_str().unwrap();

    // An out-of-domain code passes MLflow's type check (a long) and the loader refuses it.
    let mut bad = applicants[..3].to_vec();
    let purpose = FEATURES.iter().position(|f| f.name == "purpose").unwrap();
    bad[1].0[purpose] = 12.0;
    let bad_input = dir.path().join("bad.json");
    write_applicants(&bad_input, &bad);
    let refused = pyfunc_check(&[
        "predict",
        "--model-uri",
        store_arg,
        "--input",
        bad_input.to_str().unwrap(),
        "--expect-error",
    ]);
    assert_eq!(refused["error_type"], "ValueError", "{refused}");
    assert_eq!(
        refused["error"],
        "row 1, column purpose must be one of the codes 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 (got 12)"
    );

    // A missing column: MLflow's schema check refuses it first; the loader itself too.
    let rows: Vec<serde_json::Value> = applicants[..2]
        .iter()
        .map(|a| {
            let mut row = a.to_json();
            row.as_object_mut().unwrap().remove("age_years");
            row
        })
        .collect();
    let missing_input = dir.path().join("missing.json");
    std::fs::write(&missing_input, serde_json::to_vec(&rows).unwrap()).unwrap();
    let missing_arg = missing_input.to_str().unwrap();
    let refused = pyfunc_check(&[
        "predict",
        "--model-uri",
        store_arg,
        "--input",
        missing_arg,
        "--expect-error",
    ]);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("missing inputs ['age_years']")),
        "{refused}"
    );
    let refused = pyfunc_check(&[
        "predict",
        "--model-uri",
        store_arg,
        "--input",
        missing_arg,
        "--expect-error",
        "--direct",
    ]);
    assert_eq!(refused["error_type"], "ValueError", "{refused}");
    assert_eq!(
        refused["error"],
        "column age_years is required: an integer from 18 to 120"
    );
}
