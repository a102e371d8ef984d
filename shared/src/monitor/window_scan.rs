//! The monitor's pass over the served predictions of a window without their inputs: one row
//! at a time, in P(fraud) order, into counts and sums whose size does not grow with the log
//! (per distinct reference score, per model version, per ISO week, per segment). The store
//! streams the rows ([`crate::ports::PredictionLog::window_aggregates`]); what comes out is
//! exactly what the row-level report computes from the same rows:
//!
//! - the two-sample KS statistic needs the served ECDF only where the reference ECDF steps, and
//!   the first and last served score between two neighbouring reference scores (where the
//!   difference of the ECDFs is largest and smallest there): counts per reference score and
//!   per gap between them;
//! - ROC AUC needs, for each fraud, the non-frauds scored below it (ties count half): rows in
//!   score order, a running count per group;
//! - the rest are counts and sums per bin or group.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};

use super::performance::{age_band, age_band_order, PerformanceFigures, ReliabilitySums, Tallies};
use super::scores::score_bin;
use super::SCORE_HISTOGRAM_BINS;
use crate::drift::{decile_bin, decile_edges, ks_2samp_grouped, KsOutcome};

/// One served prediction as the scan reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServedScore {
    pub probability_of_fraud: f64,
    /// The decision served.
    pub fraud: bool,
    /// The outcome reported, if any (true = fraud).
    pub outcome: Option<bool>,
    pub model_version: u32,
    pub created_at: DateTime<Utc>,
    /// The logged `age_years` if it is a value of its domain, else NaN.
    pub age_years: f64,
    /// The logged `sex_marital_status` if it is one of its codes, else NaN.
    pub sex_marital_status: f64,
}

/// The reference side of the score tests, prepared once: the champion's P(fraud) on its
/// training rows.
#[derive(Clone, Debug)]
pub struct ScoreReference {
    /// Distinct finite scores, ascending, with their counts.
    groups: Vec<(f64, u64)>,
    /// Finite scores.
    n: usize,
    /// Finite scores at or above the threshold.
    fraud: u64,
    threshold: f64,
    /// The reference deciles (None without a finite score) and the reference's counts in them.
    decile_edges: Option<[f64; 9]>,
    decile_counts: [u64; 10],
    histogram: Vec<u64>,
}

impl ScoreReference {
    /// Prepares `scores` (non-finite ones left out, as the row-level report does) at the
    /// champion's `threshold`.
    pub fn new(scores: &[f64], threshold: f64) -> Self {
        let mut finite: Vec<f64> = scores.iter().copied().filter(|p| p.is_finite()).collect();
        let decile_edges = (!finite.is_empty()).then(|| decile_edges(&mut finite));
        finite.sort_unstable_by(f64::total_cmp);
        let mut groups: Vec<(f64, u64)> = Vec::new();
        let mut decile_counts = [0u64; 10];
        let mut histogram = vec![0u64; SCORE_HISTOGRAM_BINS];
        for &p in &finite {
            match groups.last_mut() {
                Some((last, count)) if *last == p => *count += 1,
                _ => groups.push((p, 1)),
            }
            if let Some(edges) = &decile_edges {
                decile_counts[decile_bin(edges, p)] += 1;
            }
            if let Some(bin) = score_bin(p) {
                histogram[bin] += 1;
            }
        }
        ScoreReference {
            fraud: finite.iter().filter(|&&p| p >= threshold).count() as u64,
            n: finite.len(),
            groups,
            threshold,
            decile_edges,
            decile_counts,
            histogram,
        }
    }

    /// Finite reference scores.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True without a finite reference score.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The champion's threshold.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

/// Served scores strictly between two neighbouring reference scores (or below the first,
/// above the last): how many, the smallest with its count, the largest.
#[derive(Clone, Copy, Debug, Default)]
struct Gap {
    count: u64,
    lowest: f64,
    lowest_count: u64,
    highest: f64,
}

impl Gap {
    fn add(&mut self, p: f64) {
        if self.count == 0 || p < self.lowest {
            (self.lowest, self.lowest_count) = (p, 1);
        } else if p == self.lowest {
            self.lowest_count += 1;
        }
        if self.count == 0 || p > self.highest {
            self.highest = p;
        }
        self.count += 1;
    }

    /// The gap as at most two groups with the same ECDF extremes as all its scores: the
    /// scores in between only lie between those two steps.
    fn groups(&self) -> impl Iterator<Item = (f64, u64)> {
        let rest = self.count.saturating_sub(self.lowest_count);
        [(self.lowest, self.lowest_count), (self.highest, rest)]
            .into_iter()
            .filter(|g| g.1 > 0)
    }
}

/// ROC AUC over rows arriving in score order: each fraud wins against the non-frauds below
/// it and half-wins against those tied with it. Integer counts, so the order of the sums
/// cannot round.
#[derive(Clone, Copy, Debug, Default)]
struct AucScan {
    negatives_below: u64,
    /// The block of equal scores being read: (score, frauds, non-frauds).
    block: Option<(f64, u64, u64)>,
    /// Twice the wins.
    twice_wins: u128,
    /// A non-finite score was labelled: the row-level AUC refuses it, so this is null too.
    unusable: bool,
}

impl AucScan {
    fn add(&mut self, p: f64, fraud: bool) {
        if !p.is_finite() {
            self.unusable = true;
            return;
        }
        match &mut self.block {
            Some((score, frauds, others)) if *score == p => {
                *frauds += u64::from(fraud);
                *others += u64::from(!fraud);
            }
            _ => {
                self.close_block();
                self.block = Some((p, u64::from(fraud), u64::from(!fraud)));
            }
        }
    }

    fn close_block(&mut self) {
        if let Some((_, frauds, others)) = self.block.take() {
            self.twice_wins += u128::from(frauds) * u128::from(2 * self.negatives_below + others);
            self.negatives_below += others;
        }
    }

    fn finish(mut self, frauds: usize, labelled: usize) -> Option<f64> {
        self.close_block();
        let negatives = labelled - frauds;
        (frauds > 0 && negatives > 0 && !self.unusable)
            .then(|| self.twice_wins as f64 / (2.0 * frauds as f64 * negatives as f64))
    }
}

/// [`PerformanceFigures`] of one group, row by row.
#[derive(Clone, Copy, Debug, Default)]
struct FiguresScan {
    tallies: Tallies,
    auc: AucScan,
}

impl FiguresScan {
    fn add(&mut self, row: &ServedScore) {
        self.tallies
            .add(row.probability_of_fraud, row.fraud, row.outcome);
        if let Some(fraud) = row.outcome {
            self.auc.add(row.probability_of_fraud, fraud);
        }
    }

    fn finish(self) -> PerformanceFigures {
        let auc = self.auc.finish(self.tallies.frauds, self.tallies.labelled);
        self.tallies.figures(auc)
    }
}

/// The scan's state. Feed it every served prediction of the window in ascending P(fraud)
/// ([`WindowScan::add`]), then [`WindowScan::finish`].
pub struct WindowScan<'a> {
    reference: &'a ScoreReference,
    served: u64,
    fraud_decisions: u64,
    /// Finite served scores.
    finite: u64,
    /// Served scores equal to each reference score.
    at_reference: Vec<u64>,
    /// Served scores in each gap: gap k lies just below reference score k; the last one above all.
    gaps: Vec<Gap>,
    decile_counts: [u64; 10],
    histogram: Vec<u64>,
    reliability: ReliabilitySums,
    overall: FiguresScan,
    by_version: BTreeMap<u32, FiguresScan>,
    by_week: BTreeMap<(i32, u32), FiguresScan>,
    by_age_band: BTreeMap<(u8, &'static str), FiguresScan>,
    by_sex_marital_status: BTreeMap<i64, FiguresScan>,
    previous: Option<f64>,
}

/// A row arrived below the one before it: the store did not sort by P(fraud).
#[derive(Debug, thiserror::Error)]
#[error("the window's predictions did not arrive in P(fraud) order ({previous} before {score})")]
pub struct OutOfOrder {
    previous: f64,
    score: f64,
}

impl<'a> WindowScan<'a> {
    pub fn new(reference: &'a ScoreReference) -> Self {
        let k = reference.groups.len();
        WindowScan {
            reference,
            served: 0,
            fraud_decisions: 0,
            finite: 0,
            at_reference: vec![0; k],
            gaps: vec![Gap::default(); k + 1],
            decile_counts: [0; 10],
            histogram: vec![0; SCORE_HISTOGRAM_BINS],
            reliability: ReliabilitySums::default(),
            overall: FiguresScan::default(),
            by_version: BTreeMap::new(),
            by_week: BTreeMap::new(),
            by_age_band: BTreeMap::new(),
            by_sex_marital_status: BTreeMap::new(),
            previous: None,
        }
    }

    /// Adds one served prediction; rows must come in ascending P(fraud) (non-finite scores,
    /// which only a hand-edited log holds, anywhere).
    pub fn add(&mut self, row: &ServedScore) -> Result<(), OutOfOrder> {
        let p = row.probability_of_fraud;
        if p.is_finite() {
            if let Some(previous) = self.previous.filter(|&q| p < q) {
                return Err(OutOfOrder { previous, score: p });
            }
            self.previous = Some(p);
            self.finite += 1;
            let groups = &self.reference.groups;
            let k = groups.partition_point(|g| g.0 < p);
            match groups.get(k) {
                Some(g) if g.0 == p => self.at_reference[k] += 1,
                _ => self.gaps[k].add(p),
            }
            if let Some(edges) = &self.reference.decile_edges {
                self.decile_counts[decile_bin(edges, p)] += 1;
            }
            if let Some(bin) = score_bin(p) {
                self.histogram[bin] += 1;
            }
        }
        self.served += 1;
        self.fraud_decisions += u64::from(row.fraud);
        if let Some(fraud) = row.outcome {
            self.reliability.add(p, fraud);
        }
        self.overall.add(row);
        self.by_version
            .entry(row.model_version)
            .or_default()
            .add(row);
        let week = row.created_at.iso_week();
        self.by_week
            .entry((week.year(), week.week()))
            .or_default()
            .add(row);
        if let Some(band) = age_band(row.age_years) {
            self.by_age_band
                .entry((age_band_order(band), band))
                .or_default()
                .add(row);
        }
        if row.sex_marital_status.is_finite() {
            self.by_sex_marital_status
                .entry(row.sex_marital_status as i64)
                .or_default()
                .add(row);
        }
        Ok(())
    }

    /// The scan's figures.
    pub fn finish(self) -> ScannedWindow {
        let reference = self.reference;
        let mut current: Vec<(f64, u64)> = Vec::new();
        for (k, gap) in self.gaps.iter().enumerate() {
            current.extend(gap.groups());
            if let (Some(g), Some(&count)) = (reference.groups.get(k), self.at_reference.get(k)) {
                if count > 0 {
                    current.push((g.0, count));
                }
            }
        }
        let enough = reference.n >= 2 && self.finite >= 2;
        let ks = enough
            .then(|| ks_2samp_grouped(&reference.groups, &current))
            .flatten();
        ScannedWindow {
            served: self.served,
            finite_scores: self.finite,
            fraud_decisions: self.fraud_decisions,
            ks,
            decile_counts: self.decile_counts,
            histogram: self.histogram,
            reliability: self.reliability,
            overall: self.overall.finish(),
            by_version: figures(self.by_version),
            by_week: figures(self.by_week)
                .into_iter()
                .map(|((year, week), f)| (format!("{year}-W{week:02}"), f))
                .collect(),
            by_age_band: figures(self.by_age_band)
                .into_iter()
                .map(|((_, band), f)| (band, f))
                .collect(),
            by_sex_marital_status: figures(self.by_sex_marital_status),
        }
    }
}

/// Each group's figures, keys ascending.
fn figures<K: Ord>(groups: BTreeMap<K, FiguresScan>) -> Vec<(K, PerformanceFigures)> {
    groups
        .into_iter()
        .map(|(key, scan)| (key, scan.finish()))
        .collect()
}

/// What the scan found.
#[derive(Clone, Debug)]
pub struct ScannedWindow {
    pub served: u64,
    pub finite_scores: u64,
    pub fraud_decisions: u64,
    /// The KS test of the served scores against the reference; None with fewer than 2 on a side.
    pub ks: Option<KsOutcome>,
    pub decile_counts: [u64; 10],
    pub histogram: Vec<u64>,
    pub reliability: ReliabilitySums,
    pub overall: PerformanceFigures,
    pub by_version: Vec<(u32, PerformanceFigures)>,
    pub by_week: Vec<(String, PerformanceFigures)>,
    pub by_age_band: Vec<(&'static str, PerformanceFigures)>,
    pub by_sex_marital_status: Vec<(i64, PerformanceFigures)>,
}

impl ScannedWindow {
    /// The reference the scan was made against, for the report's reference side.
    pub(super) fn reference_parts(reference: &ScoreReference) -> (usize, u64, [u64; 10], Vec<u64>) {
        (
            reference.n,
            reference.fraud,
            reference.decile_counts,
            reference.histogram.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::ks_2samp;
    use crate::model::roc_auc;

    fn served(p: f64, fraud_outcome: Option<bool>) -> ServedScore {
        ServedScore {
            probability_of_fraud: p,
            fraud: p >= 0.5,
            outcome: fraud_outcome,
            model_version: 1,
            created_at: DateTime::UNIX_EPOCH,
            age_years: 30.0,
            sex_marital_status: 2.0,
        }
    }

    /// Scores that tie among themselves and with the reference, fall below, between and
    /// above the reference values, on either side of it (D reached where the served ECDF is
    /// below the reference's, then above: inside a gap between reference scores): KS (with
    /// its location and sign) and ROC AUC equal the row-level functions'.
    #[test]
    fn the_scan_reproduces_ks_and_auc_on_rows() {
        let reference: Vec<f64> = (0..300).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
        for (scale, shift, sign) in [(1.0, 0.0, 1), (0.6, -0.01, -1)] {
            let mut current: Vec<f64> = (0..500)
                .map(|i| (((i * 53) % 2400) as f64 / 2000.0 - 0.1) * scale + shift)
                .collect();
            current.sort_by(f64::total_cmp);
            let outcomes: Vec<Option<bool>> = (0..500)
                .map(|i| (i % 4 != 0).then_some((i * 7) % 10 < 4))
                .collect();
            let prepared = ScoreReference::new(&reference, 0.5);
            let mut scan = WindowScan::new(&prepared);
            for (&p, &outcome) in current.iter().zip(&outcomes) {
                scan.add(&served(p, outcome)).unwrap();
            }
            let result = scan.finish();
            let expected = ks_2samp(&reference, &current).unwrap();
            assert_eq!(result.ks, Some(expected));
            assert_eq!(expected.sign, sign);
            let (labels, scores): (Vec<bool>, Vec<f64>) = current
                .iter()
                .zip(&outcomes)
                .filter_map(|(&p, o)| o.map(|fraud| (fraud, p)))
                .unzip();
            let auc = roc_auc(&labels, &scores).unwrap();
            let scanned = result.overall.roc_auc.unwrap();
            assert!((auc - scanned).abs() < 1e-12, "{auc} vs {scanned}");
            assert_eq!(result.served, 500);
        }
    }

    #[test]
    fn rows_out_of_score_order_are_refused() {
        let prepared = ScoreReference::new(&[0.1, 0.2], 0.5);
        let mut scan = WindowScan::new(&prepared);
        scan.add(&served(0.4, None)).unwrap();
        scan.add(&served(f64::NAN, None)).unwrap();
        assert!(scan.add(&served(0.3, None)).is_err());
    }
}
