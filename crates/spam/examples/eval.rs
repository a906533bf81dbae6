//! Evaluates a model on each corpus's held-out split (`test`, else `validation`), one report per
//! corpus (what `outguard spam eval` prints; used by bench/scan.sh):
//! `cargo run --release -p outguard-spam --example eval -- CORPUS... [--model FILE] [--json]`
//! `--json` prints a JSON array of reports, one per corpus, in argument order.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut dirs, mut model, mut json) = (Vec::new(), None, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--model" => model = args.next(),
            _ => dirs.push(std::path::PathBuf::from(a)),
        }
    }
    if dirs.is_empty() {
        dirs.push("../shared/corpus/spamassassin".into());
    }
    let engine = match model {
        Some(p) => outguard_spam::Engine::from_model_bytes(&std::fs::read(p)?)?,
        None => outguard_spam::Engine::builtin(),
    };
    let mut reports = Vec::new();
    for d in &dirs {
        reports.push(outguard_spam::corpus::eval(&engine, d)?);
    }
    if json {
        println!("{}", serde_json::to_string(&reports)?);
    } else {
        for r in &reports {
            println!("{r}");
            println!("false positives: {:?}", r.false_positives);
            println!("false negatives: {} files\n", r.false_negatives.len());
        }
    }
    Ok(())
}
