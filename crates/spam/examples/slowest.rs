//! Lists the slowest TEST messages to scan (profiling aid).
use outguard_spam::{Engine, ScanContext, corpus, features, limits, parse};
use std::time::Instant;
fn main() {
    let dir = std::path::PathBuf::from("../shared/corpus/spamassassin");
    let e = Engine::builtin();
    let mut v: Vec<(f64, f64, f64, usize, String)> = Vec::new();
    for ent in corpus::read_manifest(&dir)
        .unwrap()
        .into_iter()
        .filter(|e| e.split == "test")
    {
        let raw = std::fs::read(dir.join(&ent.file)).unwrap();
        let t = Instant::now();
        let d = parse::parse(&raw);
        let tp = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let _ = mail_parser::MessageParser::default().parse(&raw[..]);
        let _tmp = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let _ = outguard_spam::html::analyse(&d.html);
        let _th = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let _ = mail_parser::decoders::html::html_to_text(&d.html);
        let _tt = t.elapsed().as_secs_f64() * 1e3;
        let b = limits::Budget::new(Instant::now(), limits::SCAN_BUDGET);
        let t = Instant::now();
        let n = features::indices(&d, &b).len();
        let tf = t.elapsed().as_secs_f64() * 1e3;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            e.scan(&raw, &ScanContext::default());
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        v.push((
            best,
            tp,
            tf,
            raw.len(),
            format!(
                "{} feats {n} text {} html {}",
                ent.file,
                d.text.len(),
                d.html.len()
            ),
        ));
    }
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    for r in v.iter().take(12) {
        println!(
            "scan {:.2} parse {:.2} feats {:.2} bytes {} {}",
            r.0, r.1, r.2, r.3, r.4
        );
    }
}
