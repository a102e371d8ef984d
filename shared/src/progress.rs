//! Progress of long work (generating, parsing and inserting rows; the folds of training) as
//! `tracing` events under the target [`TARGET`], so each front end shows it in its own way:
//! `fraudctl` draws bars on a terminal (plain lines otherwise), the Lambda functions log the
//! steps as JSON events, and nothing else needs to know.
//!
//! A [`Step`] emits `start` and `finish` at `info` and at most [`MAX_ADVANCE_EVENTS`] `advance`
//! events at `debug` in between, so a million-row load costs a hundred events, not a million.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The `tracing` target of every progress event.
pub const TARGET: &str = "fraudrisk::progress";

/// Most `advance` events one step emits (one per percent of its total).
pub const MAX_ADVANCE_EVENTS: u64 = 100;

/// What a step counts, for the rate shown beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Data rows.
    Rows,
    /// Bytes of an input file.
    Bytes,
    /// Model fits (folds x regularisation strengths).
    Fits,
}

impl Unit {
    /// The unit's name in events and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Rows => "rows",
            Unit::Bytes => "bytes",
            Unit::Fits => "fits",
        }
    }
}

/// One named step of long work with a known (or, as 0, unknown) total. Shared by threads:
/// [`Step::advance`] takes `&self`.
#[derive(Debug)]
pub struct Step {
    label: String,
    unit: Unit,
    total: u64,
    done: AtomicU64,
    next_report: AtomicU64,
    started: Instant,
    finished: AtomicBool,
}

impl Step {
    /// Starts a step: `label` says what it does ("parse reference.csv"), `total` how many
    /// `unit`s it will count (0 when unknown).
    pub fn start(label: impl Into<String>, unit: Unit, total: u64) -> Self {
        let label = label.into();
        tracing::info!(
            target: TARGET,
            progress = "start",
            step = %label,
            unit = unit.as_str(),
            total,
            "{label}"
        );
        Step {
            label,
            unit,
            total,
            done: AtomicU64::new(0),
            next_report: AtomicU64::new(report_stride(total)),
            started: Instant::now(),
            finished: AtomicBool::new(false),
        }
    }

    /// Counts `n` more units done.
    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        let due = self.next_report.load(Ordering::Relaxed);
        if done < due {
            return;
        }
        let next = done.saturating_add(report_stride(self.total));
        // One thread reports each crossing; the others carry on.
        if self
            .next_report
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::debug!(
                target: TARGET,
                progress = "advance",
                step = %self.label,
                unit = self.unit.as_str(),
                total = self.total,
                done,
            );
        }
    }

    /// Sets the count of units done (for work that knows its position, e.g. bytes read).
    pub fn set_done(&self, done: u64) {
        let before = self.done.load(Ordering::Relaxed);
        if done > before {
            self.advance(done - before);
        }
    }

    /// Units counted so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Ends the step (also done on drop): one `finish` event with the count and the time.
    pub fn finish(self) {
        self.emit_finish();
    }

    fn emit_finish(&self) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        let elapsed_ms = self.started.elapsed().as_millis() as u64;
        tracing::info!(
            target: TARGET,
            progress = "finish",
            step = %self.label,
            unit = self.unit.as_str(),
            total = self.total,
            done = self.done(),
            elapsed_ms,
            "{} done",
            self.label
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.emit_finish();
    }
}

/// Units between two `advance` events: a percent of the total, at least one.
fn report_stride(total: u64) -> u64 {
    if total == 0 {
        // Unknown total: report every 10,000 units.
        10_000
    } else {
        (total / MAX_ADVANCE_EVENTS).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// Collects the `progress` field of every progress event.
    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<String>>>);

    struct Kind(Option<String>);
    impl Visit for Kind {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "progress" {
                self.0 = Some(value.to_string());
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl<S: tracing::Subscriber> Layer<S> for Collect {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().target() == TARGET {
                let mut kind = Kind(None);
                event.record(&mut kind);
                if let (Some(kind), Ok(mut seen)) = (kind.0, self.0.lock()) {
                    seen.push(kind);
                }
            }
        }
    }

    fn events_of(work: impl FnOnce()) -> Vec<String> {
        let collect = Collect::default();
        let subscriber = tracing_subscriber::registry().with(collect.clone());
        tracing::subscriber::with_default(subscriber, work);
        let seen = collect.0.lock().map(|v| v.clone()).unwrap_or_default();
        seen
    }

    #[test]
    fn a_million_units_make_at_most_a_hundred_advance_events() {
        let seen = events_of(|| {
            let step = Step::start("insert", Unit::Rows, 1_000_000);
            for _ in 0..1_000_000 {
                step.advance(1);
            }
            assert_eq!(step.done(), 1_000_000);
        });
        assert_eq!(seen.first().map(String::as_str), Some("start"));
        assert_eq!(seen.last().map(String::as_str), Some("finish"));
        let advances = seen.iter().filter(|k| *k == "advance").count() as u64;
        assert!(
            (90..=MAX_ADVANCE_EVENTS).contains(&advances),
            "{advances} advance events"
        );
    }

    #[test]
    fn finish_is_emitted_once_even_when_dropped_after_finish() {
        let seen = events_of(|| {
            let step = Step::start("fit", Unit::Fits, 25);
            for _ in 0..25 {
                step.advance(1);
            }
            step.set_done(10); // going back is ignored
            assert_eq!(step.done(), 25);
            step.finish();
        });
        assert_eq!(seen.iter().filter(|k| *k == "finish").count(), 1);
        assert_eq!(seen.iter().filter(|k| *k == "advance").count(), 25);
    }
}
