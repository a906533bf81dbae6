//! Regenerates the shipped model (the same as `outguard spam train`):
//! `cargo run --release -p outguard-spam --example train -- OUT.bin CORPUS...`
//! The shipped model: `… -- crates/spam/model/default.bin ../shared/corpus/spamassassin ../shared/corpus/modern`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, dirs)) = args.split_first().filter(|(_, d)| !d.is_empty()) else {
        eprintln!("usage: train OUT.bin CORPUS...");
        std::process::exit(64);
    };
    let t = std::time::Instant::now();
    let corpora = dirs
        .iter()
        .map(|d| outguard_spam::corpus::Corpus::open(std::path::Path::new(d)))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = outguard_spam::corpus::train_corpora(&corpora)?;
    std::fs::write(out, &bytes)?;
    let m = outguard_spam::Engine::from_model_bytes(&bytes)?;
    eprintln!(
        "wrote {out}: {} bytes in {:.1?}; default thresholds {:?}",
        bytes.len(),
        t.elapsed(),
        m.default_thresholds()
    );
    Ok(())
}
