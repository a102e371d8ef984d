//! Repeated failed logins, per client address and per user name, in a sliding window.
//!
//! In-memory and per container: it bounds what one client can make one container hash. In
//! AWS the outer guard is API Gateway's throttling (template.yaml); this is the inner one,
//! and the one `fraudctl serve` has.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed from one client address within the window.
pub const MAX_FAILURES_PER_ADDRESS: usize = 10;
/// Failed logins allowed for one user name within the window (from any address).
pub const MAX_FAILURES_PER_USER: usize = 20;
/// The sliding window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Keys remembered at most; beyond it the oldest state is forgotten (bounded memory).
const MAX_KEYS: usize = 10_000;

/// What is counted: a client address or a user name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LoginKey {
    /// The client's IP address (API Gateway's `sourceIp`, or the TCP peer).
    Address(String),
    /// The user name in the credentials.
    User(String),
}

impl LoginKey {
    fn limit(&self) -> usize {
        match self {
            LoginKey::Address(_) => MAX_FAILURES_PER_ADDRESS,
            LoginKey::User(_) => MAX_FAILURES_PER_USER,
        }
    }
}

/// Failed-login counts in a sliding window.
pub struct LoginLimiter {
    window: Duration,
    failures: Mutex<HashMap<LoginKey, VecDeque<Instant>>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(FAILURE_WINDOW)
    }
}

impl LoginLimiter {
    /// A limiter over a window of `window`.
    pub fn new(window: Duration) -> Self {
        LoginLimiter {
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// How long to wait when one of the keys has used up its failures; `None` when the
    /// credentials may be checked.
    pub fn retry_after(&self, keys: &[LoginKey]) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().ok()?;
        keys.iter()
            .filter_map(|key| {
                let times = failures.get_mut(key)?;
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    times.pop_front();
                }
                if times.len() < key.limit() {
                    return None;
                }
                let oldest = *times.front()?;
                Some(self.window.saturating_sub(now.duration_since(oldest)))
            })
            .max()
    }

    /// Counts one failed login against each key.
    pub fn record_failure(&self, keys: &[LoginKey]) {
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        for key in keys {
            let times = failures.entry(key.clone()).or_default();
            times.push_back(now);
            // Never more than the limit plus one are needed to decide.
            while times.len() > key.limit() {
                times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_and_others_are_not() {
        let limiter = LoginLimiter::new(Duration::from_secs(60));
        let attacker = [
            LoginKey::Address("10.0.0.1".into()),
            LoginKey::User("eve".into()),
        ];
        for _ in 0..MAX_FAILURES_PER_ADDRESS {
            assert_eq!(limiter.retry_after(&attacker), None);
            limiter.record_failure(&attacker);
        }
        let wait = limiter.retry_after(&attacker).expect("refused");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        let other = [
            LoginKey::Address("10.0.0.2".into()),
            LoginKey::User("merlin".into()),
        ];
        assert_eq!(limiter.retry_after(&other), None);
    }

    #[test]
    fn failures_leave_the_window() {
        let limiter = LoginLimiter::new(Duration::from_millis(50));
        let key = [LoginKey::User("eve".into())];
        for _ in 0..MAX_FAILURES_PER_USER {
            limiter.record_failure(&key);
        }
        assert!(limiter.retry_after(&key).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(limiter.retry_after(&key), None);
    }
}
