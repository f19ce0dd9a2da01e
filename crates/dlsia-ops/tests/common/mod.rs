//! Naive f64 reference implementations and gradient-check helpers shared by the tests.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Deterministic values uniform in [-1, 1).
pub fn rnd(n: usize, seed: u64) -> Vec<f64> {
    let mut r = StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

pub fn var(v: &[f64], dims: &[usize]) -> Var {
    Var::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
}

pub fn tensor(v: &[f64], dims: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
}

/// A variable on `dev` with element type `dtype`, from f64 values.
pub fn var_on(v: &[f64], dims: &[usize], dev: &Device, dtype: DType) -> Var {
    Var::from_tensor(&tensor_on(v, dims, dev, dtype)).unwrap()
}

/// A tensor on `dev` with element type `dtype`, from f64 values.
pub fn tensor_on(v: &[f64], dims: &[usize], dev: &Device, dtype: DType) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Largest |a − b| relative to max(1, max |b|).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let e = rel_err(got, want);
    assert!(e < tol, "{what}: relative error {e:.3e} ≥ {tol:.1e}");
}

/// Spatial geometry of a naive convolution, 3 axes (leading axes of size 1 for 1-D/2-D).
#[derive(Clone, Debug)]
pub struct Geo {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    pub input: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub pad: [usize; 3],
    pub dil: [usize; 3],
}

impl Geo {
    pub fn output(&self) -> [usize; 3] {
        let mut o = [0; 3];
        for i in 0..3 {
            o[i] = (self.input[i] + 2 * self.pad[i] - self.dil[i] * (self.kernel[i] - 1) - 1)
                / self.stride[i]
                + 1;
        }
        o
    }
}

fn vol(s: &[usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

/// Visits every (output index, input index, weight index) triple of a convolution.
fn conv_triples(g: &Geo, mut f: impl FnMut(usize, usize, usize)) {
    let o = g.output();
    let (cig, cog) = (g.cin / g.groups, g.cout / g.groups);
    let k = g.kernel;
    for b in 0..g.n {
        for co in 0..g.cout {
            let gr = co / cog;
            for od in 0..o[0] {
                for oh in 0..o[1] {
                    for ow in 0..o[2] {
                        let yi = (((b * g.cout + co) * o[0] + od) * o[1] + oh) * o[2] + ow;
                        for ci in 0..cig {
                            let c = gr * cig + ci;
                            for kd in 0..k[0] {
                                for kh in 0..k[1] {
                                    for kw in 0..k[2] {
                                        let p = [
                                            (od * g.stride[0] + kd * g.dil[0]) as isize
                                                - g.pad[0] as isize,
                                            (oh * g.stride[1] + kh * g.dil[1]) as isize
                                                - g.pad[1] as isize,
                                            (ow * g.stride[2] + kw * g.dil[2]) as isize
                                                - g.pad[2] as isize,
                                        ];
                                        if (0..3).any(|i| p[i] < 0 || p[i] >= g.input[i] as isize) {
                                            continue;
                                        }
                                        let xi = (((b * g.cin + c) * g.input[0] + p[0] as usize)
                                            * g.input[1]
                                            + p[1] as usize)
                                            * g.input[2]
                                            + p[2] as usize;
                                        let wi =
                                            (((co * cig + ci) * k[0] + kd) * k[1] + kh) * k[2] + kw;
                                        f(yi, xi, wi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Naive convolution (zero padding): returns y and, for L = Σ y·gy, dL/dx and dL/dw.
pub fn naive_conv(
    g: &Geo,
    x: &[f64],
    w: &[f64],
    gy: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; g.n * g.cout * vol(&g.output())];
    let mut gx = vec![0.0; x.len()];
    let mut gw = vec![0.0; w.len()];
    conv_triples(g, |yi, xi, wi| {
        y[yi] += x[xi] * w[wi];
        if let Some(gy) = gy {
            gx[xi] += gy[yi] * w[wi];
            gw[wi] += gy[yi] * x[xi];
        }
    });
    (y, gx, gw)
}

/// Naive transposed convolution with PyTorch semantics; `conv` describes the convolution it
/// transposes (its `input` is the transposed output, `cin` = transposed out channels, `cout`
/// = transposed in channels) and `out_len` the transposed output grid. Weight layout
/// `(cout_conv, cin_conv/g, k…)` = PyTorch's `(in, out/g, k…)`.
pub fn naive_conv_transpose(
    g: &Geo,
    x: &[f64],
    w: &[f64],
    gy: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    // y = convᵀ(x): y[xi] += x[yi]·w[wi] over the conv's triples.
    let mut y = vec![0.0; g.n * g.cin * vol(&g.input)];
    let mut gx = vec![0.0; x.len()];
    let mut gw = vec![0.0; w.len()];
    conv_triples(g, |yi, xi, wi| {
        y[xi] += x[yi] * w[wi];
        if let Some(gy) = gy {
            gx[yi] += gy[xi] * w[wi];
            gw[wi] += gy[xi] * x[yi];
        }
    });
    (y, gx, gw)
}

/// Central finite differences of `loss` at a few entries of `x`, compared with `grad`.
pub fn check_fd(what: &str, x: &[f64], grad: &[f64], loss: impl Fn(&[f64]) -> f64, tol: f64) {
    let eps = 1e-6;
    let n = x.len();
    let picks: Vec<usize> = [0, n / 7, n / 3, n / 2, 2 * n / 3, n - 1]
        .into_iter()
        .filter(|&i| i < n)
        .collect();
    let scale = grad.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for i in picks {
        let mut xp = x.to_vec();
        xp[i] += eps;
        let mut xm = x.to_vec();
        xm[i] -= eps;
        let fd = (loss(&xp) - loss(&xm)) / (2.0 * eps);
        let e = (fd - grad[i]).abs() / scale;
        assert!(
            e < tol,
            "{what}: FD at {i}: fd {fd} vs autograd {} (rel {e:.2e})",
            grad[i]
        );
    }
}
