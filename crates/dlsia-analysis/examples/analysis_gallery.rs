//! Writes one of every analysis output into a folder, from synthetic data: a fiber volume's
//! components, lengths (CSV + histogram) and direction distribution (JSON + Hammer maps), a
//! latent-space embedding (PCA and UMAP scatter plots with their scores), training curves, an
//! overlay and a heat map.
//!
//! ```text
//! cargo run --release -p dlsia-analysis --example analysis_gallery -- OUT_DIR
//! ```

use std::f64::consts::PI;
use std::path::PathBuf;

use anyhow::Result;
use dlsia_analysis::ccl::{connected_components, Connectivity};
use dlsia_analysis::embed::{knn_accuracy, silhouette, Pca};
use dlsia_analysis::fiber::{
    fibers_to_csv, measure_fibers, orientation_distribution, OrientationOptions,
};
use dlsia_analysis::histogram::Histogram;
use dlsia_analysis::plot::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

fn main() -> Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "gallery".into()));
    std::fs::create_dir_all(&out)?;
    let mut rng = StdRng::seed_from_u64(0);

    // A 96³ volume of 40 fibers, mostly along x, radius 2, random lengths 15..60.
    let n = 96usize;
    let mut vol = vec![0u8; n * n * n];
    for _ in 0..40 {
        let theta: f64 = rng.random_range(-0.3..0.3);
        let phi: f64 = rng.random_range(-PI..PI);
        let dir = [
            theta.sin() * phi.cos(),
            theta.sin() * phi.sin(),
            theta.cos(),
        ];
        let len: f64 = rng.random_range(15.0..60.0);
        let c = [0, 1, 2].map(|_| rng.random_range(10.0..86.0));
        for (i, v) in vol.iter_mut().enumerate() {
            let p = [(i / (n * n)) as f64, ((i / n) % n) as f64, (i % n) as f64];
            let d = [0, 1, 2].map(|k| p[k] - c[k]);
            let t: f64 = (0..3).map(|k| d[k] * dir[k]).sum();
            let r2: f64 = (0..3).map(|k| (d[k] - t * dir[k]).powi(2)).sum();
            if t.abs() <= len / 2.0 && r2 <= 4.0 {
                *v = 1;
            }
        }
    }
    let labels = connected_components(&vol, &[n, n, n], Connectivity::TwentySix)?.dust(20);
    std::fs::write(out.join("components.csv"), labels.statistics().to_csv())?;
    let fibers = measure_fibers(&labels, [1.0; 3])?;
    std::fs::write(out.join("fibers.csv"), fibers_to_csv(&fibers))?;
    let lengths: Vec<f64> = fibers.iter().map(|f| f.length).collect();
    let hist = Histogram::new(&lengths, 12, None)?;
    histogram_svg(
        out.join("fiber_lengths.svg"),
        "Fiber lengths",
        "length (voxels)",
        &hist,
    )?;
    let dist = orientation_distribution(&vol, [n, n, n], &OrientationOptions::default())?;
    std::fs::write(out.join("orientation.json"), serde_json::to_string(&dist)?)?;
    hammer_png(
        out.join("orientation.png"),
        &dist.grid,
        &dist.values,
        720,
        Colormap::Viridis,
    )?;
    hammer_svg(
        out.join("orientation.svg"),
        "Fiber directions (autocorrelation, r = 30)",
        &dist.grid,
        &dist.values,
        Colormap::Viridis,
    )?;
    println!(
        "{} fibers, peak direction {:?}",
        labels.n_components(),
        dist.peak_direction()
    );

    // Latent space: four Gaussian clusters in 16-D.
    let noise = Normal::new(0.0f32, 1.0)?;
    let (mut data, mut classes) = (Vec::new(), Vec::new());
    for c in 0..4u32 {
        for _ in 0..100 {
            for d in 0..16 {
                data.push(if d == c as usize { 8.0 } else { 0.0 } + noise.sample(&mut rng));
            }
            classes.push(c);
        }
    }
    let pca = Pca::fit(&data, 16, 2)?.transform(&data)?;
    scatter_svg(
        out.join("latent_pca.svg"),
        "PCA of the latent space",
        &pca,
        &classes,
    )?;
    println!(
        "PCA: k-NN accuracy {:.3}, silhouette {:.3}",
        knn_accuracy(&pca, 2, &classes, 10)?,
        silhouette(&pca, 2, &classes)?
    );
    #[cfg(feature = "umap")]
    {
        use dlsia_analysis::embed::{umap, UmapParams};
        let y = umap(&data, 16, &UmapParams::default())?;
        scatter_svg(
            out.join("latent_umap.svg"),
            "UMAP of the latent space",
            &y,
            &classes,
        )?;
        println!(
            "UMAP: k-NN accuracy {:.3}, silhouette {:.3}",
            knn_accuracy(&y, 2, &classes, 10)?,
            silhouette(&y, 2, &classes)?
        );
    }

    // Training curves, an overlay and an uncertainty map on a 64² slice.
    let train: Vec<(f64, f64)> = (1..=50)
        .map(|e| (e as f64, 2.0 * (-0.08 * e as f64).exp() + 0.05))
        .collect();
    let val: Vec<(f64, f64)> = (1..=50)
        .map(|e| (e as f64, 2.2 * (-0.07 * e as f64).exp() + 0.1))
        .collect();
    training_curves_svg(
        out.join("loss.svg"),
        "Training",
        ("epoch", "loss"),
        &[
            Series {
                name: "train",
                points: &train,
            },
            Series {
                name: "validation",
                points: &val,
            },
        ],
        true,
    )?;
    let z = n / 2;
    let slice: Vec<f32> = (0..n * n)
        .map(|i| vol[z * n * n + i] as f32 + noise.sample(&mut rng) * 0.3)
        .collect();
    let seg: Vec<u32> = labels.labels()[z * n * n..(z + 1) * n * n].to_vec();
    segmentation_overlay_png(out.join("overlay.png"), &slice, &seg, (n, n), 0.6, 4)?;
    let p: Vec<f32> = slice
        .iter()
        .map(|v| 1.0 / (1.0 + (-(v - 0.5) * 6.0).exp()))
        .collect();
    let entropy: Vec<f32> = p
        .iter()
        .map(|&q| -(q * q.max(1e-7).ln() + (1.0 - q) * (1.0 - q).max(1e-7).ln()))
        .collect();
    heatmap_png(
        out.join("probability.png"),
        &p,
        (n, n),
        &HeatmapOptions {
            scale: 4,
            range: Some((0.0, 1.0)),
            ..Default::default()
        },
    )?;
    heatmap_png(
        out.join("uncertainty.png"),
        &entropy,
        (n, n),
        &HeatmapOptions {
            scale: 4,
            colormap: Colormap::Magma,
            ..Default::default()
        },
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
