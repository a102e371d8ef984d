//! The human-readable table, with each task's aim.

use serde_json::Value;

fn human_time(seconds: f64) -> String {
    if seconds < 1e-6 {
        format!("{:.0} ns", seconds * 1e9)
    } else if seconds < 1e-3 {
        format!("{:.2} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// The aim of issue 2 for a task, in seconds, with its text.
fn aim(task: &str) -> Option<(f64, &'static str)> {
    match task {
        "predict_full" | "predict_score" => Some((2e-6, "< 2 µs")),
        "train" => Some((2.0, "< 2 s")),
        "drift_10k" => Some((5e-3, "< 5 ms")),
        "drift_1m" => Some((0.3, "< 300 ms")),
        _ => None,
    }
}

pub(crate) fn render_table(results: &[Value]) -> String {
    let mut rows = vec![[
        "task".to_string(),
        "median".to_string(),
        "range".to_string(),
        "samples x calls".to_string(),
        "aim".to_string(),
        "what".to_string(),
    ]];
    for r in results {
        let task = r["task"].as_str().unwrap_or("?");
        let median = r["seconds"].as_f64().unwrap_or(f64::NAN);
        let aim_text = match aim(task) {
            Some((limit, text)) => {
                format!("{text} {}", if median < limit { "met" } else { "MISSED" })
            }
            None => String::new(),
        };
        rows.push([
            task.to_string(),
            human_time(median),
            format!(
                "{} .. {}",
                human_time(r["min_seconds"].as_f64().unwrap_or(f64::NAN)),
                human_time(r["max_seconds"].as_f64().unwrap_or(f64::NAN))
            ),
            format!(
                "{} x {}",
                r["samples"].as_u64().unwrap_or(0),
                r["calls_per_sample"].as_u64().unwrap_or(0)
            ),
            aim_text,
            r["what"].as_str().unwrap_or("").to_string(),
        ]);
        if let Some(parts) = r["breakdown"].as_object() {
            for (part, seconds) in parts {
                rows.push([
                    format!("  {task}: {}", part.trim_end_matches("_seconds")),
                    human_time(seconds.as_f64().unwrap_or(f64::NAN)),
                    String::new(),
                    String::new(),
                    String::new(),
                    "part of the work, timed alone with public functions".to_string(),
                ]);
            }
        }
        if let Some(peak) = r["memory"]["peak_rss_bytes_during_drift"].as_u64() {
            let mib = peak as f64 / (1 << 20) as f64;
            // The aim (300 MB) is set for the 1M/200k drift only.
            let verdict = match (task, peak < 300_000_000) {
                ("drift_1m", true) => "< 300 MB met",
                ("drift_1m", false) => "< 300 MB MISSED",
                _ => "",
            };
            let before = r["memory"]["rss_bytes_before_drift"]
                .as_u64()
                .map_or(String::new(), |b| {
                    format!(" (data held: {:.0} MiB)", b as f64 / (1 << 20) as f64)
                });
            rows.push([
                format!("{task} peak RSS"),
                format!("{mib:.0} MiB"),
                String::new(),
                String::new(),
                verdict.to_string(),
                format!("process peak during the drift computation{before}"),
            ]);
        }
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(widths.iter())
            .map(|(cell, w)| format!("{cell:<w$}", w = *w))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}
