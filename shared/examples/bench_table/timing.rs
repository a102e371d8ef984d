//! Timing: median of per-call means over samples that each last about 20 ms.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one sample runs, at least.
const SAMPLE_TARGET: Duration = Duration::from_millis(20);

pub(crate) struct Timing {
    /// Median seconds per call.
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) samples: usize,
    pub(crate) calls_per_sample: usize,
}

impl Timing {
    fn to_json(&self) -> Value {
        json!({
            "seconds": self.median,
            "min_seconds": self.min,
            "max_seconds": self.max,
            "samples": self.samples,
            "calls_per_sample": self.calls_per_sample,
        })
    }
}

/// Warms up with `warmup` calls, sizes a sample to last about [`SAMPLE_TARGET`], then times
/// `samples` samples and returns the median (and range) of the per-call means.
pub(crate) fn time<F: FnMut()>(warmup: usize, samples: usize, mut call: F) -> Timing {
    let start = Instant::now();
    for _ in 0..warmup.max(1) {
        call();
    }
    let once = start.elapsed().as_secs_f64() / warmup.max(1) as f64;
    let calls = ((SAMPLE_TARGET.as_secs_f64() / once.max(1e-9)).ceil() as usize).clamp(1, 1 << 24);
    let mut per_call: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                call();
            }
            start.elapsed().as_secs_f64() / calls as f64
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    let n = per_call.len();
    let median = if n % 2 == 1 {
        per_call[n / 2]
    } else {
        (per_call[n / 2 - 1] + per_call[n / 2]) / 2.0
    };
    Timing {
        median,
        min: per_call[0],
        max: per_call[n - 1],
        samples: n,
        calls_per_sample: calls,
    }
}

pub(crate) fn result(task: &str, what: &str, timing: &Timing, check: Value) -> Value {
    let mut out = json!({"task": task, "what": what, "check": check});
    if let (Some(map), Value::Object(t)) = (out.as_object_mut(), timing.to_json()) {
        map.extend(t);
    }
    out
}
