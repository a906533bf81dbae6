//! Golden fixtures for the signals: each `fixtures/NAME.eml` has a `NAME.expect` listing tags it
//! must get (`+TAG`), must not get (`-TAG`), optional `tenant: DOMAIN` for the scan context and
//! optional `class: clean|suspicious|spam|called-spam`.

use std::path::PathBuf;

use outguard_spam::{Class, Engine, ScanContext};

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    v.sort();
    v
}

#[test]
fn signal_fixtures_match_expectations() {
    let engine = Engine::builtin();
    let files = fixtures();
    assert!(
        files.len() >= 9,
        "expected the fixture set, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for eml in files {
        let raw = std::fs::read(&eml).expect("read eml");
        let expect = std::fs::read_to_string(eml.with_extension("expect"))
            .expect("every .eml has an .expect");
        let tenant: Vec<String> = expect
            .lines()
            .filter_map(|l| l.strip_prefix("tenant: "))
            .map(str::to_string)
            .collect();
        let ctx = ScanContext {
            sender_domain: None,
            tenant_domains: &tenant,
        };
        let v = engine.scan(&raw, &ctx);
        let tags: Vec<&str> = v.reasons.iter().map(|r| r.tag.as_str()).collect();
        let name = eml
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for line in expect.lines() {
            if let Some(t) = line.strip_prefix('+') {
                if !tags.contains(&t) {
                    failures.push(format!("{name}: missing {t} (got {tags:?})"));
                }
            } else if let Some(t) = line.strip_prefix('-') {
                if tags.contains(&t) {
                    failures.push(format!("{name}: unexpected {t}"));
                }
            } else if let Some(c) = line.strip_prefix("class: ") {
                let ok = match c {
                    "called-spam" => v.class.is_spam(),
                    "clean" => v.class == Class::Clean,
                    "suspicious" => v.class == Class::Suspicious,
                    "spam" => v.class == Class::Spam,
                    other => panic!("{name}: bad class line {other}"),
                };
                if !ok {
                    failures.push(format!(
                        "{name}: class {:?} score {:.2}, expected {c}",
                        v.class, v.score
                    ));
                }
            }
        }
        let sum: f64 = v.reasons.iter().map(|r| r.weight).sum();
        assert!(
            (sum - v.score).abs() < 1e-6,
            "{name}: reasons must sum to the score"
        );
        for w in v.reasons.windows(2) {
            assert!(
                w[0].weight.abs() >= w[1].weight.abs(),
                "{name}: reasons strongest first"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "fixture failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn link_mismatch_detail_is_human_readable() {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/phish_paypal.eml"),
    )
    .unwrap();
    let v = Engine::builtin().scan(&raw, &ScanContext::default());
    let r = v
        .reasons
        .iter()
        .find(|r| r.tag == "LINK_TEXT_DOMAIN_MISMATCH")
        .expect("tag");
    assert_eq!(
        r.detail,
        "link text shows paypal.com, link goes to 185.12.3.4"
    );
}
