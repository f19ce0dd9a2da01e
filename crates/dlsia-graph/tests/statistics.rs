//! Statistical properties of the sampler over many seeds, and agreement of its distribution with
//! graphs sampled by the original (summary statistics over 300 numpy seeds per setting, written
//! by tools/export_sms_graph.py).

mod common;

use common::{params_from_settings, read_json};
use dlsia_graph::multi_source::pick_count;
use dlsia_graph::{
    count_parameters, CountSpec, DegreeBound, DilationMode, Quirks, SampleTrace, SizingSettings,
    SmsGraphParams, SpatialDims,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Upper quantile of the chi-square distribution (Wilson–Hilferty), z = 3.719 ⇔ p = 1e-4.
fn chi2_critical(df: usize) -> f64 {
    let k = df as f64;
    let z = 3.719;
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

/// Chi-square statistic of observed counts against expected probabilities, merging the tail
/// bins until every expected count is ≥ 5; returns (statistic, degrees of freedom).
fn chi_square(observed: &[usize], expected_p: &[f64]) -> (f64, usize) {
    let total: usize = observed.iter().sum();
    let mut bins: Vec<(f64, f64)> = Vec::new();
    let (mut o, mut e) = (0.0, 0.0);
    for (&ob, &p) in observed.iter().zip(expected_p) {
        o += ob as f64;
        e += p * total as f64;
        if e >= 5.0 {
            bins.push((o, e));
            o = 0.0;
            e = 0.0;
        }
    }
    if let Some(last) = bins.last_mut() {
        last.0 += o;
        last.1 += e;
    }
    let stat = bins.iter().map(|(o, e)| (o - e).powi(2) / e).sum();
    (stat, bins.len() - 1)
}

fn traces(p: &SmsGraphParams, n: usize, seed: u64) -> Vec<SampleTrace> {
    let sampler = p.clone().check().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| sampler.sample_traced(&mut rng)).collect()
}

#[test]
fn same_seed_same_graph_and_seeds_differ() {
    let mut p = SmsGraphParams::new(16, vec![1, 2, 3, 4]);
    p.hidden_out_channels = vec![2, 3, 5];
    p.ll_max_degree = Some(DegreeBound::Count(5));
    let s = p.check().unwrap();
    let mut distinct = std::collections::HashSet::new();
    for seed in 0..200 {
        let g = s.sample(seed);
        assert_eq!(g, s.sample(seed));
        distinct.insert(g);
    }
    assert!(
        distinct.len() >= 195,
        "{} distinct graphs of 200",
        distinct.len()
    );
}

#[test]
fn degrees_stay_within_bounds() {
    let bounds = [
        (DegreeBound::Count(1), None),
        (DegreeBound::Count(1), Some(DegreeBound::Count(3))),
        (DegreeBound::Count(2), Some(DegreeBound::Count(5))),
        (DegreeBound::Fraction(0.2), Some(DegreeBound::Fraction(0.6))),
    ];
    for quirks in [Quirks::DLSIA, Quirks::FIXED] {
        for (min, max) in bounds {
            let mut p = SmsGraphParams::new(12, vec![1, 2]);
            p.ll_min_degree = min;
            p.ll_max_degree = max;
            p.ll_gamma = Some(0.5);
            p.quirks = quirks;
            for t in traces(&p, 300, 11) {
                for ii in 0..11 {
                    let k = t.ll_edges.iter().filter(|e| e.0 == ii + 1).count();
                    let (lo, hi) = dlsia_graph::ll::degree_bounds(12, ii, min, max, &quirks);
                    assert!(
                        (lo..=hi).contains(&k),
                        "{min:?} {max:?} {quirks:?}: {k} ∉ {lo}..={hi}"
                    );
                    assert!(hi <= 11 - ii);
                }
            }
        }
    }
    // dlsia's default (max degree None) gives every hidden node exactly one out-edge.
    let p = SmsGraphParams::new(12, vec![1, 2]);
    assert!(traces(&p, 300, 5).iter().all(|t| t.ll_edges.len() == 11));
    // The fixed reading of None: some nodes get more.
    let mut p = SmsGraphParams::new(12, vec![1, 2]);
    p.quirks = Quirks::FIXED;
    assert!(traces(&p, 300, 5).iter().any(|t| t.ll_edges.len() > 11));
}

#[test]
fn degree_distribution_follows_power_law() {
    // Node 1 of 12 under the fixed rules, max None: k ∈ 1..=11 with P(k) ∝ k^-1.5.
    let mut p = SmsGraphParams::new(12, vec![1]);
    p.ll_gamma = Some(1.5);
    p.quirks = Quirks::FIXED;
    let mut counts = vec![0usize; 11];
    for t in traces(&p, 4000, 21) {
        counts[t.ll_edges.iter().filter(|e| e.0 == 1).count() - 1] += 1;
    }
    let w: Vec<f64> = (1..=11).map(|k| (k as f64).powf(-1.5)).collect();
    let z: f64 = w.iter().sum();
    let expected: Vec<f64> = w.iter().map(|x| x / z).collect();
    let (stat, df) = chi_square(&counts, &expected);
    assert!(
        stat < chi2_critical(df),
        "chi2 {stat:.1} with {df} df; counts {counts:?}"
    );
}

#[test]
fn edge_lengths_follow_exp_minus_alpha_d() {
    // Out-degree 1 (dlsia's default max degree): node ii+1 links to distance d ∈ 1..=N−ii−1
    // with P(d) ∝ exp(−alpha·d). The expected length histogram over all nodes is the average
    // of these truncated exponentials. Test: chi-square at p = 1e-4 and total variation < 0.01.
    let n = 12;
    let alpha = 0.6;
    let mut p = SmsGraphParams::new(n, vec![1]);
    p.ll_alpha = alpha;
    let mut counts = vec![0usize; n - 1];
    for t in traces(&p, 3000, 7) {
        for (u, v) in t.ll_edges {
            counts[v - u - 1] += 1;
        }
    }
    let mut expected = vec![0.0; n - 1];
    for ii in 0..n - 1 {
        let c = n - ii - 1;
        let z: f64 = (1..=c).map(|d| (-alpha * d as f64).exp()).sum();
        for d in 1..=c {
            expected[d - 1] += (-alpha * d as f64).exp() / z / (n - 1) as f64;
        }
    }
    let (stat, df) = chi_square(&counts, &expected);
    assert!(
        stat < chi2_critical(df),
        "chi2 {stat:.1} with {df} df; counts {counts:?}"
    );
    let total: usize = counts.iter().sum();
    let tv: f64 = 0.5
        * counts
            .iter()
            .zip(&expected)
            .map(|(&o, e)| (o as f64 / total as f64 - e).abs())
            .sum::<f64>();
    assert!(tv < 0.01, "total variation {tv}");
}

#[test]
fn edge_lengths_without_replacement_at_alpha_zero() {
    // The ensemble setting: alpha 0, gamma 0, max degree = layers (dlsia: ≤ layers−1). Node ii+1
    // has c = N−ii−1 candidates and a uniform degree in 1..=c, each candidate included with
    // probability E[k]/c = (c+1)/(2c). Total variation between length histograms < 0.01.
    let n = 16;
    let mut p = SmsGraphParams::new(n, vec![1]);
    p.ll_alpha = 0.0;
    p.ll_gamma = Some(0.0);
    p.ll_max_degree = Some(DegreeBound::Count(n));
    let mut counts = vec![0usize; n - 1];
    for t in traces(&p, 3000, 9) {
        for (u, v) in t.ll_edges {
            counts[v - u - 1] += 1;
        }
    }
    let mut expected = vec![0.0; n - 1];
    for ii in 0..n - 1 {
        let c = (n - ii - 1) as f64;
        for slot in expected.iter_mut().take(n - ii - 1) {
            *slot += (c + 1.0) / (2.0 * c);
        }
    }
    let z: f64 = expected.iter().sum();
    let total: usize = counts.iter().sum();
    let tv: f64 = 0.5
        * counts
            .iter()
            .zip(&expected)
            .map(|(&o, e)| (o as f64 / total as f64 - e / z).abs())
            .sum::<f64>();
    assert!(tv < 0.01, "total variation {tv}; counts {counts:?}");
}

#[test]
fn input_and_output_edge_counts_follow_il_lo_io() {
    for (il, lo, io) in [(0.25, 0.25, true), (0.0, 1.0, false), (0.995, 0.5, true)] {
        let mut p = SmsGraphParams::new(14, vec![1, 2]);
        p.ll_max_degree = Some(DegreeBound::Count(4));
        (p.il, p.lo, p.io) = (il, lo, io);
        for t in traces(&p, 200, 3) {
            let g = &t.graph;
            let c = &t.classes;
            let want_in =
                c.must_have_inputs.len() + pick_count(c.il_skip().len(), il) + usize::from(io);
            let want_out =
                c.must_have_outputs.len() + pick_count(c.lo_skip().len(), lo) + usize::from(io);
            assert_eq!(g.out_degrees()[0], want_in);
            assert_eq!(g.in_degrees()[g.output()], want_out);
            assert_eq!(g.edge(0, g.output()).is_some(), io);
        }
    }
}

#[test]
fn triu_quirk_drops_edges_only_when_replicated() {
    let mut p = SmsGraphParams::new(10, vec![1]);
    p.ll_max_degree = Some(DegreeBound::Count(4));
    let kept = |t: &SampleTrace| t.ll_adjacency.iter().map(Vec::len).sum::<usize>();
    let dlsia = traces(&p, 300, 1);
    let dropped = dlsia.iter().filter(|t| kept(t) < t.ll_edges.len()).count();
    assert!(
        dropped > 100,
        "dlsia's quirk should drop edges in many graphs, did in {dropped}"
    );
    p.quirks = Quirks::FIXED;
    assert!(traces(&p, 300, 1)
        .iter()
        .all(|t| kept(t) == t.ll_edges.len()));
}

#[test]
fn labels_follow_a_topological_order_and_every_mode_validates() {
    for dims in [SpatialDims::One, SpatialDims::Two, SpatialDims::Three] {
        for mode in [
            DilationMode::Edges,
            DilationMode::Node,
            DilationMode::NodeCyclic,
        ] {
            for quirks in [Quirks::DLSIA, Quirks::FIXED] {
                let mut p = SmsGraphParams::new(9, vec![1, 2, 4]);
                p.dims = dims;
                p.dilation_mode = mode;
                p.quirks = quirks;
                p.in_channels = 3;
                p.hidden_out_channels = vec![1, 4];
                for t in traces(&p, 100, 17) {
                    let g = &t.graph;
                    for (u, e) in g.edges() {
                        assert!(u < e.to, "labels are topological");
                        if mode == DilationMode::NodeCyclic && e.to != g.output() {
                            assert_eq!(e.dilation, p.dilation_choices[(e.to - 1) % 3]);
                        }
                    }
                    let sizes_zero = g.nodes().iter().all(|n| n.size == 0);
                    assert!(sizes_zero);
                }
            }
        }
    }
}

#[test]
fn node_sizes_follow_sizing_settings() {
    let mut p = SmsGraphParams::new(10, vec![1, 2]);
    p.sizing = SizingSettings {
        stride_base: 2,
        min_power: -2,
        max_power: 1,
    };
    p.in_size = 64;
    p.out_size = 32;
    let mut seen = std::collections::BTreeMap::new();
    for t in traces(&p, 400, 2) {
        let g = &t.graph;
        assert_eq!(g.node(0).unwrap().size, 0);
        assert_eq!(g.node(g.output()).unwrap().size, -1);
        for n in &g.nodes()[1..g.node_count() - 1] {
            *seen.entry(n.size).or_insert(0usize) += 1;
        }
    }
    // Uniform over −2..=1: four powers, each about a quarter.
    let total: usize = seen.values().sum();
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![-2, -1, 0, 1]);
    let (stat, df) = chi_square(&seen.values().copied().collect::<Vec<_>>(), &[0.25; 4]);
    assert!(stat < chi2_critical(df), "{seen:?} of {total}");
    p.dims = SpatialDims::Three;
    assert!(traces(&p, 50, 2)
        .iter()
        .all(|t| t.graph.nodes().iter().all(|n| n.size == 0)));
}

/// Names of the statistics tools/export_sms_graph.py computes, in [`stats`]' order.
const STAT_KEYS: [&str; 16] = [
    "nodes",
    "edges",
    "input_out_degree",
    "output_in_degree",
    "hidden_edges",
    "depth",
    "ll_raw_edges",
    "ll_kept_edges",
    "raw_length_mean",
    "raw_length_1",
    "raw_length_2",
    "raw_length_3plus",
    "hidden_dilation_mean",
    "hidden_channels_mean",
    "unsorted_order",
    "parameters",
];

/// The statistics tools/export_sms_graph.py computes, in its order.
fn stats(t: &SampleTrace, spec: &CountSpec) -> Vec<f64> {
    let g = &t.graph;
    let out = g.output();
    let hidden: Vec<_> = g.edges().filter(|(u, e)| *u != 0 && e.to != out).collect();
    let lengths: Vec<usize> = t.ll_edges.iter().map(|(u, v)| v - u).collect();
    let frac = |f: &dyn Fn(usize) -> bool| {
        if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().filter(|&&l| f(l)).count() as f64 / lengths.len() as f64
        }
    };
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let order: Vec<usize> = g.nodes().iter().map(|n| n.id).collect();
    let hidden_ch: Vec<f64> = g
        .edges()
        .filter(|(u, _)| *u != 0)
        .map(|(_, e)| e.channels as f64)
        .collect();
    vec![
        g.node_count() as f64,
        g.edge_count() as f64,
        g.out_degrees()[0] as f64,
        g.in_degrees()[out] as f64,
        hidden.len() as f64,
        g.depths()[out] as f64,
        t.ll_edges.len() as f64,
        t.ll_adjacency.iter().map(Vec::len).sum::<usize>() as f64,
        mean(&lengths.iter().map(|&l| l as f64).collect::<Vec<_>>()),
        frac(&|l| l == 1),
        frac(&|l| l == 2),
        frac(&|l| l >= 3),
        mean(
            &hidden
                .iter()
                .map(|(_, e)| e.dilation as f64)
                .collect::<Vec<_>>(),
        ),
        mean(&hidden_ch),
        f64::from(u8::from(order.windows(2).any(|w| w[0] > w[1]))),
        count_parameters(g, spec).unwrap() as f64,
    ]
}

#[test]
fn distribution_matches_the_original_sampler() {
    // Python: 300 numpy seeds per setting (summary_stats.json); here 2000 StdRng draws. Each
    // mean must agree within 4.5 standard errors of the difference (p ≈ 7e-6 per statistic);
    // statistics that are constant in Python must be equal here.
    let fx = read_json("summary_stats.json");
    let n = 2000;
    let mut worst = (0.0f64, String::new());
    for (name, entry) in fx.as_object().unwrap() {
        let s = &entry["settings"];
        let p = params_from_settings(s);
        let spec = CountSpec::new(
            p.in_channels,
            s["out_channels"].as_u64().unwrap() as usize,
            p.dims,
        );
        let rows: Vec<Vec<f64>> = traces(&p, n, 1234)
            .iter()
            .map(|t| stats(t, &spec))
            .collect();
        assert_eq!(entry["stats"].as_object().unwrap().len(), STAT_KEYS.len());
        let n_py = entry["seeds"].as_f64().unwrap();
        for (i, key) in STAT_KEYS.iter().enumerate() {
            let x: Vec<f64> = rows.iter().map(|r| r[i]).collect();
            let m = x.iter().sum::<f64>() / n as f64;
            let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            let py = &entry["stats"][*key];
            let (m_py, sd_py) = (py["mean"].as_f64().unwrap(), py["sd"].as_f64().unwrap());
            let se = (sd_py * sd_py / n_py + sd * sd / n as f64).sqrt();
            if se == 0.0 {
                assert!(
                    (m - m_py).abs() < 1e-9,
                    "{name}.{key}: {m} vs constant {m_py}"
                );
                continue;
            }
            let z = (m - m_py).abs() / se;
            if z > worst.0 {
                worst = (z, format!("{name}.{key}: {m:.4} vs {m_py:.4}"));
            }
            assert!(
                z < 4.5,
                "{name}.{key}: ours {m:.4}±{sd:.4}, dlsia {m_py:.4}±{sd_py:.4}, z = {z:.2}"
            );
        }
    }
    println!("largest |z| = {:.2} ({})", worst.0, worst.1);
}

#[test]
fn the_comparison_has_power_against_the_fixed_rules() {
    // Without dlsia's quirks the default setting's graphs are measurably different (more hidden
    // edges survive, out-degrees exceed 1), so the comparison above would catch such a mix-up.
    let fx = read_json("summary_stats.json");
    let entry = &fx["default_2d"];
    let mut p = params_from_settings(&entry["settings"]);
    p.quirks = Quirks::FIXED;
    let spec = CountSpec::new(1, 1, SpatialDims::Two);
    let n = 2000;
    let kept: Vec<f64> = traces(&p, n, 1234)
        .iter()
        .map(|t| stats(t, &spec)[7])
        .collect();
    let m = kept.iter().sum::<f64>() / n as f64;
    let py = &entry["stats"]["ll_kept_edges"];
    let se = py["sd"].as_f64().unwrap() / 300f64.sqrt();
    let z = (m - py["mean"].as_f64().unwrap()).abs() / se;
    assert!(z > 10.0, "z = {z}");
}
