//! One pass over the rows that counts every feature's values on both sides, split over threads
//! by rows: the drift tests then work from these counts (value, reference count, current count),
//! never from the rows again.
//!
//! Why rows and not features per thread: an [`Applicant`] is 20 values side by side, so a pass
//! per feature would read every row's cache lines 20 times; one pass reads them once, and each
//! thread counts a contiguous block of rows into counters of its own, added together at the end.
//!
//! Whole values inside a feature's domain (its codes, or a numeric feature's integer range when
//! it spans at most [`MAX_DENSE`] values) are counted in a plain array; anything else finite is
//! kept aside and sorted afterwards, so any input gives the right counts, only slower.

use std::num::NonZeroUsize;

use crate::schema::{Applicant, Domain, Feature, FEATURES};

/// Widest integer range counted in a plain array: 2^21 values (32 MiB of address space per
/// thread, of which only the pages holding values seen are ever touched).
const MAX_DENSE: i64 = 1 << 21;
/// Arrays longer than this are scanned only between the smallest and largest index written.
const TRACKED: usize = 4096;
/// Fewest rows worth a thread of their own (starting one costs tens of microseconds).
const MIN_ROWS_PER_THREAD: usize = 1 << 16;
/// Environment variable that caps the threads (for one-thread benchmarks); default: all cores.
pub const DRIFT_THREADS_ENV: &str = "FRAUDRISK_DRIFT_THREADS";

/// Counts per distinct value of one feature, for both sides (index 0 reference, 1 current).
pub(super) struct ValueCounts {
    /// Value of `dense[0]`.
    low: i64,
    /// Counts of the integer values low, low + 1, ... (the feature's domain).
    dense: Vec<[u64; 2]>,
    /// Smallest and largest index of `dense` written (only tracked for long arrays).
    touched: (usize, usize),
    /// Other finite values, as they came (with -0.0 made 0.0).
    other: [Vec<f64>; 2],
    pub(super) non_finite: [u64; 2],
}

impl ValueCounts {
    pub(super) fn new(feature: &Feature) -> Self {
        let (low, high) = match feature.domain {
            Domain::Range { min, max } => (min, max),
            Domain::Codes(codes) => codes.iter().fold((i64::MAX, i64::MIN), |(lo, hi), c| {
                (lo.min(c.0), hi.max(c.0))
            }),
        };
        let (low, len) = if low <= high && high - low < MAX_DENSE {
            (low, (high - low + 1) as usize)
        } else {
            (0, 0)
        };
        ValueCounts {
            low,
            dense: vec![[0, 0]; len],
            touched: (usize::MAX, 0),
            other: [Vec::new(), Vec::new()],
            non_finite: [0, 0],
        }
    }

    #[inline(always)]
    pub(super) fn add(&mut self, side: usize, value: f64) {
        let offset = value - self.low as f64;
        // The cast saturates (negative and NaN give 0), so the round trip is true exactly for a
        // whole offset in range; cheaper than `fract()`, which is a libm call on baseline x86-64.
        let index = offset as usize;
        if index as f64 == offset && index < self.dense.len() {
            self.dense[index][side] += 1;
            if self.dense.len() > TRACKED {
                self.touched = (self.touched.0.min(index), self.touched.1.max(index));
            }
        } else {
            self.add_other(side, value, 1);
        }
    }

    /// Counts `count` values equal to `value` on `side` at once.
    pub(super) fn add_count(&mut self, side: usize, value: f64, count: u64) {
        let offset = value - self.low as f64;
        let index = offset as usize;
        if index as f64 == offset && index < self.dense.len() {
            self.dense[index][side] += count;
            self.touched = (self.touched.0.min(index), self.touched.1.max(index));
        } else {
            self.add_other(side, value, count);
        }
    }

    #[cold]
    fn add_other(&mut self, side: usize, value: f64, count: u64) {
        if value.is_finite() {
            let other = &mut self.other[side];
            other.extend(std::iter::repeat_n(value + 0.0, count as usize));
        } else {
            self.non_finite[side] += count;
        }
    }

    /// The indices of `dense` that may hold a count.
    fn written(&self) -> std::ops::Range<usize> {
        if self.dense.len() <= TRACKED {
            0..self.dense.len()
        } else if self.touched.0 <= self.touched.1 {
            self.touched.0..self.touched.1 + 1
        } else {
            0..0
        }
    }

    /// Adds another thread's counts of the same feature.
    fn absorb(&mut self, other: ValueCounts) {
        for i in other.written() {
            let [a, b] = other.dense[i];
            self.dense[i][0] += a;
            self.dense[i][1] += b;
        }
        let range = other.written();
        if !range.is_empty() && self.dense.len() > TRACKED {
            self.touched = (
                self.touched.0.min(range.start),
                self.touched.1.max(range.end - 1),
            );
        }
        for side in 0..2 {
            self.other[side].extend_from_slice(&other.other[side]);
            self.non_finite[side] += other.non_finite[side];
        }
    }

    /// Every finite value seen, ascending (values equal as numbers are one), with its counts.
    pub(super) fn groups(&mut self) -> Vec<(f64, [u64; 2])> {
        let dense = self.written().filter_map(|i| {
            let c = self.dense[i];
            (c[0] + c[1] > 0).then(|| ((self.low + i as i64) as f64, c))
        });
        if self.other[0].is_empty() && self.other[1].is_empty() {
            return dense.collect();
        }
        let mut others: Vec<(f64, usize)> = Vec::new();
        for side in 0..2 {
            others.extend(self.other[side].iter().map(|&v| (v, side)));
        }
        others.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut other_groups: Vec<(f64, [u64; 2])> = Vec::new();
        for (v, side) in others {
            match other_groups.last_mut() {
                Some((last, c)) if *last == v => c[side] += 1,
                _ => {
                    let mut c = [0, 0];
                    c[side] = 1;
                    other_groups.push((v, c));
                }
            }
        }
        merge_ascending(dense, other_groups.into_iter())
    }
}

/// Two ascending lists of distinct values merged into one (the lists never share a value: a
/// value counted in the array is never kept aside).
fn merge_ascending(
    a: impl Iterator<Item = (f64, [u64; 2])>,
    b: impl Iterator<Item = (f64, [u64; 2])>,
) -> Vec<(f64, [u64; 2])> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out = Vec::new();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.0 < y.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

/// The threads to count with: `FRAUDRISK_DRIFT_THREADS` when set to a positive number, else
/// every core, and never more than one per [`MIN_ROWS_PER_THREAD`] rows.
fn threads_for(rows: usize) -> usize {
    let wanted = std::env::var(DRIFT_THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<NonZeroUsize>().ok())
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    wanted.min(rows.div_ceil(MIN_ROWS_PER_THREAD)).max(1)
}

/// Counts of every feature (schema order) over both sides, in one pass split over threads.
pub(super) fn count_features(reference: &[Applicant], current: &[Applicant]) -> Vec<ValueCounts> {
    let threads = threads_for(reference.len() + current.len());
    count_features_on(reference, current, threads)
}

fn count_features_on(
    reference: &[Applicant],
    current: &[Applicant],
    threads: usize,
) -> Vec<ValueCounts> {
    let total = reference.len() + current.len();
    let threads = threads.clamp(1, total.max(1));
    // Thread t counts rows [t total / threads, (t + 1) total / threads) of the two sides
    // laid end to end.
    let block = |t: usize| {
        let (start, end) = (t * total / threads, (t + 1) * total / threads);
        let part = |rows: &[Applicant], offset: usize| {
            let lo = start.saturating_sub(offset).min(rows.len());
            let hi = end.saturating_sub(offset).min(rows.len());
            lo..hi
        };
        (part(reference, 0), part(current, reference.len()))
    };
    let count_block = |t: usize| {
        let (r, c) = block(t);
        let mut counts: Vec<ValueCounts> = FEATURES.iter().map(ValueCounts::new).collect();
        count_rows(&mut counts, 0, &reference[r]);
        count_rows(&mut counts, 1, &current[c]);
        counts
    };
    if threads == 1 {
        return count_block(0);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads)
            .map(|t| scope.spawn(move || count_block(t)))
            .collect();
        let mut counts = count_block(0);
        for handle in handles {
            // A counting thread only adds integers: it cannot panic short of a bug, and then
            // the panic is passed on rather than a wrong count returned.
            match handle.join() {
                Ok(part) => {
                    for (mine, theirs) in counts.iter_mut().zip(part) {
                        mine.absorb(theirs);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        counts
    })
}

fn count_rows(counts: &mut [ValueCounts], side: usize, rows: &[Applicant]) {
    for row in rows {
        for (counter, &value) in counts.iter_mut().zip(row.0.iter()) {
            counter.add(side, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureKind;

    fn row(value: f64, j: usize) -> Applicant {
        let mut a = Applicant([1.0; FEATURES.len()]);
        a.0[j] = value;
        a
    }

    /// Values in the array, outside it, fractional, non-finite, and -0.0 all land in the right
    /// group, ascending, whatever the number of threads.
    #[test]
    fn groups_hold_every_value_once_in_order() {
        let j = FEATURES
            .iter()
            .position(|f| f.kind == FeatureKind::Numeric)
            .unwrap();
        let values = [
            3.0,
            2.5,
            -7.0,
            3.0,
            f64::NAN,
            1e12,
            5.0,
            -0.0,
            0.0,
            2.5,
            f64::INFINITY,
        ];
        let reference: Vec<Applicant> = values.iter().map(|&v| row(v, j)).collect();
        let current: Vec<Applicant> = values[..4].iter().map(|&v| row(v, j)).collect();
        let mut counts = count_features(&reference, &current);
        let groups = counts[j].groups();
        assert_eq!(
            groups,
            vec![
                (-7.0, [1, 1]),
                (0.0, [2, 0]),
                (2.5, [2, 1]),
                (3.0, [2, 2]),
                (5.0, [1, 0]),
                (1e12, [1, 0]),
            ]
        );
        assert_eq!(counts[j].non_finite, [2, 0]);
    }

    /// Counting over several blocks (as threads do) and adding them equals one block, and so
    /// do 1 to 5 threads over rows that straddle the two sides.
    #[test]
    fn blocks_add_up_to_one_pass() {
        let rows: Vec<Applicant> = (0..1000)
            .map(|i| {
                let mut a = Applicant([0.0; FEATURES.len()]);
                for (j, v) in a.0.iter_mut().enumerate() {
                    *v = ((i * 31 + j * 7) % 97) as f64 + if i % 50 == 0 { 0.5 } else { 0.0 };
                }
                a
            })
            .collect();
        let mut whole: Vec<ValueCounts> = FEATURES.iter().map(ValueCounts::new).collect();
        count_rows(&mut whole, 0, &rows);
        let mut parts: Vec<ValueCounts> = FEATURES.iter().map(ValueCounts::new).collect();
        count_rows(&mut parts, 0, &rows[..300]);
        for chunk in [&rows[300..301], &rows[301..]] {
            let mut more: Vec<ValueCounts> = FEATURES.iter().map(ValueCounts::new).collect();
            count_rows(&mut more, 0, chunk);
            for (a, b) in parts.iter_mut().zip(more) {
                a.absorb(b);
            }
        }
        for (a, b) in whole.iter_mut().zip(parts.iter_mut()) {
            assert_eq!(a.groups(), b.groups());
        }
        let mut one = count_features_on(&rows[..700], &rows[700..], 1);
        for threads in 2..=5 {
            let mut many = count_features_on(&rows[..700], &rows[700..], threads);
            for (a, b) in one.iter_mut().zip(many.iter_mut()) {
                assert_eq!(a.groups(), b.groups(), "{threads} threads");
                assert_eq!(a.non_finite, b.non_finite);
            }
        }
    }
}
