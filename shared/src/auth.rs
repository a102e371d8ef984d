//! Users and HTTP Basic authentication.
//!
//! Passwords are stored as argon2id PHC strings. Verifying costs tens of milliseconds by
//! design, so a container remembers credentials it verified for a short time, keyed by a
//! salted SHA-256 of the pair (never the plaintext). Unknown users are checked against a
//! dummy hash so they cost the same time as a wrong password: no user enumeration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::ports::{StoreError, UserStore};

/// How long a verified pair is trusted without asking the store again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// An argon2id hash (default parameters) of a password nobody has. Unknown users are verified
/// against it so they cost the same time as a wrong password; precomputed so that building an
/// [`Authenticator`] costs nothing at a Lambda cold start.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$pWc+AZKU4/EYep0UzTV1tA$WM2KtR17D28hbFh5EWeSL7x5HVvaj55d1x1wfHFXSFQ";

/// Bound on the number of remembered pairs per container.
const CACHE_CAPACITY: usize = 4096;

/// Why a user could not be created or a password not hashed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("username must be 1 to 64 characters of letters, digits, '.', '_' or '-'")]
    BadUsername,
    #[error("password must be at least 8 characters long")]
    WeakPassword,
    #[error("password hashing failed: {0}")]
    Hashing(#[source] crate::BoxError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a new username and password against the rules.
pub fn check_new_credentials(username: &str, password: &str) -> Result<(), AuthError> {
    let valid_name = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_name {
        return Err(AuthError::BadUsername);
    }
    if password.chars().count() < 8 {
        return Err(AuthError::WeakPassword);
    }
    Ok(())
}

/// Hashes a password with argon2id and a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(Box::new(e)))
}

/// Checks a new user's credentials, hashes the password and stores the user.
pub async fn add_user(
    users: &dyn UserStore,
    username: &str,
    password: &str,
) -> Result<(), AuthError> {
    check_new_credentials(username, password)?;
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Hashing(Box::new(e)))??;
    users.add_user(username, &hash).await?;
    Ok(())
}

fn verify_hash(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Splits an `Authorization: Basic ...` header value into username and password.
pub fn parse_basic_authorization(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(bytes).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Why a credential check could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The user store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every hashing thread stayed busy for the whole queue wait.
    #[error("too many logins are being checked at once; retry in a moment")]
    Busy,
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for argon2 verifications, with a bounded wait for a free one.
///
/// Each verification allocates 19 MiB. On unbounded blocking threads a flood of wrong
/// passwords ran hundreds at once, and glibc kept an arena per thread after the burst; a few
/// dedicated threads bound both the CPU and the memory a flood can take.
pub struct HashPool {
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    queue_wait: Duration,
}

impl HashPool {
    /// Starts `threads` hashing threads; callers wait at most `queue_wait` for one.
    pub fn new(threads: usize, queue_wait: Duration) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(threads);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        // Every sender is gone: the pool was dropped.
                        Err(_) => return,
                    }
                })?;
        }
        Ok(HashPool {
            permits: Arc::new(Semaphore::new(threads)),
            jobs,
            queue_wait,
        })
    }

    /// Runs `work` on a hashing thread, or [`VerifyError::Busy`] after the queue wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, VerifyError> {
        let permit = tokio::time::timeout(self.queue_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| VerifyError::Busy)?
            .map_err(|_| VerifyError::Busy)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        // A permit per thread and a channel slot per thread: the send never blocks.
        self.jobs
            .try_send(Box::new(move || {
                let _ = reply.send(work());
            }))
            .map_err(|_| VerifyError::Busy)?;
        let result = answer.await.map_err(|_| VerifyError::Busy);
        drop(permit);
        result
    }
}

/// Verifies Basic credentials against the user store, with a per-container cache.
pub struct Authenticator {
    users: Arc<dyn UserStore>,
    ttl: Duration,
    cache_salt: [u8; 16],
    verified: Mutex<HashMap<[u8; 32], Instant>>,
    pool: HashPool,
}

impl Authenticator {
    /// Builds the authenticator (cheap: nothing is hashed here) over a hashing pool.
    pub fn new(users: Arc<dyn UserStore>, ttl: Duration, pool: HashPool) -> Self {
        Authenticator {
            users,
            ttl,
            cache_salt: rand::random(),
            verified: Mutex::new(HashMap::new()),
            pool,
        }
    }

    fn cache_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.cache_salt);
        hasher.update((username.len() as u64).to_le_bytes());
        hasher.update(username.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    /// True when the pair was verified within the cache's lifetime (no hashing needed).
    pub fn is_cached(&self, username: &str, password: &str) -> bool {
        let key = self.cache_key(username, password);
        let now = Instant::now();
        self.verified
            .lock()
            .map(|cache| cache.get(&key).is_some_and(|until| *until > now))
            .unwrap_or(false)
    }

    /// True when the pair is a known user with that password.
    pub async fn verify(&self, username: &str, password: &str) -> Result<bool, VerifyError> {
        if self.is_cached(username, password) {
            return Ok(true);
        }
        let stored = self.users.password_hash(username).await?;
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_PHC.to_string());
        let password_owned = password.to_string();
        let matches = self
            .pool
            .run(move || verify_hash(&password_owned, &phc))
            .await?;
        let ok = known && matches;
        if ok {
            let key = self.cache_key(username, password);
            let now = Instant::now();
            if let Ok(mut cache) = self.verified.lock() {
                if cache.len() >= CACHE_CAPACITY {
                    cache.retain(|_, until| *until > now);
                    if cache.len() >= CACHE_CAPACITY {
                        cache.clear();
                    }
                }
                cache.insert(key, now + self.ttl);
            }
        }
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_parsed() {
        // "merlin:wizard-pass" in base64.
        let parsed = parse_basic_authorization("Basic bWVybGluOndpemFyZC1wYXNz");
        assert_eq!(
            parsed,
            Some(("merlin".to_string(), "wizard-pass".to_string()))
        );
        assert_eq!(parse_basic_authorization("Bearer abc"), None);
        assert_eq!(parse_basic_authorization("Basic !!!"), None);
        // "nocolon"
        assert_eq!(parse_basic_authorization("Basic bm9jb2xvbg=="), None);
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_hash("correct horse", &hash));
        assert!(!verify_hash("wrong horse", &hash));
        assert!(!verify_hash("correct horse", "not a phc string"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_hash_costs() {
        // Same algorithm and parameters as the hashes `hash_password` makes today.
        let real = hash_password("whatever-password").unwrap();
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_PHC), params(&real));
        assert!(!verify_hash("no user has this passwor", DUMMY_PHC));
        assert!(verify_hash("no user has this password", DUMMY_PHC));
    }

    #[test]
    fn credential_rules_name_the_problem() {
        assert!(matches!(
            check_new_credentials("", "longenough"),
            Err(AuthError::BadUsername)
        ));
        assert!(matches!(
            check_new_credentials("a b", "longenough"),
            Err(AuthError::BadUsername)
        ));
        assert!(matches!(
            check_new_credentials("merlin", "short"),
            Err(AuthError::WeakPassword)
        ));
        assert!(check_new_credentials("merlin", "longenough").is_ok());
    }
}
