//! `fraudctl` on the store's edges: content-keyed loads, the training lock and `unlock`,
//! option bounds, no terminal for a password, errors named once.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use fraudrisk::adapters::sqlite::SqliteStore;
use fraudrisk::ports::RecordStore;

fn fraudctl(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "fraudctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const HEADER: &str = "creditability,account_balance,duration_of_credit_month,payment_status_of_previous_credit,purpose,credit_amount,value_savings_stocks,length_of_current_employment,instalment_per_cent,sex_marital_status,guarantors,duration_in_current_address,most_valuable_available_asset,age_years,concurrent_credits,type_of_apartment,no_of_credits_at_this_bank,occupation,no_of_dependents,telephone,foreign_worker";
const ROW_A: &str = "1,4,12,4,3,618,1,5,4,3,1,4,2,56,3,2,1,1,1,0,0";
const ROW_B: &str = "0,4,12,4,3,700,1,5,4,3,1,4,2,56,3,2,1,1,1,0,0";

#[test]
fn a_changed_file_under_the_same_name_loads_and_reports_its_changed_rows() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("new.csv");
    let file_arg = file.to_str().unwrap();
    std::fs::write(&file, format!("{HEADER}\n{ROW_A}\n{ROW_B}\n")).unwrap();
    let first = json(&fraudctl(
        state.path(),
        &["load-data", "--new", file_arg, "--format", "json"],
    ));
    assert_eq!(first["loaded"][0]["new"], 2);

    // Same name, second row changed, a third row added.
    let changed_b = ROW_B.replacen("700", "800", 1);
    std::fs::write(&file, format!("{HEADER}\n{ROW_A}\n{changed_b}\n{ROW_A}\n")).unwrap();
    let second = json(&fraudctl(
        state.path(),
        &["load-data", "--new", file_arg, "--format", "json"],
    ));
    let loaded = &second["loaded"][0];
    assert_eq!(
        (
            &loaded["new"],
            &loaded["changed"],
            &loaded["already_present"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{second}"
    );
    let table = fraudctl(state.path(), &["load-data", "--new", file_arg]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("unchanged"), "{text}");
    let status = json(&fraudctl(state.path(), &["status", "--format", "json"]));
    assert_eq!(
        status["records"]["new"], 3,
        "the changed row replaced its waiting version"
    );
}

#[test]
fn numeric_options_refuse_nan_infinity_and_counts_beyond_the_bound() {
    let state = tempfile::tempdir().unwrap();
    let output = fraudctl(
        state.path(),
        &["load-data", "--reference-rows", "18446744073709551615"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("--reference-rows") && message.contains("10000000"),
        "{message}"
    );

    for (option, value) in [
        ("--min-psi", "NaN"),
        ("--alpha", "inf"),
        ("--min-psi", "-1"),
    ] {
        let output = fraudctl(
            state.path(),
            &[
                "drift",
                "--reference",
                "r.csv",
                "--current",
                "c.csv",
                // `=` keeps a negative value from reading as a flag.
                &format!("{option}={value}"),
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{option} {value}");
        let message = stderr(&output);
        assert!(message.contains(option), "{message}");
    }
    let help = fraudctl(state.path(), &["load-data", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("10,000,000"));
}

#[test]
fn user_add_without_a_terminal_says_to_use_password_stdin() {
    let state = tempfile::tempdir().unwrap();
    let output = fraudctl(state.path(), &["user", "add", "merlin"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("--password-stdin"), "{message}");
    assert!(!message.contains("os error"), "{message}");
}

#[test]
fn an_error_names_its_cause_once() {
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("missing.csv");
    let output = fraudctl(
        state.path(),
        &["load-data", "--new", missing.to_str().unwrap()],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert_eq!(
        message.matches("No such file or directory").count(),
        1,
        "{message}"
    );
    assert!(message.contains("missing.csv"), "{message}");
}

#[tokio::test]
async fn status_shows_the_lock_holder_and_unlock_clears_it() {
    let state = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&state.path().join("fraudrisk.sqlite3")).unwrap();
    store.migrate().await.unwrap();
    // Held by this (live) test process, so no training may take it over.
    let _lock = store
        .try_lock_training("initialtrain")
        .await
        .unwrap()
        .unwrap();

    let status = json(&fraudctl(state.path(), &["status", "--format", "json"]));
    assert_eq!(status["training_lock"]["holder"], "initialtrain");
    assert_eq!(status["training_lock"]["pid"], std::process::id());
    let busy = fraudctl(state.path(), &["initialtrain"]);
    assert!(
        stderr(&busy).contains("another training is running"),
        "{}",
        stderr(&busy)
    );

    let unlocked = fraudctl(state.path(), &["unlock"]);
    assert!(unlocked.status.success(), "{}", stderr(&unlocked));
    let text = String::from_utf8_lossy(&unlocked.stdout);
    assert!(
        text.contains("Removed the training lock of initialtrain"),
        "{text}"
    );
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    let status = json(&fraudctl(state.path(), &["status", "--format", "json"]));
    assert!(status["training_lock"].is_null(), "{status}");
    let again = fraudctl(state.path(), &["unlock"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing was removed"));
}
