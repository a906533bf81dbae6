//! Regenerates the shipped model until `outguard spam train` is wired:
//! `cargo run --release -p outguard-spam --example train -- ../shared/corpus/spamassassin crates/spam/model/default.bin`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let corpus = args
        .get(1)
        .map_or("../shared/corpus/spamassassin", String::as_str);
    let out = args
        .get(2)
        .map_or("crates/spam/model/default.bin", String::as_str);
    let t = std::time::Instant::now();
    let bytes = outguard_spam::corpus::train(std::path::Path::new(corpus))?;
    std::fs::write(out, &bytes)?;
    eprintln!("wrote {out}: {} bytes in {:.1?}", bytes.len(), t.elapsed());
    Ok(())
}
