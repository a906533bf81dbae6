//! Replays the fuzz seed corpus (`fuzz/corpus/scan`) and every crash the fuzzer ever found
//! (`tests/regressions/`) as ordinary tests, so CI covers them without cargo-fuzz.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use outguard_spam::{Engine, Overlay, ScanContext};

fn inputs(dir: PathBuf) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn fuzz_corpus_and_regressions_scan_cleanly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = inputs(root.join("../../fuzz/corpus/scan"));
    files.extend(inputs(root.join("tests/regressions")));
    assert!(!files.is_empty(), "no fuzz seeds found");
    let engine = Engine::builtin();
    let ctx = ScanContext {
        sender_domain: Some("example.org"),
        tenant_domains: &[],
    };
    for f in files {
        let data = std::fs::read(&f).unwrap();
        let t = Instant::now();
        let v = engine.scan(&data, &ctx);
        assert!(v.score.is_finite(), "{}", f.display());
        assert!(
            v.reasons.iter().all(|r| r.tag != "SCAN_ERROR"),
            "{} panicked inside scan",
            f.display()
        );
        let _ = engine.explain(&data, &ctx, None);
        Overlay::new().learn(&engine, &data, true);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{} too slow",
            f.display()
        );
    }
}
