//! Passwords: the policy for new passwords, and Argon2id hashing that runs
//! off the async runtime with bounded concurrency (OWASP ASVS 2.4).

use std::cell::RefCell;
use std::sync::Arc;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::CoreError;
use crate::config::Argon2Config;

/// Why a new password was refused (the sentence is shown to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakPassword(pub &'static str);

/// Checks a password being *set* against the contract's policy.
pub fn check_policy(password: &str) -> Result<(), WeakPassword> {
    let len = password.chars().count();
    if len < 8 {
        return Err(WeakPassword("Password must be at least 8 characters long"));
    }
    if len > 128 {
        return Err(WeakPassword("Password must be at most 128 characters long"));
    }
    if !password.chars().any(char::is_uppercase) {
        return Err(WeakPassword("Password must contain an upper-case letter"));
    }
    if !password.chars().any(char::is_lowercase) {
        return Err(WeakPassword("Password must contain a lower-case letter"));
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(WeakPassword("Password must contain a digit"));
    }
    if !password
        .chars()
        .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
    {
        return Err(WeakPassword("Password must contain a special character"));
    }
    if is_common(password) {
        return Err(WeakPassword("Password is too common"));
    }
    Ok(())
}

/// Membership in the common-password list shipped by the `passwords` crate
/// (its `common-password` feature: about 100,000 entries), compared in the
/// casings such lists use, so `DRAGON` and `Dragon` count like `dragon`.
pub fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    let mut capitalized = String::with_capacity(lower.len());
    let mut chars = lower.chars();
    if let Some(first) = chars.next() {
        capitalized.extend(first.to_uppercase());
        capitalized.push_str(chars.as_str());
    }
    [password, &lower, &password.to_uppercase(), &capitalized]
        .iter()
        .any(passwords::analyzer::is_common_password)
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads that only hash, under the idle scheduling class (Linux
/// `SCHED_IDLE`): any request thread preempts them at once, so under a login
/// flood other requests keep their latency while logins queue (the login
/// rate limit bounds that queue).
#[derive(Debug)]
struct HashPool {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl HashPool {
    fn start(threads: usize) -> Result<Self, CoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{i}"))
                .spawn(move || {
                    if let Err(e) = thread_priority::set_thread_priority_and_policy(
                        thread_priority::thread_native_id(),
                        thread_priority::ThreadPriority::Min,
                        thread_priority::ThreadSchedulePolicy::Normal(
                            thread_priority::NormalThreadSchedulePolicy::Idle,
                        ),
                    ) {
                        tracing::debug!(error = ?e, "hashing thread keeps normal priority");
                    }
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // Every hasher is gone: the pool ends.
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| CoreError::internal(format!("hashing thread: {e}")))?;
        }
        Ok(Self { jobs: tx })
    }

    /// Runs `work` on a hashing thread and waits for it, blocking (at
    /// start-up, before any request).
    fn run_now<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs
            .send(job)
            .map_err(|_| CoreError::internal("hashing pool stopped"))?;
        rx.recv()
            .map_err(|_| CoreError::internal("hashing job was dropped"))
    }

    /// Runs `work` on a hashing thread. The job owns `permit` and returns
    /// it only when the work is done, even if the caller has gone.
    async fn run<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = work();
            // Returned before the result, so a caller that sees its result
            // finds the place free again.
            drop(permit);
            let _ = tx.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| CoreError::internal("hashing pool stopped"))?;
        rx.await
            .map_err(|_| CoreError::internal("hashing job was dropped"))
    }
}

/// Argon2id hasher with a bounded number of hashes in flight. Waiting callers
/// hold no Argon2 memory, so a login flood cannot grow memory past
/// `max_concurrent × memory_kib`; a hash whose caller has gone (client
/// disconnected) still counts until it ends, so disconnects cannot queue
/// more work than the bound.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    pool: Arc<HashPool>,
    /// Verified against when the account does not exist, so an unknown email
    /// costs the same as a wrong password (no user enumeration by timing).
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    pub fn new(config: &Argon2Config) -> Result<Self, CoreError> {
        let params = Params::new(
            config.memory_kib,
            config.time_cost,
            config.parallelism,
            Some(32),
        )
        .map_err(|e| CoreError::internal(format!("argon2 parameters: {e}")))?;
        let pool = HashPool::start(config.max_concurrent)?;
        // Made on a hashing thread like every hash, in the memory it keeps.
        let dummy_hash = {
            let params = params.clone();
            pool.run_now(move || hash_blocking(&params, "dummy-password-for-timing"))??
        };
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            pool: Arc::new(pool),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    /// PHC string of a new Argon2id hash with a random 16-byte salt.
    pub async fn hash(&self, password: &SecretString) -> Result<String, CoreError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || hash_blocking(&params, password.expose_secret()))
            .await?
    }

    /// Verifies `password` against a stored PHC string, or against the dummy
    /// hash when `stored` is `None`, which then always fails.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> Result<bool, CoreError> {
        // An empty hash is an account without a password: it matches
        // nothing, after the same work as any other.
        let stored = stored.filter(|h| !h.is_empty());
        let is_real = stored.is_some();
        let phc = stored.map_or_else(|| self.dummy_hash.as_str().to_owned(), str::to_owned);
        let password = password.clone();
        let matched = self
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&phc) else {
                    return false;
                };
                // The stored string's own parameters are used to verify.
                verify_blocking(&parsed, password.expose_secret())
            })
            .await?;
        Ok(is_real && matched)
    }

    /// True when `stored` was made with other parameters than the configured
    /// ones (or is not Argon2id), so it should be re-hashed after a login.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
                    || parsed.version != Some(Version::V0x13 as u32)
            }
            Err(_) => true,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CoreError> {
        // Owned by the job, not by this future: dropping the future while
        // the hash runs must not let another hash start beside it.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| CoreError::internal(format!("hasher closed: {e}")))?;
        self.pool.run(permit, work).await
    }
}

thread_local! {
    /// A hashing thread's Argon2 memory, kept from one hash to the next: a
    /// flood reuses the same `max_concurrent × memory` pages instead of
    /// mapping, faulting in and zeroing a fresh block per hash. Argon2
    /// writes every block before reading it. Only the hashing threads hash.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// At most this much memory is kept between hashes (a stored hash made
/// with more memory than this gets its own, freed after): 256 MiB.
const KEPT_BLOCKS: usize = 256 * 1024;

/// Argon2 of `password` and `salt` into `out`, in this thread's memory.
fn argon2_into(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let need = params.block_count();
    if need > KEPT_BLOCKS {
        return argon2.hash_password_into(password, salt, out);
    }
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..need])
    })
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, CoreError> {
    let fail = |e: &dyn std::fmt::Display| CoreError::internal(format!("argon2: {e}"));
    let mut salt_bytes = [0u8; 16];
    getrandom::fill(&mut salt_bytes).map_err(|e| CoreError::internal(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| fail(&e))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; 32];
    argon2_into(&argon2, params, password.as_bytes(), &salt_bytes, &mut out)
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` hashes to `stored` under the string's own algorithm,
/// version and parameters (the output compared in constant time).
fn verify_blocking(stored: &PasswordHash<'_>, password: &str) -> bool {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(stored) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    argon2_into(&argon2, &params, password.as_bytes(), salt, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|actual| actual == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(memory_kib: u32) -> Argon2Config {
        Argon2Config {
            memory_kib,
            time_cost: 1,
            parallelism: 1,
            max_concurrent: 2,
        }
    }

    #[test]
    fn policy_names_the_failed_rule() {
        let cases = [
            ("Sh0rt!", "at least 8"),
            (&*format!("Aa1!{}", "x".repeat(125)), "at most 128"),
            ("lowercase1!", "upper-case"),
            ("UPPERCASE1!", "lower-case"),
            ("NoDigits!!", "digit"),
            ("NoSpecial1a", "special"),
            ("P@ssw0rd", "too common"),
            ("p@SSW0RD", "too common"),
        ];
        for (pw, fragment) in cases {
            let err = check_policy(pw).unwrap_err();
            assert!(err.0.contains(fragment), "{pw}: {}", err.0);
        }
        assert!(check_policy("Correct-Horse-9-Battery").is_ok());
    }

    #[test]
    fn common_list_is_large_and_case_insensitive() {
        for pw in [
            "password", "PASSWORD", "qwerty", "iloveyou", "Dragon", "monkey", "letmein", "sunshine",
        ] {
            assert!(is_common(pw), "{pw}");
        }
        assert!(!is_common("Correct-Horse-9-Battery"));
    }

    /// Clients that disconnect while their hash runs must not let more
    /// hashes in: the bound holds until the abandoned hashes end.
    #[tokio::test]
    async fn a_dropped_caller_keeps_its_place_until_its_hash_ends() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        let config = small(64);
        let (hasher, bound) = (PasswordHasher::new(&config).unwrap(), config.max_concurrent);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        // A job that counts itself while it runs, until its gate opens.
        let job = |gate: Option<std::sync::mpsc::Receiver<()>>| {
            let (running, peak, started) = (running.clone(), peak.clone(), started_tx.clone());
            move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let _ = started.send(());
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                running.fetch_sub(1, Ordering::SeqCst);
            }
        };

        // More callers than the bound; the admitted ones block in their hash.
        let mut gates = Vec::new();
        let mut first = Vec::new();
        for _ in 0..bound + 3 {
            let (open, gate) = std::sync::mpsc::channel::<()>();
            gates.push(open);
            let (hasher, job) = (hasher.clone(), job(Some(gate)));
            first.push(tokio::spawn(async move { hasher.run(job).await }));
        }
        for _ in 0..bound {
            started.recv().await.unwrap();
        }
        // Every caller goes away (clients disconnect); two hashes still run.
        for task in &first {
            task.abort();
        }
        for task in first {
            assert!(task.await.unwrap_err().is_cancelled());
        }
        assert_eq!(
            hasher.permits.available_permits(),
            0,
            "the running hashes still count against the bound"
        );

        // New callers wait for the abandoned hashes, then all finish.
        let second: Vec<_> = (0..bound + 1)
            .map(|_| {
                let (hasher, job) = (hasher.clone(), job(None));
                tokio::spawn(async move { hasher.run(job).await })
            })
            .collect();
        drop(gates);
        for task in second {
            task.await.unwrap().unwrap();
        }
        // Every place comes back once the abandoned hashes end too.
        let all = hasher.permits.acquire_many(bound as u32).await.unwrap();
        assert_eq!(running.load(Ordering::SeqCst), 0);
        drop(all);
        assert!(
            peak.load(Ordering::SeqCst) <= bound,
            "never more than the bound at once"
        );
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_and_memory_is_reused() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

        let hasher = PasswordHasher::new(&small(256)).unwrap();
        let pw = SecretString::from("S3cure-Passw0rd!");
        // Ours, checked by the crate's own verifier.
        let ours = hasher.hash(&pw).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"S3cure-Passw0rd!", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"S3cure-Passw0rd?", &parsed)
                .is_err()
        );
        // The crate's, with other parameters and variants, checked by ours,
        // one after another on the same threads (the memory is reused, larger
        // and smaller than before).
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        for (algorithm, version, m, t, p) in [
            (Algorithm::Argon2id, Version::V0x13, 512, 2, 2),
            (Algorithm::Argon2id, Version::V0x13, 64, 1, 1),
            (Algorithm::Argon2i, Version::V0x13, 128, 3, 1),
            (Algorithm::Argon2d, Version::V0x10, 96, 1, 1),
        ] {
            let params = Params::new(m, t, p, Some(32)).unwrap();
            let theirs = Argon2::new(algorithm, version, params)
                .hash_password(b"S3cure-Passw0rd!", &salt)
                .unwrap()
                .to_string();
            assert!(hasher.verify(&pw, Some(&theirs)).await.unwrap(), "{theirs}");
            let wrong = SecretString::from("S3cure-Passw0rd?");
            assert!(
                !hasher.verify(&wrong, Some(&theirs)).await.unwrap(),
                "{theirs}"
            );
        }
        // A hash whose output was cut short does not match.
        let cut = &ours[..ours.len() - 4];
        assert!(!hasher.verify(&pw, Some(cut)).await.unwrap());
    }

    #[tokio::test]
    async fn hash_verify_and_rehash() {
        let hasher = PasswordHasher::new(&small(64)).unwrap();
        let pw = SecretString::from("S3cure-Passw0rd!");
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(hasher.verify(&pw, Some(&phc)).await.unwrap());
        assert!(
            !hasher
                .verify(&SecretString::from("wrong"), Some(&phc))
                .await
                .unwrap()
        );
        assert!(
            !hasher.verify(&pw, None).await.unwrap(),
            "dummy never matches"
        );
        assert!(!hasher.verify(&pw, Some("not a phc string")).await.unwrap());
        assert!(!hasher.needs_rehash(&phc));
        let stronger = PasswordHasher::new(&small(128)).unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(
            stronger.verify(&pw, Some(&phc)).await.unwrap(),
            "old hashes still verify"
        );
    }
}
