//! How `fraudctl` behaves around its output: closed pipes, progress on standard error, exit
//! codes. The real binary in a temporary state folder.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn fraudctl(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("fraudctl runs")
}

#[test]
fn a_closed_stdout_ends_the_command_quietly_without_a_panic() {
    let state = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fraudctl"))
        .arg("--state")
        .arg(state.path())
        .args([
            "load-data",
            "--reference-rows",
            "3000",
            "--shifted-rows",
            "500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fraudctl starts");
    // The reader goes away before the table is printed, as `| head -0` would.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr readable");
    let status = child.wait().expect("fraudctl ends");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "stderr: {stderr}");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    // The work itself was done before the output: the rows are there.
    let status = fraudctl(state.path(), &["--format", "json", "status"]);
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("3000"), "status: {text}");
}

#[test]
fn progress_is_one_plain_line_per_step_when_stderr_is_not_a_terminal() {
    let state = tempfile::tempdir().expect("temp dir");
    let out = fraudctl(
        state.path(),
        &[
            "load-data",
            "--reference-rows",
            "4000",
            "--shifted-rows",
            "600",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = |prefix: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect::<Vec<_>>()
    };
    let generated = line("generate reference rows: 4,000 rows in ");
    assert_eq!(generated.len(), 1, "stderr: {stderr}");
    assert_eq!(line("generate shifted rows: 600 rows in ").len(), 1);
    assert_eq!(
        line("insert generated-reference-seed-42 rows: 4,000 rows in ").len(),
        1,
        "stderr: {stderr}"
    );
    // No bar drawing codes when stderr is a pipe.
    assert!(!stderr.contains('\u{1b}'), "escape codes in: {stderr:?}");

    let out = fraudctl(state.path(), &["initialtrain"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("cross-validation on ") && l.contains(" fits in ")),
        "stderr: {stderr}"
    );
    assert!(stderr.lines().any(|l| l.starts_with("refit on ")));
    assert!(stderr.lines().any(|l| l.starts_with("evaluate on ")));
}

#[test]
fn json_mode_keeps_stderr_free_of_progress() {
    let state = tempfile::tempdir().expect("temp dir");
    let out = fraudctl(
        state.path(),
        &["--format", "json", "load-data", "--reference-rows", "2000"],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "stderr: {stderr}");
    let _: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
}

#[test]
fn refused_input_exits_2_and_other_failures_exit_1() {
    let state = tempfile::tempdir().expect("temp dir");
    let bad = state.path().join("bad.csv");
    std::fs::write(&bad, "not,a,credit,file\n1,2,3,4\n").expect("write");
    let out = fraudctl(
        state.path(),
        &["load-data", "--new", bad.to_str().expect("utf-8 path")],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // No rows, so training fails: a failure, not a usage error.
    let out = fraudctl(state.path(), &["initialtrain"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // clap's own usage errors are 2.
    let out = fraudctl(state.path(), &["load-data", "--no-such-option"]);
    assert_eq!(out.status.code(), Some(2));
}
