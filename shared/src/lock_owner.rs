//! Who holds the training lock: the process (pid, host) and since when.
//!
//! Recorded with the lock so a lock left by a killed process can be recognised and taken
//! over (same host, process gone), and so `fraudctl status` can say who holds it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The owner of a training lock, as recorded when it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockOwner {
    /// What runs under the lock (`initialtrain`, `retrain (always)`).
    pub holder: String,
    /// Process id of the holder (absent for locks taken before owners were recorded).
    pub pid: Option<u32>,
    /// Host name of the holder (absent for locks taken before owners were recorded).
    pub host: Option<String>,
    pub acquired_at: DateTime<Utc>,
}

impl LockOwner {
    /// The owner record for a lock this process takes now.
    pub fn this_process(holder: &str) -> Self {
        LockOwner {
            holder: holder.to_string(),
            pid: Some(std::process::id()),
            host: Some(host_name()),
            acquired_at: Utc::now(),
        }
    }

    /// True when the owner ran on this host and its process no longer exists, so its lock
    /// can be taken over. False when it may still run (or runs elsewhere: not knowable here).
    pub fn is_gone(&self) -> bool {
        match (self.pid, self.host.as_deref()) {
            (Some(pid), Some(host)) if host == host_name() => !process_exists(pid),
            _ => false,
        }
    }

    /// One line for humans: `initialtrain (pid 42 on host-a, since 2026-01-01T00:00:00Z)`.
    pub fn describe(&self) -> String {
        let pid = self
            .pid
            .map_or_else(|| "unknown pid".to_string(), |p| format!("pid {p}"));
        let host = self.host.as_deref().unwrap_or("an unknown host");
        format!(
            "{} ({pid} on {host}, since {})",
            self.holder,
            self.acquired_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// This machine's host name (the kernel's node name).
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Whether a process with this id exists on this host. `kill(pid, 0)` sends nothing: it only
/// checks; EPERM means the process exists but belongs to another user.
pub fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(error) => error != rustix::io::Errno::SRCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_gone() {
        let me = LockOwner::this_process("test");
        assert!(!me.is_gone());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = LockOwner {
            pid: Some(pid),
            ..me.clone()
        };
        assert!(dead.is_gone(), "pid {pid} was reaped");
        let elsewhere = LockOwner {
            host: Some(format!("{}-elsewhere", host_name())),
            ..dead
        };
        assert!(
            !elsewhere.is_gone(),
            "another host's process cannot be checked"
        );
    }
}
