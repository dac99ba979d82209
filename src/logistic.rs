//! The logistic-regression challenger: L2-regularised logistic regression on the prepared
//! feature matrix (the same features the network reads), fitted deterministically in f64
//! by Newton's method (IRLS) with a backtracking line search.
//!
//! It minimises `sum_i w_i · logloss(y_i, σ(x_i·β + b)) + (l2 / 2) · |β|²`, where `w_i` is
//! `pos_weight` for positive rows and 1 otherwise; the bias is not penalised. With
//! `l2 = 1` this is scikit-learn's `LogisticRegression(C=1)`, the baseline credit
//! modellers start from. The Hessian is `(p+1)²` for `p` features, so a few hundred
//! features fit in well under a second per Newton step on 30,000 rows. Past
//! `DIRECT_MAX_FEATURES` features forming and factoring it would take minutes to hours
//! (6,000 features: a 288 MB matrix, 7·10^10 flops per step), so the Newton step is
//! solved instead by conjugate gradients over Hessian-vector products (Newton-CG, as
//! scikit-learn's `newton-cg`), two passes over the rows per product.
//!
//! The result becomes a saved model through [`LogisticFit::params`]: an MLP spec with no
//! hidden layer is exactly `σ(x·W + b)`, so `eval`, `predict` and `explain` load it as any
//! other model.

use rayon::prelude::*;

use crate::engine::plan::ParamLayout;
use crate::error::{Error, Result};
use crate::nn::ModelSpec;

/// The default L2 strength (scikit-learn's `C = 1`).
pub const DEFAULT_L2: f64 = 1.0;
/// Newton steps before giving up on convergence (it usually takes 6 to 10).
const MAX_ITERATIONS: usize = 100;
/// Stop when the largest gradient entry, per training row, falls below this.
const GRADIENT_TOLERANCE: f64 = 1e-10;
/// Rows per rayon task when summing the gradient and Hessian (fixed, so the sums, and the
/// fit, are the same on any number of threads).
const CHUNK_ROWS: usize = 1024;
/// Most features for which the Newton step is solved with the whole Hessian (8 MB, a
/// Cholesky factorisation of 4·10^8 flops); wider tables use conjugate gradients.
const DIRECT_MAX_FEATURES: usize = 1024;
/// Conjugate-gradient iterations per Newton step, at most.
const MAX_CG_ITERATIONS: usize = 250;
/// Conjugate gradients stop when the residual's norm falls below this share of the
/// gradient's.
const CG_RELATIVE_TOLERANCE: f64 = 1e-6;

/// A fitted logistic regression.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticFit {
    /// One coefficient per feature column.
    pub weights: Vec<f64>,
    /// The intercept.
    pub bias: f64,
    /// Newton steps taken.
    pub iterations: usize,
    /// How each Newton step was solved: `"newton (irls)"` (the whole Hessian) or
    /// `"newton-cg"` (conjugate gradients, for more than `DIRECT_MAX_FEATURES` features).
    pub solver: &'static str,
}

impl LogisticFit {
    /// The model this fit is: an MLP with no hidden layer over `weights.len()` inputs.
    pub fn model_spec(&self) -> Result<ModelSpec> {
        ModelSpec::mlp(self.weights.len(), &[])
    }

    /// The fit packed as the executors hold [`model_spec`](Self::model_spec)'s parameters
    /// (`dense0.weight` `[inputs, 1]`, then `dense0.bias` `[1]`).
    pub fn params(&self) -> Result<Vec<f32>> {
        let (specs, layout): (_, ParamLayout) = crate::model_io::param_layout(&self.model_spec()?)?;
        let mut packed = vec![0f32; layout.total];
        for (i, spec) in specs.iter().enumerate() {
            let values: Vec<f32> = match spec.name.as_str() {
                "dense0.weight" => self.weights.iter().map(|&w| w as f32).collect(),
                "dense0.bias" => vec![self.bias as f32],
                other => return Err(Error::Internal(format!("unexpected parameter {other}"))),
            };
            packed[layout.offsets[i]..layout.offsets[i] + layout.lens[i]].copy_from_slice(&values);
        }
        Ok(packed)
    }

    /// The probability of default of each row of row-major `x`, in f64.
    pub fn predict(&self, x: &[f32]) -> Vec<f64> {
        let p = self.weights.len().max(1);
        x.chunks_exact(p)
            .map(|row| sigmoid(self.logit(row)))
            .collect()
    }

    fn logit(&self, row: &[f32]) -> f64 {
        self.bias
            + row
                .iter()
                .zip(&self.weights)
                .map(|(&v, &w)| v as f64 * w)
                .sum::<f64>()
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `-log σ(z)` for a positive row, `-log(1 - σ(z))` for a negative one, without overflow.
fn row_loss(z: f64, positive: bool) -> f64 {
    let z = if positive { z } else { -z };
    // log(1 + e^-z)
    if z > 0.0 {
        (-z).exp().ln_1p()
    } else {
        -z + z.exp().ln_1p()
    }
}

/// Fits on row-major `x` (`y.len()` rows of `n_features`) and labels `y` (0/1).
pub fn fit_logistic(
    x: &[f32],
    y: &[f32],
    n_features: usize,
    l2: f64,
    pos_weight: f64,
) -> Result<LogisticFit> {
    fit(
        x,
        y,
        n_features,
        l2,
        pos_weight,
        n_features <= DIRECT_MAX_FEATURES,
    )
}

/// [`fit_logistic`] with the Newton steps solved directly or by conjugate gradients.
fn fit(
    x: &[f32],
    y: &[f32],
    n_features: usize,
    l2: f64,
    pos_weight: f64,
    direct: bool,
) -> Result<LogisticFit> {
    let p = n_features;
    if p == 0 || x.len() != y.len() * p {
        return Err(Error::size_mismatch(
            format!("logistic regression's {} rows of {p} features", y.len()),
            x.len(),
            y.len() * p,
        ));
    }
    if y.is_empty() {
        return Err(Error::Internal(
            "logistic regression: no training rows".into(),
        ));
    }
    if !(l2 > 0.0 && l2.is_finite() && pos_weight > 0.0 && pos_weight.is_finite()) {
        return Err(Error::Internal(format!(
            "logistic regression: l2 {l2} and pos_weight {pos_weight} must be positive"
        )));
    }
    let n = y.len();
    // Parameters θ = (β_0 .. β_{p-1}, b). Start from the prior log-odds as the bias.
    let pos: f64 = y.iter().filter(|&&v| v > 0.5).count() as f64 * pos_weight;
    let neg = (n as f64) - y.iter().filter(|&&v| v > 0.5).count() as f64;
    let mut theta = vec![0.0f64; p + 1];
    theta[p] = if pos > 0.0 && neg > 0.0 {
        (pos / neg).ln()
    } else {
        0.0
    };
    let objective = |theta: &[f64]| -> f64 {
        let data: f64 = x
            .par_chunks(CHUNK_ROWS * p)
            .zip(y.par_chunks(CHUNK_ROWS))
            .map(|(xc, yc)| {
                xc.chunks_exact(p)
                    .zip(yc)
                    .map(|(row, &t)| {
                        let positive = t > 0.5;
                        let w = if positive { pos_weight } else { 1.0 };
                        w * row_loss(linear(theta, row), positive)
                    })
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum();
        data + 0.5 * l2 * theta[..p].iter().map(|b| b * b).sum::<f64>()
    };
    let solver = if direct { "newton (irls)" } else { "newton-cg" };
    let done = |mut theta: Vec<f64>, iterations: usize| {
        let bias = theta.pop().unwrap_or(0.0);
        LogisticFit {
            weights: theta,
            bias,
            iterations,
            solver,
        }
    };
    let mut current = objective(&theta);
    for iteration in 1..=MAX_ITERATIONS {
        let (mut grad, step_of) = if direct {
            let (grad, mut hess) = gradient_hessian(x, y, p, &theta, pos_weight);
            for j in 0..p {
                hess[j * (p + 1) + j] += l2;
            }
            (grad, NewtonStep::Direct(hess))
        } else {
            let (grad, curvature) = gradient_curvature(x, y, p, &theta, pos_weight);
            (grad, NewtonStep::ConjugateGradient(curvature))
        };
        for j in 0..p {
            grad[j] += l2 * theta[j];
        }
        if grad.iter().fold(0.0f64, |m, g| m.max(g.abs())) < GRADIENT_TOLERANCE * n as f64 {
            return Ok(done(theta, iteration - 1));
        }
        let step = match step_of {
            NewtonStep::Direct(hess) => solve_spd(hess, &grad, p + 1)?,
            NewtonStep::ConjugateGradient(curvature) => {
                solve_cg(|v| hessian_times(x, p, &curvature, l2, v), &grad)
            }
        };
        // Backtracking: halve the Newton step until the objective does not rise.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            let trial: Vec<f64> = theta.iter().zip(&step).map(|(a, s)| a - t * s).collect();
            let value = objective(&trial);
            if value <= current {
                let converged = current - value <= 1e-14 * current.abs().max(1.0);
                theta = trial;
                current = value;
                accepted = true;
                if converged {
                    return Ok(done(theta, iteration));
                }
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            // No step lowers the objective: θ is at the minimum to rounding.
            return Ok(done(theta, iteration));
        }
    }
    Ok(done(theta, MAX_ITERATIONS))
}

/// What solves a Newton step: the whole Hessian, or each row's curvature for products.
enum NewtonStep {
    Direct(Vec<f64>),
    ConjugateGradient(Vec<f64>),
}

fn linear(theta: &[f64], row: &[f32]) -> f64 {
    let p = row.len();
    theta[p]
        + row
            .iter()
            .zip(theta)
            .map(|(&v, &b)| v as f64 * b)
            .sum::<f64>()
}

/// One row's weighted residual `w·(q − y)` (its gradient's scale) and curvature
/// `w·q·(1 − q)` (its Hessian's), `q` the row's probability under `theta`.
fn residual_curvature(theta: &[f64], row: &[f32], t: f32, pos_weight: f64) -> (f64, f64) {
    let prob = sigmoid(linear(theta, row));
    let w = if t > 0.5 { pos_weight } else { 1.0 };
    (w * (prob - t as f64), w * prob * (1.0 - prob))
}

/// Gradient (length `p + 1`) and Hessian (`(p + 1)²`, row-major) of the weighted log loss,
/// the last coordinate being the bias. Summed per fixed chunk of rows, then chunk by chunk
/// in order, so the result does not depend on the thread count.
fn gradient_hessian(
    x: &[f32],
    y: &[f32],
    p: usize,
    theta: &[f64],
    pos_weight: f64,
) -> (Vec<f64>, Vec<f64>) {
    let d = p + 1;
    let parts: Vec<(Vec<f64>, Vec<f64>)> = x
        .par_chunks(CHUNK_ROWS * p)
        .zip(y.par_chunks(CHUNK_ROWS))
        .map(|(xc, yc)| {
            let rows = yc.len();
            let mut g = vec![0.0f64; d];
            let mut h = vec![0.0f64; d * d];
            // The chunk's rows with a trailing 1 (the bias), and the same rows scaled by
            // each row's curvature: the Hessian is their product, one GEMM per chunk.
            let mut a = vec![0.0f64; rows * d];
            let mut scaled = vec![0.0f64; rows * d];
            for (r, (row, &t)) in xc.chunks_exact(p).zip(yc).enumerate() {
                let ar = &mut a[r * d..(r + 1) * d];
                for (dst, &v) in ar.iter_mut().zip(row) {
                    *dst = v as f64;
                }
                ar[p] = 1.0;
                let (residual, curvature) = residual_curvature(theta, row, t, pos_weight);
                for ((gj, &v), sj) in g.iter_mut().zip(ar.iter()).zip(&mut scaled[r * d..]) {
                    *gj += residual * v;
                    *sj = curvature * v;
                }
            }
            // SAFETY: h is d×d, a and scaled rows×d, all row-major and distinct; h[i][j] =
            // Σ_r a[r][i] · scaled[r][j]. Serial, so the sum's order is fixed.
            unsafe {
                gemm::gemm(
                    d,
                    d,
                    rows,
                    h.as_mut_ptr(),
                    1,
                    d as isize,
                    false,
                    a.as_ptr(),
                    d as isize,
                    1,
                    scaled.as_ptr(),
                    1,
                    d as isize,
                    0.0f64,
                    1.0f64,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            (g, h)
        })
        .collect();
    let mut g = vec![0.0f64; d];
    let mut h = vec![0.0f64; d * d];
    for (pg, ph) in parts {
        for (a, b) in g.iter_mut().zip(pg) {
            *a += b;
        }
        for (a, b) in h.iter_mut().zip(ph) {
            *a += b;
        }
    }
    for a in 0..d {
        for b in 0..a {
            h[a * d + b] = h[b * d + a];
        }
    }
    (g, h)
}

/// The gradient of the weighted log loss (length `p + 1`, the bias last) and each row's
/// curvature `w·q·(1 − q)`: what Hessian-vector products need. Chunked as
/// `gradient_hessian`, so the sums do not depend on the thread count.
fn gradient_curvature(
    x: &[f32],
    y: &[f32],
    p: usize,
    theta: &[f64],
    pos_weight: f64,
) -> (Vec<f64>, Vec<f64>) {
    let parts: Vec<(Vec<f64>, Vec<f64>)> = x
        .par_chunks(CHUNK_ROWS * p)
        .zip(y.par_chunks(CHUNK_ROWS))
        .map(|(xc, yc)| {
            let mut g = vec![0.0f64; p + 1];
            let mut curvature = Vec::with_capacity(yc.len());
            for (row, &t) in xc.chunks_exact(p).zip(yc) {
                let (residual, c) = residual_curvature(theta, row, t, pos_weight);
                for (gj, &v) in g.iter_mut().zip(row) {
                    *gj += residual * v as f64;
                }
                g[p] += residual;
                curvature.push(c);
            }
            (g, curvature)
        })
        .collect();
    let mut g = vec![0.0f64; p + 1];
    let mut curvature = Vec::with_capacity(y.len());
    for (pg, pc) in parts {
        for (a, b) in g.iter_mut().zip(pg) {
            *a += b;
        }
        curvature.extend(pc);
    }
    (g, curvature)
}

/// `H v` for the penalised Hessian `H = Xᵀ diag(curvature) X + l2·I` (the bias, X's
/// trailing column of ones, unpenalised), without forming `H`.
fn hessian_times(x: &[f32], p: usize, curvature: &[f64], l2: f64, v: &[f64]) -> Vec<f64> {
    let parts: Vec<Vec<f64>> = x
        .par_chunks(CHUNK_ROWS * p)
        .zip(curvature.par_chunks(CHUNK_ROWS))
        .map(|(xc, cc)| {
            let mut out = vec![0.0f64; p + 1];
            for (row, &c) in xc.chunks_exact(p).zip(cc) {
                let scaled = c * linear(v, row);
                for (o, &xv) in out.iter_mut().zip(row) {
                    *o += scaled * xv as f64;
                }
                out[p] += scaled;
            }
            out
        })
        .collect();
    let mut out: Vec<f64> = v[..p].iter().map(|&vj| l2 * vj).chain([0.0]).collect();
    for part in parts {
        for (a, b) in out.iter_mut().zip(part) {
            *a += b;
        }
    }
    out
}

/// Solves `H s = b` for symmetric positive definite `H`, given only `v ↦ H v`, by
/// conjugate gradients from `s = 0`.
fn solve_cg(times: impl Fn(&[f64]) -> Vec<f64>, b: &[f64]) -> Vec<f64> {
    let dot = |a: &[f64], c: &[f64]| a.iter().zip(c).map(|(u, w)| u * w).sum::<f64>();
    let mut s = vec![0.0f64; b.len()];
    let mut r = b.to_vec();
    let mut dir = r.clone();
    let mut rr = dot(&r, &r);
    let stop = rr * CG_RELATIVE_TOLERANCE * CG_RELATIVE_TOLERANCE;
    for _ in 0..MAX_CG_ITERATIONS.min(b.len()) {
        if rr <= stop {
            break;
        }
        let hd = times(&dir);
        let curvature = dot(&dir, &hd);
        if curvature.is_nan() || curvature <= 0.0 {
            break;
        }
        let alpha = rr / curvature;
        for ((si, ri), (&di, &hi)) in s.iter_mut().zip(&mut r).zip(dir.iter().zip(&hd)) {
            *si += alpha * di;
            *ri -= alpha * hi;
        }
        let rr_next = dot(&r, &r);
        let beta = rr_next / rr;
        for (di, &ri) in dir.iter_mut().zip(&r) {
            *di = ri + beta * *di;
        }
        rr = rr_next;
    }
    s
}

/// Solves `A s = b` for symmetric positive definite `A` (`d × d`, row-major) by Cholesky.
fn solve_spd(mut a: Vec<f64>, b: &[f64], d: usize) -> Result<Vec<f64>> {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        if diag.is_nan() || diag <= 0.0 {
            return Err(Error::Internal(
                "logistic regression: the Hessian is not positive definite".into(),
            ));
        }
        let l_jj = diag.sqrt();
        a[j * d + j] = l_jj;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / l_jj;
        }
    }
    // L z = b, then Lᵀ s = z.
    let mut z = b.to_vec();
    for i in 0..d {
        for k in 0..i {
            z[i] -= a[i * d + k] * z[k];
        }
        z[i] /= a[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            z[i] -= a[k * d + i] * z[k];
        }
        z[i] /= a[i * d + i];
    }
    Ok(z)
}

/// The challenger's figures beside a network's (metrics.json `challenger`).
#[derive(serde::Serialize)]
pub struct Challenger {
    /// What was fitted.
    pub model: String,
    /// Its AUC on the same validation rows as the network's.
    pub validation_auc: f64,
    /// Its probabilities for those rows (for the report's ROC plot).
    #[serde(skip)]
    pub probs: Vec<f32>,
}

/// Fits the logistic challenger on the network's training split and scores it on the
/// same validation rows: seconds, so every run can show whether the network earns its
/// keep.
pub fn challenger(
    train: &crate::train::Split,
    val: &crate::train::Split,
    n_features: usize,
    pos_weight: f32,
) -> Result<Challenger> {
    let fit = fit_logistic(
        &train.x,
        &train.y,
        n_features,
        DEFAULT_L2,
        pos_weight as f64,
    )?;
    let probs: Vec<f32> = fit.predict(&val.x).iter().map(|&p| p as f32).collect();
    Ok(Challenger {
        model: format!("logistic regression, l2 {DEFAULT_L2}"),
        validation_auc: crate::metrics::auc(&probs, &val.y),
        probs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_by_hand() {
        // [[4, 2], [2, 3]] s = [2, 5] -> s = [-0.5, 2]
        let s = solve_spd(vec![4.0, 2.0, 2.0, 3.0], &[2.0, 5.0], 2).unwrap();
        assert!(
            (s[0] + 0.5).abs() < 1e-12 && (s[1] - 2.0).abs() < 1e-12,
            "{s:?}"
        );
        assert!(solve_spd(vec![1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_err());
    }

    #[test]
    fn gradient_is_zero_at_the_fit_and_matches_finite_differences() {
        // Gradient of the penalised objective at the fit, checked by central differences
        // of the objective written out here (not the fitter's).
        let mut rng = crate::rng::Rng::new(5);
        let (n, p) = (300, 3);
        let x: Vec<f32> = (0..n * p).map(|_| rng.normal() as f32).collect();
        let y: Vec<f32> = (0..n)
            .map(|i| {
                let z = 0.8 * x[i * p] as f64 - 0.5 * x[i * p + 2] as f64;
                (rng.uniform() < 1.0 / (1.0 + (-z).exp())) as u8 as f32
            })
            .collect();
        let (l2, pw) = (2.0, 1.7);
        let fit = fit_logistic(&x, &y, p, l2, pw).unwrap();
        let obj = |w: &[f64], b: f64| -> f64 {
            let mut s = 0.0;
            for i in 0..n {
                let z = b + (0..p).map(|j| x[i * p + j] as f64 * w[j]).sum::<f64>();
                let q = 1.0 / (1.0 + (-z).exp());
                s += if y[i] > 0.5 {
                    -pw * q.ln()
                } else {
                    -(1.0 - q).ln()
                };
            }
            s + 0.5 * l2 * w.iter().map(|v| v * v).sum::<f64>()
        };
        let h = 1e-5;
        for j in 0..=p {
            let (mut up, mut down) = (fit.weights.clone(), fit.weights.clone());
            let (mut bu, mut bd) = (fit.bias, fit.bias);
            if j < p {
                up[j] += h;
                down[j] -= h;
            } else {
                bu += h;
                bd -= h;
            }
            let g = (obj(&up, bu) - obj(&down, bd)) / (2.0 * h);
            assert!(g.abs() < 1e-4, "coordinate {j}: gradient {g}");
        }
    }

    /// Rows of `p` normal features whose labels follow a logistic rule on a few of them.
    fn table(seed: u64, n: usize, p: usize) -> (Vec<f32>, Vec<f32>) {
        let mut rng = crate::rng::Rng::new(seed);
        let x: Vec<f32> = (0..n * p).map(|_| rng.normal() as f32).collect();
        let y = (0..n)
            .map(|i| {
                let z = 0.9 * x[i * p] as f64 - 0.6 * x[i * p + 1] as f64 + 0.3;
                (rng.uniform() < 1.0 / (1.0 + (-z).exp())) as u8 as f32
            })
            .collect();
        (x, y)
    }

    #[test]
    fn conjugate_gradient_steps_reach_the_direct_fit() {
        let (n, p) = (400, 23);
        let (x, y) = table(11, n, p);
        let direct = fit(&x, &y, p, 1.0, 1.3, true).unwrap();
        let cg = fit(&x, &y, p, 1.0, 1.3, false).unwrap();
        assert_eq!((direct.solver, cg.solver), ("newton (irls)", "newton-cg"));
        for (a, b) in direct
            .weights
            .iter()
            .chain([&direct.bias])
            .zip(cg.weights.iter().chain([&cg.bias]))
        {
            assert!((a - b).abs() < 1e-6, "direct {a} against newton-cg {b}");
        }
    }

    #[test]
    fn a_table_wider_than_its_rows_is_fitted_by_conjugate_gradients() {
        // 1,500 features over 300 rows: the whole Hessian would be 18 MB and its
        // factorisation 10^9 flops a step; Newton-CG needs neither.
        let (n, p) = (300, DIRECT_MAX_FEATURES + 476);
        let (x, y) = table(12, n, p);
        let fit = fit_logistic(&x, &y, p, 1.0, 1.0).unwrap();
        assert_eq!(fit.solver, "newton-cg");
        let theta: Vec<f64> = fit.weights.iter().copied().chain([fit.bias]).collect();
        let (mut grad, _) = gradient_curvature(&x, &y, p, &theta, 1.0);
        for j in 0..p {
            grad[j] += theta[j];
        }
        let largest = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
        assert!(largest < 1e-6 * n as f64, "gradient {largest} at the fit");
        assert!(
            fit.weights[0] > 0.0 && fit.weights[1] < 0.0,
            "the signal's signs"
        );
    }

    #[test]
    fn bad_shapes_and_settings_are_errors() {
        assert!(fit_logistic(&[1.0, 2.0, 3.0], &[1.0], 2, 1.0, 1.0).is_err());
        assert!(fit_logistic(&[], &[], 2, 1.0, 1.0).is_err());
        assert!(fit_logistic(&[1.0, 2.0], &[1.0], 2, 0.0, 1.0).is_err());
        assert!(fit_logistic(&[1.0, 2.0], &[1.0], 2, 1.0, f64::NAN).is_err());
    }
}
