//! A training lock left behind by a process killed with SIGKILL (the `kill -9` during
//! `initialtrain` case) is taken over by the next training on the same host.
//!
//! The test runs its own binary again as the child that takes the lock: the same test,
//! selected with `--exact`, finds the database path in `CHILD_ENV` and holds the lock until
//! it is killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use fraudrisk::dataset::{generated_rows, GeneratedKind, GeneratorConfig};
use fraudrisk::pipeline::PipelineSettings;
use fraudrisk::ports::RecordRole;
use fraudrisk::services::Services;

const CHILD_ENV: &str = "FRAUDRISK_TEST_LOCK_CHILD_STATE";
const TEST_NAME: &str = "a_lock_left_by_a_killed_process_is_taken_over";
const LOCKED: &str = "CHILD-HOLDS-THE-LOCK";

/// The child's part: take the lock, say so, and wait to be killed (never returns).
async fn hold_the_lock_until_killed(state: &str) {
    let services = Services::local(std::path::Path::new(state)).await.unwrap();
    let lock = services
        .records
        .try_lock_training("initialtrain")
        .await
        .unwrap()
        .expect("the lock is free when the child starts");
    println!("{LOCKED}");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        // Keeps the lock alive in this frame; the parent kills us long before.
        let _ = &lock;
    }
}

#[tokio::test]
async fn a_lock_left_by_a_killed_process_is_taken_over() {
    if let Ok(state) = std::env::var(CHILD_ENV) {
        hold_the_lock_until_killed(&state).await;
        unreachable!("the child is killed while it holds the lock");
    }
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    let reference = generated_rows(
        GeneratedKind::Reference,
        GeneratorConfig {
            seed: 3,
            reference_rows: 1500,
            shifted_rows: 0,
        },
    );
    services
        .records
        .load_records("reference", RecordRole::Reference, &reference)
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let saw_lock = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(LOCKED));
    assert!(saw_lock, "the child never reported holding the lock");

    // While the child lives, the lock is its own and a training is refused.
    let owner = services
        .records
        .training_lock_owner()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.pid, Some(child_pid), "{owner:?}");
    assert_eq!(owner.holder, "initialtrain");
    assert!(services
        .records
        .try_lock_training("test")
        .await
        .unwrap()
        .is_none());

    // kill -9, and reap it so its pid is really gone.
    child.kill().unwrap();
    child.wait().unwrap();

    let trained = services
        .initial_train(&PipelineSettings::default())
        .await
        .expect("a training proceeds once the lock's owner is gone");
    assert_eq!(trained.version, 1);
    assert_eq!(services.records.training_lock_owner().await.unwrap(), None);
}

#[tokio::test]
async fn force_unlock_reports_the_owner_and_fences_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let services = Services::local(dir.path()).await.unwrap();
    let lock = services
        .records
        .try_lock_training("retrain (always)")
        .await
        .unwrap()
        .unwrap();
    let removed = services.records.force_unlock_training().await.unwrap();
    let removed = removed.expect("the lock had an owner");
    assert_eq!(removed.pid, Some(std::process::id()));
    assert_eq!(removed.holder, "retrain (always)");
    assert!(
        lock.confirm_held().await.is_err(),
        "the old holder must not promote"
    );
    assert_eq!(
        services.records.force_unlock_training().await.unwrap(),
        None
    );
}
