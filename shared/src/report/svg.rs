//! Small inline-SVG charts: grouped bars (horizontal and vertical), a line over points and a
//! reliability diagram. Every text is escaped; colours come from the page's CSS classes
//! (`ref`, `cur`), so the charts print and read the same as the tables.

use super::{escape, short_number};

/// Plot width of every chart, in SVG units (the page scales it to the figure's width).
const WIDTH: f64 = 560.0;
const FONT: &str = r#"font-size="11""#;

/// A chart's reference and current values per category, as shares.
pub struct Pair<'a> {
    pub labels: &'a [String],
    pub reference: &'a [f64],
    pub current: &'a [f64],
}

fn open(height: f64, label: &str) -> String {
    format!(
        r#"<svg viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="{0}"><title>{0}</title>"#,
        escape(label)
    )
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (1 for 0).
fn nice_max(value: f64) -> f64 {
    if !(value.is_finite() && value > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|&m| m >= value * (1.0 - 1e-12))
        .unwrap_or(10.0 * power)
}

/// Cuts a label to `max` characters (not bytes) with an ellipsis.
fn clip(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut out: String = label.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn percent(share: f64) -> String {
    format!("{:.1} %", 100.0 * share)
}

fn finite_max(values: &[f64]) -> f64 {
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// One horizontal row of two bars (reference above current) per category, labels on the left:
/// for codes, whose codebook labels are long.
pub fn horizontal_bars(pair: &Pair<'_>, label: &str) -> String {
    let (left, row, top) = (210.0, 26.0, 8.0);
    let n = pair.labels.len();
    let height = top + row * n as f64 + 26.0;
    let max = nice_max(finite_max(pair.reference).max(finite_max(pair.current)));
    let span = WIDTH - left - 60.0;
    let mut svg = open(height, label);
    let bottom = top + row * n as f64;
    for tick in 0..=4 {
        let x = left + span * f64::from(tick) / 4.0;
        svg.push_str(&format!(
            r#"<line class="grid" x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom:.1}"/><text {FONT} x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 14.0,
            percent(max * f64::from(tick) / 4.0)
        ));
    }
    for (i, name) in pair.labels.iter().enumerate() {
        let y = top + row * i as f64;
        svg.push_str(&format!(
            r#"<g><title>{}</title><text {FONT} x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            escape(name),
            left - 6.0,
            y + 16.0,
            escape(&clip(name, 34))
        ));
        for (k, (class, values)) in [("ref", pair.reference), ("cur", pair.current)]
            .into_iter()
            .enumerate()
        {
            let share = values
                .get(i)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0);
            let w = span * share / max;
            let by = y + 3.0 + 10.0 * k as f64;
            svg.push_str(&format!(
                r#"<rect class="{class}" x="{left}" y="{by:.1}" width="{w:.1}" height="9"/><text {FONT} x="{:.1}" y="{:.1}">{}</text>"#,
                left + w + 3.0,
                by + 8.5,
                percent(share)
            ));
        }
        svg.push_str("</g>");
    }
    svg.push_str(&format!(
        r#"<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom:.1}"/></svg>"#
    ));
    svg
}

/// Two bars per category side by side, categories along the x axis; every `label_every`-th
/// category is labelled (histograms).
pub fn vertical_bars(pair: &Pair<'_>, label: &str, label_every: usize) -> String {
    let (left, top, plot_height) = (48.0, 10.0, 170.0);
    let n = pair.labels.len().max(1);
    let height = top + plot_height + 40.0;
    let max = nice_max(finite_max(pair.reference).max(finite_max(pair.current)));
    let slot = (WIDTH - left - 10.0) / n as f64;
    let bar = (slot * 0.4).max(1.0);
    let bottom = top + plot_height;
    let mut svg = open(height, label);
    for tick in 0..=4 {
        let y = bottom - plot_height * f64::from(tick) / 4.0;
        svg.push_str(&format!(
            r#"<line class="grid" x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text {FONT} x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - 10.0,
            left - 4.0,
            y + 4.0,
            percent(max * f64::from(tick) / 4.0)
        ));
    }
    for (i, name) in pair.labels.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.1;
        svg.push_str(&format!("<g><title>{}</title>", escape(name)));
        for (k, (class, values)) in [("ref", pair.reference), ("cur", pair.current)]
            .into_iter()
            .enumerate()
        {
            let share = values
                .get(i)
                .copied()
                .filter(|v| v.is_finite())
                .unwrap_or(0.0);
            let h = plot_height * share / max;
            svg.push_str(&format!(
                r#"<rect class="{class}" x="{:.1}" y="{:.1}" width="{bar:.1}" height="{h:.1}"/>"#,
                x + bar * k as f64,
                bottom - h
            ));
        }
        svg.push_str("</g>");
        if label_every > 0 && i % label_every == 0 {
            svg.push_str(&format!(
                r#"<text {FONT} x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar,
                bottom + 14.0 + 12.0 * ((i / label_every.max(1)) % 2) as f64,
                escape(&clip(name, 18))
            ));
        }
    }
    svg.push_str(&format!(
        r#"<line class="axis" x1="{left}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}"/></svg>"#,
        WIDTH - 10.0
    ));
    svg
}

/// Points joined by a line over categories (e.g. ISO weeks), y on [0, 1]; `None` is a gap.
pub fn line_chart(labels: &[String], values: &[Option<f64>], label: &str) -> String {
    let (left, top, plot_height) = (48.0, 10.0, 170.0);
    let bottom = top + plot_height;
    let n = labels.len().max(1);
    let slot = (WIDTH - left - 20.0) / n as f64;
    let mut svg = open(top + plot_height + 40.0, label);
    for tick in 0..=4 {
        let value = f64::from(tick) / 4.0;
        let y = bottom - plot_height * value;
        svg.push_str(&format!(
            r#"<line class="grid" x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text {FONT} x="{:.1}" y="{:.1}" text-anchor="end">{value:.2}</text>"#,
            WIDTH - 10.0,
            left - 4.0,
            y + 4.0
        ));
    }
    let point = |i: usize, v: f64| {
        (
            left + slot * (i as f64 + 0.5),
            bottom - plot_height * v.clamp(0.0, 1.0),
        )
    };
    let mut path = String::new();
    for (i, value) in values.iter().enumerate() {
        match value.filter(|v| v.is_finite()) {
            Some(v) => {
                let (x, y) = point(i, v);
                let command = if path.is_empty() || path.ends_with(' ') {
                    "M"
                } else {
                    "L"
                };
                path.push_str(&format!("{command}{x:.1},{y:.1}"));
            }
            None => path.push(' '),
        }
    }
    let path = path.trim();
    if !path.is_empty() {
        svg.push_str(&format!(r#"<path class="line" d="{path}"/>"#));
    }
    for (i, name) in labels.iter().enumerate() {
        let (x, _) = point(i, 0.0);
        if let Some(v) = values.get(i).copied().flatten().filter(|v| v.is_finite()) {
            let (_, y) = point(i, v);
            svg.push_str(&format!(
                r#"<circle class="cur" cx="{x:.1}" cy="{y:.1}" r="4"><title>{}: {}</title></circle>"#,
                escape(name),
                short_number(v)
            ));
        }
        svg.push_str(&format!(
            r#"<text {FONT} x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 14.0,
            escape(&clip(name, 10))
        ));
    }
    svg.push_str(&format!(
        r#"<line class="axis" x1="{left}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}"/></svg>"#,
        WIDTH - 10.0
    ));
    svg
}

/// Observed share against mean prediction per bin (x, y, count), on the unit square with the
/// diagonal of perfect calibration; each point is labelled with its count.
pub fn reliability_chart(points: &[(f64, f64, usize)], label: &str) -> String {
    let (left, top, side) = (48.0, 10.0, 260.0);
    let bottom = top + side;
    let mut svg = open(top + side + 40.0, label);
    for tick in 0..=4 {
        let value = f64::from(tick) / 4.0;
        let offset = side * value;
        svg.push_str(&format!(
            r#"<line class="grid" x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><line class="grid" x1="{:.1}" y1="{top}" x2="{:.1}" y2="{bottom:.1}"/><text {FONT} x="{:.1}" y="{:.1}" text-anchor="end">{value:.2}</text><text {FONT} x="{:.1}" y="{:.1}" text-anchor="middle">{value:.2}</text>"#,
            bottom - offset,
            left + side,
            bottom - offset,
            left + offset,
            left + offset,
            left - 4.0,
            bottom - offset + 4.0,
            left + offset,
            bottom + 14.0
        ));
    }
    svg.push_str(&format!(
        r#"<line class="diagonal" x1="{left}" y1="{bottom:.1}" x2="{:.1}" y2="{top}"/><text {FONT} x="{:.1}" y="{:.1}" text-anchor="middle">mean predicted P(fraud)</text><text {FONT} x="{:.1}" y="{:.1}">observed fraud share</text>"#,
        left + side,
        left + side / 2.0,
        bottom + 30.0,
        left + side + 20.0,
        top + 12.0
    ));
    for &(x, y, count) in points {
        if !(x.is_finite() && y.is_finite()) {
            continue;
        }
        let (cx, cy) = (
            left + side * x.clamp(0.0, 1.0),
            bottom - side * y.clamp(0.0, 1.0),
        );
        svg.push_str(&format!(
            r#"<circle class="cur" cx="{cx:.1}" cy="{cy:.1}" r="4"><title>mean P(fraud) {}, observed {}, {count} predictions</title></circle><text {FONT} x="{:.1}" y="{:.1}">{count}</text>"#,
            short_number(x),
            short_number(y),
            cx + 6.0,
            cy - 4.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.37), 0.5);
        assert_eq!(nice_max(0.2), 0.2);
        assert_eq!(nice_max(0.21), 0.25);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip("ééééé", 3), "éé…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
