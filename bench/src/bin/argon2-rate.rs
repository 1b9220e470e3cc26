//! Raw Argon2id throughput: the upper limit for Gatehouse's login rate.
//!
//! `--threads` OS threads each hash a fixed 12-character password with a
//! fresh random 16-byte salt, in a loop, for `--seconds`, producing PHC
//! strings exactly as a password store would (Argon2id, version 0x13,
//! 32-byte output). Like the service's hashing threads, each thread hashes
//! in memory it keeps from one hash to the next. The sum of the per-thread rates is printed as one JSON
//! line on stdout. Pin it (`taskset -c`) to the cores the service runs on and
//! use one thread per core.

/// The service's allocator, so the comparison is like for like.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, PasswordHash, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use clap::Parser;
use serde_json::json;

/// Fixed password: 12 characters, like a typical real one.
const PASSWORD: &str = "Bench-Pw0rd!";
/// Salt length Gatehouse uses (bytes).
const SALT_LEN: usize = 16;
/// Hash length Gatehouse uses (bytes).
const OUTPUT_LEN: usize = 32;

#[derive(Debug, Parser)]
#[command(
    name = "argon2-rate",
    about = "Measure raw Argon2id hashes per second on this machine"
)]
struct Args {
    /// Memory cost in KiB (ARGON2_MEMORY_COST).
    #[arg(long, default_value_t = 65_536)]
    memory_kib: u32,
    /// Number of passes (ARGON2_TIME_COST).
    #[arg(long, default_value_t = 3)]
    time_cost: u32,
    /// Lanes (ARGON2_PARALLELISM).
    #[arg(long, default_value_t = 4)]
    parallelism: u32,
    /// OS threads hashing at once; default: the cores this process may run on.
    #[arg(long)]
    threads: Option<usize>,
    /// How long to hash, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
}

#[derive(Debug, Clone, Copy)]
struct ThreadResult {
    hashes: u64,
    elapsed: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("argon2-rate: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        return Err("--seconds must be a positive number".into());
    }
    let threads = match args.threads {
        Some(0) => return Err("--threads must be at least 1".into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    };
    let params = Params::new(
        args.memory_kib,
        args.time_cost,
        args.parallelism,
        Some(OUTPUT_LEN),
    )
    .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);

    // One checked round trip first: proves the PHC strings are real (and
    // warms the allocator) before anything is timed.
    let mut blocks = vec![Block::default(); hasher.params().block_count()];
    let phc = hash_once(&hasher, &mut blocks)?;
    let parsed = PasswordHash::new(&phc).map_err(|e| format!("bad PHC string: {e}"))?;
    hasher
        .verify_password(PASSWORD.as_bytes(), &parsed)
        .map_err(|e| format!("self-check failed: {e}"))?;

    let run_for = Duration::from_secs_f64(args.seconds);
    let barrier = Barrier::new(threads);
    let results: Vec<Result<ThreadResult, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| hash_loop(&hasher, &barrier, run_for)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a hashing thread panicked".into()))
            })
            .collect()
    });
    let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;

    let total: u64 = results.iter().map(|r| r.hashes).sum();
    let rate: f64 = results.iter().map(rate_of).sum();
    let wall = results
        .iter()
        .map(|r| r.elapsed)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let line = json!({
        "hashes_per_sec": rate,
        "hashes": total,
        "seconds": wall,
        "threads": threads,
        "per_thread_hashes_per_sec": results.iter().map(rate_of).collect::<Vec<_>>(),
        "params": {
            "algorithm": "argon2id",
            "version": 19,
            "memory_kib": args.memory_kib,
            "time_cost": args.time_cost,
            "parallelism": args.parallelism,
            "output_len": OUTPUT_LEN,
            "salt_len": SALT_LEN,
            "password_len": PASSWORD.len(),
        },
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(|e| format!("cannot write result: {e}"))
}

#[allow(
    clippy::cast_precision_loss,
    reason = "hash counts stay far below 2^52"
)]
fn rate_of(r: &ThreadResult) -> f64 {
    let secs = r.elapsed.as_secs_f64();
    if secs > 0.0 {
        r.hashes as f64 / secs
    } else {
        0.0
    }
}

/// Hash until `run_for` has passed; the clock stops at the end of the last
/// completed hash, so an overrunning final hash is counted fairly.
fn hash_loop(
    hasher: &Argon2<'_>,
    barrier: &Barrier,
    run_for: Duration,
) -> Result<ThreadResult, String> {
    let mut blocks = vec![Block::default(); hasher.params().block_count()];
    barrier.wait();
    let start = Instant::now();
    let mut hashes = 0_u64;
    loop {
        let phc = hash_once(hasher, &mut blocks)?;
        std::hint::black_box(phc);
        hashes += 1;
        let elapsed = start.elapsed();
        if elapsed >= run_for {
            return Ok(ThreadResult { hashes, elapsed });
        }
    }
}

/// One password hash with a fresh random salt, in `blocks`, as a PHC
/// string.
fn hash_once(hasher: &Argon2<'_>, blocks: &mut [Block]) -> Result<String, String> {
    let mut salt_bytes = [0_u8; SALT_LEN];
    getrandom::fill(&mut salt_bytes).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| format!("bad salt: {e}"))?;
    let mut out = [0_u8; OUTPUT_LEN];
    hasher
        .hash_password_into_with_memory(PASSWORD.as_bytes(), &salt_bytes, &mut out, blocks)
        .map_err(|e| format!("hashing failed: {e}"))?;
    let params = argon2::password_hash::ParamsString::try_from(hasher.params())
        .map_err(|e| format!("bad parameters: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| format!("bad output: {e}"))?),
    };
    Ok(phc.to_string())
}
