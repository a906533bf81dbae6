//! The public API the relay uses: thresholds, classes, overlays, bad model bytes.

use outguard_spam::{Class, Engine, Overlay, ScanContext};

const SPAMMY: &[u8] = b"From: deals@promo.example\nSubject: FREE CASH NOW!!!\n\nClick here http://bit.ly/x to claim your free cash prize!!! Limited offer, act now!!! To be removed reply REMOVE.\n";
const HAMMY: &[u8] = b"From: bob@example.org\nSubject: Re: patch for the build script\n\nThanks, I applied the patch and the tests pass on my machine. Can you rebase on main before we merge?\n";

#[test]
fn builtin_has_ordered_thresholds_and_separates_obvious_cases() {
    let e = Engine::builtin();
    let (s, p) = e.thresholds();
    assert!(s < p);
    let ctx = ScanContext::default();
    assert!(
        e.scan(SPAMMY, &ctx).class.is_spam(),
        "{:?}",
        e.scan(SPAMMY, &ctx)
    );
    assert_eq!(
        e.scan(HAMMY, &ctx).class,
        Class::Clean,
        "{:?}",
        e.scan(HAMMY, &ctx)
    );
}

#[test]
fn thresholds_override_changes_class() {
    let e = Engine::builtin().with_thresholds(1000.0, 2000.0);
    assert_eq!(e.thresholds(), (1000.0, 2000.0));
    assert_eq!(e.scan(SPAMMY, &ScanContext::default()).class, Class::Clean);
    let e = Engine::builtin().with_thresholds(-1000.0, -999.0);
    assert_eq!(e.scan(HAMMY, &ScanContext::default()).class, Class::Spam);
}

#[test]
fn bad_model_bytes_are_an_error() {
    assert!(Engine::from_model_bytes(b"nope").is_err());
    assert!(Engine::from_model_bytes(&[]).is_err());
}

#[test]
fn overlay_learns_moves_score_and_round_trips() {
    let e = Engine::builtin();
    let ctx = ScanContext::default();
    let mut o = Overlay::new();
    assert!(o.is_empty());
    let before = e.scan_with_overlay(HAMMY, &ctx, Some(&o));
    assert!(o.learn(&e, HAMMY, true));
    let after = e.scan_with_overlay(HAMMY, &ctx, Some(&o));
    assert!(
        after.class.is_spam(),
        "learned spam should be called spam: {after:?}"
    );
    assert!(after.score > before.score);
    assert!(after.reasons.iter().any(|r| r.tag == "TENANT_LEARNED"));
    // Unrelated messages are not dragged along much.
    let other = e.scan_with_overlay(SPAMMY, &ctx, Some(&o));
    assert!(other.class.is_spam());
    let bytes = o.to_bytes();
    let back = Overlay::from_bytes(&bytes).unwrap();
    assert_eq!(back, o);
    assert_eq!(back.to_bytes(), bytes);
    assert!(Overlay::from_bytes(&bytes[..bytes.len() - 3]).is_err());
    assert!(Overlay::from_bytes(b"garbage!").is_err());
    // Learning it back as ham flips it again.
    let mut o2 = back;
    o2.learn(&e, HAMMY, false);
    assert_eq!(
        e.scan_with_overlay(HAMMY, &ctx, Some(&o2)).class,
        Class::Clean
    );
    assert_eq!(o2.counts(), (1, 1));
}

#[test]
fn engine_is_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Engine>();
    assert_send_sync::<Overlay>();
}
