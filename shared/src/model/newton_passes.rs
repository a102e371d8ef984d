//! The Newton solver's passes over a design's rows: the loss with its gradient, and the Hessian.
//!
//! Both work on stored values (raw coordinates: each stored value, the intercept, the no-column
//! slot); [`standardised_gradient`] and [`standardised_hessian`] map them to the encoder's
//! columns. A row has 12 single-column slots (the intercept's 1 and 11 stored values) and 9
//! one-hot columns, so its Hessian term splits in three blocks: single × single (12 × 12),
//! one-hot × single (9 rows of 12) and one-hot × one-hot (45 pairs of ones). The first two are
//! fixed-width rows the compiler vectorises; only the last is scattered. A pass accumulates
//! them apart and assembles the matrix once at the end.

use ndarray::Array2;

use super::design::{Design, Rows};
use crate::schema::{FeatureKind, FEATURES, FEATURE_COUNT};

/// Single-column slots of a row: the intercept, then every feature that is not nominal.
pub(super) const DENSE_SLOTS: usize = {
    let mut slots = 1;
    let mut i = 0;
    while i < FEATURE_COUNT {
        if !matches!(FEATURES[i].kind, FeatureKind::Nominal) {
            slots += 1;
        }
        i += 1;
    }
    slots
};

/// The rows a pass runs over, their labels and their numbers of copies.
pub(super) struct Weighted<'a> {
    pub rows: &'a Rows,
    pub fraud: &'a [bool],
    pub copies: &'a [f64],
}

/// `log(1 + e^z)` and `1 / (1 + e^-z)` from one exponential, without overflow.
#[inline]
fn softplus_and_sigmoid(z: f64) -> (f64, f64) {
    let e = (-z.abs()).exp();
    let p = if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (z.max(0.0) + e.ln_1p(), p)
}

/// A row's single-column values with the intercept's 1 first.
#[inline]
fn dense_slots(design: &Design, r: u32) -> [f64; DENSE_SLOTS] {
    let mut v = [1.0; DENSE_SLOTS];
    v[1..].copy_from_slice(design.dense(r));
    v
}

/// The raw parameter slot of each single-column slot: the intercept, then the stored columns.
fn dense_slot_index(design: &Design) -> [usize; DENSE_SLOTS] {
    let layout = design.layout();
    let mut index = [layout.intercept(); DENSE_SLOTS];
    index[1..].copy_from_slice(&layout.dense_columns);
    index
}

/// The summed loss and its gradient on stored values at the scorer's parameters.
pub(super) struct LossGradient {
    pub loss: f64,
    /// One per raw slot (model columns, intercept, no-column slot).
    pub gradient: Vec<f64>,
}

pub(super) fn loss_and_gradient(
    design: &Design,
    weighted: &Weighted<'_>,
    log_odds: impl Fn(u32) -> f64,
) -> LossGradient {
    let slots = design.layout().no_column() + 1;
    let mut loss = 0.0;
    let mut dense = [0.0; DENSE_SLOTS];
    let mut gradient = vec![0.0; slots];
    for ((&r, &y), &copies) in weighted
        .rows
        .iter()
        .zip(weighted.fraud)
        .zip(weighted.copies)
    {
        let z = log_odds(r);
        let (softplus, p) = softplus_and_sigmoid(z);
        let y = f64::from(u8::from(y));
        loss += copies * (softplus - y * z);
        let residual = copies * (p - y);
        for (g, x) in dense.iter_mut().zip(dense_slots(design, r)) {
            *g += residual * x;
        }
        for &c in design.columns(r) {
            gradient[c as usize] += residual;
        }
    }
    for (&slot, g) in dense_slot_index(design).iter().zip(dense) {
        gradient[slot] += g;
    }
    LossGradient { loss, gradient }
}

/// The Hessian of the summed loss on stored values, `slots × slots`, symmetric.
pub(super) fn hessian(
    design: &Design,
    weighted: &Weighted<'_>,
    log_odds: impl Fn(u32) -> f64,
) -> Vec<f64> {
    let slots = design.layout().no_column() + 1;
    let mut dense_dense = [[0.0; DENSE_SLOTS]; DENSE_SLOTS];
    // Row `c`: one-hot column c times each single-column slot.
    let mut column_dense = vec![[0.0; DENSE_SLOTS]; slots];
    // `[c][d]`, c before d in the row: both one-hot columns on.
    let mut column_column = vec![0.0; slots * slots];
    for (&r, &copies) in weighted.rows.iter().zip(weighted.copies) {
        let z = log_odds(r);
        let e = (-z.abs()).exp();
        // p (1 − p) = e / (1 + e)², the same for z and −z.
        let curvature = copies * e / ((1.0 + e) * (1.0 + e));
        let v = dense_slots(design, r);
        for (row, &a) in dense_dense.iter_mut().zip(&v) {
            let weighted_a = curvature * a;
            for (h, &b) in row.iter_mut().zip(&v) {
                *h += weighted_a * b;
            }
        }
        let columns = design.columns(r);
        for (i, &c) in columns.iter().enumerate() {
            for (h, &b) in column_dense[c as usize].iter_mut().zip(&v) {
                *h += curvature * b;
            }
            let row = &mut column_column[c as usize * slots..(c as usize + 1) * slots];
            for &d in &columns[i..] {
                row[d as usize] += curvature;
            }
        }
    }
    let mut h = vec![0.0; slots * slots];
    let index = dense_slot_index(design);
    for (a, row) in index.iter().zip(&dense_dense) {
        for (b, value) in index.iter().zip(row) {
            h[a * slots + b] = *value;
        }
    }
    for (c, row) in column_dense.iter().enumerate() {
        for (b, value) in index.iter().zip(row) {
            if *value != 0.0 {
                h[c * slots + b] += value;
                h[b * slots + c] += value;
            }
        }
    }
    for c in 0..slots {
        for d in 0..slots {
            let value = column_column[c * slots + d];
            if value != 0.0 {
                h[c * slots + d] += value;
                if c != d {
                    h[d * slots + c] += value;
                }
            }
        }
    }
    h
}

/// The gradient on the encoder's (standardised) columns and the intercept:
/// `x̃ = scale · x + shift · 1`, so `g̃ = T g` with T that map.
pub(super) fn standardised_gradient(
    design: &Design,
    affine: &[(f64, f64)],
    raw: &[f64],
) -> Vec<f64> {
    let layout = design.layout();
    let intercept = layout.intercept();
    let mut g = raw[..=layout.n_columns].to_vec();
    for (&c, &(scale, shift)) in layout.dense_columns.iter().zip(affine) {
        g[c] = scale * g[c] + shift * g[intercept];
    }
    g
}

/// The Hessian on the encoder's columns and the intercept: `H̃ = T H Tᵀ`.
pub(super) fn standardised_hessian(
    design: &Design,
    affine: &[(f64, f64)],
    raw: &[f64],
) -> Array2<f64> {
    let layout = design.layout();
    let n = layout.n_columns + 1;
    let slots = layout.no_column() + 1;
    let intercept = layout.intercept();
    let mut h = Array2::from_shape_fn((n, n), |(i, j)| raw[i * slots + j]);
    for (&c, &(scale, shift)) in layout.dense_columns.iter().zip(affine) {
        for j in 0..n {
            h[[c, j]] = scale * h[[c, j]] + shift * h[[intercept, j]];
        }
    }
    for (&c, &(scale, shift)) in layout.dense_columns.iter().zip(affine) {
        for i in 0..n {
            h[[i, c]] = scale * h[[i, c]] + shift * h[[i, intercept]];
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testdata;

    /// The blocked Hessian equals the plain sum of `w x xᵀ` over the rows' raw vectors.
    #[test]
    fn the_blocked_hessian_is_the_sum_of_outer_products() {
        let records = testdata::records(120, 2, 4);
        let design = Design::new(&records).unwrap();
        let rows = design.all_rows();
        let fraud: Vec<bool> = rows.iter().map(|&r| design.is_fraud(r)).collect();
        let copies: Vec<f64> = rows.iter().map(|&r| 1.0 + f64::from(r % 3)).collect();
        let weighted = Weighted {
            rows: &rows,
            fraud: &fraud,
            copies: &copies,
        };
        let log_odds = |r: u32| 0.3 * design.dense(r)[0] / 40.0 - 0.2 * f64::from(r % 5);
        let got = hessian(&design, &weighted, log_odds);
        let slots = design.layout().no_column() + 1;
        let mut want = vec![0.0; slots * slots];
        let index = dense_slot_index(&design);
        for (&r, &c) in rows.iter().zip(&copies) {
            let mut x = vec![0.0; slots];
            for (&slot, v) in index.iter().zip(dense_slots(&design, r)) {
                x[slot] = v;
            }
            for &column in design.columns(r) {
                x[column as usize] = 1.0;
            }
            let p = 1.0 / (1.0 + (-log_odds(r)).exp());
            for i in 0..slots {
                for j in 0..slots {
                    want[i * slots + j] += c * p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        // The no-column slot (the last) is never read; the rest must agree.
        let used = |k: usize| k / slots < slots - 1 && k % slots < slots - 1;
        for (k, (a, b)) in got.iter().zip(&want).enumerate().filter(|(k, _)| used(*k)) {
            assert!(
                (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                "[{}][{}]: {a} vs {b}",
                k / slots,
                k % slots
            );
        }
    }
}
