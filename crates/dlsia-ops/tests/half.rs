//! bf16 and f16 inputs: the ops cast them to f32, run the f32 kernels and cast the result back,
//! so their values are the f32 results rounded, and gradients flow through the casts.

use candle_core::{DType, Device, Tensor, Var};
use dlsia_ops::{batch_norm_train, conv, max_pool, pad, ConvSpec, PaddingMode};

fn ramp(shape: &[usize], phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i as f64) * 0.61 + phase).sin() as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn half_inputs_give_rounded_f32_results_and_gradients() {
    let x = ramp(&[2, 3, 9, 8], 0.1);
    let w = ramp(&[2, 3, 3, 3], 0.7);
    let spec = ConvSpec::uniform(2, 1, 2, 2);
    let y32 = conv(&x, &w, None, &spec).unwrap();
    for dt in [DType::BF16, DType::F16] {
        // Inputs rounded to the half type, then the f32 kernel: the result is the f32 result
        // of the rounded inputs, rounded once more.
        let (xh, wh) = (x.to_dtype(dt).unwrap(), w.to_dtype(dt).unwrap());
        let yh = conv(&xh, &wh, None, &spec).unwrap();
        assert_eq!(yh.dtype(), dt);
        let y_rounded_in = conv(
            &xh.to_dtype(DType::F32).unwrap(),
            &wh.to_dtype(DType::F32).unwrap(),
            None,
            &spec,
        )
        .unwrap();
        assert_eq!(
            max_abs(&yh, &y_rounded_in.to_dtype(dt).unwrap()),
            0.0,
            "{dt:?}"
        );
        let tol = if dt == DType::BF16 { 0.1 } else { 0.02 };
        assert!(max_abs(&yh, &y32) < tol, "{dt:?}: {}", max_abs(&yh, &y32));

        // Gradients reach half-precision variables.
        let wv = Var::from_tensor(&wh).unwrap();
        let loss = conv(&xh, wv.as_tensor(), None, &spec)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .sum_all()
            .unwrap();
        let g = loss.backward().unwrap();
        let gw = g.get(wv.as_tensor()).unwrap();
        assert_eq!(gw.dtype(), dt);
        let w32 = Var::from_tensor(&wh.to_dtype(DType::F32).unwrap()).unwrap();
        let g32 = conv(
            &xh.to_dtype(DType::F32).unwrap(),
            w32.as_tensor(),
            None,
            &spec,
        )
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
        let gw32 = g32.get(w32.as_tensor()).unwrap();
        let scale = 1.0 + max_abs(gw32, &gw32.zeros_like().unwrap());
        assert!(max_abs(gw, gw32) < 0.01 * scale, "{dt:?}");

        // Pooling, padding and batch normalisation keep the half type.
        let p = max_pool(&xh, &[2, 2], &[2, 2], &[0, 0]).unwrap();
        assert_eq!(p.dtype(), dt);
        let p32 = max_pool(&xh.to_dtype(DType::F32).unwrap(), &[2, 2], &[2, 2], &[0, 0]).unwrap();
        assert_eq!(max_abs(&p, &p32), 0.0);
        let q = pad(&xh, &[(1, 1), (2, 0)], PaddingMode::Reflect).unwrap();
        assert_eq!((q.dtype(), q.dims()), (dt, &[2, 3, 11, 10][..]));
        let bn = batch_norm_train(&xh, None, None, 1e-5).unwrap();
        assert_eq!((bn.y.dtype(), bn.mean.dtype()), (dt, dt));
    }
}
