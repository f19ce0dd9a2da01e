//! The optimizers, schedules and clipping against PyTorch 2 on the fixture written by
//! `tools/make_train_fixtures.py` (`tests/fixtures/torch_train.json`).

use candle_core::{Device, Tensor, Var};
use dlsia_train::monitor::Goal;
use dlsia_train::optim::{NamedVar, OptimizerConfig};
use dlsia_train::schedule::{LrSchedule, Scheduler, SchedulerConfig};
use dlsia_train::{ClipConfig, Gradients};
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("fixtures/torch_train.json");
    serde_json::from_str(text).unwrap()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn tensor(v: &Value, shape: &[usize]) -> Tensor {
    let data: Vec<f32> = f64s(v).into_iter().map(|x| x as f32).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

#[test]
fn optimizers_match_pytorch() {
    let fx = fixture();
    let configs = [
        ("adam", "kind = \"adam\"\nlr = 0.01\nweight_decay = 0.1"),
        (
            "adamw",
            "kind = \"adamw\"\nlr = 0.01\nbetas = [0.8, 0.99]\nweight_decay = 0.1",
        ),
        ("sgd", "kind = \"sgd\"\nlr = 0.1"),
        (
            "sgd_momentum",
            "kind = \"sgd\"\nlr = 0.1\nmomentum = 0.9\ndampening = 0.1\nweight_decay = 0.01",
        ),
        (
            "sgd_nesterov",
            "kind = \"sgd\"\nlr = 0.05\nmomentum = 0.8\nnesterov = true\nweight_decay = 0.02",
        ),
    ];
    let cases = fx["optimizers"].as_array().unwrap();
    assert_eq!(cases.len(), configs.len());
    for (case, (name, cfg)) in cases.iter().zip(configs) {
        assert_eq!(case["name"], name);
        let shape = [3, 4];
        let p = Var::from_tensor(&tensor(&case["p0"], &shape)).unwrap();
        let cfg: OptimizerConfig = toml::from_str(cfg).unwrap();
        let mut opt = cfg.build(vec![NamedVar::new("p", p.clone())]).unwrap();
        let mut worst = 0f64;
        for (g, want) in case["grads"]
            .as_array()
            .unwrap()
            .iter()
            .zip(case["params"].as_array().unwrap())
        {
            opt.step(&[Some(tensor(g, &shape))]).unwrap();
            let got = p.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in got.iter().zip(f64s(want)) {
                worst = worst.max((*a as f64 - b).abs() / b.abs().max(1.0));
            }
        }
        assert!(worst < 2e-6, "{name}: worst relative error {worst}");
    }
}

fn lrs(
    cfg: &str,
    epochs: usize,
    steps: usize,
    per_step: bool,
    metric: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>) {
    let cfg: SchedulerConfig = toml::from_str(cfg).unwrap();
    let mut s = LrSchedule::new(&cfg, 0.1, Goal::Minimize, epochs, steps).unwrap();
    let n = if per_step { epochs * steps } else { epochs };
    let (mut lr, mut mom) = (vec![], vec![]);
    for i in 0..n {
        lr.push(s.lr());
        if let Some(m) = s.momentum() {
            mom.push(m);
        }
        if per_step {
            s.after_step();
        } else {
            s.after_epoch(metric.map(|m| m[i]));
        }
    }
    (lr, mom)
}

fn assert_close(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 + 1e-9 * b.abs(),
            "{name}[{i}]: {a} vs PyTorch {b}"
        );
    }
}

#[test]
fn schedules_match_pytorch() {
    let fx = fixture();
    let s = &fx["schedules"];
    let cases: [(&str, &str, usize, usize, bool); 6] = [
        ("step", "kind = \"step\"\nstep_size = 3\ngamma = 0.5", 10, 1, false),
        ("multi_step", "kind = \"multi_step\"\nmilestones = [2, 5, 7]\ngamma = 0.3", 10, 1, false),
        ("exponential", "kind = \"exponential\"\ngamma = 0.9", 10, 1, false),
        (
            "cosine_warmup",
            "kind = \"cosine\"\nwarmup = 3\nwarmup_start_factor = 0.25\neta_min = 0.001",
            10,
            1,
            false,
        ),
        ("one_cycle", "kind = \"one_cycle\"\nmax_lr = 0.1", 4, 5, true),
        (
            "one_cycle_three_linear",
            "kind = \"one_cycle\"\nmax_lr = 0.2\ntotal_steps = 17\npct_start = 0.25\nanneal = \"linear\"\nthree_phase = true\ndiv_factor = 10.0\nfinal_div_factor = 100.0",
            1,
            17,
            true,
        ),
    ];
    for (name, cfg, epochs, steps, per_step) in cases {
        let (lr, mom) = lrs(cfg, epochs, steps, per_step, None);
        assert_close(name, &lr, &f64s(&s[name]["lrs"]));
        if let Some(m) = s[name].get("momentum") {
            assert_close(&format!("{name} momentum"), &mom, &f64s(m));
        }
    }
    let metric = f64s(&s["plateau"]["metric"]);
    let (lr, _) = lrs(
        "kind = \"reduce_on_plateau\"\nfactor = 0.5\npatience = 2\nthreshold = 0.01\ncooldown = 1",
        metric.len(),
        1,
        false,
        Some(&metric),
    );
    assert_close("plateau", &lr, &f64s(&s["plateau"]["lrs"]));
}

#[test]
fn clipping_matches_pytorch() {
    let fx = fixture();
    let c = &fx["clip"];
    let shapes: Vec<Vec<usize>> = c["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect()
        })
        .collect();
    let make = || {
        Gradients::from_vec(
            c["grads"]
                .as_array()
                .unwrap()
                .iter()
                .zip(&shapes)
                .map(|(g, s)| Some(tensor(g, s)))
                .collect(),
        )
    };
    let flat = |g: &Gradients| -> Vec<f64> {
        g.as_slice()
            .iter()
            .flatten()
            .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .map(f64::from)
            .collect()
    };
    let want = |k: &str| -> Vec<f64> { c[k].as_array().unwrap().iter().flat_map(f64s).collect() };
    let mut g = make();
    let norm = g.global_norm().unwrap();
    assert!((norm - c["norm_before"].as_f64().unwrap()).abs() < 1e-5);
    ClipConfig::Norm { max_norm: 1.5 }
        .apply(&mut g, norm)
        .unwrap();
    for (a, b) in flat(&g).iter().zip(want("norm_clipped")) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let mut g = make();
    ClipConfig::Value { clip_value: 0.7 }
        .apply(&mut g, norm)
        .unwrap();
    // Clamping is exact: equal as f32 (the JSON doubles may be one f64 ulp off).
    let as_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
    assert_eq!(as_f32(flat(&g)), as_f32(want("value_clipped")));
}
