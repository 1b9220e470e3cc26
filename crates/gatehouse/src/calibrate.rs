//! `gatehouse calibrate-argon2`: times Argon2id on this machine and suggests
//! parameters that take about the target time per hash without going below
//! the OWASP minimums, with the login rate and the memory bound they imply.

use std::io::Write;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Version};
use gatehouse_core::config::Argon2Config;
use serde_json::{Value, json};

/// The OWASP Password Storage Cheat Sheet's Argon2id minimums, equally
/// strong trade-offs of memory (KiB) against passes, each with one lane.
pub const OWASP_MINIMUMS: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// The minimum the suggestions start from: 19 MiB, two passes.
const FLOOR: Params = Params {
    memory_kib: 19_456,
    iterations: 2,
    lanes: 1,
};

/// Timed hashes per measurement (after one untimed warm-up); the median is
/// kept, so one preempted run does not skew it.
const RUNS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl Params {
    /// The OWASP minimum these parameters meet, if any. Lanes do not count:
    /// this build computes them one after another on one thread.
    pub fn owasp_minimum(self) -> Option<(u32, u32)> {
        OWASP_MINIMUMS
            .into_iter()
            .find(|&(m, t)| self.memory_kib >= m && self.iterations >= t)
    }

    /// Blocks of 1 KiB processed per hash: the unit hashing time scales with.
    fn work(self) -> f64 {
        f64::from(self.memory_kib) * f64::from(self.iterations)
    }
}

/// Parameters for `target` given the measured cost of one KiB pass: one
/// lane, two passes over as much memory as the target allows up to
/// `max_memory_kib` (in whole MiB), then more passes; never below [`FLOOR`].
pub fn choose(target: Duration, ns_per_kib_pass: f64, max_memory_kib: u32) -> Params {
    let budget = target.as_nanos() as f64 / ns_per_kib_pass.max(f64::MIN_POSITIVE);
    let max_memory = max_memory_kib.max(FLOOR.memory_kib);
    let memory = (budget / f64::from(FLOOR.iterations) / 1024.0).floor() * 1024.0;
    if memory <= f64::from(FLOOR.memory_kib) {
        return FLOOR;
    }
    if memory <= f64::from(max_memory) {
        return Params {
            memory_kib: memory as u32,
            ..FLOOR
        };
    }
    let passes = (budget / f64::from(max_memory)).floor().min(100.0) as u32;
    Params {
        memory_kib: max_memory,
        iterations: passes.max(FLOOR.iterations),
        lanes: 1,
    }
}

/// Median time of [`RUNS`] hashes with `params`.
fn time_hash(params: Params) -> Result<Duration, String> {
    let p = argon2::Params::new(params.memory_kib, params.iterations, params.lanes, Some(32))
        .map_err(|e| format!("argon2 parameters: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
    let mut out = [0u8; 32];
    let mut hash = || {
        argon
            .hash_password_into(b"calibration-password", b"calibration-salt", &mut out)
            .map_err(|e| format!("argon2: {e}"))
    };
    hash()?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        hash()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[RUNS / 2])
}

/// What was measured and what follows from it.
#[derive(Debug)]
pub struct Calibration {
    target: Duration,
    probe: Duration,
    ns_per_kib_pass: f64,
    suggested: Params,
    measured: Duration,
    configured: Params,
    max_concurrent: usize,
    cores: usize,
}

pub fn calibrate(
    target: Duration,
    max_memory_kib: u32,
    config: &Argon2Config,
) -> Result<Calibration, String> {
    let probe = time_hash(FLOOR)?;
    let mut ns_per_kib_pass = probe.as_nanos() as f64 / FLOOR.work();
    let mut suggested = FLOOR;
    let mut measured = probe;
    // A KiB costs more once the memory outgrows the caches: aim again with
    // the cost just measured, until the choice settles (twice at most).
    for _ in 0..3 {
        let next = choose(target, ns_per_kib_pass, max_memory_kib);
        if next == suggested {
            break;
        }
        suggested = next;
        measured = time_hash(next)?;
        ns_per_kib_pass = measured.as_nanos() as f64 / next.work();
    }
    Ok(Calibration {
        target,
        probe,
        ns_per_kib_pass,
        suggested,
        measured,
        configured: Params {
            memory_kib: config.memory_kib,
            iterations: config.time_cost,
            lanes: config.parallelism,
        },
        max_concurrent: config.max_concurrent,
        cores: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

impl Calibration {
    /// Hashes per second on one core (a login verifies one hash).
    fn per_core(&self) -> f64 {
        (1.0 / self.measured.as_secs_f64().max(1e-9) * 10.0).round() / 10.0
    }

    /// Hashes at once use at most this much Argon2 memory (KiB).
    fn memory_bound_kib(&self, p: Params) -> u64 {
        self.max_concurrent as u64 * u64::from(p.memory_kib)
    }

    /// The OWASP minimum alone takes longer than the target here.
    fn floor_exceeds_target(&self) -> bool {
        self.suggested == FLOOR && self.measured > self.target
    }

    fn configured_estimate(&self) -> Duration {
        Duration::from_nanos((self.configured.work() * self.ns_per_kib_pass) as u64)
    }

    pub fn to_json(&self) -> Value {
        let s = self.suggested;
        let c = self.configured;
        let busy = self.max_concurrent.min(self.cores) as f64;
        json!({
            "target_ms": ms(self.target),
            "cores": self.cores,
            "probe": {"memory_kib": FLOOR.memory_kib, "iterations": FLOOR.iterations,
                      "lanes": FLOOR.lanes, "ms": ms(self.probe)},
            "memory_kib": s.memory_kib,
            "iterations": s.iterations,
            "lanes": s.lanes,
            "measured_ms": ms(self.measured),
            "floor_exceeds_target": self.floor_exceeds_target(),
            "owasp_minimum": s.owasp_minimum().map(|(m, t)| json!({"memory_kib": m, "iterations": t, "lanes": 1})),
            "logins_per_sec_per_core": self.per_core(),
            "logins_per_sec": (self.per_core() * busy * 10.0).round() / 10.0,
            "max_concurrent": self.max_concurrent,
            "memory_bound_kib": self.memory_bound_kib(s),
            "env": {
                "ARGON2_MEMORY_COST": s.memory_kib.to_string(),
                "ARGON2_TIME_COST": s.iterations.to_string(),
                "ARGON2_PARALLELISM": s.lanes.to_string(),
            },
            "configured": {"memory_kib": c.memory_kib, "iterations": c.iterations, "lanes": c.lanes,
                           "estimated_ms": ms(self.configured_estimate()),
                           "meets_owasp_minimum": c.owasp_minimum().is_some(),
                           "memory_bound_kib": self.memory_bound_kib(c)},
        })
    }

    pub fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let s = self.suggested;
        let c = self.configured;
        let n = self.max_concurrent;
        writeln!(
            out,
            "Argon2id on this machine ({} cores), target {} ms per hash\n",
            self.cores,
            ms(self.target)
        )?;
        writeln!(
            out,
            "  probe           m={} KiB t={} p={}: {} ms (median of {RUNS})\n",
            FLOOR.memory_kib,
            FLOOR.iterations,
            FLOOR.lanes,
            ms(self.probe)
        )?;
        writeln!(out, "Suggested settings")?;
        writeln!(out, "  ARGON2_MEMORY_COST={}", s.memory_kib)?;
        writeln!(out, "  ARGON2_TIME_COST={}", s.iterations)?;
        writeln!(out, "  ARGON2_PARALLELISM={}\n", s.lanes)?;
        writeln!(
            out,
            "  hash time       {} ms (median of {RUNS})",
            ms(self.measured)
        )?;
        writeln!(
            out,
            "  logins/s        {} per core, about {} with ARGON2_MAX_CONCURRENT={n} on {} cores",
            self.per_core(),
            (self.per_core() * n.min(self.cores) as f64 * 10.0).round() / 10.0,
            self.cores
        )?;
        writeln!(
            out,
            "  memory bound    {} MiB (ARGON2_MAX_CONCURRENT={n} x {} MiB)",
            mib(self.memory_bound_kib(s)),
            mib(u64::from(s.memory_kib))
        )?;
        if let Some((m, t)) = s.owasp_minimum() {
            writeln!(
                out,
                "  OWASP minimum   met: m >= {m} KiB, t >= {t}, p = 1 (Password Storage Cheat Sheet)"
            )?;
        }
        if self.floor_exceeds_target() {
            writeln!(
                out,
                "  note            the OWASP minimum takes longer than the target here; it is the floor"
            )?;
        }
        writeln!(
            out,
            "  lanes           1: this build computes lanes one after another, so more add no speed\n"
        )?;
        writeln!(
            out,
            "Configured now: m={} KiB t={} p={}, about {} ms per hash (estimated), {}; memory bound {} MiB",
            c.memory_kib,
            c.iterations,
            c.lanes,
            ms(self.configured_estimate()),
            if c.owasp_minimum().is_some() {
                "meets the OWASP minimum"
            } else {
                "BELOW the OWASP minimum"
            },
            mib(self.memory_bound_kib(c))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_never_fall_below_the_floor() {
        // 1 ns per KiB pass: 19456 × 2 KiB passes take 39 µs.
        assert_eq!(choose(Duration::from_micros(1), 1.0, 65_536), FLOOR);
        assert_eq!(choose(Duration::ZERO, 1.0, 0), FLOOR);
    }

    #[test]
    fn memory_grows_first_in_whole_mib_then_passes() {
        let p = choose(Duration::from_micros(100), 1.0, 65_536);
        assert_eq!((p.memory_kib, p.iterations, p.lanes), (49_152, 2, 1));
        let p = choose(Duration::from_micros(500), 1.0, 65_536);
        assert_eq!((p.memory_kib, p.iterations, p.lanes), (65_536, 7, 1));
        assert!(p.work() <= 500_000.0);
    }

    #[test]
    fn the_owasp_table_is_met_by_either_axis() {
        let p = |memory_kib, iterations| Params {
            memory_kib,
            iterations,
            lanes: 4,
        };
        assert_eq!(p(65_536, 3).owasp_minimum(), Some((47_104, 1)));
        assert_eq!(p(19_456, 2).owasp_minimum(), Some((19_456, 2)));
        assert_eq!(p(7_168, 5).owasp_minimum(), Some((7_168, 5)));
        assert_eq!(p(19_455, 2).owasp_minimum(), None);
        assert_eq!(p(64, 1).owasp_minimum(), None);
    }
}
