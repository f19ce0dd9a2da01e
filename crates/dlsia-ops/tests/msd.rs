//! The fused MSD block against a naive f64 reference, f64 finite differences (every input
//! element, every bias, the weights) for 1-D/2-D/3-D, every padding mode, widths 1 and 2,
//! batch 2 and dilations up to half the image (and up to the largest one reflection allows),
//! the same network built from `conv` + `cat` + ReLU, normalisation, and rejection of
//! dilations a padding mode cannot serve.

#![allow(clippy::needless_range_loop)]

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::{flat, rnd};
use dlsia_ops::msd::{MsdBlock, MsdNorm, MsdSpec, MsdStats};
use dlsia_ops::{conv, ConvSpec, PaddingMode};

const MODES: [PaddingMode; 4] = [
    PaddingMode::Zeros,
    PaddingMode::Reflect,
    PaddingMode::Symmetric,
    PaddingMode::Replicate,
];

/// Naive f64 forward pass of a block: returns the buffer and the pre-normalisation values.
struct Naive<'a> {
    spec: &'a MsdSpec,
    n: usize,
    dims: Vec<usize>,
}

impl Naive<'_> {
    fn plane(&self) -> usize {
        self.dims.iter().product()
    }
    fn prefix(&self, u: usize) -> usize {
        self.spec.in_channels + (u / self.spec.width) * self.spec.width
    }
    fn weight_offsets(&self) -> Vec<usize> {
        let taps = self.spec.kernel_size.pow(self.spec.ndim as u32);
        let mut v = vec![0];
        for u in 0..self.spec.dilations.len() {
            v.push(v[u] + self.prefix(u) * taps);
        }
        v
    }

    /// `params`: biases, or biases, γ, β. `running`: per-unit (mean, var) or batch stats.
    fn forward(
        &self,
        x: &[f64],
        w: &[f64],
        params: &[f64],
        running: Option<&[(f64, f64)]>,
    ) -> Vec<f64> {
        let s = self.spec;
        let (n, plane, cin) = (self.n, self.plane(), s.in_channels);
        let ch = s.out_channels();
        let nu = s.dilations.len();
        let k = s.kernel_size as isize;
        let nd = s.ndim;
        let offs = self.weight_offsets();
        let mut r = vec![0.0; n * ch * plane];
        for b in 0..n {
            r[b * ch * plane..][..cin * plane]
                .copy_from_slice(&x[b * cin * plane..][..cin * plane]);
        }
        // strides of the spatial axes
        let mut stride = vec![1usize; nd];
        for a in (0..nd.saturating_sub(1)).rev() {
            stride[a] = stride[a + 1] * self.dims[a + 1];
        }
        let taps = (k as usize).pow(nd as u32);
        for u in 0..nu {
            let c_out = cin + u;
            let dil = s.dilations[u] as isize;
            let mut z = vec![0.0; n * plane];
            for b in 0..n {
                for p in 0..plane {
                    let pos: Vec<isize> = (0..nd)
                        .map(|a| ((p / stride[a]) % self.dims[a]) as isize)
                        .collect();
                    let mut acc = params[u];
                    for c in 0..self.prefix(u) {
                        for t in 0..taps {
                            let mut src = 0usize;
                            let mut zero = false;
                            let mut rem = t;
                            for a in (0..nd).rev() {
                                let ta = (rem % k as usize) as isize;
                                rem /= k as usize;
                                let i = pos[a] + (ta - k / 2) * dil;
                                match s.padding.source_index(i, self.dims[a]) {
                                    Some(j) => src += j * stride[a],
                                    None => zero = true,
                                }
                            }
                            if !zero {
                                acc += w[offs[u] + c * taps + t] * r[(b * ch + c) * plane + src];
                            }
                        }
                    }
                    z[b * plane + p] = acc;
                }
            }
            let (a, c0) = if let Some(norm) = s.norm {
                let (mean, var) = match running {
                    Some(st) => st[u],
                    None => {
                        let m = z.iter().sum::<f64>() / z.len() as f64;
                        let v = z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / z.len() as f64;
                        (m, v)
                    }
                };
                let eps = norm.eps;
                let a = params[nu + u] / (var + eps).sqrt();
                (a, params[2 * nu + u] - a * mean)
            } else {
                (1.0, 0.0)
            };
            for b in 0..n {
                for p in 0..plane {
                    r[(b * ch + c_out) * plane + p] = (a * z[b * plane + p] + c0).max(0.0);
                }
            }
        }
        r
    }
}

fn dev() -> Device {
    Device::Cpu
}

/// Random problem: x in [0, 1), weights scaled by 1/sqrt(fan-in), biases small.
fn problem(
    block: &MsdBlock,
    n: usize,
    dims: &[usize],
    seed: u64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let s = block.spec();
    let plane: usize = dims.iter().product();
    let x: Vec<f64> = rnd(n * s.in_channels * plane, seed)
        .into_iter()
        .map(|v| 0.5 * (v + 1.0))
        .collect();
    let mut w = rnd(block.weight_len(), seed + 1);
    for u in 0..block.units() {
        let r = block.unit_weights(u);
        let scale = 1.5 / (r.len() as f64).sqrt();
        for v in &mut w[r] {
            *v *= scale;
        }
    }
    let b: Vec<f64> = rnd(block.units(), seed + 2)
        .into_iter()
        .map(|v| 0.2 * v)
        .collect();
    (x, w, b)
}

fn shape(n: usize, c: usize, dims: &[usize]) -> Vec<usize> {
    let mut v = vec![n, c];
    v.extend_from_slice(dims);
    v
}

/// Checks the op against the naive forward and its gradients against central differences of
/// the naive forward, for every input element, every bias and (up to `max_w`) weights.
fn gradcheck(spec: MsdSpec, n: usize, dims: &[usize], seed: u64, lpp: usize) {
    let block = MsdBlock::new(spec.clone())
        .unwrap()
        .with_layers_per_pass(lpp);
    let (x, w, b) = problem(&block, n, dims, seed);
    let naive = Naive {
        spec: &spec,
        n,
        dims: dims.to_vec(),
    };
    let ch = spec.out_channels();
    let xs = shape(n, spec.in_channels, dims);
    let xv = Var::from_vec(x.clone(), xs.as_slice(), &dev()).unwrap();
    let wv = Var::from_vec(w.clone(), block.weight_len(), &dev()).unwrap();
    let bv = Var::from_vec(b.clone(), block.units(), &dev()).unwrap();
    let r = block.forward(&xv, &wv, &bv).unwrap();
    assert_eq!(r.dims(), shape(n, ch, dims).as_slice());
    let want = naive.forward(&x, &w, &b, None);
    let what = format!("{spec:?} n={n} dims={dims:?} lpp={lpp}");
    common::assert_close(&format!("forward {what}"), &flat(&r), &want, 1e-12);

    let m = rnd(want.len(), seed + 3);
    let mt = Tensor::from_vec(m.clone(), r.shape(), &dev()).unwrap();
    let grads = (&r * &mt).unwrap().sum_all().unwrap().backward().unwrap();
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        naive
            .forward(x, w, b, None)
            .iter()
            .zip(&m)
            .map(|(a, b)| a * b)
            .sum()
    };
    let eps = 1e-6;
    let check = |name: &str,
                 got: &[f64],
                 fd: &dyn Fn(usize) -> f64,
                 idx: &mut dyn Iterator<Item = usize>| {
        let scale = got.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        for i in idx {
            let f = fd(i);
            let e = (f - got[i]).abs() / scale;
            assert!(
                e < 1e-6,
                "{name}[{i}] {what}: fd {f} vs op {} (rel {e:.2e})",
                got[i]
            );
        }
    };
    let gx = flat(grads.get(&xv).unwrap());
    check(
        "dx",
        &gx,
        &|i| {
            let (mut p, mut q) = (x.clone(), x.clone());
            p[i] += eps;
            q[i] -= eps;
            (loss(&p, &w, &b) - loss(&q, &w, &b)) / (2.0 * eps)
        },
        &mut (0..x.len()),
    );
    let gb = flat(grads.get(&bv).unwrap());
    check(
        "db",
        &gb,
        &|i| {
            let (mut p, mut q) = (b.clone(), b.clone());
            p[i] += eps;
            q[i] -= eps;
            (loss(&x, &w, &p) - loss(&x, &w, &q)) / (2.0 * eps)
        },
        &mut (0..b.len()),
    );
    let gw = flat(grads.get(&wv).unwrap());
    let stride = (w.len() / 150).max(1);
    check(
        "dw",
        &gw,
        &|i| {
            let (mut p, mut q) = (w.clone(), w.clone());
            p[i] += eps;
            q[i] -= eps;
            (loss(&x, &p, &b) - loss(&x, &q, &b)) / (2.0 * eps)
        },
        &mut (0..w.len())
            .step_by(stride)
            .chain(std::iter::once(w.len() - 1)),
    );
}

#[test]
fn gradcheck_2d_every_padding_mode_width_1_and_2() {
    for (i, mode) in MODES.into_iter().enumerate() {
        // 7×6 image: dilations up to 3 = half the width.
        let s1 = MsdSpec {
            dilations: vec![1, 3, 2, 3],
            ..MsdSpec::cyclic(2, 1, 4, 1, 3)
        }
        .with_padding(mode);
        gradcheck(s1, 2, &[7, 6], 10 + i as u64, 4);
        let s2 = MsdSpec::cyclic(2, 2, 3, 2, 3).with_padding(mode);
        gradcheck(s2, 2, &[6, 7], 20 + i as u64, 2);
    }
}

#[test]
fn gradcheck_2d_largest_dilation_each_mode_allows() {
    // reflect: reach ≤ n − 1; symmetric: ≤ n; zeros and replicate: beyond the image.
    let cases = [
        (PaddingMode::Reflect, vec![5, 4, 1]),
        (PaddingMode::Symmetric, vec![6, 5, 2]),
        (PaddingMode::Zeros, vec![9, 3, 1]),
        (PaddingMode::Replicate, vec![8, 2, 6]),
    ];
    for (i, (mode, dil)) in cases.into_iter().enumerate() {
        let s = MsdSpec {
            dilations: dil,
            ..MsdSpec::cyclic(2, 1, 3, 1, 3)
        }
        .with_padding(mode);
        gradcheck(s, 2, &[6, 7], 30 + i as u64, 1);
    }
}

#[test]
fn gradcheck_3d_every_padding_mode_width_1_and_2() {
    for (i, mode) in MODES.into_iter().enumerate() {
        let s1 = MsdSpec::cyclic(3, 1, 3, 1, 2).with_padding(mode);
        gradcheck(s1, 2, &[4, 5, 4], 40 + i as u64, 2);
        let s2 = MsdSpec {
            dilations: vec![2, 1, 1, 2],
            ..MsdSpec::cyclic(3, 1, 2, 2, 2)
        }
        .with_padding(mode);
        gradcheck(s2, 2, &[5, 4, 4], 50 + i as u64, 4);
    }
}

#[test]
fn gradcheck_1d_and_kernel_5() {
    gradcheck(
        MsdSpec::cyclic(1, 2, 4, 1, 4).with_padding(PaddingMode::Symmetric),
        3,
        &[9],
        60,
        3,
    );
    let s = MsdSpec {
        kernel_size: 5,
        ..MsdSpec::cyclic(2, 1, 3, 1, 2)
    }
    .with_padding(PaddingMode::Reflect);
    gradcheck(s, 2, &[6, 5], 61, 2);
}

#[test]
fn layers_per_pass_does_not_change_results() {
    let spec = MsdSpec::cyclic(2, 1, 7, 2, 4).with_padding(PaddingMode::Reflect);
    let mut outs = Vec::new();
    for lpp in [1, 3, 7, 100] {
        let block = MsdBlock::new(spec.clone())
            .unwrap()
            .with_layers_per_pass(lpp);
        let (x, w, b) = problem(&block, 2, &[9, 11], 70);
        let xv = Var::from_vec(x, (2, 1, 9, 11), &dev()).unwrap();
        let wv = Var::from_vec(w, block.weight_len(), &dev()).unwrap();
        let bv = Var::from_vec(b, block.units(), &dev()).unwrap();
        let r = block.forward(&xv, &wv, &bv).unwrap();
        let g = r.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        outs.push([
            flat(&r),
            flat(g.get(&xv).unwrap()),
            flat(g.get(&wv).unwrap()),
            flat(g.get(&bv).unwrap()),
        ]);
    }
    for o in &outs[1..] {
        for (a, b) in o.iter().zip(&outs[0]) {
            common::assert_close("lpp", a, b, 1e-12);
        }
    }
}

/// The same network from `conv` + `cat` + ReLU on the new channels only (f32).
fn reference_net(block: &MsdBlock, x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    let s = block.spec();
    let mut r = x.clone();
    for i in 0..s.depth() {
        let mut new = Vec::new();
        for k in 0..s.width {
            let u = i * s.width + k;
            let d = s.dilations[u];
            let spec = ConvSpec::uniform(s.ndim, 1, d * (s.kernel_size / 2), d)
                .with_padding_mode(s.padding);
            let wu = block.unpack_weight(w, u).unwrap();
            let bu = b.narrow(0, u, 1).unwrap();
            new.push(conv(&r, &wu, Some(&bu), &spec).unwrap().relu().unwrap());
        }
        let mut all = vec![r];
        all.extend(new);
        r = Tensor::cat(&all, 1).unwrap();
    }
    r
}

#[test]
fn agrees_with_the_network_built_from_plain_ops() {
    let cases = [
        (MsdSpec::cyclic(2, 1, 10, 1, 5), vec![4, 1, 24, 20]),
        (
            MsdSpec::cyclic(2, 2, 5, 2, 4).with_padding(PaddingMode::Reflect),
            vec![2, 2, 17, 23],
        ),
        (
            MsdSpec::cyclic(3, 1, 4, 1, 3).with_padding(PaddingMode::Replicate),
            vec![2, 1, 9, 8, 10],
        ),
        (
            MsdSpec::cyclic(2, 1, 6, 1, 8).with_padding(PaddingMode::Zeros),
            vec![1, 1, 10, 70],
        ),
        // Tall images: many bands, with reflected rows folding into the first and last band.
        (
            MsdSpec::cyclic(2, 1, 6, 1, 3).with_padding(PaddingMode::Symmetric),
            vec![1, 1, 40, 12],
        ),
        (
            MsdSpec::cyclic(3, 1, 3, 1, 3).with_padding(PaddingMode::Reflect),
            vec![1, 1, 4, 30, 9],
        ),
    ];
    for (i, (spec, xs)) in cases.into_iter().enumerate() {
        let block = MsdBlock::new(spec).unwrap();
        let n = xs[0];
        let (x, w, b) = problem(&block, n, &xs[2..], 80 + i as u64);
        let f32s = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect::<Vec<f32>>();
        let xv = Var::from_vec(f32s(x), xs.as_slice(), &dev()).unwrap();
        let wv = Var::from_vec(f32s(w), block.weight_len(), &dev()).unwrap();
        let bv = Var::from_vec(f32s(b), block.units(), &dev()).unwrap();
        let m = Tensor::from_vec(
            f32s(rnd(
                n * block.out_channels() * xs[2..].iter().product::<usize>(),
                90,
            )),
            shape(n, block.out_channels(), &xs[2..]),
            &dev(),
        )
        .unwrap();
        let fused = block.forward(&xv, &wv, &bv).unwrap();
        let plain = reference_net(&block, &xv, &wv, &bv);
        common::assert_close("forward", &flat(&fused), &flat(&plain), 1e-5);
        let gf = (&fused * &m)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = (&plain * &m)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, v) in [("dx", &xv), ("dw", &wv), ("db", &bv)] {
            common::assert_close(
                &format!("{name} case {i}"),
                &flat(gf.get(v).unwrap()),
                &flat(gp.get(v).unwrap()),
                1e-5,
            );
        }
        let inferred = block.infer(&xv, &wv, &bv).unwrap();
        assert_eq!(flat(&inferred), flat(&fused));
    }
}

/// Gradcheck of the normalised block in batch-statistics and running-statistics mode.
fn gradcheck_norm(spec: MsdSpec, n: usize, dims: &[usize], seed: u64, running: bool) {
    let block = MsdBlock::new(spec.clone()).unwrap().with_layers_per_pass(2);
    let nu = block.units();
    let (x, w, b) = problem(&block, n, dims, seed);
    let mut params = b.clone();
    params.extend(rnd(nu, seed + 5).into_iter().map(|v| 1.0 + 0.3 * v));
    params.extend(rnd(nu, seed + 6).into_iter().map(|v| 0.2 * v));
    let stats: Vec<(f64, f64)> = (0..nu)
        .map(|u| (0.1 * u as f64, 0.5 + 0.1 * u as f64))
        .collect();
    let (mean, var): (Vec<f64>, Vec<f64>) = stats.iter().copied().unzip();
    let naive = Naive {
        spec: &spec,
        n,
        dims: dims.to_vec(),
    };
    let xs = shape(n, spec.in_channels, dims);
    let xv = Var::from_vec(x.clone(), xs.as_slice(), &dev()).unwrap();
    let wv = Var::from_vec(w.clone(), block.weight_len(), &dev()).unwrap();
    let pv = Var::from_vec(params.clone(), (3, nu), &dev()).unwrap();
    let mode = if running {
        MsdStats::Running {
            mean: &mean,
            var: &var,
        }
    } else {
        MsdStats::Batch
    };
    let (r, bs) = block.forward_normalized(&xv, &wv, &pv, mode).unwrap();
    assert_eq!(bs.count, n * dims.iter().product::<usize>());
    let st = running.then_some(stats.as_slice());
    let want = naive.forward(&x, &w, &params, st);
    common::assert_close("normalised forward", &flat(&r), &want, 1e-12);
    let m = rnd(want.len(), seed + 7);
    let mt = Tensor::from_vec(m.clone(), r.shape(), &dev()).unwrap();
    let grads = (&r * &mt).unwrap().sum_all().unwrap().backward().unwrap();
    let loss = |x: &[f64], w: &[f64], p: &[f64]| -> f64 {
        naive
            .forward(x, w, p, st)
            .iter()
            .zip(&m)
            .map(|(a, b)| a * b)
            .sum()
    };
    let eps = 1e-6;
    let fd_all = |name: &str, v: &[f64], got: &[f64], which: usize| {
        let scale = got.iter().fold(1.0f64, |a, v| a.max(v.abs()));
        for i in 0..v.len() {
            let (mut p, mut q) = (v.to_vec(), v.to_vec());
            p[i] += eps;
            q[i] -= eps;
            let f = match which {
                0 => (loss(&p, &w, &params) - loss(&q, &w, &params)) / (2.0 * eps),
                1 => (loss(&x, &p, &params) - loss(&x, &q, &params)) / (2.0 * eps),
                _ => (loss(&x, &w, &p) - loss(&x, &w, &q)) / (2.0 * eps),
            };
            let e = (f - got[i]).abs() / scale;
            assert!(
                e < 1e-6,
                "{name}[{i}] running={running}: fd {f} vs op {} (rel {e:.2e})",
                got[i]
            );
        }
    };
    fd_all("dx", &x, &flat(grads.get(&xv).unwrap()), 0);
    fd_all("dw", &w, &flat(grads.get(&wv).unwrap()), 1);
    fd_all("dparams", &params, &flat(grads.get(&pv).unwrap()), 2);
}

#[test]
fn gradcheck_normalised_block() {
    let spec = MsdSpec::cyclic(2, 1, 3, 2, 2)
        .with_padding(PaddingMode::Symmetric)
        .with_norm(MsdNorm::default());
    gradcheck_norm(spec.clone(), 2, &[5, 6], 100, false);
    gradcheck_norm(spec, 2, &[5, 6], 101, true);
    let s3 = MsdSpec::cyclic(3, 1, 2, 1, 2)
        .with_padding(PaddingMode::Zeros)
        .with_norm(MsdNorm::default());
    gradcheck_norm(s3, 2, &[3, 4, 4], 102, false);
}

#[test]
fn rejects_dilations_the_padding_cannot_serve() {
    let dev = dev();
    let spec = MsdSpec::cyclic(2, 1, 4, 1, 8).with_padding(PaddingMode::Reflect);
    let block = MsdBlock::new(spec.clone()).unwrap();
    let x = Tensor::zeros((1, 1, 8, 12), DType::F32, &dev).unwrap();
    let w = Tensor::zeros(block.weight_len(), DType::F32, &dev).unwrap();
    let b = Tensor::zeros(block.units(), DType::F32, &dev).unwrap();
    // dilation 4 of layer 3 reaches 4 ≤ 7: fine; a dilation of 8 on 8 rows needs two bounces.
    assert!(block.forward(&x, &w, &b).is_ok());
    let spec8 = MsdSpec {
        dilations: vec![1, 8, 2, 3],
        ..spec
    };
    let e = spec8.check_spatial(&[8, 12]).unwrap_err().to_string();
    assert!(e.contains("reflect") && e.contains("length 8"), "{e}");
    let block8 = MsdBlock::new(spec8.clone()).unwrap();
    let e = block8.forward(&x, &w, &b).unwrap_err().to_string();
    assert!(e.contains("dilation 8"), "{e}");
    assert_eq!(spec8.min_size(), 9);
    // Symmetric serves a reach equal to the size, zeros any reach.
    let sym = MsdSpec {
        padding: PaddingMode::Symmetric,
        ..spec8.clone()
    };
    sym.check_spatial(&[8, 12]).unwrap();
    assert!(sym.check_spatial(&[7, 12]).is_err());
    MsdSpec {
        padding: PaddingMode::Zeros,
        ..spec8
    }
    .check_spatial(&[2, 2])
    .unwrap();
}

#[test]
fn rejects_bad_arguments_with_clear_errors() {
    let dev = dev();
    let block = MsdBlock::new(MsdSpec::cyclic(2, 2, 3, 1, 2)).unwrap();
    let w = Tensor::zeros(block.weight_len(), DType::F32, &dev).unwrap();
    let b = Tensor::zeros(block.units(), DType::F32, &dev).unwrap();
    let x1 = Tensor::zeros((1, 1, 8, 8), DType::F32, &dev).unwrap();
    assert!(block
        .forward(&x1, &w, &b)
        .unwrap_err()
        .to_string()
        .contains("(N, 2"));
    let x = Tensor::zeros((1, 2, 8, 8), DType::F32, &dev).unwrap();
    let bad_w = Tensor::zeros(block.weight_len() + 1, DType::F32, &dev).unwrap();
    assert!(block
        .forward(&x, &bad_w, &b)
        .unwrap_err()
        .to_string()
        .contains("packed weights"));
    let x64 = Tensor::zeros((1, 2, 8, 8), DType::F64, &dev).unwrap();
    assert!(block
        .forward(&x64, &w, &b)
        .unwrap_err()
        .to_string()
        .contains("dtype"));
    let e = block
        .forward_normalized(&x, &w, &b, MsdStats::Batch)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no normalisation"), "{e}");
    assert!(MsdBlock::new(MsdSpec {
        width: 0,
        ..MsdSpec::cyclic(2, 1, 3, 1, 2)
    })
    .is_err());
}

#[test]
fn nan_in_the_input_propagates_like_pytorch() {
    let block = MsdBlock::new(MsdSpec::cyclic(2, 1, 2, 1, 1)).unwrap();
    let mut v = vec![0.5f32; 25];
    v[12] = f32::NAN;
    let x = Tensor::from_vec(v, (1, 1, 5, 5), &dev()).unwrap();
    let w = Tensor::full(0.1f32, block.weight_len(), &dev()).unwrap();
    let b = Tensor::zeros(block.units(), DType::F32, &dev()).unwrap();
    let r = flat(&block.forward(&x, &w, &b).unwrap());
    // Layer 0 reads the centre pixel from its 3×3 neighbourhood; corners do not.
    assert!(r[25 + 12].is_nan() && r[25 + 6].is_nan());
    assert!(!r[25].is_nan());
}

#[test]
fn pack_and_unpack_round_trip() {
    let block = MsdBlock::new(MsdSpec::cyclic(3, 2, 3, 2, 3)).unwrap();
    let per: Vec<Tensor> = (0..block.units())
        .map(|u| {
            let s = block.unit_weight_shape(u);
            let n: usize = s.iter().product();
            Tensor::arange(0f32, n as f32, &dev())
                .unwrap()
                .affine(1.0, u as f64)
                .unwrap()
                .reshape(s)
                .unwrap()
        })
        .collect();
    let packed = block.pack_weights(&per).unwrap();
    assert_eq!(packed.dims(), &[block.weight_len()]);
    assert_eq!(block.weight_len(), (2 + 2 + 4 + 4 + 6 + 6) * 27);
    for (u, t) in per.iter().enumerate() {
        let back = block.unpack_weight(&packed, u).unwrap();
        assert_eq!(back.dims(), t.dims());
        assert_eq!(flat(&back), flat(t));
    }
}
