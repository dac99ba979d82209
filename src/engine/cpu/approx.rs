//! Exponential, logarithm and the functions built on them as branch-free polynomials
//! (Cephes' `expf` and `logf`, within a few ulp) rather than libm's calls, which do not
//! vectorize: loops over these compile to SIMD code. Generic over `MulAdd`, so a loop
//! compiled for an instruction set with FMA fuses their steps, and one that must give the
//! same bits everywhere uses `Plain`.

use super::simd::MulAdd;
#[cfg(test)]
use super::simd::{Fused, Plain};

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2²³ rounds an f32 of magnitude below 2²² to an integer.
const ROUND: f32 = 12_582_912.0;

/// `e^x = (1 + m)·2^n` for |x| < 87 (saturating beyond; NaN stays NaN), as `(m, 2^n)`:
/// x = n·ln2 + r with |r| ≤ ln2/2, `m = e^r − 1` by Cephes' minimax polynomial (within
/// 2 ulp), 2^n put straight into the exponent bits. Branch-free, so loops over it
/// vectorize; n is read from the bits of the rounded sum (its low mantissa bits hold n)
/// because `f32 as i32` saturates in Rust and does not vectorize.
#[inline(always)]
fn exp_parts<M: MulAdd>(x: f32) -> (f32, f32) {
    let x = x.clamp(-87.0, 88.0);
    let t = M::ma(x, LOG2E, ROUND);
    let n = t - ROUND;
    let r = M::ma(-n, LN2_LO, M::ma(-n, LN2_HI, x));
    let mut q = M::ma(1.987_569_1e-4, r, 1.398_2e-3);
    for c in [8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        q = M::ma(q, r, c);
    }
    let m = M::ma(q, r * r, r);
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits());
    (m, f32::from_bits(n_int.wrapping_add(127) << 23))
}

#[inline(always)]
pub(super) fn exp<M: MulAdd>(x: f32) -> f32 {
    let (m, s) = exp_parts::<M>(x);
    M::ma(m, s, s)
}

/// `e^x − 1` without cancellation near 0: `m·2^n + (2^n − 1)`, the last term exact.
#[inline(always)]
pub(super) fn expm1<M: MulAdd>(x: f32) -> f32 {
    let (m, s) = exp_parts::<M>(x);
    M::ma(m, s, s - 1.0)
}

#[inline(always)]
pub(super) fn sigmoid<M: MulAdd>(x: f32) -> f32 {
    1.0 / (1.0 + exp::<M>(-x))
}

/// `tanh |x| = −u / (2 + u)` with `u = e^{−2|x|} − 1`, sign restored: full relative
/// precision near 0 (where `1 − e^{−2|x|}` would cancel), exactly ±1 far out.
#[inline(always)]
pub(super) fn tanh<M: MulAdd>(x: f32) -> f32 {
    let u = expm1::<M>(-2.0 * x.abs());
    (-u / (2.0 + u)).copysign(x)
}

const SQRT_2: f32 = std::f32::consts::SQRT_2;

/// `ln(1 + e)` for `e` in [0, 1] (what a softplus needs: `e = e^{−|z|}`), full relative
/// precision down to the smallest `e`. `u = 1 + e` is in [1, 2]: `ln u = n·ln2 + ln(1 +
/// f)` with `n = 1` above √2 (`f = u/2 − 1`), else 0 (`f = u − 1`), `ln(1 + f)` by
/// Cephes' `logf` polynomial; then the rounding of `1 + e` is put back, `ln(1 + e) ≈ ln u
/// + (e − (u − 1))/u`, which keeps a tiny `e` that `1 + e` lost.
#[inline(always)]
pub(super) fn ln_1p_unit<M: MulAdd>(e: f32) -> f32 {
    let u = 1.0 + e;
    let upper = u > SQRT_2;
    let n = if upper { 1.0 } else { 0.0 };
    let f = if upper { M::ma(u, 0.5, -1.0) } else { u - 1.0 };
    let z = f * f;
    let mut p = 7.037_683_6e-2;
    for c in [
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ] {
        p = M::ma(p, f, c);
    }
    let y = M::ma(n, LN2_LO, p * f * z);
    let y = M::ma(-0.5, z, y);
    let ln_u = M::ma(n, LN2_HI, f + y);
    ln_u + (e - (u - 1.0)) / u
}

/// `ln(1 + e^{−|z|})`: the part of `softplus(z) = max(z, 0) + ln(1 + e^{−|z|})` that
/// both signs of `z` share.
#[inline(always)]
pub(super) fn softplus_tail<M: MulAdd>(z: f32) -> f32 {
    ln_1p_unit::<M>(exp::<M>(-z.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accurate<M: MulAdd>() {
        let mut x = -100.0f32;
        while x <= 100.0 {
            let e = (x as f64).exp();
            if (-87.0..=88.0).contains(&x) {
                let rel = ((exp::<M>(x) as f64 - e) / e).abs();
                assert!(rel < 3e-7, "exp({x}): {} vs {e}", exp::<M>(x));
                let em1 = (x as f64).exp_m1();
                assert!(
                    ((expm1::<M>(x) as f64 - em1) / em1).abs() < 3e-7,
                    "expm1({x})"
                );
            }
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                ((sigmoid::<M>(x) as f64 - s) / s).abs() < 1e-6 || s < 1e-37,
                "sigmoid({x}): {} vs {s}",
                sigmoid::<M>(x)
            );
            let t = (x as f64).tanh();
            assert!(
                (tanh::<M>(x) as f64 - t).abs() <= 1e-6 * t.abs(),
                "tanh({x}): {} vs {t}",
                tanh::<M>(x)
            );
            x += 0.0137;
        }
        for tiny in [1e-30f32, 1e-8, -3e-5, 0.299, -0.3, 0.301, 0.35, -0.347] {
            let t = (tiny as f64).tanh();
            assert!(
                ((tanh::<M>(tiny) as f64 - t) / t).abs() < 1e-6,
                "tanh({tiny})"
            );
            let em1 = (tiny as f64).exp_m1();
            assert!(
                ((expm1::<M>(tiny) as f64 - em1) / em1).abs() < 1e-6,
                "expm1({tiny})"
            );
        }
        assert!(
            exp::<M>(f32::NAN).is_nan()
                && sigmoid::<M>(f32::NAN).is_nan()
                && tanh::<M>(f32::NAN).is_nan()
        );
        assert_eq!(
            (tanh::<M>(50.0), tanh::<M>(-50.0), tanh::<M>(0.0)),
            (1.0, -1.0, 0.0)
        );
        assert!(sigmoid::<M>(-200.0) >= 0.0 && sigmoid::<M>(200.0) == 1.0);
    }

    #[test]
    fn exp_sigmoid_and_tanh_are_accurate_across_the_range() {
        accurate::<Plain>();
        accurate::<Fused>();
    }

    fn logarithm_accurate<M: MulAdd>() {
        let mut e = 0.0f32;
        let check = |e: f32| {
            let want = (e as f64).ln_1p();
            let got = ln_1p_unit::<M>(e) as f64;
            let rel = if want == 0.0 {
                got.abs()
            } else {
                ((got - want) / want).abs()
            };
            assert!(rel < 4e-7, "ln_1p({e}): {got} vs {want}");
        };
        while e <= 1.0 {
            check(e);
            e += 0.000_731;
        }
        for tiny in [
            1e-38f32, 1e-30, 1e-12, 3e-8, 5.9e-8, 1.2e-7, 1e-5, 0.414, 0.4143, 1.0,
        ] {
            check(tiny);
        }
        let mut z = -90.0f32;
        while z <= 90.0 {
            let want = (-(z.abs() as f64)).exp().ln_1p();
            let got = softplus_tail::<M>(z) as f64;
            assert!(
                ((got - want) / want).abs() < 1e-6 || want < 1e-37,
                "softplus tail({z}): {got} vs {want}"
            );
            z += 0.0173;
        }
        assert!(softplus_tail::<M>(f32::NAN).is_nan());
    }

    #[test]
    fn the_logarithm_and_softplus_are_accurate_across_the_range() {
        logarithm_accurate::<Plain>();
        logarithm_accurate::<Fused>();
    }
}
