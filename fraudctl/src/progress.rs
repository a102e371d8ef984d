//! Shows the library's progress events (`fraudrisk::progress`): a bar per step with counts,
//! rate and an estimate on a terminal, one plain line per finished step when standard error is
//! not a terminal, and nothing in `--format json` mode (the layer is not installed then).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fraudrisk::progress::TARGET;
use indicatif::{HumanBytes, HumanCount, MultiProgress, ProgressBar, ProgressState, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Every bar and spinner of the process draws through this, so they never overwrite each other.
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// True when progress is drawn as bars (standard error is a terminal).
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The `tracing` layer that turns progress events into bars or lines.
pub struct ProgressLayer {
    draw_bars: bool,
    open: Mutex<HashMap<String, ProgressBar>>,
}

impl ProgressLayer {
    /// Bars on a terminal, plain lines otherwise.
    pub fn new() -> Self {
        ProgressLayer {
            draw_bars: on_terminal(),
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// The fields of one progress event.
#[derive(Default)]
struct Fields {
    progress: String,
    step: String,
    unit: String,
    total: u64,
    done: u64,
    elapsed_ms: u64,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "progress" => self.progress = value.to_string(),
            "unit" => self.unit = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "total" => self.total = value,
            "done" => self.done = value,
            "elapsed_ms" => self.elapsed_ms = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `step = %label` arrives as Display through the Debug path.
        if field.name() == "step" {
            self.step = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for ProgressLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        match fields.progress.as_str() {
            "start" if self.draw_bars => {
                let bar = bars().add(new_bar(&fields));
                open.insert(fields.step, bar);
            }
            "advance" => {
                if let Some(bar) = open.get(&fields.step) {
                    bar.set_position(fields.done);
                }
            }
            "finish" => {
                if let Some(bar) = open.remove(&fields.step) {
                    bar.finish_and_clear();
                    bars().remove(&bar);
                }
                let line = finished_line(&fields);
                if self.draw_bars {
                    let _ = bars().println(line);
                } else {
                    eprintln!("{line}");
                }
            }
            _ => {}
        }
    }
}

fn new_bar(fields: &Fields) -> ProgressBar {
    let (bar, template) = if fields.total == 0 {
        (
            ProgressBar::new_spinner(),
            "{spinner} {msg}: {human_pos} {rate} ({elapsed})",
        )
    } else if fields.unit == "bytes" {
        (
            ProgressBar::new(fields.total),
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, eta {eta}",
        )
    } else {
        (
            ProgressBar::new(fields.total),
            "{msg} [{bar:30}] {human_pos}/{human_len} {rate}, eta {eta}",
        )
    };
    let unit = fields.unit.clone();
    if let Ok(style) = ProgressStyle::with_template(template) {
        let style = style.progress_chars("=> ").with_key(
            "rate",
            move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", rate_text(state.per_sec(), &unit));
            },
        );
        bar.set_style(style);
    }
    bar.set_message(fields.step.clone());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// "parse new.csv: 52.1 MiB in 1.2 s (43.4 MiB/s)", "insert rows: 1,000,000 rows in 4.1 s
/// (243,902 rows/s)".
fn finished_line(fields: &Fields) -> String {
    let seconds = fields.elapsed_ms as f64 / 1000.0;
    let amount = if fields.unit == "bytes" {
        HumanBytes(fields.done).to_string()
    } else if fields.done == 1 {
        format!("1 {}", fields.unit.trim_end_matches('s'))
    } else {
        format!("{} {}", HumanCount(fields.done), fields.unit)
    };
    // A rate over less than 10 ms says nothing.
    if fields.elapsed_ms < 10 {
        return format!("{}: {amount} in {seconds:.1} s", fields.step);
    }
    let rate = rate_text(fields.done as f64 / seconds, &fields.unit);
    format!("{}: {amount} in {seconds:.1} s ({rate})", fields.step)
}

/// "243,902 rows/s", "0.19 fits/s", "43.40 MiB/s".
fn rate_text(per_second: f64, unit: &str) -> String {
    if unit == "bytes" {
        format!("{}/s", HumanBytes(per_second as u64))
    } else if per_second < 10.0 {
        format!("{per_second:.2} {unit}/s")
    } else {
        format!("{} {unit}/s", HumanCount(per_second as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_step_reads_as_one_line_with_count_time_and_rate() {
        let fields = Fields {
            progress: "finish".into(),
            step: "insert rows".into(),
            unit: "rows".into(),
            total: 1_000_000,
            done: 1_000_000,
            elapsed_ms: 4_000,
        };
        assert_eq!(
            finished_line(&fields),
            "insert rows: 1,000,000 rows in 4.0 s (250,000 rows/s)"
        );
        let bytes = Fields {
            unit: "bytes".into(),
            done: 3 * 1024 * 1024,
            elapsed_ms: 2_000,
            step: "parse a.csv".into(),
            ..Fields::default()
        };
        assert_eq!(
            finished_line(&bytes),
            "parse a.csv: 3.00 MiB in 2.0 s (1.50 MiB/s)"
        );
        let slow = Fields {
            unit: "fits".into(),
            done: 25,
            elapsed_ms: 135_400,
            step: "cross-validation".into(),
            ..Fields::default()
        };
        assert_eq!(
            finished_line(&slow),
            "cross-validation: 25 fits in 135.4 s (0.18 fits/s)"
        );
        let one = Fields {
            unit: "fits".into(),
            done: 1,
            elapsed_ms: 3,
            step: "refit".into(),
            ..Fields::default()
        };
        assert_eq!(finished_line(&one), "refit: 1 fit in 0.0 s");
    }
}
