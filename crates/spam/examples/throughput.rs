//! In-process scan throughput over the corpus TEST split (used by bench/scan.sh):
//! `cargo run --release -p outguard-spam --example throughput -- ../shared/corpus/spamassassin [THREADS] [PASSES] [--json]`
//! Messages are read into memory first; each thread scans its share; msgs/s = scans / wall time.

use std::time::{Duration, Instant};

use outguard_spam::{Engine, ScanContext, corpus};

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--json").collect();
    let json = std::env::args().any(|a| a == "--json");
    let dir = std::path::PathBuf::from(
        args.first()
            .map_or("../shared/corpus/spamassassin", String::as_str),
    );
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let passes: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let msgs: Vec<Vec<u8>> = corpus::read_manifest(&dir)?
        .into_iter()
        .filter(|e| e.split == "test")
        .map(|e| std::fs::read(dir.join(&e.file)))
        .collect::<Result<_, _>>()?;
    let engine = Engine::builtin();
    let ctx = ScanContext::default();
    for m in msgs.iter().take(50) {
        engine.scan(m, &ctx); // warm-up
    }
    let start = Instant::now();
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (engine, msgs) = (&engine, &msgs);
                s.spawn(move || {
                    let mut v = Vec::new();
                    for _ in 0..passes {
                        for m in msgs.iter().skip(t).step_by(threads) {
                            let t0 = Instant::now();
                            std::hint::black_box(engine.scan(m, &ScanContext::default()));
                            v.push(t0.elapsed());
                        }
                    }
                    v
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    lat.sort();
    let rate = lat.len() as f64 / wall;
    let (p50, p95, p99, max) = (
        pct(&lat, 0.50),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
    );
    if json {
        println!(
            "{{\"messages\":{},\"threads\":{threads},\"msgs_per_s\":{rate:.1},\"p50_ms\":{p50:.3},\"p95_ms\":{p95:.3},\"p99_ms\":{p99:.3},\"max_ms\":{max:.3}}}",
            lat.len()
        );
    } else {
        println!(
            "scans {} on {threads} threads: {rate:.0} msgs/s, p50 {p50:.3} ms, p95 {p95:.3} ms, p99 {p99:.3} ms, max {max:.3} ms",
            lat.len()
        );
    }
    Ok(())
}
