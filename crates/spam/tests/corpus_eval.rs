//! The shipped model on the SpamAssassin corpus: TEST-split accuracy floors (a regression fails
//! CI), and training is deterministic and never reads TEST. The shipped file is trained on
//! SpamAssassin TRAIN + the modern corpus's train split, which a fresh clone does not have: its
//! byte-exact reproduction is checked by `bench/scan.sh --check-model` (README "The shipped
//! model"), not here.
//! Corpus: found by `corpus::locate` ($OUTGUARD_CORPUS, ../shared beside the repository, or the
//! cache `scripts/fetch-corpus` fills); missing corpus = failure.

use std::path::PathBuf;

use outguard_spam::{Engine, corpus};

fn corpus_dir() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    corpus::locate(&repo).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn shipped_model_meets_floor_on_test_split() {
    let report = corpus::eval(&Engine::builtin(), &corpus_dir()).expect("eval");
    eprintln!("{report}");
    assert_eq!(report.messages, 1197);
    // Targets: F1 >= 0.975, FPR <= 0.004. The defaults are calibrated on modern validation mail
    // (issue 19), which costs SpamAssassin recall: F1 0.9586 at FPR 0.0036 when shipped, under
    // the F1 target (README "Figures"). The floors hold that figure against regressions.
    assert!(report.f1 >= 0.950, "F1 {:.4} under floor", report.f1);
    assert!(report.fpr <= 0.004, "FPR {:.4} over target", report.fpr);
    assert!(report.auc >= 0.998, "AUC {:.4} under floor", report.auc);
}

#[test]
fn shipped_model_fits_the_size_budget_and_carries_calibrated_defaults() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("model/default.bin");
    let shipped = std::fs::read(&path).unwrap();
    assert!(shipped.len() <= 5 * 1024 * 1024, "{} bytes", shipped.len());
    let e = Engine::from_model_bytes(&shipped).expect("the shipped model loads");
    // The defaults chosen on modern validation when the model was trained (README).
    assert_eq!(e.default_thresholds(), (3.59, 5.12));
    assert_eq!(Engine::builtin().thresholds(), (3.59, 5.12));
}

#[test]
fn training_twice_gives_identical_bytes_and_never_reads_test() {
    let dir = corpus_dir();
    let all = corpus::read_manifest(&dir).unwrap();
    let subset: Vec<_> = all
        .iter()
        .filter(|e| e.split == "train")
        .step_by(8)
        .cloned()
        .collect();
    let a = corpus::train_entries(&dir, &subset).unwrap();
    let b = corpus::train_entries(&dir, &subset).unwrap();
    assert_eq!(a, b);
    assert!(Engine::from_model_bytes(&a).is_ok());
    let with_test: Vec<_> = all
        .iter()
        .filter(|e| e.split == "test")
        .take(1)
        .cloned()
        .collect();
    assert!(corpus::train_entries(&dir, &with_test).is_err());
}
