//! `fraudctl` end to end: the real binary, a temporary state folder, the seed's files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::ports::PredictionLog;

fn fraudctl(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn fraudctl_with_stdin(state: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "fraudctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The seed's data files, beside the checkout; `None` (with a note) on a laptop without them.
fn seed_file(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing in CI",
        path.display()
    );
    eprintln!("skipped: {} is not beside the checkout", path.display());
    None
}

#[test]
fn drift_on_the_seed_files_prints_one_json_object() {
    let (Some(reference), Some(current)) = (
        seed_file("german_credit_resampled.csv"),
        seed_file("shifted_data.csv"),
    ) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let report = json(&fraudctl(
        state.path(),
        &[
            "drift",
            "--reference",
            reference.to_str().unwrap(),
            "--current",
            current.to_str().unwrap(),
            "--format",
            "json",
        ],
    ));
    assert_eq!(report["correction"], "bonferroni");
    assert_eq!(report["alpha"], 0.05);
    let features = report["features"].as_array().unwrap();
    assert_eq!(features.len(), 20);
    for f in features {
        for key in [
            "feature",
            "kind",
            "test",
            "statistic",
            "p_value",
            "significant",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        let p = f["p_value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
    // The seed's shifted file raises the share of telephone owners from 42 % to 60 %.
    let telephone = features
        .iter()
        .find(|f| f["feature"] == "telephone")
        .unwrap();
    assert_eq!(telephone["test"], "two_proportion_z");
    assert_eq!(telephone["significant"], true);
    assert_eq!(report["drift"], true);
    // foreign_worker, which the seed's off-by-one never tested, is tested.
    assert!(features.iter().any(|f| f["feature"] == "foreign_worker"));
}

/// The seed's shifted file with a drifted feed's faults: `purpose` 11 (no such code) on every
/// 10th data row and an empty `age_years` on data row 5.
fn shifted_file_with_bad_cells(shifted: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(shifted).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (purpose, age) = (column("purpose"), column("age_years"));
    for (index, line) in lines.iter_mut().enumerate().skip(1) {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        if index % 10 == 0 {
            cells[purpose] = "11".to_string();
        }
        if index == 5 {
            cells[age] = String::new();
        }
        *line = cells.join(",");
    }
    let path = dir.join("shifted_with_bad_cells.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn drift_reports_out_of_domain_values_and_tests_the_rest_unless_strict() {
    let (Some(reference), Some(shifted)) = (
        seed_file("german_credit_resampled.csv"),
        seed_file("shifted_data.csv"),
    ) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let current = shifted_file_with_bad_cells(&shifted, state.path());
    let args = |strict: bool| {
        let mut args = vec![
            "drift",
            "--reference",
            reference.to_str().unwrap(),
            "--current",
            current.to_str().unwrap(),
            "--format",
            "json",
        ];
        if strict {
            args.push("--strict");
        }
        args
    };
    let report = json(&fraudctl(state.path(), &args(false)));
    let quality = &report["data_quality"];
    assert_eq!(quality["rows"], 1000);
    assert_eq!(quality["rows_with_issues"], 101, "{quality}");
    let features = quality["features"].as_array().unwrap();
    assert_eq!(features.len(), 20);
    let purpose = features.iter().find(|f| f["feature"] == "purpose").unwrap();
    assert_eq!(purpose["out_of_domain"], 100);
    assert_eq!(purpose["missing"], 0);
    assert_eq!(purpose["out_of_domain_share"], 0.1);
    // Data row 10 is line 11 (the header is line 1).
    assert_eq!(purpose["examples"][0]["line"], 11);
    assert_eq!(purpose["examples"][0]["value"], "11");
    let age = features
        .iter()
        .find(|f| f["feature"] == "age_years")
        .unwrap();
    assert_eq!(
        (age["missing"].as_u64(), age["out_of_domain"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(age["examples"][0]["line"], 6);
    // The bad cells are left out of their feature's test, not tested as a new category.
    let tested = |name: &str| {
        report["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["feature"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(tested("purpose")["current_n"], 900);
    assert_eq!(tested("age_years")["current_n"], 999);
    assert_eq!(tested("telephone")["current_n"], 1000);
    assert_eq!(tested("telephone")["significant"], true);

    let strict = fraudctl(state.path(), &args(true));
    assert!(!strict.status.success());
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(stderr.contains("line 6, column age_years"), "{stderr}");

    // The clean seed file gets a clean data-quality line in the table.
    let table = fraudctl(
        state.path(),
        &[
            "drift",
            "--reference",
            reference.to_str().unwrap(),
            "--current",
            shifted.to_str().unwrap(),
        ],
    );
    assert!(table.status.success());
    let stdout = String::from_utf8_lossy(&table.stdout);
    assert!(
        stdout.contains("Data quality: every value of the 1000 current rows is in its domain"),
        "{stdout}"
    );
}

#[test]
fn train_reports_metrics_measured_on_the_eval_file_and_warns_of_shared_rows() {
    let (Some(reference), Some(current)) = (
        seed_file("german_credit_resampled.csv"),
        seed_file("shifted_data.csv"),
    ) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let model = state.path().join("model.json");
    let output = fraudctl(
        state.path(),
        &[
            "train",
            "--data",
            reference.to_str().unwrap(),
            "--eval",
            current.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    let result = json(&output);
    let metrics = &result["metrics"];
    for key in ["roc_auc", "accuracy", "precision", "recall", "f1", "brier"] {
        let value = metrics[key].as_f64().unwrap_or_else(|| panic!("{key}"));
        assert!((0.0..=1.0).contains(&value), "{key} = {value}");
    }
    assert_eq!(result["eval_rows"], 1000);
    // The cost-based threshold, the costs it minimises and the cost it gives.
    assert_eq!(
        result["cost_matrix"],
        serde_json::json!({"false_negative": 5.0, "false_positive": 1.0})
    );
    let threshold = result["threshold"].as_f64().unwrap();
    assert!(threshold > 0.0 && threshold < 0.5, "{threshold}");
    assert_eq!(metrics["threshold"], result["threshold"]);
    assert!(metrics["expected_cost"].as_f64().unwrap() >= 0.0);
    assert!(metrics["expected_cost_at_0_5"].as_f64().unwrap() >= 0.0);
    // The seed's "new" rows are resampled from the same 1,000 applicants.
    let shared = result["shared_distinct_rows"].as_u64().unwrap();
    assert!(shared > 0);
    assert!(String::from_utf8_lossy(&output.stderr).contains("warning"));
    // The written model scores the corrected seed example, read from stdin.
    let body = fraudrisk::request::seed_example_corrected().to_string();
    let predicted = json(&fraudctl_with_stdin(
        state.path(),
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            "-",
            "--format",
            "json",
        ],
        &body,
    ));
    let p = predicted["probability_of_fraud"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    assert_eq!(predicted["contributions"].as_array().unwrap().len(), 20);
    assert_eq!(predicted["threshold"], result["threshold"]);
    assert!(predicted["reason_codes"].as_array().unwrap().len() <= 4);
    // A file's model is not logged, so its prediction has no id.
    assert!(predicted["prediction_id"].is_null(), "{predicted}");
}

#[test]
fn load_data_is_idempotent_and_a_bad_file_stores_nothing() {
    let state = tempfile::tempdir().unwrap();
    let args = [
        "load-data",
        "--reference-rows",
        "400",
        "--shifted-rows",
        "100",
        "--format",
        "json",
    ];
    let first = json(&fraudctl(state.path(), &args));
    let second = json(&fraudctl(state.path(), &args));
    assert_eq!(first["loaded"][0]["inserted"], 400);
    assert_eq!(first["loaded"][1]["inserted"], 100);
    assert_eq!(second["loaded"][0]["inserted"], 0);
    assert_eq!(second["loaded"][0]["already_present"], 400);

    let bad = state.path().join("bad.csv");
    let header = "creditability,account_balance,duration_of_credit_month,payment_status_of_previous_credit,purpose,credit_amount,value_savings_stocks,length_of_current_employment,instalment_per_cent,sex_marital_status,guarantors,duration_in_current_address,most_valuable_available_asset,age_years,concurrent_credits,type_of_apartment,no_of_credits_at_this_bank,occupation,no_of_dependents,telephone,foreign_worker";
    std::fs::write(
        &bad,
        format!(
            "{header}\n1,4,12,4,3,618,1,5,4,3,1,4,2,56,3,2,1,1,1,0,0\n1,4,12,4,3,abc,1,5,4,3,1,4,2,56,3,2,1,1,1,0,0\n"
        ),
    )
    .unwrap();
    let output = fraudctl(state.path(), &["load-data", "--new", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("credit_amount"), "{stderr}");
    let status = json(&fraudctl(state.path(), &["status", "--format", "json"]));
    assert_eq!(status["records"]["new"], 100, "the bad file added no row");
}

#[test]
fn the_seed_example_is_refused_naming_the_field_and_the_rule() {
    let state = tempfile::tempdir().unwrap();
    let output = fraudctl(
        state.path(),
        &["predict", "--seed-example", "--format", "json"],
    );
    assert_eq!(output.status.code(), Some(2));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["fields"][0]["field"], "no_of_dependents");
    assert!(body["fields"][0]["rule"]
        .as_str()
        .unwrap()
        .contains("one of the codes 0, 1"));
}

#[test]
fn users_are_added_from_stdin_listed_and_removed() {
    let state = tempfile::tempdir().unwrap();
    let added = fraudctl_with_stdin(
        state.path(),
        &["user", "add", "merlin", "--password-stdin"],
        "wizard-of-the-west\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let again = fraudctl_with_stdin(
        state.path(),
        &["user", "add", "merlin", "--password-stdin"],
        "another-long-one\n",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let weak = fraudctl_with_stdin(
        state.path(),
        &["user", "add", "arthur", "--password-stdin"],
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 8"));
    let listed = json(&fraudctl(
        state.path(),
        &["user", "list", "--format", "json"],
    ));
    let names: Vec<&str> = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["merlin"]);
    assert!(
        !listed.to_string().contains("argon2"),
        "hashes are never listed"
    );
    assert!(fraudctl(state.path(), &["user", "remove", "merlin"])
        .status
        .success());
    assert!(!fraudctl(state.path(), &["user", "remove", "merlin"])
        .status
        .success());
}

#[test]
fn the_demo_runs_the_whole_life_cycle() {
    let state = tempfile::tempdir().unwrap();
    let report = json(&fraudctl(state.path(), &["demo", "--format", "json"]));
    assert_eq!(report["initialtrain"]["version"], 1);
    assert!(report["seed_example_error"]
        .as_str()
        .unwrap()
        .contains("no_of_dependents"));
    let prediction = &report["prediction"][0];
    assert!(prediction["message"]
        .as_str()
        .unwrap()
        .contains("commit fraud"));
    assert!(prediction["prediction_id"].is_string(), "{prediction}");
    predictions_carry_their_logged_id(&state.path().join("demo"));
    let retrain = &report["retrain"];
    assert_eq!(retrain["drift"]["drift"], true);
    assert_eq!(retrain["challenger_version"], 2);
    let outcome = retrain["outcome"].as_str().unwrap();
    assert!(outcome == "promoted" || outcome == "rejected", "{outcome}");
    // It ends with the monitor over the 300 shifted predictions it served, 180 with outcomes.
    let monitor = &report["monitor"];
    assert_eq!(monitor["window"]["served"], 300, "{}", monitor["window"]);
    assert_eq!(monitor["performance"]["labelled"], 180);
    assert_eq!(monitor["performance"]["by_version"][0]["model_version"], 1);
    assert_eq!(monitor["input_drift"]["drift"], true);
    let alerts = monitor["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["kind"] == "input_drift"),
        "{alerts:?}"
    );
    monitor_prints_its_tables(&state.path().join("demo"));
    // The demo writes the monitor's page and says where.
    let page = Path::new(report["monitor_html"].as_str().unwrap());
    assert_eq!(page, state.path().join("demo/monitor_report.html"));
    assert!(std::fs::read_to_string(page)
        .unwrap()
        .contains("Monitor report"));
    monitor_writes_html(&state.path().join("demo"));
    model_cards_are_printed(
        &state.path().join("demo"),
        retrain["champion_version"].as_u64(),
    );
    // A second demo in the same folder starts afresh.
    let again = json(&fraudctl(state.path(), &["demo", "--format", "json"]));
    assert_eq!(again["initialtrain"]["version"], 1);
}

/// `fraudctl monitor` over the demo's traffic prints every section; bad windows are refused.
fn monitor_prints_its_tables(state: &Path) {
    let all = ["monitor", "--since", "2000-01-01T00:00:00Z"];
    let output = fraudctl(state, &all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for part in [
        "Input drift",
        "Kolmogorov-Smirnov on P(fraud)",
        "Data quality",
        "Realized performance",
        "version 1",
        "age_band under 25",
        "Alerts:",
    ] {
        assert!(text.contains(part), "{part} missing in:\n{text}");
    }
    let bad = fraudctl(state, &["monitor", "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
    let reversed = fraudctl(
        state,
        &[
            "monitor",
            "--since",
            "2026-02-01T00:00:00Z",
            "--until",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert!(!reversed.status.success());
    assert!(String::from_utf8_lossy(&reversed.stderr).contains("must be before --until"));
}

/// `fraudctl monitor --html FILE` writes the page; the JSON on standard output is unchanged.
fn monitor_writes_html(state: &Path) {
    let page = state.join("monitor-cli.html");
    let page_arg = page.to_str().unwrap();
    let report = json(&fraudctl(
        state,
        &[
            "monitor",
            "--since",
            "2000-01-01T00:00:00Z",
            "--format",
            "json",
            "--html",
            page_arg,
        ],
    ));
    assert!(report["window"]["served"].as_u64().unwrap() >= 300);
    assert_eq!(
        report["prediction_drift"]["histogram"]["current"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for part in [
        "Monitor report: champion version",
        "Alerts",
        "Input drift",
        "P(fraud) in 20 bins",
        "Reliability",
        "Realized ROC AUC by ISO week",
        "Segments",
    ] {
        assert!(html.contains(part), "{part} missing in the page");
    }
    // 20 input charts, the scores, the reliability diagram, AUC by week.
    assert_eq!(html.matches("<svg").count(), 23);
    std::fs::remove_file(page).unwrap();
}

/// `fraudctl model card`: the champion's by default, any version's with --version, its page
/// with --html, its JSON with --format json; a version without a card is an error.
fn model_cards_are_printed(state: &Path, champion: Option<u64>) {
    let champion = champion.unwrap();
    let output = fraudctl(state, &["model", "card"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("# Model card: fraud-risk version {champion}")),
        "{text}"
    );
    for part in [
        "## Intended use",
        "## Figures per segment (holdout)",
        "## Known limitations",
    ] {
        assert!(text.contains(part), "{part} missing in:\n{text}");
    }
    let page = state.join("card-v1.html");
    let page_arg = page.to_str().unwrap();
    let card = json(&fraudctl(
        state,
        &[
            "model",
            "card",
            "--version",
            "1",
            "--format",
            "json",
            "--html",
            page_arg,
        ],
    ));
    assert_eq!(card["version"], 1);
    assert_eq!(card["trained_by"], "initialtrain");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<h1>Model card: fraud-risk version 1</h1>"));
    std::fs::remove_file(page).unwrap();
    let missing = fraudctl(state, &["model", "card", "--version", "99"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("version 99 has no model card"));
    let zero = fraudctl(state, &["model", "card", "--version", "0"]);
    assert_eq!(zero.status.code(), Some(2));
}

/// `fraudctl predict` with the champion (the demo's state) prints the id it logged the
/// prediction under.
fn predictions_carry_their_logged_id(state: &Path) {
    let body = fraudrisk::request::seed_example_corrected().to_string();
    let predicted = json(&fraudctl_with_stdin(
        state,
        &["predict", "--input", "-", "--format", "json"],
        &body,
    ));
    let id = uuid::Uuid::parse_str(predicted["prediction_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let stored = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::open(&state.join("fraudrisk.sqlite3")).unwrap();
        store.prediction_by_id(id).await.unwrap()
    });
    let stored = stored.expect("the printed id is in the prediction log");
    assert_eq!(
        stored.features,
        fraudrisk::request::seed_example_corrected()
    );
    assert_eq!(
        stored.probability_of_fraud,
        predicted["probability_of_fraud"]
    );

    let table = fraudctl_with_stdin(state, &["predict", "--input", "-"], &body);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("prediction id "), "{text}");
}

#[test]
fn bad_costs_are_refused_naming_the_option_or_the_variable() {
    let state = tempfile::tempdir().unwrap();
    let data = state.path().join("none.csv");
    let data = data.to_str().unwrap();
    let output = fraudctl(
        state.path(),
        &["train", "--data", data, "--cost-false-negative", "0"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--cost-false-negative"));
    let output = Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state.path())
        .args(["retrain"])
        .env("FRAUDRISK_COST_FALSE_POSITIVE", "free")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FRAUDRISK_COST_FALSE_POSITIVE"), "{stderr}");
}
