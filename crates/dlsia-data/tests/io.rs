//! File I/O: round trips for every format and sample type, files written by numpy and tifffile
//! (fixtures from tools/make_data_fixtures.py), and corrupt or truncated files giving errors.

use std::path::PathBuf;

use candle_core::Device;
use dlsia_data::io::{
    read_npy, read_png, read_tiff, read_volume, save_label_png, save_png_preview, tiff_info,
    write_npy, write_tiff, write_volume, NpyMap,
};
use dlsia_data::{Dataset, FileDataset, SampleType, Volume, VolumeData};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

fn every_type(shape: &[usize]) -> Vec<Volume> {
    let n: usize = shape.iter().product();
    let s = shape.to_vec();
    let ramp = |k: i64| (0..n as i64).map(move |i| i * k - (n as i64) * k / 2);
    vec![
        Volume::new(s.clone(), (0..n).map(|i| (i * 37 % 256) as u8).collect()).unwrap(),
        Volume::new(
            s.clone(),
            ramp(1).map(|v| v.clamp(-128, 127) as i8).collect(),
        )
        .unwrap(),
        Volume::new(
            s.clone(),
            (0..n).map(|i| (i * 6007 % 65536) as u16).collect(),
        )
        .unwrap(),
        Volume::new(s.clone(), ramp(300).map(|v| v as i16).collect()).unwrap(),
        Volume::new(s.clone(), (0..n).map(|i| u32::MAX - i as u32).collect()).unwrap(),
        Volume::new(s.clone(), ramp(100_000).map(|v| v as i32).collect()).unwrap(),
        Volume::new(s.clone(), (0..n).map(|i| u64::MAX - i as u64).collect()).unwrap(),
        Volume::new(s.clone(), ramp(1 << 40).collect::<Vec<i64>>()).unwrap(),
        Volume::new(s.clone(), (0..n).map(|i| i as f32 * 0.37 - 3.0).collect()).unwrap(),
        Volume::new(s, (0..n).map(|i| (i as f64).sqrt() * 1e-300).collect()).unwrap(),
    ]
}

#[test]
fn tiff_round_trip_every_type_2d_and_3d() {
    let dir = tempfile::tempdir().unwrap();
    for shape in [vec![5usize, 7], vec![3, 4, 6]] {
        for v in every_type(&shape) {
            let p = dir.path().join(format!("{:?}.tif", v.sample_type()));
            write_tiff(&p, &v).unwrap();
            let back = read_tiff(&p).unwrap();
            assert_eq!(back, v, "{:?} {shape:?}", v.sample_type());
            let (pages, h, w, ty) = tiff_info(&p).unwrap();
            assert_eq!(
                (h, w, ty),
                (
                    shape[shape.len() - 2],
                    shape[shape.len() - 1],
                    v.sample_type()
                )
            );
            assert_eq!(pages, if shape.len() == 3 { shape[0] } else { 1 });
        }
    }
}

#[test]
fn npy_round_trip_every_type() {
    let dir = tempfile::tempdir().unwrap();
    for shape in [vec![11usize], vec![3, 4, 6], vec![2, 1, 3, 2]] {
        for v in every_type(&shape) {
            let p = dir.path().join("a.npy");
            write_npy(&p, &v).unwrap();
            assert_eq!(read_npy(&p).unwrap(), v);
            assert_eq!(read_volume(&p).unwrap(), v);
        }
    }
}

#[test]
fn reads_what_numpy_and_tifffile_write() {
    let be = read_npy(fixture("be_int16.npy")).unwrap();
    let want: Vec<i16> = (0..12).map(|i| (i - 6) * 1000).collect();
    assert_eq!(be, Volume::new(vec![3, 4], want).unwrap());

    let f = read_npy(fixture("fortran_f32.npy")).unwrap();
    assert_eq!(f.shape(), &[3, 4, 5]);
    let want: Vec<f32> = (0..60).map(|i| i as f32 / 7.0).collect();
    assert_eq!(f.to_f32_vec(), want);

    let b = read_npy(fixture("bool.npy")).unwrap();
    assert_eq!(b.data(), &VolumeData::U8(vec![1, 0, 0, 1]));

    for name in ["tifffile_u16", "tifffile_f32", "tifffile_i8"] {
        let t = read_tiff(fixture(&format!("{name}.tif"))).unwrap();
        let e = read_npy(fixture(&format!("{name}_expected.npy"))).unwrap();
        assert_eq!(t, e, "{name}");
    }
}

#[test]
fn memory_map_reads_boxes_in_any_order() {
    let f = NpyMap::open(fixture("fortran_f32.npy")).unwrap();
    let mut out = vec![0f32; 2 * 2 * 3];
    f.read_box_f32(&[1, 2, 1], &[2, 2, 3], &mut out).unwrap();
    let mut want = Vec::new();
    for i in 1..3 {
        for j in 2..4 {
            for k in 1..4 {
                want.push((i * 20 + j * 5 + k) as f32 / 7.0);
            }
        }
    }
    assert_eq!(out, want);
    assert!(f.read_box_f32(&[2, 2, 1], &[2, 2, 3], &mut out).is_err());
    let be = NpyMap::open(fixture("be_int16.npy")).unwrap();
    let mut o = vec![0f32; 2];
    be.read_box_f32(&[2, 2], &[1, 2], &mut o).unwrap();
    assert_eq!(o, vec![4000.0, 5000.0]);
}

#[test]
fn corrupt_files_are_errors_that_name_the_file() {
    for name in [
        "truncated.npy",
        "bad_magic.npy",
        "structured.npy",
        "object.npy",
        "truncated.tif",
        "garbage.tif",
        "rgb.tif",
        "mismatched_pages.tif",
    ] {
        let err = read_volume(fixture(name)).expect_err(name).to_string();
        assert!(err.contains(name), "{name}: {err}");
    }
    let e = read_volume(fixture("truncated.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("truncated"), "{e}");
    let e = read_volume(fixture("rgb.tif")).unwrap_err().to_string();
    assert!(e.contains("grayscale"), "{e}");
    assert!(read_volume(fixture("missing.tif")).is_err());
    assert!(read_volume(fixture("shapes_skimage.xyz")).is_err());
}

#[test]
fn every_truncation_of_a_tiff_and_npy_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let v = Volume::new(vec![2, 3, 4], (0..24u16).collect()).unwrap();
    for (name, write) in [("t.tif", true), ("t.npy", false)] {
        let p = dir.path().join(name);
        if write {
            write_tiff(&p, &v).unwrap();
        } else {
            write_npy(&p, &v).unwrap();
        }
        let bytes = std::fs::read(&p).unwrap();
        let q = dir.path().join(format!("cut_{name}"));
        for cut in 0..bytes.len() {
            std::fs::write(&q, &bytes[..cut]).unwrap();
            // a shorter file must never read back as the full volume, and must not panic
            if let Ok(r) = read_volume(&q) {
                assert_ne!(r, v, "{name} cut at {cut} read as complete");
            }
        }
        // flipping bytes must not panic either
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            std::fs::write(&q, &b).unwrap();
            let _ = read_volume(&q);
        }
    }
}

#[test]
fn png_previews_and_label_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("prev.png");
    let vals: Vec<f32> = (0..12).map(|v| v as f32 * 2.0 - 5.0).collect();
    save_png_preview(&p, &vals, 3, 4).unwrap();
    let back = read_png(&p).unwrap();
    assert_eq!(back.shape(), &[3, 4]);
    let VolumeData::U8(px) = back.data() else {
        panic!()
    };
    assert_eq!(px[0], 0);
    assert_eq!(px[11], 255);
    assert_eq!(px[5], ((5.0f32 / 11.0) * 255.0).round() as u8);
    let l = dir.path().join("lab.png");
    save_label_png(&l, &[-1, 0, 1, 2, 3, 25], 2, 3).unwrap();
    let back = read_png(&l).unwrap();
    assert_eq!(back.shape(), &[2, 3, 3]);
    let VolumeData::U8(rgb) = back.data() else {
        panic!()
    };
    assert_eq!(&rgb[..3], &[0, 0, 0]);
    assert_ne!(&rgb[6..9], &rgb[9..12]);
    assert!(save_png_preview(&p, &vals, 5, 4).is_err());
    // write_volume to PNG takes 2-D only
    let v3 = Volume::new(vec![1, 2, 2], vec![0u8; 4]).unwrap();
    assert!(write_volume(dir.path().join("x.png"), &v3).is_err());
}

#[test]
fn file_dataset_reads_images_and_labels_and_checks_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let img = Volume::new(vec![4, 5], (0..20u16).collect()).unwrap();
    let lab = Volume::new(vec![4, 5], (0..20).map(|v| v % 3 - 1).collect::<Vec<i32>>()).unwrap();
    let bad = Volume::new(vec![5, 4], vec![0i32; 20]).unwrap();
    write_tiff(dir.path().join("i.tif"), &img).unwrap();
    write_npy(dir.path().join("l.npy"), &lab).unwrap();
    write_npy(dir.path().join("bad.npy"), &bad).unwrap();
    let ds = FileDataset::new(
        vec![dir.path().join("i.tif")],
        Some(vec![dir.path().join("l.npy")]),
    )
    .unwrap();
    let s = ds.get(0).unwrap();
    assert_eq!(s.image.dims(), &[1, 4, 5]);
    let t: Vec<i64> = s.target.unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(t[0..4], [-1, 0, 1, -1]);
    let ds = FileDataset::new(
        vec![dir.path().join("i.tif")],
        Some(vec![dir.path().join("bad.npy")]),
    )
    .unwrap();
    let e = ds.get(0).unwrap_err().to_string();
    assert!(e.contains("bad.npy") && e.contains("do not match"), "{e}");
    assert!(FileDataset::new(vec![], Some(vec![dir.path().join("l.npy")])).is_err());
    let _ = Device::Cpu;
}

#[test]
fn big_values_convert_to_labels_with_errors_for_fractions() {
    let v = Volume::new(vec![2], vec![1.5f32, 2.0]).unwrap();
    assert!(v.to_label_tensor(&Device::Cpu).is_err());
    assert_eq!(
        v.convert(SampleType::U8).data(),
        &VolumeData::U8(vec![2, 2])
    );
}
