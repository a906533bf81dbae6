//! Prints the verdict and its reasons for message files under a given model (a calibration aid):
//! `cargo run --release -p outguard-spam --example why -- MODEL FILE...`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((model, files)) = args.split_first() else {
        eprintln!("usage: why MODEL FILE...");
        std::process::exit(64);
    };
    let engine = outguard_spam::Engine::from_model_bytes(&std::fs::read(model)?)?;
    for f in files {
        let v = engine.scan(&std::fs::read(f)?, &outguard_spam::ScanContext::default());
        println!("{f}: {} {:.2}", v.class.as_str(), v.score);
        for r in v.reasons.iter().take(6) {
            println!(
                "   {:+.2} {} {}",
                r.weight,
                r.tag,
                r.detail.chars().take(150).collect::<String>()
            );
        }
    }
    Ok(())
}
