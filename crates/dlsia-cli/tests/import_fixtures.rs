//! Import of every model file `tools/make_import_fixtures.py` saved with the PyTorch original:
//! the decoded network has the original's parameter count and, in eval mode, gives the
//! original's output on the saved input. Bad files give errors that name the problem.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use dlsia_cli::import::{import_to_model_dir, read_dlsia_file};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

fn check_case(name: &str) {
    let dir = fixtures();
    let file =
        read_dlsia_file(&dir.join(format!("{name}.pt"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap())
            .unwrap();
    let net = file
        .build_network(&Device::Cpu)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    if !meta["topology"].is_null() {
        let ours = serde_json::to_value(file.topology().unwrap()).unwrap();
        let want: dlsia_nets::Topology = serde_json::from_value(meta["topology"].clone())
            .unwrap_or_else(|e| panic!("{name}: fixture topology: {e}"));
        assert_eq!(
            ours,
            serde_json::to_value(want).unwrap(),
            "{name}: topology"
        );
    }
    // dlsia counts the parameters of TUNet3+'s decoders it never uses; we leave them out.
    let prefixes = file.topology().unwrap().ignored_weight_prefixes();
    let unused: usize = file
        .state_dict
        .iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .filter(|(n, _)| n.ends_with(".weight") || n.ends_with(".bias"))
        .map(|(_, t)| t.elem_count())
        .sum();
    assert_eq!(
        (net.num_parameters() + unused) as u64,
        meta["num_parameters"].as_u64().unwrap(),
        "{name}: parameter count"
    );
    let io =
        candle_core::safetensors::load(dir.join(format!("{name}.io.safetensors")), &Device::Cpu)
            .unwrap();
    let x = io["input"].to_dtype(DType::F32).unwrap();
    let want = io["eval"].to_dtype(DType::F32).unwrap();
    let got = net.forward_t(&x, false).unwrap();
    assert_eq!(got.dims(), want.dims(), "{name}: output shape");
    let diff = (got - &want)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = want
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(1.0);
    assert!(
        diff <= 1e-4 * scale,
        "{name}: max |ours − original| = {diff} (scale {scale})"
    );
}

#[test]
fn tunet_2d_matches_the_original() {
    check_case("tunet_2d");
}

#[test]
fn tunet_3d_matches_the_original() {
    check_case("tunet_3d");
}

#[test]
fn tunet_with_dropout_rates_matches_the_original() {
    check_case("tunet_rates");
}

#[test]
fn tunet3plus_2d_matches_the_original() {
    check_case("tunet3plus_2d");
}

#[test]
fn tunet3plus_transposed_convolutions_match_the_original() {
    check_case("tunet3plus_convt");
}

#[test]
fn msdnet_2d_matches_the_original() {
    check_case("msdnet_2d");
}

#[test]
fn msdnet_3d_matches_the_original() {
    check_case("msdnet_3d");
}

#[test]
fn msdnet_custom_dilations_match_the_original() {
    check_case("msdnet_custom");
}

#[test]
fn smsnet_2d_matches_the_original() {
    check_case("smsnet_2d");
}

#[test]
fn smsnet_3d_matches_the_original() {
    check_case("smsnet_3d");
}

#[test]
fn sparse_autoencoder_matches_the_original_with_its_unsaved_latent_sequence() {
    check_case("sparse_autoencoder");
    let file = read_dlsia_file(&fixtures().join("sparse_autoencoder.pt")).unwrap();
    assert_eq!(file.model.architecture(), "SparseAutoEncoder");
}

#[test]
fn sparse_aec_matches_the_original() {
    check_case("sparse_aec");
}

#[test]
fn sparse_labeler_matches_the_original() {
    check_case("sparse_labeler");
    let out = tempfile::tempdir().unwrap();
    let report = import_to_model_dir(
        &fixtures().join("sparse_labeler.pt"),
        &out.path().join("m"),
        false,
    )
    .unwrap();
    assert_eq!(
        (report.architecture.as_str(), report.topology.as_str()),
        ("SparseLabeler", "sparse_labeler")
    );
}

fn import_error(name: &str) -> String {
    let out = tempfile::tempdir().unwrap();
    let err = import_to_model_dir(
        &fixtures().join("bad").join(name),
        &out.path().join("m"),
        false,
    )
    .expect_err(name);
    err.to_string()
}

#[test]
fn bad_files_give_errors_that_say_what_is_wrong() {
    assert!(import_error("msdnet_1d.pt").contains("1-D networks are not supported"));
    let prelu = import_error("msdnet_prelu.pt");
    assert!(
        prelu.contains("PReLU") && prelu.contains("supported"),
        "{prelu}"
    );
    assert!(import_error("state_dict_only.pt").contains("bare state_dict"));
    assert!(import_error("truncated.pt").contains("not a zip archive"));
}

#[test]
fn import_refuses_to_overwrite_a_model_directory() {
    let out = tempfile::tempdir().unwrap();
    let src = fixtures().join("tunet_rates.pt");
    let dest = out.path().join("m");
    import_to_model_dir(&src, &dest, false).unwrap();
    assert!(import_to_model_dir(&src, &dest, false).is_err());
    import_to_model_dir(&src, &dest, true).unwrap();
}
