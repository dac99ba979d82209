//! Loops compiled for the instruction set the processor has: the body of a hot loop is
//! written once as an `#[inline(always)]` function generic over `MulAdd`, and
//! `multiversion!` compiles it for AVX-512, AVX2+FMA and the baseline, running the best
//! one that `isa()` found (once, at first use). Used by the recurrent cells and the
//! small-inner-dimension matmul, whose loops the compiler vectorizes.

/// How `a·b + c` is computed: fused where the instruction set has FMA (one
/// instruction, one rounding), plain in the baseline build (where `f32::mul_add` would
/// be a slow library call).
pub trait MulAdd {
    fn ma(a: f32, b: f32, c: f32) -> f32;
}

pub struct Fused;
pub struct Plain;

impl MulAdd for Fused {
    #[inline(always)]
    fn ma(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Plain {
    #[inline(always)]
    fn ma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// Which instruction set the row loops are compiled for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

pub fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("fma")
            {
                Isa::Avx512
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                Isa::Avx2
            } else {
                Isa::Baseline
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    Isa::Baseline
}

/// Defines `$name(isa, args)`, which runs the `#[inline(always)]` `$body` compiled for
/// the instruction set given.
macro_rules! multiversion {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        #[allow(clippy::too_many_arguments)]
        fn $name(isa: $crate::engine::cpu::simd::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx512($($arg: $ty),*) {
                $body::<$crate::engine::cpu::simd::Fused>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn avx2($($arg: $ty),*) {
                $body::<$crate::engine::cpu::simd::Fused>($($arg),*)
            }
            match isa {
                // SAFETY: `isa()` picked these only where the processor has the features.
                #[cfg(target_arch = "x86_64")]
                $crate::engine::cpu::simd::Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::engine::cpu::simd::Isa::Avx2 => unsafe { avx2($($arg),*) },
                $crate::engine::cpu::simd::Isa::Baseline => $body::<$crate::engine::cpu::simd::Plain>($($arg),*),
            }
        }
    };
}

pub(crate) use multiversion;

/// Runs `body` compiled for the widest instruction set the processor has (`isa()`):
/// for loops whose bits cannot depend on it, so only wider vectors differ. That holds
/// for loops of adds, multiplies, divisions, square roots, comparisons and copies
/// (each rounds exactly once on any instruction set: Rust never fuses `a * b + c` unless
/// asked with `mul_add`, which these loops must not use) and library calls. The closure
/// is inlined into a function compiled with the features, which then vectorizes its
/// loops for them.
#[inline(always)]
pub fn widest<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn avx512<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(body: impl FnOnce() -> R) -> R {
            body()
        }
        match isa() {
            // SAFETY: `isa()` picked these only where the processor has the features.
            Isa::Avx512 => unsafe { avx512(body) },
            Isa::Avx2 => unsafe { avx2(body) },
            Isa::Baseline => body(),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    body()
}

/// `dst.copy_from_slice(src)` for the short rows of a credit model (a gathered row of 23
/// features, a bias of 64): whole blocks of 16 (or 4) words as fixed-size copies the
/// compiler inlines, the tail as one more block overlapping the last, where
/// `copy_from_slice` calls the C library's `memmove` for every row (perf put 8% of a
/// one-thread MLP run there). Same words either way.
#[inline(always)]
pub fn copy_row(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn blocks<const W: usize>(dst: &mut [f32], src: &[f32]) {
        let len = dst.len();
        let mut copy_at = |j: usize| {
            let block: [f32; W] = src[j..j + W].try_into().expect("a whole block");
            dst[j..j + W].copy_from_slice(&block);
        };
        let mut j = 0;
        while j + W <= len {
            copy_at(j);
            j += W;
        }
        if j < len {
            copy_at(len - W);
        }
    }
    assert_eq!(dst.len(), src.len(), "copy_row: lengths differ");
    match dst.len() {
        1 => dst[0] = src[0],
        0..=3 => dst.copy_from_slice(src),
        4..=15 => blocks::<4>(dst, src),
        _ => blocks::<16>(dst, src),
    }
}

/// Asks the processor to bring `data` into its caches ahead of use: one hint per 64-byte
/// line, no effect on results. For rows of a wide matrix read at a stride (a window of
/// columns), which the hardware prefetcher does not follow from one row to the next.
#[inline(always)]
pub fn prefetch(data: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(16) {
        // SAFETY: a prefetch hint never faults and reads nothing the program sees; the
        // address is inside `data`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

#[cfg(test)]
mod tests {
    /// Every length from empty to past four blocks, from random words into a row
    /// poisoned first, at offsets that misalign both.
    #[test]
    fn copy_row_copies_every_word_at_every_length() {
        let mut rng = crate::rng::Rng::new(31);
        for len in 0..70 {
            for offset in [0, 1, 3] {
                let src: Vec<f32> = (0..len + offset)
                    .map(|_| rng.range(-9.0, 9.0) as f32)
                    .collect();
                let mut dst = vec![f32::NAN; len + offset + 5];
                super::copy_row(&mut dst[offset..offset + len], &src[offset..]);
                assert!(dst[..offset]
                    .iter()
                    .chain(&dst[offset + len..])
                    .all(|v| v.is_nan()));
                let same = dst[offset..offset + len]
                    .iter()
                    .zip(&src[offset..])
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "length {len}, offset {offset}");
            }
        }
    }
}
