//! The modern corpus layout (manifest.csv with `source_repo` and a `train`/`validation` split,
//! files `<label>/<source tag>-<id>.eml`) on a tiny synthetic fixture written for this test
//! (`tests/fixtures/modern`, not copied from any corpus): eval reads the validation split and
//! reports per tag and per source group, commercial ham on its own line; training reads only
//! `train` rows, is deterministic, and refuses a `test` row.

use std::path::PathBuf;

use outguard_spam::Engine;
use outguard_spam::corpus::{self, COMMERCIAL_HAM, Corpus};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/modern")
}

#[test]
fn eval_reads_the_validation_split_and_reports_source_groups() {
    let r = corpus::eval(&Engine::builtin(), &fixture()).expect("eval");
    assert_eq!(r.split, "validation");
    assert_eq!(r.corpus, "modern");
    assert_eq!(r.messages, 5, "only the 5 validation rows");
    let group = |g: &str| {
        r.group(g)
            .unwrap_or_else(|| panic!("no group {g}: {:?}", r.groups))
    };
    assert_eq!(group(COMMERCIAL_HAM).messages, 1);
    assert!(!group(COMMERCIAL_HAM).is_spam);
    assert_eq!(group("mailing-list ham").messages, 1);
    assert_eq!(group("milter-suite spam").messages, 1);
    assert_eq!(group("mailing-list spam").messages, 1);
    assert_eq!(group("gmail-archive spam").messages, 1);
    let tags: Vec<&str> = r.folders.iter().map(|f| f.folder.as_str()).collect();
    assert!(
        tags.contains(&"foff ham") && tags.contains(&"zorua spam"),
        "{tags:?}"
    );
    // The fixture's ham (a library notice, a list post) is not called spam at the defaults. Its
    // short DHL customs-fee lure is a known miss of the shipped model (crates/spam/README.md,
    // "Figures"), so the spam side is not pinned here.
    assert!(r.false_positives.is_empty(), "{r}");
    assert_eq!(r.confusion.tn, 2, "{r}");
    let text = r.to_string();
    assert!(
        text.contains("per source group") && text.contains(COMMERCIAL_HAM),
        "{text}"
    );
}

#[test]
fn training_on_the_modern_layout_is_deterministic_and_never_reads_test() {
    let c = Corpus::open(&fixture()).expect("open");
    let a = corpus::train_corpora(std::slice::from_ref(&c)).expect("train");
    let b = corpus::train_corpora(std::slice::from_ref(&c)).expect("train");
    assert_eq!(a, b);
    let e = Engine::from_model_bytes(&a).expect("a loadable model");
    let (sus, spam) = e.default_thresholds();
    assert!(sus.is_finite() && spam >= sus + 1.0, "{sus} {spam}");
    let mut with_test = c.clone();
    with_test.entries[0].split = "test".into();
    // A corpus with a test split is evaluated on it, and training skips its rows...
    assert_eq!(with_test.held_out_split(), "test");
    assert!(corpus::train_corpora(std::slice::from_ref(&with_test)).is_ok());
    // ...while handing a test row to training directly is refused.
    let rows = vec![with_test.entries[0].clone()];
    assert!(corpus::train_entries(&fixture(), &rows).is_err());
}
