//! The champion leaves Rust (issue 11, item 6), against the real services: trained through the
//! MLflow server, `mlflow.pyfunc.load_model("models:/<name>@champion")` and the artifact store's
//! S3 copy reproduce the Rust probabilities to 1e-12, and `mlflow models serve` of the alias
//! answers `POST /invocations` with them (and refuses an out-of-domain code with a 400).

mod it_common;
mod pyfunc_common;

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::model::pyfunc::PYFUNC_CODE_FILE;
use fraudrisk::pipeline::{load_champion, CHAMPION_ALIAS};
use fraudrisk::ports::RecordRole;
use fraudrisk::schema::FEATURES;
use fraudrisk::services::Services;
use it_common::TestDatabase;
use pyfunc_common::{applicants, assert_same_probabilities, pyfunc_check, write_applicants};

#[tokio::test]
#[ignore = "needs services"]
async fn the_champion_loads_by_alias_in_python_and_mlflow_serves_it() {
    it_common::start();
    let database = TestDatabase::create("pyfunc").await;
    let prefix = it_common::unique("it/pyfunc");
    let config = it_common::isolated_config(&database, &prefix);
    let state = tempfile::tempdir().unwrap();
    let services = Services::production(&config, state.path())
        .await
        .expect("services");
    let settings = it_common::pipeline_settings("pyfunc", true);
    let reference = generated_rows(
        GeneratedKind::Reference,
        GeneratorConfig {
            seed: 42,
            reference_rows: 2_000,
            shifted_rows: 0,
        },
    );
    services
        .records
        .load_records("generated-reference", RecordRole::Reference, &reference)
        .await
        .unwrap();
    let trained = services.initial_train(&settings).await.unwrap();
    assert!(trained.promoted);
    let champion = load_champion(services.artifacts.as_ref())
        .await
        .unwrap()
        .expect("a champion");

    // The loader is in both folders: the logged model's and the serving copy's.
    let models = it_common::mlflow_check(&["logged-models", "--experiment", &settings.experiment]);
    assert_eq!(
        models["models"][0]["artifacts"],
        serde_json::json!(["MLmodel", "code", "model.json"]),
        "{models}"
    );
    let keys = it_common::s3_keys(&format!("{prefix}/models/v1/"));
    assert!(
        keys.contains(&format!("{prefix}/models/v1/{PYFUNC_CODE_FILE}")),
        "{keys:?}"
    );

    let applicants = applicants();
    let input = state.path().join("applicants.json");
    write_applicants(&input, &applicants);
    let mut bad = applicants[..2].to_vec();
    let purpose = FEATURES.iter().position(|f| f.name == "purpose").unwrap();
    bad[0].0[purpose] = 12.0;
    let bad_input = state.path().join("bad.json");
    write_applicants(&bad_input, &bad);
    let env_file = it_common::services_env_file();
    let env_arg = env_file.to_str().unwrap();
    let input_arg = input.to_str().unwrap();
    let alias_uri = format!("models:/{}@{CHAMPION_ALIAS}", settings.model_name);
    let store_uri = format!(
        "s3://{}/{prefix}/models/v{}",
        it_common::env("FRAUDRISK_BUCKET"),
        champion.pointer.version
    );

    // MLflow's Python client, by alias (through the registry) and from the artifact store.
    for uri in [&alias_uri, &store_uri] {
        let answer = pyfunc_check(&[
            "--env-file",
            env_arg,
            "predict",
            "--model-uri",
            uri,
            "--input",
            input_arg,
        ]);
        assert_eq!(answer["loader_module"], "fraudrisk_pyfunc", "{uri}");
        assert_same_probabilities(&answer["probabilities"], &champion.model, &applicants);
    }

    // `mlflow models serve -m models:/<name>@champion --env-manager local`: /ping, then
    // /invocations with the applicants and with a refused code; the script stops the server.
    let log_dir = state.path().to_str().unwrap();
    let served = pyfunc_check(&[
        "--env-file",
        env_arg,
        "serve",
        "--model-uri",
        &alias_uri,
        "--input",
        input_arg,
        "--refused",
        bad_input.to_str().unwrap(),
        "--timeout",
        "240",
        "--log-dir",
        log_dir,
    ]);
    assert_same_probabilities(&served["predictions"], &champion.model, &applicants);
    assert_eq!(served["refused_status"], 400, "{served}");
    assert!(
        served["refused_body"]
            .as_str()
            .is_some_and(|body| body.contains("column purpose must be one of the codes")),
        "{served}"
    );
}
