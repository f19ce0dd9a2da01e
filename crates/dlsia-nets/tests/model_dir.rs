//! Model directories: round trips for every architecture, and the errors a user meets with
//! wrong or damaged files.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use dlsia_nets::model_dir::{MODEL_JSON, WEIGHTS_FILE};
use dlsia_nets::{
    load_model, save_model, FinalAct, MsaeConfig, Norm, Topology, TuNet3PlusConfig, TuNetConfig,
    Upsampling,
};

fn input(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
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

fn topologies() -> Vec<(Topology, Vec<usize>)> {
    let mut t3 = TuNet3PlusConfig::new(&[12, 10, 9], 2, 3, 3, 2);
    t3.upsampling = Upsampling::ConvTranspose;
    t3.normalization = Norm::Instance;
    let mut tu = TuNetConfig::new(&[16, 20], 1, 4, 3, 4);
    tu.final_activation = Some(FinalAct::Softmax);
    let mut ms = MsaeConfig::new(&[1, 12, 12], 2, 2, 2.0, 3, 2, 1);
    ms.final_action = Some(FinalAct::Sigmoid);
    vec![
        (Topology::TuNet(tu), vec![2, 1, 16, 20]),
        (Topology::TuNet3Plus(t3), vec![1, 2, 12, 10, 9]),
        (Topology::MsAutoencoder(ms), vec![3, 1, 12, 12]),
        (
            Topology::MsdNet(dlsia_nets::MsdNetConfig::new(1, 2, 4, 2, 3)),
            vec![2, 1, 11, 9],
        ),
    ]
}

#[test]
fn every_architecture_round_trips_with_its_metadata() {
    for (topo, shape) in topologies() {
        let dir = tempfile::tempdir().unwrap();
        let net = topo.build(11, &Device::Cpu).unwrap();
        // A training forward changes the running statistics: they must travel too.
        net.forward_t(&input(&shape), true).unwrap();
        let meta = serde_json::json!({"tiling": {"window": [64, 64]}, "arch": topo.architecture()});
        save_model(net.as_ref(), dir.path(), &meta, false).unwrap();
        let (back, meta_back) = load_model(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(meta_back, meta);
        assert_eq!(back.topology(), topo);
        let x = input(&shape);
        let (a, b) = (
            net.forward_t(&x, false).unwrap(),
            back.forward_t(&x, false).unwrap(),
        );
        assert_eq!(max_abs_diff(&a, &b), 0.0, "{}", topo.architecture());
        let json = std::fs::read_to_string(dir.path().join(MODEL_JSON)).unwrap();
        assert!(json.contains(&format!("\"architecture\": \"{}\"", topo.architecture())));
    }
}

#[test]
fn save_refuses_to_overwrite_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let (topo, _) = topologies().remove(0);
    let a = topo.build(1, &Device::Cpu).unwrap();
    let b = topo.build(2, &Device::Cpu).unwrap();
    save_model(a.as_ref(), dir.path(), &serde_json::Value::Null, false).unwrap();
    let e = save_model(b.as_ref(), dir.path(), &serde_json::Value::Null, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("overwrite"), "{e}");
    save_model(b.as_ref(), dir.path(), &serde_json::Value::Null, true).unwrap();
    let (c, _) = load_model(dir.path(), &Device::Cpu).unwrap();
    let x = input(&[1, 1, 16, 20]);
    let d = max_abs_diff(
        &c.forward_t(&x, false).unwrap(),
        &b.forward_t(&x, false).unwrap(),
    );
    assert_eq!(d, 0.0);
    // A file in the way of the directory is an error, not a panic.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    assert!(save_model(a.as_ref(), &file, &serde_json::Value::Null, true).is_err());
}

/// Rewrites the weights of a saved model with `edit` applied to its tensors.
fn tamper(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let p = dir.join(WEIGHTS_FILE);
    let mut t = candle_core::safetensors::load(&p, &Device::Cpu).unwrap();
    edit(&mut t);
    candle_core::safetensors::save(&t, &p).unwrap();
}

fn saved_tunet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let net = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 2))
        .build(3, &Device::Cpu)
        .unwrap();
    save_model(net.as_ref(), dir.path(), &serde_json::Value::Null, false).unwrap();
    dir
}

#[test]
fn missing_unexpected_and_misshapen_tensors_are_named() {
    let dir = saved_tunet();
    tamper(dir.path(), |t| {
        t.remove("Step Up 0.weight");
    });
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("missing") && e.contains("Step Up 0.weight") && e.contains("[4, 2, 2, 2]"),
        "{e}"
    );

    let dir = saved_tunet();
    tamper(dir.path(), |t| {
        t.insert(
            "Decode_7.0.weight".into(),
            Tensor::zeros((3, 3), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("unexpected") && e.contains("Decode_7.0.weight") && e.contains("[3, 3]"),
        "{e}"
    );

    let dir = saved_tunet();
    tamper(dir.path(), |t| {
        t.insert(
            "Encode_0.1.running_var".into(),
            Tensor::ones(5, DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("Encode_0.1.running_var") && e.contains("[2]") && e.contains("[5]"),
        "{e}"
    );
}

#[test]
fn damaged_or_foreign_model_files_are_errors() {
    let dir = saved_tunet();
    let json_path = dir.path().join(MODEL_JSON);
    let good = std::fs::read_to_string(&json_path).unwrap();

    std::fs::write(&json_path, "{not json").unwrap();
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("malformed"), "{e}");

    std::fs::write(
        &json_path,
        good.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .unwrap();
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("format_version 9"), "{e}");

    std::fs::write(&json_path, good.replace("\"tunet\"", "\"resnet\"")).unwrap();
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("resnet"), "{e}");

    std::fs::write(&json_path, good.replace("\"depth\": 2", "\"depth\": 9")).unwrap();
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("too deep"), "{e}");

    std::fs::write(&json_path, &good).unwrap();
    std::fs::write(dir.path().join(WEIGHTS_FILE), b"garbage").unwrap();
    let e = load_model(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(WEIGHTS_FILE), "{e}");

    std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
    assert!(load_model(dir.path(), &Device::Cpu).is_err());

    let empty = tempfile::tempdir().unwrap();
    let e = load_model(empty.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(MODEL_JSON), "{e}");
}

#[test]
fn a_dlsia_tunet3plus_state_dict_with_unused_decoders_loads() {
    // dlsia's TUNet3+ state_dict carries Decode_1 … Decode_{depth−2}, which are never used.
    let dir = tempfile::tempdir().unwrap();
    let topo = Topology::TuNet3Plus(TuNet3PlusConfig::new(&[16, 16], 1, 2, 4, 2));
    let net = topo.build(5, &Device::Cpu).unwrap();
    save_model(net.as_ref(), dir.path(), &serde_json::Value::Null, false).unwrap();
    tamper(dir.path(), |t| {
        for i in 1..3 {
            t.insert(
                format!("Decode_{i}.0.weight"),
                Tensor::zeros((2, 8, 3, 3), DType::F32, &Device::Cpu).unwrap(),
            );
        }
    });
    load_model(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(
        topo.ignored_weight_prefixes(),
        vec!["Decode_1.".to_string(), "Decode_2.".to_string()]
    );
}
