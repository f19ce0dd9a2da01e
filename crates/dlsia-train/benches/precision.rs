//! Is reduced precision worth it for training on the CPU with Candle 0.11? Times a U-Net-sized
//! convolution (B4, 16→16 channels, 128², 3×3, padding 1) forward and forward+backward, and the
//! matrix product behind it, in f32, f16 and bf16. An operation Candle refuses in a dtype is
//! reported as unsupported and not timed. The PyTorch counterpart, run right after in the same
//! session, is `tools/bench_precision.py`; results and commands are in BENCHMARKS.md.

use std::time::Duration;

use candle_core::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};

const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// Deterministic values in [-1, 1] of the given shape and dtype.
fn values(shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.618_034).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .expect("benchmark input")
}

fn conv_forward(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.conv2d(w, 1, 1, 1, 1)
}

fn conv_train_step(x: &Tensor, w: &Var) -> candle_core::Result<Tensor> {
    let y = x.conv2d(w.as_tensor(), 1, 1, 1, 1)?;
    let loss = y.sqr()?.sum_all()?;
    let g = loss.backward()?;
    Ok(g.get(w.as_tensor()).expect("weight gradient").clone())
}

/// Times `f` under `name` if it runs in this dtype, otherwise prints why it does not.
fn time_or_report(c: &mut Criterion, name: &str, f: impl Fn() -> candle_core::Result<Tensor>) {
    match f() {
        Ok(_) => {
            c.bench_function(name, |b| b.iter(|| f().expect("ran once already")));
        }
        Err(e) => {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or_default();
            println!("{name}: unsupported ({first})");
        }
    }
}

fn bench_precision(c: &mut Criterion) {
    for dtype in DTYPES {
        let tag = format!("{dtype:?}").to_lowercase();
        let x = values(&[4, 16, 128, 128], dtype);
        let w = values(&[16, 16, 3, 3], dtype)
            .affine(0.1, 0.0)
            .expect("scale");
        time_or_report(c, &format!("conv3x3_b4_16ch_128/forward/{tag}"), || {
            conv_forward(&x, &w)
        });
        let wv = Var::from_tensor(&w).expect("var");
        time_or_report(c, &format!("conv3x3_b4_16ch_128/fwd_bwd/{tag}"), || {
            conv_train_step(&x, &wv)
        });
        let a = values(&[65536, 144], dtype);
        let b = values(&[144, 16], dtype);
        time_or_report(c, &format!("matmul_65536x144x16/{tag}"), || a.matmul(&b));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench_precision
}
criterion_main!(benches);
