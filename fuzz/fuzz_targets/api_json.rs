//! Every admin API request body on arbitrary bytes: deserializing never panics, and a body that
//! deserializes goes through the validation the handlers run before touching the store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outguard_types::api::{
    LiftRequest, NewAccount, NewConnector, NewDomain, NewTenant, NewToken, NewWebhook, SendAs,
};
use outguard_types::model::Role;
use outguard_types::policy::{Policy, PolicySettings, validate_policies};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<NewTenant>(data);
    let _ = serde_json::from_slice::<NewDomain>(data);
    let _ = serde_json::from_slice::<NewAccount>(data);
    let _ = serde_json::from_slice::<SendAs>(data);
    let _ = serde_json::from_slice::<LiftRequest>(data);
    let _ = serde_json::from_slice::<NewWebhook>(data);
    if let Ok(c) = serde_json::from_slice::<NewConnector>(data) {
        let _ = c.cidr.trunc();
    }
    if let Ok(t) = serde_json::from_slice::<NewToken>(data) {
        if let Some(r) = Role::parse(&t.role) {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
    if let Ok(s) = serde_json::from_slice::<PolicySettings>(data) {
        if s.validate().is_ok() {
            // A valid body round-trips: what the store keeps reads back the same.
            let back: PolicySettings =
                serde_json::from_str(&serde_json::to_string(&s).expect("serialize"))
                    .expect("valid settings read back");
            assert_eq!(back, s, "valid settings change on a round trip");
        }
    }
    if let Ok(p) = serde_json::from_slice::<Policy>(data) {
        let _ = p.settings.validate();
        let _ = validate_policies(std::slice::from_ref(&p));
    }
});
