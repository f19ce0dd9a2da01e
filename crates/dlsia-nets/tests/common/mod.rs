//! Comparison helpers shared by the parity tests against the original's fixtures.

#![allow(dead_code)] // each test binary uses a subset

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use dlsia_ops::ParamStore;

/// `max|got − want| ≤ tol · max(max|want|, floor)`, shapes equal.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f64, floor: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let f = |t: &Tensor| -> Vec<f64> {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let (g, w) = (f(got), f(want));
    let scale = w.iter().fold(0f64, |m, v| m.max(v.abs())).max(floor);
    let err = g
        .iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= tol * scale,
        "{what}: max abs error {err:e} exceeds {tol:e} × max(max|want|, floor) {scale:e}"
    );
}

/// Compares every `grad.<name>` fixture tensor with the gradient of parameter `<name>` of
/// `params` (or of `input` for `grad.input`) to `tol · max(max|want|, floor)`, and asserts that
/// every trainable parameter and the input were checked.
pub fn assert_fixture_gradients(
    case: &str,
    io: &HashMap<String, Tensor>,
    grads: &GradStore,
    input: &Tensor,
    params: &ParamStore,
    tol: f64,
    floor: f64,
) {
    let mut checked = 0;
    for (key, want) in io {
        let Some(name) = key.strip_prefix("grad.") else {
            continue;
        };
        let t = if name == "input" {
            input.clone()
        } else {
            params
                .get(name)
                .unwrap_or_else(|| panic!("{case}: no parameter {name}"))
                .as_tensor()
                .clone()
        };
        let got = grads
            .get(&t)
            .unwrap_or_else(|| panic!("{case}: no gradient for {name}"));
        assert_close(&format!("{case} ∂/∂{name}"), got, want, tol, floor);
        checked += 1;
    }
    assert_eq!(
        checked,
        params.trainable_vars().len() + 1,
        "{case}: every parameter's gradient checked"
    );
}
