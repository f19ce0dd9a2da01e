//! Random shapes: the canvases and rotation match dlsia's classes and skimage.transform.rotate
//! (fixture from tools/make_data_fixtures.py).

use dlsia_data::io::read_npy;
use dlsia_data::synth::shapes::{rotate_bilinear, shape_canvas, ShapeParams};
use dlsia_data::VolumeData;

#[test]
fn shapes_match_dlsia_and_skimage() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shapes_skimage.npy");
    let v = read_npy(path).unwrap();
    assert_eq!(v.shape(), &[5, 64, 64]);
    let VolumeData::F64(want) = v.data() else {
        panic!("expected float64")
    };
    // Keep in sync with SHAPES in tools/make_data_fixtures.py.
    let cases = [
        (ShapeParams::Circle { radius: 0.3 }, 0.0),
        (
            ShapeParams::Rectangle {
                height: 0.15,
                width: 0.35,
            },
            33.3,
        ),
        (ShapeParams::Triangle { height: 0.25 }, 127.5),
        (
            ShapeParams::Donut {
                radius: 0.35,
                width: 0.175,
            },
            250.0,
        ),
        (
            ShapeParams::Rectangle {
                height: 0.12,
                width: 0.31,
            },
            301.7,
        ),
    ];
    for (k, (p, angle)) in cases.iter().enumerate() {
        let got = rotate_bilinear(&shape_canvas(*p, 64), 64, *angle);
        let w = &want[k * 4096..(k + 1) * 4096];
        let max = got
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            max < 1e-9,
            "case {k} ({p:?}, {angle}°): max difference {max}"
        );
    }
}
