//! criterion benches for the hot paths: tokeniser/feature hashing, model scoring and the whole
//! scan, on a plain-text and an HTML message. `cargo bench -p outguard-spam`.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use outguard_spam::limits::{Budget, SCAN_BUDGET};
use outguard_spam::{Engine, ScanContext, features, parse};

const PLAIN: &[u8] = include_bytes!("../tests/fixtures/business_ham.eml");
const HTML: &[u8] = include_bytes!("../tests/fixtures/phish_paypal.eml");

fn long_text() -> Vec<u8> {
    let mut m = b"From: a@example.com\nSubject: weekly report\n\n".to_vec();
    for i in 0..400 {
        m.extend_from_slice(format!("Line {i}: the quarterly numbers look fine, see https://reports.example.com/q{i} for details.\n").as_bytes());
    }
    m
}

fn benches(c: &mut Criterion) {
    let engine = Engine::builtin();
    let ctx = ScanContext::default();
    let long = long_text();
    let doc = parse::parse(&long);
    c.bench_function("tokenize_features_long_text", |b| {
        b.iter(|| features::indices(black_box(&doc), &Budget::new(Instant::now(), SCAN_BUDGET)))
    });
    c.bench_function("parse_html", |b| b.iter(|| parse::parse(black_box(HTML))));
    c.bench_function("scan_plain", |b| {
        b.iter(|| engine.scan(black_box(PLAIN), &ctx))
    });
    c.bench_function("scan_html_phish", |b| {
        b.iter(|| engine.scan(black_box(HTML), &ctx))
    });
    c.bench_function("scan_long_text", |b| {
        b.iter(|| engine.scan(black_box(&long), &ctx))
    });
}

criterion_group!(name = scan; config = Criterion::default().sample_size(30); targets = benches);
criterion_main!(scan);
