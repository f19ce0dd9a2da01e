//! Every plot writes a readable file whose content is what was asked for.

use dlsia_analysis::fiber::SphereGrid;
use dlsia_analysis::histogram::Histogram;
use dlsia_analysis::plot::*;

fn rgb(img: &image::RgbImage, x: u32, y: u32) -> [u8; 3] {
    img.get_pixel(x, y).0
}

#[test]
fn overlay_blends_class_colours_over_the_grey_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overlay.png");
    // 2×3 ramp 0..5, labels: 0 (show image), 1, 2 …
    let image: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let labels = [0, 1, 0, 2, 0, 11];
    segmentation_overlay_png(&path, &image, &labels, (2, 3), 0.5, 4).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (12, 8));
    assert_eq!(rgb(&img, 0, 0), [0, 0, 0]); // minimum, label 0: black
    assert_eq!(rgb(&img, 11, 0), [102, 102, 102]); // value 2 of 0..5, label 0
                                                   // value 1 → grey 51, label 1 → class colour 0 (31, 119, 180), half and half.
    assert_eq!(rgb(&img, 5, 1), [41, 85, 116]);
    // label 11 → class colour 10 % 10 = 0 over white (value 5).
    assert_eq!(rgb(&img, 9, 7), [143, 187, 218]);
    assert!(segmentation_overlay_png(&path, &image, &labels[..5], (2, 3), 0.5, 1).is_err());
    assert!(segmentation_overlay_png(&path, &image, &labels, (2, 3), 1.5, 1).is_err());
}

#[test]
fn heatmap_maps_the_range_to_the_colour_map_and_draws_a_bar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heat.png");
    let values = [0.0f32, 0.25, 0.5, f32::NAN];
    let opts = HeatmapOptions {
        colormap: Colormap::Magma,
        range: Some((0.0, 0.5)),
        scale: 10,
    };
    heatmap_png(&path, &values, (2, 2), &opts).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    assert!(img.width() > 20 + 12 + 16 && img.height() >= 120);
    assert_eq!(rgb(&img, 5, 10), Colormap::Magma.color(0.0));
    assert_eq!(rgb(&img, 15, 10), Colormap::Magma.color(0.5));
    assert_eq!(rgb(&img, 5, 20), Colormap::Magma.color(1.0));
    assert_eq!(rgb(&img, 15, 20), [255, 255, 255]); // NaN
                                                    // The colour bar: top = high end, bottom = low end.
    assert_eq!(rgb(&img, 20 + 12 + 8, 5), Colormap::Magma.color(1.0));
    assert_eq!(rgb(&img, 20 + 12 + 8, 5 + 119), Colormap::Magma.color(0.0));
    let bad = HeatmapOptions {
        range: Some((1.0, 0.0)),
        ..opts
    };
    assert!(heatmap_png(&path, &values, (2, 2), &bad).is_err());
}

#[test]
fn training_curves_svg_has_each_series_and_log_axis_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("curves.svg");
    let train: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 1.0 / e as f64)).collect();
    let val: Vec<(f64, f64)> = (1..=20).map(|e| (e as f64, 1.5 / e as f64)).collect();
    let series = [
        Series {
            name: "train loss",
            points: &train,
        },
        Series {
            name: "validation loss",
            points: &val,
        },
    ];
    training_curves_svg(&path, "Loss", ("epoch", "loss"), &series, true).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("train loss") && svg.contains("validation loss") && svg.contains("epoch"));
    // Each curve is one polyline of its 20 points (grid lines and legend marks have 2).
    let long_lines = svg
        .split("<polyline")
        .skip(1)
        .filter(|p| {
            p.split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .split_whitespace()
                .count()
                == 20
        })
        .count();
    assert_eq!(long_lines, 2);
    let zero = [(1.0, 0.0)];
    let s0 = [Series {
        name: "z",
        points: &zero,
    }];
    assert!(training_curves_svg(&path, "t", ("x", "y"), &s0, true).is_err());
    assert!(training_curves_svg(&path, "t", ("x", "y"), &s0, false).is_ok());
    assert!(training_curves_svg(&path, "t", ("x", "y"), &[], false).is_err());
}

#[test]
fn histogram_and_scatter_svgs_draw_their_marks() {
    let dir = tempfile::tempdir().unwrap();
    let hpath = dir.path().join("hist.svg");
    let h = Histogram::new(&[1.0, 2.0, 2.5, 3.0, 9.0], 4, None).unwrap();
    histogram_svg(&hpath, "Fiber lengths", "length (voxels)", &h).unwrap();
    let svg = std::fs::read_to_string(&hpath).unwrap();
    assert!(svg.contains("Fiber lengths"));
    // One filled rectangle per bin (plus the background).
    assert!(svg.matches("<rect").count() >= 4);

    let bad = Histogram {
        edges: vec![0.0, f64::NAN],
        counts: vec![1],
    };
    assert!(histogram_svg(&hpath, "x", "y", &bad).is_err());

    let spath = dir.path().join("scatter.svg");
    let pts = [0.0f32, 0.0, 1.0, 1.0, 5.0, 5.0, 6.0, 5.0];
    scatter_svg(&spath, "Latent space", &pts, &[7, 7, 9, 9]).unwrap();
    let svg = std::fs::read_to_string(&spath).unwrap();
    assert!(svg.contains("class 7") && svg.contains("class 9"));
    assert_eq!(
        svg.matches("<circle").count(),
        4 + 2,
        "four points + two legend marks"
    );
    assert!(scatter_svg(&spath, "x", &pts[..3], &[1]).is_err());
}

#[test]
fn hammer_maps_put_a_pole_at_the_top() {
    let dir = tempfile::tempdir().unwrap();
    let grid = SphereGrid::new(18, 36).unwrap();
    // Value = sin(latitude) of each cell: high at the top of the map.
    let values: Vec<f64> = (0..grid.len())
        .map(|k| grid.cell_centre(k / 36, k % 36).1.sin())
        .collect();
    let png = dir.path().join("hammer.png");
    hammer_png(&png, &grid, &values, 200, Colormap::Viridis).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.height(), 110);
    // A pixel shows the colour of the grid cell its inverse projection falls in.
    let (lo, hi) = (values[0], values[grid.len() - 1]);
    let expected = |px: u32, py: u32| {
        let s2 = std::f64::consts::SQRT_2;
        let x = (px as f64 + 0.5) / 200.0 * 4.0 * s2 - 2.0 * s2;
        let y = s2 - (py as f64 + 0.5) / 100.0 * 2.0 * s2;
        let (lon, lat) = dlsia_analysis::fiber::hammer_inverse(x, y).unwrap();
        let (r, c) = grid.cell_of(lon, lat);
        Colormap::Viridis.color((values[r * 36 + c] - lo) / (hi - lo))
    };
    for &(px, py) in &[(115, 12), (115, 88), (40, 50), (170, 30)] {
        let got = rgb(&img, px, py + 5);
        assert!(
            got == expected(px, py) || got == [200, 200, 200],
            "{px},{py}: {got:?}"
        );
    }
    // High latitudes are bright (viridis green channel rises with the value), low ones dark.
    assert!(rgb(&img, 115, 5 + 12)[1] > 200 && rgb(&img, 115, 5 + 88)[1] < 60);
    assert_eq!(rgb(&img, 1, 6), [255, 255, 255], "outside the ellipse");
    let svg = dir.path().join("hammer.svg");
    hammer_svg(&svg, "Fiber directions", &grid, &values, Colormap::Viridis).unwrap();
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("<polygon").count(), grid.len());
    assert!(hammer_png(&png, &grid, &values[1..], 200, Colormap::Viridis).is_err());
}
