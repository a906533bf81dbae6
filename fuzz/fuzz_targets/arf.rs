//! The ARF (RFC 5965) feedback-report parser on arbitrary bytes: it never fails and never
//! panics, a report that does not parse is flagged `malformed`, and only a parsed report can
//! count as a complaint. Run: `cargo fuzz run -s none arf -- -max_total_time=300`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outguard_proto::arf::parse;

fuzz_target!(|data: &[u8]| {
    let p = parse(data);
    if p.malformed.is_some() {
        assert_eq!(p.feedback_type, "unknown");
        assert!(!p.is_complaint());
    }
    assert!(matches!(
        p.original.as_str(),
        "message" | "headers" | "none"
    ));
    assert_eq!(p.original_message.is_some(), p.original == "message");
    assert!(p.reported_domain.len() <= 20);
    // What we store must serialize (the record is kept as JSON).
    let _ = serde_json::to_string(&p).expect("report serializes");
});
