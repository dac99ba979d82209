//! The activations: their names, their WGSL codes and their formulas, in one place.
//!
//! Each formula is written once here, generic over [`Real`], and serves both the CPU
//! executor (f32) and the f64 reference interpreter; the WGSL twin is `activate` /
//! `activation_slope` in `shaders/common.wgsl`. Adding an activation touches this file
//! (variant, `ALL`, `name`, `eval`, `slope`, `slope_from`) and those two WGSL functions:
//! the graph, autodiff, both executors, the model specs, the CLI's `--activation` and the
//! tests (`tests/it/activations.rs`) all go through the methods below.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Div, Mul, Neg, Sub};
use std::str::FromStr;

/// An activation, applied on its own (`ElementwiseOp::Unary`) or fused into a matmul's or a
/// convolution's epilogue. Its discriminant is the code the WGSL kernels switch on.
/// Saved (e.g. in a model's config.json) under its [`Act::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Act {
    /// `x`.
    Identity = 0,
    /// `max(x, 0)`.
    Relu = 1,
    /// `1 / (1 + e^-x)`.
    Sigmoid = 2,
    /// `tanh(x)`.
    Tanh = 3,
    /// `x` for `x > 0`, else `0.01 x` (PyTorch's default negative slope).
    LeakyRelu = 4,
    /// GELU in its tanh form (PyTorch's `approximate="tanh"`):
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    Gelu = 5,
    /// SiLU (swish): `x · sigmoid(x)`.
    Silu = 6,
    /// `sin(x)`: the periodic embedding's features (`nn::periodic`), not a hidden
    /// layer's activation (the CLI does not offer it for `--activation`).
    Sin = 7,
}

/// Which value `ElementwiseOp::ActGrad` reads to compute `act'(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlopeFrom {
    /// The output `y = act(x)`: the pre-activation need not be kept, so the activation
    /// can be fused into a matmul or convolution epilogue that never stores `x`.
    Output,
    /// The pre-activation `x` (GELU, SiLU: `x` is not a function of `y`). The graph
    /// builders never fuse these into an epilogue; they emit the plain product and a
    /// `Unary`, whose input is the `x` the gradient reads.
    Input,
}

/// The negative slope of `Act::LeakyRelu` (PyTorch's default).
pub const LEAKY_RELU_SLOPE: f64 = 0.01;
/// `√(2/π)`, the scale inside GELU's tanh.
const GELU_SCALE: f64 = std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;
/// The cubic coefficient inside GELU's tanh.
const GELU_CUBIC: f64 = 0.044715;

impl Act {
    /// Every activation, in code order: what the CLI offers and the tests iterate over.
    pub const ALL: [Act; 8] = [
        Act::Identity,
        Act::Relu,
        Act::Sigmoid,
        Act::Tanh,
        Act::LeakyRelu,
        Act::Gelu,
        Act::Silu,
        Act::Sin,
    ];

    /// The name used on the command line, in saved models and in profiles.
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::LeakyRelu => "leaky_relu",
            Act::Gelu => "gelu",
            Act::Silu => "silu",
            Act::Sin => "sin",
        }
    }

    /// The code the WGSL kernels switch on (`activate` in `shaders/common.wgsl`).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Which value the derivative is computed from (see [`SlopeFrom`]).
    pub fn slope_from(self) -> SlopeFrom {
        match self {
            Act::Gelu | Act::Silu | Act::Sin => SlopeFrom::Input,
            Act::Identity | Act::Relu | Act::Sigmoid | Act::Tanh | Act::LeakyRelu => {
                SlopeFrom::Output
            }
        }
    }

    /// `act(x)`.
    #[inline]
    pub fn eval<F: Real>(self, x: F) -> F {
        let (zero, one, half) = (F::of(0.0), F::of(1.0), F::of(0.5));
        match self {
            Act::Identity => x,
            Act::Relu => x.max(zero),
            Act::Sigmoid => sigmoid(x),
            Act::Tanh => x.tanh(),
            Act::LeakyRelu => {
                if x > zero {
                    x
                } else {
                    F::of(LEAKY_RELU_SLOPE) * x
                }
            }
            Act::Gelu => half * x * (one + gelu_inner(x).tanh()),
            Act::Silu => x * sigmoid(x),
            Act::Sin => x.sin(),
        }
    }

    /// `act'(x)`, given `v` = the output `y = act(x)` or the input `x` as
    /// [`Act::slope_from`] says.
    #[inline]
    pub fn slope<F: Real>(self, v: F) -> F {
        let (zero, one, half) = (F::of(0.0), F::of(1.0), F::of(0.5));
        match self {
            Act::Identity => one,
            // y > 0 exactly where x > 0; at x = 0 the slope is the left one, as PyTorch's.
            Act::Relu => {
                if v > zero {
                    one
                } else {
                    zero
                }
            }
            Act::LeakyRelu => {
                if v > zero {
                    one
                } else {
                    F::of(LEAKY_RELU_SLOPE)
                }
            }
            Act::Sigmoid => v * (one - v),
            Act::Tanh => one - v * v,
            Act::Gelu => {
                let t = gelu_inner(v).tanh();
                let du = F::of(GELU_SCALE) * (one + F::of(3.0 * GELU_CUBIC) * v * v);
                half * (one + t) + half * v * (one - t * t) * du
            }
            Act::Silu => {
                let s = sigmoid(v);
                s * (one + v * (one - s))
            }
            Act::Sin => v.cos(),
        }
    }
}

/// `√(2/π) (x + 0.044715 x³)`, the argument of GELU's tanh.
#[inline]
fn gelu_inner<F: Real>(x: F) -> F {
    F::of(GELU_SCALE) * (x + F::of(GELU_CUBIC) * x * x * x)
}

/// `1 / (1 + e^-x)` with one exp of a non-positive number: it never overflows and never
/// gives inf/inf.
#[inline]
pub fn sigmoid<F: Real>(x: F) -> F {
    let one = F::of(1.0);
    if x >= F::of(0.0) {
        one / (one + (-x).exp())
    } else {
        let e = x.exp();
        e / (one + e)
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Act {
    type Err = String;

    /// The activation of that [`Act::name`]; the error lists the names.
    fn from_str(s: &str) -> Result<Self, String> {
        Act::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Act::ALL.iter().map(|a| a.name()).collect();
            format!("unknown activation {s:?} (one of: {})", names.join(", "))
        })
    }
}

impl From<Act> for &'static str {
    fn from(act: Act) -> Self {
        act.name()
    }
}

impl TryFrom<String> for Act {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// The float types the activation formulas are evaluated in: f32 on the CPU executor,
/// f64 in the reference interpreter.
pub trait Real:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// A constant, rounded to this type.
    fn of(v: f64) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// The hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The larger of the two (the other when `self` is NaN), as `f32::max`.
    fn max(self, other: Self) -> Self;
    /// The sine (radians).
    fn sin(self) -> Self;
    /// The cosine (radians).
    fn cos(self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            #[inline]
            fn of(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);
