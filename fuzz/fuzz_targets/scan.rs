//! Fuzz target for the whole scan path: bytes -> parse -> features -> signals -> verdict, plus
//! explain and overlay learning. Any panic or hang is a bug (the engine must never panic and
//! must stay within its work caps). Run: `cargo fuzz run -s none scan -- -max_total_time=120`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outguard_spam::{Engine, Overlay, ScanContext};

fuzz_target!(|data: &[u8]| {
    let engine = Engine::builtin();
    let tenants = vec!["example.com".to_string()];
    let ctx = ScanContext { sender_domain: Some("example.org"), tenant_domains: &tenants };
    // The engine catches panics for production; the fuzzer must see them, so call the parts
    // that do not catch as well.
    let doc = outguard_spam::parse::parse(data);
    let _ = outguard_spam::html::analyse(&doc.html);
    let v = engine.scan(data, &ctx);
    assert!(v.score.is_finite());
    assert!(v.reasons.iter().all(|r| r.tag != "SCAN_ERROR"), "scan panicked internally");
    let _ = engine.explain(data, &ctx, None);
    let mut o = Overlay::new();
    o.learn(&engine, data, data.len() % 2 == 0);
    let _ = Overlay::from_bytes(data);
    let _ = Engine::from_model_bytes(data);
});
