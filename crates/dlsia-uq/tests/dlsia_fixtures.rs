//! Parity with the original dlsia 0.3.4 (fixtures from `tools/uq_fixtures.py`): conformal LAC
//! thresholds and sets, `model_baggin` mean/std, `AggregateNet` weights and outputs.

mod common;

use std::collections::BTreeMap;

use candle_core::Tensor;
use common::*;
use dlsia_ops::{LoadOptions, ParamStore};
use dlsia_uq::conformal::{ConformalConfig, QuantileRule};
use dlsia_uq::*;

fn identity_logits() -> LogitsFn<impl Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync> {
    LogitsFn::new(4, |x: &Tensor| Ok(x.clone())).unwrap()
}

#[test]
fn lac_threshold_and_sets_match_build_conformalizer_classify() {
    let f = fixtures();
    let net = identity_logits();
    let probs = net.predict_proba(&f["conf_cal_logits"]).unwrap();
    let mut cfg = ConformalConfig::new(0.1);
    let mut exact = cfg.build().unwrap();
    exact.update(&probs, &f["conf_cal_labels"]).unwrap();
    cfg.quantile = QuantileRule::NumpyHigher;
    let mut cal = cfg.build().unwrap();
    cal.update(&probs, &f["conf_cal_labels"]).unwrap();
    let test = net.predict_proba(&f["conf_test_logits"]).unwrap();
    for a in ["0.05", "0.1", "0.2", "0.5"] {
        let alpha: f64 = a.parse().unwrap();
        // The exact split-conformal threshold (numpy's inverted_cdf at k/n) ...
        let q = exact.predictor_at(alpha).unwrap().qhat();
        let want = flat(&f[&format!("conf_qhat_exact_{a}")])[0];
        assert!(
            (q - want).abs() < 1e-6,
            "alpha {a}: exact qhat {q} vs {want}"
        );
        // ... and the original's rule, with its sets.
        let cp = cal.predictor_at(alpha).unwrap();
        assert!(cp.qhat() > q, "the original's rule is one rank higher");
        let want = flat(&f[&format!("conf_qhat_{a}")])[0];
        assert!(
            (cp.qhat() - want).abs() < 1e-6,
            "alpha {a}: qhat {} vs {want}",
            cp.qhat()
        );
        let sets = cp.prediction_sets(&test).unwrap();
        let want_sets = &f[&format!("conf_sets_{a}")];
        assert_eq!(flat(&sets), flat(want_sets), "alpha {a}: sets differ");
    }
}

#[test]
fn ensemble_mean_and_standard_error_match_model_baggin() {
    let f = fixtures();
    let members: Vec<Box<dyn Predictor>> = (0..3)
        .map(|i| {
            let logits = f[&format!("ens_logits_{i}")].clone();
            Box::new(
                LogitsFn::new(3, move |_x: &Tensor| {
                    Ok::<_, candle_core::Error>(logits.clone())
                })
                .unwrap(),
            ) as Box<dyn Predictor>
        })
        .collect();
    let ens = Ensemble::new(members).unwrap();
    let stats = ens.stats(&f["ens_x"]).unwrap();
    assert!(max_abs_diff(&stats.mean, &f["ens_mean"]) < 1e-6);
    // model_baggin's "std" is the standard error std/√N of the (renormalised) mean.
    assert!(max_abs_diff(&stats.standard_error().unwrap(), &f["ens_std_baggin"]) < 1e-6);
    assert!(max_abs_diff(&ens.predict_proba(&f["ens_x"]).unwrap(), &f["ens_mean"]) < 1e-6);
}

#[test]
fn aggnet_loads_the_originals_state_dict_and_reproduces_its_output() {
    let f = fixtures();
    for (name, layers, relu, bias) in [("agg_relu", 3, true, true), ("agg_norelu", 2, false, false)]
    {
        let store = ParamStore::new(0, &dev());
        let cfg = AggNetConfig {
            layers,
            relu,
            bias,
            ..AggNetConfig::new(6, 3)
        };
        let net = cfg.build(&store.root()).unwrap();
        let prefix = format!("{name}.");
        let tensors: BTreeMap<String, Tensor> = f
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone())))
            .collect();
        // Strict load: every name and shape must match the original's state_dict.
        store
            .load_tensors(&tensors, &LoadOptions::default())
            .unwrap();
        let y = net.forward(&f[&format!("{name}_x")]).unwrap();
        let err = max_abs_diff(&y, &f[&format!("{name}_y")]);
        assert!(err < 1e-6, "{name}: output differs by {err}");
    }
}
