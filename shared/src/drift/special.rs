//! Special functions behind the p-values: log-gamma, the regularised incomplete beta and gamma
//! functions, and the two-sided normal tail.
//!
//! Written here rather than taken from a crate because the drift tests must agree with scipy to a
//! relative 1e-9 down to p = 1e-100 at any sample size. statrs 0.19 (`beta_reg`) forms the
//! prefactor x^a (1-x)^b / B(a, b) as `exp(ln_gamma(a+b) - ln_gamma(a) - ln_gamma(b) + ...)`:
//! at a Welch dof of 10^5 or more those log-gammas are ~10^6 and their difference loses about
//! 1e-10 absolute, i.e. relative error in p, and its continued fraction stops after 140 steps,
//! while it needs O(sqrt(a)) of them there. Here the prefactors are written with the Stirling
//! correction mu(x) = ln Gamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)] (Temme; DiDonato and
//! Morris, TOMS 708), which never subtracts large log-gammas, and each ratio is taken with
//! `ln_1p` where it is close to 1. The continued fractions use the modified Lentz method
//! (Press et al., Numerical Recipes, 3rd ed., 6.2 and 6.4), with a generous iteration cap.

/// ln sqrt(2 pi).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
/// Relative step at which a continued fraction or series counts as converged.
const EPS: f64 = 1e-16;
/// Smallest magnitude the Lentz method lets a denominator take (avoids division by zero).
const FPMIN: f64 = 1e-300;
/// Iteration cap: the fractions need O(sqrt(a)) steps, and a reaches ~10^6 for a million rows.
const MAX_ITER: usize = 1_000_000;

/// Stirling correction mu(x) = ln Gamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)], x > 0.
pub(crate) fn stirling_correction(x: f64) -> f64 {
    if x >= 10.0 {
        // Asymptotic series 1/(12x) - 1/(360x^3) + ...; at x >= 10 the first omitted term is
        // below 1e-17 (Abramowitz and Stegun 6.1.41).
        let r = 1.0 / x;
        let r2 = r * r;
        r * (1.0 / 12.0
            + r2 * (-1.0 / 360.0
                + r2 * (1.0 / 1260.0
                    + r2 * (-1.0 / 1680.0
                        + r2 * (1.0 / 1188.0 + r2 * (-691.0 / 360_360.0 + r2 / 156.0))))))
    } else {
        // Small x: magnitudes are small, so the subtraction costs nothing.
        ln_gamma(x) - ((x - 0.5) * x.ln() - x + LN_SQRT_2PI)
    }
}

/// ln Gamma(x) for x > 0: Stirling's series at x >= 10, the recurrence
/// Gamma(x) = Gamma(x + n) / (x (x + 1) ... (x + n - 1)) below.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x >= 10.0 {
        return (x - 0.5) * x.ln() - x + LN_SQRT_2PI + stirling_correction(x);
    }
    let mut product = 1.0;
    let mut y = x;
    while y < 10.0 {
        product *= y;
        y += 1.0;
    }
    ln_gamma(y) - product.ln()
}

/// a ln(r) where r = 1 + delta / a is a ratio near or far from 1: `ln_1p` keeps precision near 1,
/// the plain logarithm far from it (where 1 + delta/a itself would lose digits).
fn scaled_log(a: f64, ratio: f64, delta: f64) -> f64 {
    let d = delta / a;
    if d.abs() < 0.5 {
        a * d.ln_1p()
    } else {
        a * ratio.ln()
    }
}

/// ln of x^a y^b / B(a, b), y = 1 - x given separately so it keeps full relative precision.
fn ln_beta_prefactor(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let c = a + b;
    // x c / a - 1 = (x b - y a) / a, and y c / b - 1 = (y a - x b) / b.
    let delta = x * b - y * a;
    scaled_log(a, x * c / a, delta) + scaled_log(b, y * c / b, -delta) + 0.5 * (a * b / c).ln()
        - LN_SQRT_2PI
        + stirling_correction(c)
        - stirling_correction(a)
        - stirling_correction(b)
}

/// The continued fraction of I_x(a, b) (Numerical Recipes `betacf`, modified Lentz).
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < FPMIN {
        d = FPMIN;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < FPMIN {
            d = FPMIN;
        }
        c = 1.0 + aa / c;
        if c.abs() < FPMIN {
            c = FPMIN;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < FPMIN {
            d = FPMIN;
        }
        c = 1.0 + aa / c;
        if c.abs() < FPMIN {
            c = FPMIN;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() <= EPS {
            break;
        }
    }
    h
}

/// Regularised incomplete beta I_x(a, b) for a, b > 0, with y = 1 - x passed in so that values
/// of x near 1 keep their precision. Small results are computed directly (never as 1 - ...).
pub(crate) fn beta_reg(a: f64, b: f64, x: f64, y: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if y <= 0.0 {
        return 1.0;
    }
    // The fraction converges fast for x below (a + 1) / (a + b + 2); above it use the symmetry
    // I_x(a, b) = 1 - I_y(b, a), where the result is large so the subtraction is harmless.
    if x < (a + 1.0) / (a + b + 2.0) {
        let front = ln_beta_prefactor(a, b, x, y).exp();
        (front * beta_continued_fraction(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        let front = ln_beta_prefactor(b, a, y, x).exp();
        (1.0 - front * beta_continued_fraction(b, a, y) / b).clamp(0.0, 1.0)
    }
}

/// ln of x^a e^-x / Gamma(a), written as -a (d - ln(1 + d)) + ln sqrt(a / 2 pi) - mu(a) with
/// d = (x - a) / a, so no large log-gammas are subtracted.
fn ln_gamma_prefactor(a: f64, x: f64) -> f64 {
    let d = (x - a) / a;
    let main = if d.abs() < 0.5 {
        a * (d.ln_1p() - d)
    } else {
        a * (x / a).ln() + a - x
    };
    main + 0.5 * a.ln() - LN_SQRT_2PI - stirling_correction(a)
}

/// Regularised upper incomplete gamma Q(a, x) = Gamma(a, x) / Gamma(a) for a > 0, x >= 0.
pub(crate) fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    if x < a + 1.0 {
        // Series for P(a, x) (Numerical Recipes `gser`); here Q > 0.08, so 1 - P is accurate.
        let mut ap = a;
        let mut term = 1.0 / a;
        let mut sum = term;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() <= sum.abs() * EPS {
                break;
            }
        }
        let p = sum * ln_gamma_prefactor(a, x).exp();
        (1.0 - p).clamp(0.0, 1.0)
    } else {
        // Continued fraction for Q(a, x) (Numerical Recipes `gcf`), computed directly so tiny
        // tails keep their relative precision.
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / FPMIN;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..=MAX_ITER {
            let i = i as f64;
            let an = -i * (i - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < FPMIN {
                d = FPMIN;
            }
            c = b + an / c;
            if c.abs() < FPMIN {
                c = FPMIN;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() <= EPS {
                break;
            }
        }
        (ln_gamma_prefactor(a, x).exp() * h).clamp(0.0, 1.0)
    }
}

/// Two-sided normal tail 2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2), computed as Q(1/2, z^2 / 2)
/// (the same function, since erfc(u) = Q(1/2, u^2)), which keeps relative precision in the tail.
pub(crate) fn normal_two_sided(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    gamma_q(0.5, z * z * 0.5)
}

/// Two-sided Student t tail 2 (1 - F_df(|t|)) = I_{df/(df+t^2)}(df/2, 1/2).
pub(crate) fn student_t_two_sided(t: f64, df: f64) -> f64 {
    if t == 0.0 || t.is_nan() {
        return 1.0;
    }
    let t2 = t * t;
    // x = df / (df + t^2) and y = t^2 / (df + t^2), each to full relative precision
    // (t^2 = inf gives x = 0, y = 1).
    let x = 1.0 / (1.0 + t2 / df);
    let y = 1.0 / (1.0 + df / t2);
    beta_reg(0.5 * df, 0.5, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    /// ln Gamma at points with closed forms: Gamma(1/2) = sqrt(pi), Gamma(n) = (n - 1)!.
    #[test]
    fn ln_gamma_known_values() {
        assert!(rel(ln_gamma(0.5), 0.5 * std::f64::consts::PI.ln()) < 1e-14);
        assert!(ln_gamma(1.0).abs() < 1e-14);
        assert!(ln_gamma(2.0).abs() < 1e-14);
        assert!(rel(ln_gamma(5.0), 24f64.ln()) < 1e-14);
        assert!(rel(ln_gamma(21.0), 2_432_902_008_176_640_000f64.ln()) < 1e-14);
        // 100! = 9.33262154439441e157 (a standard table value).
        assert!(rel(ln_gamma(101.0), 363.739_375_555_563_47) < 1e-14);
    }

    /// erfc(1/sqrt 2) = 0.317310507862914 (two-sided p at z = 1, a standard table value),
    /// and erfc(0) = 1.
    #[test]
    fn normal_tail_known_values() {
        assert!(rel(normal_two_sided(1.0), 0.317_310_507_862_914_15) < 1e-13);
        assert!(rel(normal_two_sided(1.959_963_984_540_054), 0.05) < 1e-12);
        assert_eq!(normal_two_sided(0.0), 1.0);
        assert_eq!(normal_two_sided(f64::INFINITY), 0.0);
    }

    /// With one degree of freedom the t distribution is Cauchy: p = 1 - (2/pi) atan|t|;
    /// with two, p = 1 - |t| / sqrt(2 + t^2). Both closed forms are exact.
    #[test]
    fn student_t_closed_forms() {
        for t in [0.1, 0.5, 1.0, 3.0, 10.0, 1e3] {
            // 1 - (2/pi) atan t = (2/pi) atan(1/t), free of cancellation for large t.
            let cauchy = 2.0 / std::f64::consts::PI * f64::atan(1.0 / t);
            assert!(rel(student_t_two_sided(t, 1.0), cauchy) < 1e-12, "t = {t}");
            // 1 - t/s with s = sqrt(2 + t^2) equals 2 / (s (s + t)).
            let s = (2.0 + t * t).sqrt();
            let two = 2.0 / (s * (s + t));
            assert!(rel(student_t_two_sided(-t, 2.0), two) < 1e-12, "t = {t}");
        }
        assert_eq!(student_t_two_sided(0.0, 5.0), 1.0);
        assert_eq!(student_t_two_sided(f64::INFINITY, 5.0), 0.0);
    }

    /// Q(1, x) = e^-x exactly; Q(2, x) = (1 + x) e^-x.
    #[test]
    fn gamma_q_closed_forms() {
        for x in [0.01, 0.5, 1.9, 2.5, 30.0, 700.0] {
            assert!(rel(gamma_q(1.0, x), (-x).exp()) < 1e-13, "x = {x}");
            assert!(
                rel(gamma_q(2.0, x), (1.0 + x) * (-x).exp()) < 1e-13,
                "x = {x}"
            );
        }
    }
}
