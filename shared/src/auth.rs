//! Users and HTTP Basic authentication.
//!
//! Passwords are stored as argon2id PHC strings. Verifying costs tens of milliseconds by
//! design, so a container remembers credentials it verified for a short time, keyed by a
//! salted SHA-256 of the pair (never the plaintext). Unknown users are checked against a
//! dummy hash so they cost the same time as a wrong password: no user enumeration.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::cell::RefCell;

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};
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

/// True for a name `fraudctl user add` accepts: 1 to 64 letters, digits, '.', '_' or '-'.
pub fn is_valid_username(username: &str) -> bool {
    (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Checks a new username and password against the rules.
pub fn check_new_credentials(username: &str, password: &str) -> Result<(), AuthError> {
    if !is_valid_username(username) {
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

thread_local! {
    /// The argon2 work area of a hashing thread (19 MiB with OWASP's parameters), allocated
    /// once and reused: a fresh allocation per check left the allocator holding hundreds of
    /// MiB after a burst of failed logins (glibc raises its mmap threshold after the first
    /// free, so later areas came from arenas it does not give back).
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// True when `password` matches the PHC string `phc` (argon2 of any variant and version).
fn verify_hash(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    let hashed = WORK_AREA.with(|area| {
        let mut area = area.borrow_mut();
        if area.len() < blocks {
            area.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut computed,
            &mut area[..blocks],
        )
    });
    // `Output`'s comparison is constant-time.
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| computed == expected)
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
    /// argon2 checks started (cache misses), for tests and benchmarks.
    hashed: AtomicU64,
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
            hashed: AtomicU64::new(0),
        }
    }

    /// How many argon2 checks this authenticator has started (each a cache miss).
    pub fn password_checks(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
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
        self.hashed.fetch_add(1, Ordering::Relaxed);
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
    fn the_reused_work_area_verifies_hashes_of_other_parameters() {
        // Made with other tools' settings: argon2i, 4 MiB, and argon2d, 8 MiB, 2 lanes.
        let small = Params::new(4096, 3, 1, None).unwrap();
        let large = Params::new(8192, 2, 2, Some(24)).unwrap();
        for (algorithm, params) in [(Algorithm::Argon2i, small), (Algorithm::Argon2d, large)] {
            let salt = SaltString::generate(&mut OsRng);
            let phc = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"other tool", &salt)
                .unwrap()
                .to_string();
            // The thread's area grew to 19 MiB for the default hash above or in other
            // tests; a smaller one must still use exactly its own block count.
            assert!(verify_hash("other tool", &phc), "{phc}");
            assert!(!verify_hash("other tools", &phc), "{phc}");
        }
        let default = hash_password("correct horse").unwrap();
        assert!(verify_hash("correct horse", &default));
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
