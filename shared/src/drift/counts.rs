//! One pass over the rows that counts every feature's values on both sides, split over threads
//! by rows: the drift tests then work from these counts (value, reference count, current count),
//! never from the rows again.
//!
//! Why rows and not features per thread: an [`Applicant`] is 20 values side by side, so a pass
//! per feature would read every row's cache lines 20 times; one pass reads them once, and each
//! thread counts blocks of rows into counters of its own, added together at the end. The blocks
//! are handed out one at a time ([`CHUNK_ROWS`] rows each) rather than split in equal shares up
//! front, so that on a shared machine a thread whose core is busy with another process does
//! less of the work instead of holding back the result.
//!
//! Whole values inside a feature's domain (its codes, or a numeric feature's integer range when
//! it spans at most [`MAX_DENSE`] values) are counted in a plain array; anything else finite is
//! kept aside and sorted afterwards, so any input gives the right counts, only slower.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::schema::{Applicant, Domain, Feature, FEATURES, FEATURE_COUNT};

/// Widest integer range counted by index (a numeric feature's domain; credit_amount's spans
/// 10^6 values): wider domains' values are kept aside and sorted.
const MAX_DENSE: i64 = 1 << 21;
/// Domains wider than this are counted in pages of this many values, allocated when a value
/// first falls in them: a plain array for 10^6 values would cost a 16 MB memset per call (glibc
/// serves it from the heap once the first one is freed), most of it for values never seen.
const PAGE: usize = 4096;
/// Fewest rows worth a thread of their own (starting one costs tens of microseconds).
const MIN_ROWS_PER_THREAD: usize = 1 << 16;
/// Rows a thread takes at a time (5 MiB of rows): small enough to balance the threads when one of
/// them is slowed down, large enough that taking a block costs nothing next to counting it.
const CHUNK_ROWS: usize = 1 << 15;
/// Environment variable that caps the threads (for one-thread benchmarks); default: all cores.
pub const DRIFT_THREADS_ENV: &str = "FRAUDRISK_DRIFT_THREADS";

/// The pages of a wide domain's counters, each allocated when a value first falls in it.
type Pages = Vec<Option<Box<[u64]>>>;

/// One side's counts of the whole numbers of a feature's domain, by offset from its lowest.
enum Cells {
    /// Narrow domains: one counter per value.
    Flat(Vec<u64>),
    /// Wide domains: pages of [`PAGE`] counters, allocated on first use.
    Paged(Pages),
}

impl Cells {
    fn new(len: usize) -> Self {
        if len <= PAGE {
            Cells::Flat(vec![0; len])
        } else {
            Cells::Paged((0..len.div_ceil(PAGE)).map(|_| None).collect())
        }
    }

    /// The counter of offset `index` (below the domain's length).
    #[inline]
    fn cell(&mut self, index: usize) -> Option<&mut u64> {
        match self {
            Cells::Flat(cells) => cells.get_mut(index),
            Cells::Paged(pages) => pages
                .get_mut(index / PAGE)?
                .get_or_insert_with(|| vec![0; PAGE].into_boxed_slice())
                .get_mut(index % PAGE),
        }
    }

    /// The counters of page `p` (offsets p PAGE ..), if it may hold a count.
    fn page(&self, p: usize) -> Option<&[u64]> {
        match self {
            Cells::Flat(cells) => cells.get(p * PAGE..((p + 1) * PAGE).min(cells.len())),
            Cells::Paged(pages) => pages.get(p).and_then(|page| page.as_deref()),
        }
    }

    /// Adds another thread's counts of the same domain.
    fn absorb(&mut self, other: Cells) {
        match (self, other) {
            (Cells::Flat(mine), Cells::Flat(theirs)) => {
                for (a, b) in mine.iter_mut().zip(theirs) {
                    *a += b;
                }
            }
            (Cells::Paged(mine), Cells::Paged(theirs)) => {
                for (a, b) in mine.iter_mut().zip(theirs) {
                    match (a.as_mut(), b) {
                        (Some(a), Some(b)) => a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += y),
                        (None, Some(b)) => *a = Some(b),
                        (_, None) => {}
                    }
                }
            }
            // Unreachable: both come from the same feature, so the same layout.
            _ => {}
        }
    }
}

/// Counts per distinct value of one feature, for both sides (index 0 reference, 1 current).
pub(super) struct ValueCounts {
    /// The domain's lowest whole number: offset 0.
    low: i64,
    /// How many whole numbers the domain spans (0 when it is too wide to count by index).
    len: usize,
    /// Each side's counts by offset.
    cells: [Cells; 2],
    /// Other finite values (with -0.0 made 0.0) and their counts, as they came.
    other: [Vec<(f64, u64)>; 2],
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
            len,
            cells: [Cells::new(len), Cells::new(len)],
            other: [Vec::new(), Vec::new()],
            non_finite: [0, 0],
        }
    }

    /// Counts `count` values equal to `value` on `side` at once.
    pub(super) fn add_count(&mut self, side: usize, value: f64, count: u64) {
        let offset = value - self.low as f64;
        let index = offset as usize;
        let cell = if index as f64 == offset && index < self.len {
            self.cells[side].cell(index)
        } else {
            None
        };
        match cell {
            Some(cell) => *cell += count,
            None => self.add_other(side, value, count),
        }
    }

    #[cold]
    fn add_other(&mut self, side: usize, value: f64, count: u64) {
        if value.is_finite() {
            self.other[side].push((value + 0.0, count));
        } else {
            self.non_finite[side] += count;
        }
    }

    /// Adds another thread's counts of the same feature.
    fn absorb(&mut self, other: ValueCounts) {
        let [ref_cells, cur_cells] = other.cells;
        self.cells[0].absorb(ref_cells);
        self.cells[1].absorb(cur_cells);
        for (side, theirs) in other.other.into_iter().enumerate() {
            self.other[side].extend(theirs);
            self.non_finite[side] += other.non_finite[side];
        }
    }

    /// Every finite value seen, ascending (values equal as numbers are one), with its counts.
    pub(super) fn groups(&self) -> Vec<(f64, [u64; 2])> {
        let mut dense: Vec<(f64, [u64; 2])> = Vec::new();
        for p in 0..self.len.div_ceil(PAGE) {
            let pages = [self.cells[0].page(p), self.cells[1].page(p)];
            if pages == [None, None] {
                continue;
            }
            let width = PAGE.min(self.len - p * PAGE);
            let at = |side: usize, k: usize| pages[side].and_then(|page| page.get(k)).copied();
            for k in 0..width {
                let c = [at(0, k).unwrap_or(0), at(1, k).unwrap_or(0)];
                if c[0] + c[1] > 0 {
                    dense.push(((self.low + (p * PAGE + k) as i64) as f64, c));
                }
            }
        }
        if self.other.iter().all(Vec::is_empty) {
            return dense;
        }
        let mut others: Vec<(f64, usize, u64)> = Vec::new();
        for (side, values) in self.other.iter().enumerate() {
            others.extend(values.iter().map(|&(v, count)| (v, side, count)));
        }
        others.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut other_groups: Vec<(f64, [u64; 2])> = Vec::new();
        for (v, side, count) in others {
            match other_groups.last_mut() {
                Some((last, c)) if *last == v => c[side] += count,
                _ => {
                    let mut c = [0, 0];
                    c[side] = count;
                    other_groups.push((v, c));
                }
            }
        }
        merge_ascending(dense.into_iter(), other_groups.into_iter())
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

/// The most threads a drift check counts with: `FRAUDRISK_DRIFT_THREADS` when it is a positive
/// number, else every core. Fewer run on small inputs (one per 65,536 rows at most).
pub fn drift_threads() -> usize {
    std::env::var(DRIFT_THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<NonZeroUsize>().ok())
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
}

fn threads_for(rows: usize) -> usize {
    drift_threads()
        .min(rows.div_ceil(MIN_ROWS_PER_THREAD))
        .max(1)
}

/// Counts of every feature (schema order) over both sides, in one pass split over threads.
pub(super) fn count_features(reference: &[Applicant], current: &[Applicant]) -> Vec<ValueCounts> {
    let threads = threads_for(reference.len() + current.len());
    count_features_on(reference, current, threads, CHUNK_ROWS)
}

/// [`count_features`] on `threads` threads taking `chunk_rows` rows at a time.
fn count_features_on(
    reference: &[Applicant],
    current: &[Applicant],
    threads: usize,
    chunk_rows: usize,
) -> Vec<ValueCounts> {
    let chunk_rows = chunk_rows.max(1);
    let total = reference.len() + current.len();
    let threads = threads.clamp(1, total.max(1));
    // Chunk k holds rows [k chunk_rows, (k + 1) chunk_rows) of the two sides laid end to end.
    let chunk = |k: usize| {
        let (start, end) = (k * chunk_rows, ((k + 1) * chunk_rows).min(total));
        let part = |rows: &[Applicant], offset: usize| {
            let lo = start.saturating_sub(offset).min(rows.len());
            let hi = end.saturating_sub(offset).min(rows.len());
            lo..hi
        };
        (part(reference, 0), part(current, reference.len()))
    };
    let chunks = total.div_ceil(chunk_rows);
    let next = AtomicUsize::new(0);
    // Each thread takes the next chunk until none is left.
    let count_chunks = || {
        let mut counts: Vec<ValueCounts> = FEATURES.iter().map(ValueCounts::new).collect();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            if k >= chunks {
                return counts;
            }
            let (r, c) = chunk(k);
            count_rows(&mut counts, 0, &reference[r]);
            count_rows(&mut counts, 1, &current[c]);
        }
    };
    if threads == 1 {
        return count_chunks();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(count_chunks)).collect();
        let mut counts = count_chunks();
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

/// 2^52: adding it to a whole number below 2^52 puts that number in the low mantissa bits.
const MANTISSA_SHIFT: f64 = 4_503_599_627_370_496.0;

/// One feature's side of the counts, as the hot loop sees it.
struct Slot<'a> {
    /// 2^52 - low: `value + shift` holds `value - low` in its low mantissa bits when that is a
    /// whole number in [0, 2^52).
    shift: f64,
    /// The counters of a narrow domain (empty for a paged one).
    flat: &'a mut [u64],
    /// The pages of a wide domain, and its length.
    paged: Option<(&'a mut Pages, usize)>,
}

/// Counts `rows` into `counts` (one per feature) on `side`.
///
/// The hot loop (24 million values for the benchmark's 1.2M rows) avoids float-to-integer
/// casts, whose saturating semantics cost a dozen instructions: the offset is read from the
/// bits of `value + 2^52 - low`, and the value is counted there when the offset is inside the
/// domain and subtracting the shift gives the value back exactly (so it is a whole number: in
/// [2^52, 2^53) doubles are spaced by 1). Anything else (fractions, values outside the domain,
/// NaN, infinities) is queued and counted by the slow path after the pass.
fn count_rows(counts: &mut [ValueCounts], side: usize, rows: &[Applicant]) {
    let shift_bits = MANTISSA_SHIFT.to_bits();
    let mut slow: Vec<(usize, f64)> = Vec::new();
    let slots: Vec<Slot<'_>> = counts
        .iter_mut()
        .map(|c| {
            let shift = MANTISSA_SHIFT - c.low as f64;
            match &mut c.cells[side] {
                Cells::Flat(cells) => Slot {
                    shift,
                    flat: cells.as_mut_slice(),
                    paged: None,
                },
                Cells::Paged(pages) => Slot {
                    shift,
                    flat: &mut [],
                    paged: Some((pages, c.len)),
                },
            }
        })
        .collect();
    // A fixed-size array, so that the loop over the features unrolls.
    let Ok(mut slots) = <[Slot<'_>; FEATURE_COUNT]>::try_from(slots) else {
        return;
    };
    for row in rows {
        for (j, slot) in slots.iter_mut().enumerate() {
            let value = row.0[j];
            let shifted = value + slot.shift;
            let index = shifted.to_bits().wrapping_sub(shift_bits) as usize;
            let whole = shifted - slot.shift == value;
            if let Some(cell) = slot.flat.get_mut(index).filter(|_| whole) {
                *cell += 1;
                continue;
            }
            if let Some((pages, _)) = slot.paged.as_mut().filter(|p| whole && index < p.1) {
                if let Some(cell) = pages
                    .get_mut(index / PAGE)
                    .map(|page| page.get_or_insert_with(|| vec![0; PAGE].into_boxed_slice()))
                    .and_then(|page| page.get_mut(index % PAGE))
                {
                    *cell += 1;
                    continue;
                }
            }
            slow.push((j, value));
        }
    }
    for (j, value) in slow {
        if let Some(c) = counts.get_mut(j) {
            c.add_other(side, value, 1);
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
        let counts = count_features(&reference, &current);
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
    /// do 1 to 5 threads taking chunks of 64 or 333 rows (some straddle the two sides).
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
        for (a, b) in whole.iter().zip(parts.iter()) {
            assert_eq!(a.groups(), b.groups());
        }
        let one = count_features_on(&rows[..700], &rows[700..], 1, CHUNK_ROWS);
        for threads in 1..=5 {
            for chunk_rows in [64, 333] {
                let many = count_features_on(&rows[..700], &rows[700..], threads, chunk_rows);
                for (a, b) in one.iter().zip(many.iter()) {
                    assert_eq!(a.groups(), b.groups(), "{threads} threads, {chunk_rows}");
                    assert_eq!(a.non_finite, b.non_finite);
                }
            }
        }
    }
}
