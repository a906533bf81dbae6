//! Hyper-parameter check on the TRAIN validation slice only (never TEST):
//! `cargo run --release -p outguard-spam --example tune -- ../shared/corpus/spamassassin`

use outguard_spam::corpus;
use outguard_spam::eval::{self, Scored};
use outguard_spam::train::{self, Params};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("../shared/corpus/spamassassin".into()),
    );
    let entries: Vec<_> = corpus::read_manifest(&dir)?
        .into_iter()
        .filter(|e| e.split == "train")
        .collect();
    let all = corpus::samples(&dir, &entries)?;
    let (mut fit, mut val) = (Vec::new(), Vec::new());
    for (e, s) in entries.iter().zip(all) {
        if corpus::is_validation(e) {
            val.push(s)
        } else {
            fit.push(s)
        }
    }
    for alpha in [0.1, 0.3] {
        for l1 in [0.5, 1.0] {
            for l2 in [1.0, 5.0] {
                for epochs in [4, 8] {
                    let p = Params {
                        alpha,
                        l1,
                        l2,
                        epochs,
                        ..Params::default()
                    };
                    let m = train::fit(&fit, p);
                    let sc: Vec<Scored> = val
                        .iter()
                        .map(|s| Scored {
                            score: train::score(&m, s),
                            is_spam: s.is_spam,
                        })
                        .collect();
                    let (t, _) = eval::pick_thresholds(&sc, 0.002);
                    let r = eval::report(&sc, (t, t + 1.0));
                    println!(
                        "alpha {alpha} l1 {l1} l2 {l2} ep {epochs}: auc {:.5} f1 {:.4} fp {} fn {}",
                        r.auc, r.f1, r.confusion.fp, r.confusion.fn_
                    );
                }
            }
        }
    }
    Ok(())
}
