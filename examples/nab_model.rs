//! Model-level NAB harness: runs every NAB file through `SeriesModel` and the record-level
//! score path exactly as a job with `bucket_span` = the file's median interval and one
//! `mean(value)` detector would, and writes per-row scores for `eval/nab/model_eval.py`.
//!
//! Usage: nab_model <nab data dir> <output file>
//! Output: one line per file: `category/file.csv<TAB>normalised scores<TAB>log scores`, each a
//! comma-separated list with one score per row (a row inherits its bucket's score).
//! - normalised: `normalise(raw_score(p), p)/100` when p < 0.035, else 0 (= initial_record_score/100);
//! - log: min(1, −log10(p)/300), the normaliser-free variant.

use anomalyd_native::analysis::model::{ModelConfig, SeriesModel, Side};
use anomalyd_native::analysis::score::{raw_score, Normalizer, RECORD_PROBABILITY_THRESHOLD};
use anomalyd_native::time::TimeFormat;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

fn read_file(path: &std::path::Path, format: &TimeFormat) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(path).expect("read csv");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (t, v) = line.split_once(',')?;
            Some((format.parse_ms(t.trim().as_bytes())? / 1000, v.trim().parse().ok()?))
        })
        .collect()
}

fn median_interval(rows: &[(i64, f64)]) -> i64 {
    let mut gaps: Vec<i64> = rows.windows(2).map(|w| w[1].0 - w[0].0).filter(|&g| g > 0).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(300).max(1)
}

/// Scores one file: per-row (normalised, log) scores, time spent in the model, buckets, model bytes.
fn score_file(rows: &[(i64, f64)]) -> (Vec<f64>, Vec<f64>, Duration, usize, usize) {
    let span = median_interval(rows);
    let cfg = ModelConfig::new(span, Side::Both, false);
    let mut model = SeriesModel::new(&cfg);
    let mut normalizer = Normalizer::new(span);
    let (mut norm, mut log) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    let mut spent = Duration::ZERO;
    let mut buckets = 0;
    let mut i = 0;
    while i < rows.len() {
        let start = rows[i].0.div_euclid(span) * span;
        let mut j = i;
        let mut sum = 0.0;
        while j < rows.len() && rows[j].0.div_euclid(span) * span == start {
            sum += rows[j].1;
            j += 1;
        }
        let count = (j - i) as f64;
        let clock = Instant::now();
        let obs = model.observe(&cfg, start, sum / count, count);
        spent += clock.elapsed();
        buckets += 1;
        let p = obs.probability;
        let raw = raw_score(p);
        normalizer.observe(start, raw);
        let n = if p < RECORD_PROBABILITY_THRESHOLD { normalizer.normalise(raw, p) / 100.0 } else { 0.0 };
        let l = (-p.log10() / 300.0).clamp(0.0, 1.0);
        for _ in i..j {
            norm.push(n);
            log.push(l);
        }
        i = j;
    }
    (norm, log, spent, buckets, model.memory_bytes())
}

fn join(scores: &[f64]) -> String {
    let mut s = String::with_capacity(scores.len() * 8);
    for (k, v) in scores.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        write!(s, "{v}").unwrap();
    }
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (data, out) = (std::path::Path::new(&args[1]), &args[2]);
    let format = TimeFormat::compile("yyyy-MM-dd HH:mm:ss").unwrap();
    let mut categories: Vec<_> = std::fs::read_dir(data).unwrap().flatten().filter(|e| e.path().is_dir()).collect();
    categories.sort_by_key(|e| e.file_name());
    let mut text = String::new();
    let (mut spent, mut buckets, mut bytes, mut files) = (Duration::ZERO, 0usize, 0usize, 0usize);
    for cat in categories {
        let mut names: Vec<_> = std::fs::read_dir(cat.path()).unwrap().flatten().map(|e| e.path()).collect();
        names.sort();
        for path in names.into_iter().filter(|p| p.extension().is_some_and(|e| e == "csv")) {
            let rows = read_file(&path, &format);
            let (norm, log, t, b, m) = score_file(&rows);
            assert_eq!(norm.len(), rows.len());
            spent += t;
            buckets += b;
            files += 1;
            bytes = bytes.max(m);
            let name = format!("{}/{}", cat.file_name().to_string_lossy(), path.file_name().unwrap().to_string_lossy());
            writeln!(text, "{name}\t{}\t{}", join(&norm), join(&log)).unwrap();
        }
    }
    std::fs::write(out, text).unwrap();
    eprintln!(
        "{files} files, {buckets} buckets, model {:.3} s = {:.2} M updates/s, {} bytes/series",
        spent.as_secs_f64(),
        buckets as f64 / spent.as_secs_f64() / 1e6,
        bytes
    );
}
