//! The shipped model on the corpus: TEST-split accuracy floors (a regression fails CI), the
//! shipped file is exactly what training produces, and training is deterministic.
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
    // Targets: F1 >= 0.975, FPR <= 0.004. Floors a little under them.
    assert!(report.f1 >= 0.970, "F1 {:.4} under floor", report.f1);
    assert!(report.fpr <= 0.006, "FPR {:.4} over floor", report.fpr);
    assert!(report.auc >= 0.998, "AUC {:.4} under floor", report.auc);
}

#[test]
fn shipped_model_is_reproduced_by_training() {
    let bytes = corpus::train(&corpus_dir()).expect("train");
    let shipped =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("model/default.bin")).unwrap();
    assert!(bytes.len() <= 5 * 1024 * 1024);
    assert!(
        bytes == shipped,
        "crates/spam/model/default.bin is stale: regenerate it (see crates/spam/README.md)"
    );
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
