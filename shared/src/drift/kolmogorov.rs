//! The one-sample two-sided Kolmogorov-Smirnov distribution's survival function,
//! `scipy.stats.kstwo.sf(d, n)`: the tail of the two-sample test's asymptotic path (see
//! [`super::ks`]). A port of scipy's `kolmogn` (`scipy/stats/_ksstats.py`), which follows Simard
//! and L'Ecuyer (2011) in choosing, by n and n d^2, between the Ruben-Gambino closed forms,
//! Durbin's matrix (Marsaglia-Tsang-Wang form), Pomeranz's recursion, the Pelz-Good expansion
//! and twice the one-sided Smirnov tail (Birnbaum-Tingey sum, scipy's C++ `smirnov`).
//!
//! Agreement with scipy and the references: see [`super::ks`].

/// 2^128 and 2^-128: the rescaling steps of scipy's Durbin and Pomeranz code (`_EP128`, `_EM128`).
const EP128: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;
const EM128: f64 = 1.0 / EP128;

/// `scipy.stats.kstwo.sf(d, n)`: P(D_n >= d) for the two-sided one-sample statistic D_n of n
/// values. As scipy: 1 for d <= 1/(2n), 0 for d >= 1, NaN for n = 0 or d NaN (the test itself
/// never passes either).
pub fn kolmogorov_two_sided_sf(n: u64, d: f64) -> f64 {
    if n == 0 || d.is_nan() {
        return f64::NAN;
    }
    if d <= 0.5 / n as f64 {
        return 1.0;
    }
    if d >= 1.0 {
        return 0.0;
    }
    kolmogn_sf(n, d)
}

/// scipy's `_kolmogn(n, x, cdf=False)` for 1/(2n) < x < 1: the method by region of (n, n x^2),
/// after Simard and L'Ecuyer (2011).
fn kolmogn_sf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let clip = |p: f64| p.clamp(0.0, 1.0);
    let t = nf * x;
    if t <= 1.0 {
        // Ruben-Gambino: P(D_n <= x) = n!/n^n (2t - 1)^n for 1/(2n) <= x <= 1/n.
        if t <= 0.5 {
            return 1.0;
        }
        let cdf = if n <= 140 {
            let step = 1.0 / nf;
            let base = 2.0 * t - 1.0;
            (1..=n).fold(1.0, |acc, i| acc * (i as f64 * step * base))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip(1.0 - cdf);
    }
    if t >= nf - 1.0 {
        // Ruben-Gambino: P(D_n >= x) = 2 (1 - x)^n for x >= 1 - 1/n.
        return clip(2.0 * (1.0 - x).powf(nf));
    }
    if x >= 0.5 {
        // Beyond 1/2 the two one-sided events cannot both happen: exactly twice Smirnov's tail.
        return clip(2.0 * smirnov_sf(n, x));
    }
    let nx2 = t * x;
    if n <= 140 {
        if nx2 <= 0.754693 {
            return clip(1.0 - durbin_mtw_cdf(n, x));
        }
        if nx2 <= 4.0 {
            return clip(1.0 - pomeranz_cdf(n, x));
        }
        // Miller's approximation: twice the one-sided tail (their intersection is negligible).
        return clip(2.0 * smirnov_sf(n, x));
    }
    if nx2 >= 370.0 {
        return 0.0;
    }
    if nx2 >= 2.2 {
        return clip(2.0 * smirnov_sf(n, x));
    }
    let cdf = if nx2 >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_mtw_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    clip(1.0 - cdf)
}

/// ln(n! / n^n) by Stirling's series with n ln n taken out up front (scipy's
/// `_log_nfactorial_div_n_pow_n`).
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // B_{2j} / (2j (2j - 1)) for j = 8, ..., 1, highest power first (numpy polyval order);
    // scipy's literals as written, so they can be compared with `_STIRLING_COEFFS` by eye.
    #[allow(clippy::excessive_precision)]
    const STIRLING: [f64; 8] = [
        -2.955_065_359_477_124_183e-2,
        6.410_256_410_256_410_256_4e-3,
        -1.917_526_917_526_917_526_9e-3,
        8.417_508_417_508_417_508_4e-4,
        -5.952_380_952_380_952_381e-4,
        7.936_507_936_507_936_507_9e-4,
        -2.777_777_777_777_777_777_8e-3,
        8.333_333_333_333_333_333_3e-2,
    ];
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING.iter().fold(0.0, |acc, &c| acc * x + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * poly
}

/// 2^e x, exact unless the result leaves the normal range (C's `ldexp`, in steps so that no
/// power of two overflows on the way).
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// Square matrix product (m x m, row-major).
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for (row_out, row_a) in out.chunks_exact_mut(m).zip(a.chunks_exact(m)) {
        for (&aik, row_b) in row_a.iter().zip(b.chunks_exact(m)) {
            for (o, &bkj) in row_out.iter_mut().zip(row_b) {
                *o += aik * bkj;
            }
        }
    }
    out
}

/// P(D_n <= d) by Durbin's matrix: write d = (k - h)/n, form the (2k-1) x (2k-1) matrix H and
/// take element (k, k) of n!/n^n H^n by repeated squaring, rescaling by 2^128 as scipy's
/// `_kolmogn_DMTW` does (Marsaglia, Tsang and Wang 2003). O(k^3 log n).
fn durbin_mtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    // v[j] = (1 - h^(j+1)) / (j+1)!, w[j] = 1/j!, as scipy (fac may underflow: harmless).
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0_f64;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut power: Vec<f64> = (0..m * m)
        .map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let (mut nn, mut expnt, mut h_expnt) = (n, 0_i64, 0_i64);
    let centre = (k - 1) * m + (k - 1);
    while nn > 0 {
        if nn % 2 == 1 {
            power = matmul(&power, &hm, m);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm, m);
        h_expnt *= 2;
        if hm[centre].abs() > EP128 {
            for x in hm.iter_mut() {
                *x /= EP128;
            }
            h_expnt += 128;
        }
        nn /= 2;
    }
    let mut p = power[centre];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= 128;
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    p.clamp(0.0, 1.0)
}

/// Python's `seq[start:stop]` for a step of 1: negative bounds count from the end, and
/// out-of-range bounds are clipped.
fn py_range(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let len_i = len as i64;
    let fix = |b: i64| {
        if b < 0 {
            (b + len_i).max(0)
        } else {
            b.min(len_i)
        }
    };
    let (s, e) = (fix(start), fix(stop));
    s as usize..(e.max(s)) as usize
}

/// numpy's `convolve(a, v)` ('full' mode).
fn convolve(a: &[f64], v: &[f64]) -> Vec<f64> {
    if a.is_empty() || v.is_empty() {
        return Vec::new();
    }
    let mut out = vec![0.0; a.len() + v.len() - 1];
    for (i, &x) in a.iter().enumerate() {
        for (o, &y) in out[i..].iter_mut().zip(v) {
            *o += x * y;
        }
    }
    out
}

/// Endpoints of the non-zero entries of row i (scipy's `_pomeranz_compute_j1j2`).
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// P(D_n <= x) by Pomeranz's recursion (1974): 2n + 1 rows, each the convolution of the
/// previous row's few non-zero entries with Poisson-like weights, rescaled by 2^128 against
/// underflow, then multiplied by n!; scipy's `_kolmogn_Pomeranz` step for step.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let n = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = if 1.0 - f < f { 1.0 - f } else { f };
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)).max(1) as usize;
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0_i64, 0_i64);
    let mut expnt = 0_i64;
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (new_j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        j1 = new_j1;
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let conv = convolve(
                &v0[py_range(npwrs, k1 - v0s, k1 - v0s + ln2)],
                &pwrs[py_range(npwrs, 0, ln2)],
            );
            let conv_start = j1 - k1;
            let conv_len = j2 - j1 + 1;
            let src = &conv[py_range(conv.len(), conv_start, conv_start + conv_len)];
            let dst = py_range(npwrs, 0, conv_len);
            for (d, &s) in v1[dst].iter_mut().zip(src) {
                *d = s;
            }
            let top = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < top && top < EM128 {
                for x in v1.iter_mut() {
                    *x *= EP128;
                }
                expnt -= 128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let idx = {
        let i = n - v1s;
        if i < 0 {
            i + npwrs as i64
        } else {
            i
        }
    };
    let mut ans = usize::try_from(idx)
        .ok()
        .and_then(|i| v1.get(i))
        .copied()
        .unwrap_or(0.0);
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += 128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    ans.clamp(0.0, 1.0)
}

/// P(D_n <= x) by the Pelz-Good (1976) expansion K0 + K1/sqrt(n) + K2/n + K3/n^1.5 of the
/// Li-Chien / Korolyuk series, in its theta-function form for small z = x sqrt(n)
/// (scipy's `_kolmogn_PelzGood`, same terms in the same order).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let sqrt2pi = (2.0 * PI).sqrt();
    let (pi2, pi4, pi6) = (PI.powf(2.0), PI.powf(4.0), PI.powf(6.0));
    let z = nf.sqrt() * x;
    let (zsquared, zthree, zfour, zsix) = (z.powf(2.0), z.powf(3.0), z.powf(4.0), z.powf(6.0));
    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);
    let mut kk = [0.0_f64; 4];
    // Horner in q^(8k) over odd m = 2k - 1.
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (msquared, mfour, msix) = (m * m, m * m * m * m, m * m * m * m * m * m);
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * msquared,
            k2a + k2b * msquared + k2c * mfour,
            k3a + k3b * msquared + k3c * mfour + k3d * msix,
        ];
        for (a, c) in kk.iter_mut().zip(coeffs) {
            *a = *a * qpower + c;
        }
    }
    let scale = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (a, s) in kk.iter_mut().zip(scale) {
        *a = *a * q * sqrt2pi / s;
    }
    // The other sums, over all k: K2 gets pi^2 k^2 q^(k^2), K3 (3 pi^2 k^2 z^2 - pi^4 k^4) q^(k^2).
    let q = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0_f64, 0.0_f64);
    for k in (1..=maxk).rev() {
        let ksquared = (k * k) as f64;
        let kspi = PI * k as f64;
        let qpwer = q.powf(ksquared);
        k2extra += ksquared * qpwer;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwer;
    }
    kk[2] += k2extra * (pi2 * sqrt2pi / (-36.0 * zthree));
    kk[3] += k3extra * (pi2 * sqrt2pi / (216.0 * zsix));
    let powers_of_n = [1.0, nf.powf(0.5), nf, nf.powf(1.5)];
    kk.iter()
        .zip(powers_of_n)
        .fold(0.0, |acc, (a, p)| acc + a / p)
}

/// exp(x) of anything below this is 0 in xsf's Smirnov code (cephes MINLOG, ln of the smallest
/// subnormal).
const SMIRNOV_MINLOG: f64 = -7.451_332_191_019_412e2;
/// Above this n, xsf's `smirnov` uses an asymptotic formula instead of the sum.
const SMIRNOV_MAX_COMPUTE_N: u64 = 1_000_000;

/// (a + b)^m with a + b carried as a double-double (xsf's `pow_D` on `pow2(a, b, m)`): the
/// power of the high part, corrected by (1 + lo/hi)^m.
fn pow_sum(a: f64, b: f64, m: u64) -> f64 {
    let (hi, lo) = two_sum(a, b);
    if m == 0 {
        return 1.0;
    }
    if hi == 0.0 {
        return 0.0;
    }
    let mf = m as f64;
    let ans = hi.powf(mf);
    let r = lo / hi;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        adj = if adj.abs() < 1e-4 {
            adj + (mf * r) * ((mf - 1.0) / 2.0 * r)
        } else {
            (mf * r.ln_1p()).exp_m1()
        };
    }
    ans + ans * adj
}

/// floor(n x) and its fractional part, exactly (xsf's `modNX`): the product is kept as an
/// unevaluated sum hi + lo via fused multiply-add.
fn floor_and_fraction(n: f64, x: f64) -> (i64, f64) {
    let hi = n * x;
    let lo = n.mul_add(x, -hi);
    let fl = hi.floor();
    let (mut nxfl, mut alpha) = if fl == hi {
        if lo < 0.0 {
            (fl - 1.0, 1.0 + lo)
        } else {
            (fl, lo)
        }
    } else {
        (fl, (hi - fl) + lo)
    };
    if alpha >= 1.0 {
        nxfl += 1.0;
        alpha = 0.0;
    }
    (nxfl as i64, alpha.max(0.0))
}

/// a + b = s + e exactly (Knuth's two-sum).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// a b = p + e exactly (fused multiply-add).
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

/// Neumaier-compensated running sum (the same compensation as `hypothesis::compensated_sum`).
#[derive(Default)]
struct Sum {
    sum: f64,
    compensation: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// One-sided Smirnov tail P(D_n^+ >= x), `scipy.special.smirnov(n, x)`: xsf's algorithm with the
/// Birnbaum-Tingey (1951) sum
///   x sum_{v=0}^{floor(n(1-x))} C(n, v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v),
/// all of whose terms are positive. Each term is formed from logarithms (xsf uses double-double
/// mantissas with separate exponents); 1 - x - v/n is formed from the exact fractional part of
/// n x so that it keeps full precision near the end of the sum. xsf's alternative upper sum
/// (used only for x <= 0.5/sqrt(n), where `kolmogn` never calls this) is not ported: the lower
/// sum is the same number there.
fn smirnov_sf(n: u64, x: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (nxfl, alpha) = floor_and_fraction(nf, x);
    // Saturating: an n beyond i64 (never met) takes the asymptotic branch below without overflow.
    let ni = i64::try_from(n).unwrap_or(i64::MAX);
    // x <= 1/n: P(D+ < x) = x (1 + x)^(n-1).
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        return 1.0 - x * pow_sum(1.0, x, n - 1);
    }
    if -2.0 * nf * x * x < SMIRNOV_MINLOG {
        return 0.0;
    }
    // x >= 1 - 1/n: only the v = 0 term, (1 - x)^n.
    if nxfl >= ni.saturating_sub(1) {
        return pow_sum(1.0, -x, n);
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        // xsf: p ~ exp(-(6 n x + 1)^2 / (18 n)).
        let logp = -(6.0 * nf * x + 1.0).powf(2.0) / 18.0 / nf;
        return if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 - (-logp.exp_m1())
        };
    }
    // v runs to floor(n(1-x)) = n - nxfl - 1, or n - nxfl - 1 when n x is an integer (the
    // term at n - nxfl is 0 then): n - nxfl terms either way.
    let terms = ni - nxfl;
    let mut sum = Sum::default();
    sum.add(pow_sum(1.0, -x, n) / x);
    let vmid = ni / 2;
    // ln C(n, v) and the exponent of each term run to ~n ln 2: kept as double-doubles (exact
    // two-sums and fused products), otherwise the rounding of those large sums costs ~1e-8 at
    // n = 10^6. What remains is the rounding of each logarithm, ~1e-16 x n per term at most.
    let mut ln_binomial = (0.0_f64, 0.0_f64);
    for v in 1..terms {
        let (s, e) = two_sum(ln_binomial.0, ((ni - v + 1) as f64 / v as f64).ln());
        ln_binomial = (s, ln_binomial.1 + e);
        // x + v/n and 1 - x - v/n, from the exact floor and fraction of n x.
        let up = ((nxfl + v) as f64 + alpha) / nf;
        let down = ((ni - nxfl - v) as f64 - alpha) / nf;
        let ln_down = if up < 0.5 { (-up).ln_1p() } else { down.ln() };
        let (p1, e1) = two_prod((v - 1) as f64, up.ln());
        let (p2, e2) = two_prod((ni - v) as f64, ln_down);
        let (s1, e3) = two_sum(ln_binomial.0, p1);
        let (s2, e4) = two_sum(s1, p2);
        let (hi, lo) = two_sum(s2, ln_binomial.1 + e1 + e2 + e3 + e4);
        let term = hi.exp() * (1.0 + lo);
        if term.is_finite() && term != 0.0 {
            sum.add(term);
        }
        // xsf's early exit: the remaining terms cannot move the sum.
        if term != 0.0 {
            if 4.0 * (terms - v) as f64 * term < f64::EPSILON * sum.value() && v != terms - 1 {
                break;
            }
        } else if v > vmid {
            break;
        }
    }
    (x * sum.value()).clamp(0.0, 1.0)
}
