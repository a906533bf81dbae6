//! ARF reports on the fbl listener: the pure parser lives in `outguard_proto::arf` (sans-IO,
//! reachable from the fuzz targets); this module keeps its golden fixtures, which sit with the
//! binary's other test fixtures.

pub use outguard_proto::arf::{ParsedReport, parse};

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../outguard/tests/fixtures/arf")
    }

    /// Golden files: every `NAME.eml` has `NAME.json` with the expected [`ParsedReport`].
    /// `OUTGUARD_BLESS=1` rewrites the JSON files (review the diff).
    #[test]
    fn golden_fixtures() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
            .expect("fixtures dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        assert!(names.len() >= 6, "fixtures missing: {names:?}");
        let bless = std::env::var_os("OUTGUARD_BLESS").is_some();
        for eml in names {
            let raw = std::fs::read(&eml).expect("read fixture");
            let mut got = parse(&raw);
            let full = got.original_message.take();
            assert_eq!(
                full.is_some(),
                got.original == "message",
                "{}",
                eml.display()
            );
            let json = eml.with_extension("json");
            if bless {
                let text = serde_json::to_string_pretty(&got).expect("json") + "\n";
                std::fs::write(&json, text).expect("write golden");
                continue;
            }
            let want: ParsedReport =
                serde_json::from_slice(&std::fs::read(&json).expect("golden json"))
                    .expect("golden parses");
            assert_eq!(got, want, "{}", eml.display());
        }
    }
}
