//! Measuring helpers of the side-by-side benchmarks: per-sample times recorded from
//! criterion's own iterations, medians, and the `SUMMARY` / `REPORT` lines that
//! `tools/bench-report` turns into `benches/README.md`.

use std::cell::RefCell;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;

/// Per-iteration times of the samples criterion measured: the routine records each call
/// (warm-up included); the last `samples` calls are the measurement.
#[derive(Default)]
pub struct Samples(RefCell<Vec<Duration>>);

impl Samples {
    pub fn record(&self, total: Duration, iters: u64) {
        self.0.borrow_mut().push(total / iters.max(1) as u32);
    }

    pub fn median(&self, samples: usize) -> Duration {
        let all = self.0.borrow();
        let mut v: Vec<Duration> = all[all.len().saturating_sub(samples)..].to_vec();
        v.sort();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2,
        }
    }
}

/// Benches `f` (given `iters`, returns the time it measured) and records its samples.
pub fn bench(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    samples: &Samples,
    mut f: impl FnMut(u64) -> Duration,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t = f(iters);
            samples.record(t, iters);
            t
        })
    });
}

/// One contender's median: time per iteration and operations per iteration.
#[derive(Clone, Copy)]
pub struct Median {
    pub time: Duration,
    pub ops: usize,
}

impl Median {
    pub fn new(time: Duration, ops: usize) -> Median {
        Median { time, ops }
    }
    /// Time per operation.
    pub fn per_op(&self) -> Duration {
        self.time / self.ops.max(1) as u32
    }
    pub fn per_s(&self) -> f64 {
        self.ops as f64 / self.time.as_secs_f64()
    }
}

/// A duration with a unit that fits it (ns, µs, ms, s), 3 significant digits.
pub fn show(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// A rate (operations per second) in a compact form: 1.23M/s, 45.6k/s, 789/s.
pub fn show_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2}M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1}k/s", r / 1e3)
    } else {
        format!("{r:.0}/s")
    }
}

/// How much faster `m` is than `other`, per operation ("12.3x", or "0.45x" if slower).
pub fn speedup(m: Median, other: Median) -> String {
    let x = other.per_op().as_secs_f64() / m.per_op().as_secs_f64();
    if x >= 10.0 {
        format!("{x:.0}x")
    } else {
        format!("{x:.1}x")
    }
}

/// Prints the group's `SUMMARY` line (for a reader of the bench output) and its `REPORT`
/// line (a table row of `benches/README.md`, see `tools/bench-report`): time per operation
/// and operations per second of each contender, and mdslog's speed-up over each.
pub fn summary(what: &str, m: Median, o: Median, w: Median) {
    let cell = |x: Median| format!("{} ({})", show(x.per_op()), show_rate(x.per_s()));
    eprintln!(
        "\nSUMMARY {what}: mdslog {}, sqlite-original {}, sqlite-wal {}; mdslog is {} \
         faster than the original configuration, {} faster than WAL\n",
        cell(m),
        cell(o),
        cell(w),
        speedup(m, o),
        speedup(m, w),
    );
    report(&[
        "compare",
        what,
        &cell(m),
        &cell(o),
        &cell(w),
        &speedup(m, o),
        &speedup(m, w),
    ]);
}

/// Prints one `REPORT` line: `REPORT|` then the fields joined by `|`.
pub fn report(fields: &[&str]) {
    eprintln!("REPORT|{}", fields.join("|"));
}

/// A measurement time that makes criterion take one iteration per sample (flat sampling)
/// for a routine of about `one` (criterion then warns that it cannot fit the samples).
pub fn flat_time(one: Duration, samples: usize) -> Duration {
    (one * samples as u32 / 2).max(Duration::from_millis(10))
}

/// A flat-sampling measurement time for a routine of about `one` that adds `per` snapshots:
/// enough iterations per sample for about 50 ms, at least 1, at most 100, and at most
/// 50,000 snapshots added over the samples (both sides stay near the fixture's size).
pub fn bounded_time(one: Duration, per: usize, samples: usize) -> Duration {
    let cap = (50_000 / (per * samples)).clamp(1, 100) as f64;
    let k = (Duration::from_millis(50).as_secs_f64() / one.as_secs_f64().max(1e-9)).clamp(1.0, cap);
    flat_time(one.mul_f64(k), samples) * 2
}

/// Runs `f` 6 times untimed (a warm-up) and returns the median of the last 5 of its times.
pub fn estimate(mut f: impl FnMut() -> Duration) -> Duration {
    f();
    let mut v: Vec<Duration> = (0..5).map(|_| f()).collect();
    v.sort();
    v[2]
}

/// `sync(1)`, untimed, before each durable case: dirty pages left by the previous case
/// (the other contender's writes) would otherwise slow this case's fsyncs.
pub fn sync_all() {
    let _ = std::process::Command::new("sync").status();
}
