//! Evaluates a model on the TEST split until `outguard spam eval` is wired:
//! `cargo run --release -p outguard-spam --example eval -- ../shared/corpus/spamassassin [MODEL] [--json]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--json").collect();
    let json = std::env::args().any(|a| a == "--json");
    let corpus = args
        .first()
        .map_or("../shared/corpus/spamassassin", String::as_str);
    let engine = match args.get(1) {
        Some(p) => outguard_spam::Engine::from_model_bytes(&std::fs::read(p)?)?,
        None => outguard_spam::Engine::builtin(),
    };
    let report = outguard_spam::corpus::eval(&engine, std::path::Path::new(corpus))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
        println!("false positives: {:?}", report.false_positives);
        println!("false negatives: {} files", report.false_negatives.len());
    }
    Ok(())
}
