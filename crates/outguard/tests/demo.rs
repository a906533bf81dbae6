//! `outguard demo` in CI (issue 9): the real binary runs the whole narrated scene on loopback in
//! scripted mode, and the outcome lines say the story happened — the compromised account was
//! restricted by its spam, the admin's notification email arrived, spam left from the high-risk
//! pool and clean mail from the regular pool.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_demo_tells_the_whole_story_in_scripted_mode() {
    let started = Instant::now();
    let out = Command::new(common::BIN)
        .args(["demo", "--no-ui", "--duration", "60", "--speed", "10"])
        .env("OUTGUARD_LOG", "warn")
        .output()
        .expect("run outguard demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the demo exits 0 when the story completed\n{ctx}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(70),
        "--duration bounds the run"
    );
    let has = |line: &str| stdout.lines().any(|l| l.trim_end() == line);
    assert!(
        has("demo: restricted mallory@acme.example (spam_per_hour)"),
        "compromised account restricted\n{ctx}"
    );
    assert!(
        has("demo: notification received by admin@acme.example"),
        "notification email received\n{ctx}"
    );
    assert!(
        has("demo: spam left from high-risk 127.0.0.3"),
        "spam from the high-risk pool\n{ctx}"
    );
    assert!(
        has("demo: clean mail left from regular 127.0.0.2"),
        "clean mail from the regular pool\n{ctx}"
    );
    assert!(
        has("demo: bulk sender newsletter@globex.example refused with 550 5.2.2, then 550 5.1.8"),
        "{ctx}"
    );
    assert!(
        has("demo: sender without MX/A sales@globex-old.example queued for high-risk"),
        "{ctx}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("demo: held ")
                && l.ends_with("message(s) of mallory@acme.example")),
        "{ctx}"
    );
    assert!(has("demo: story complete"), "{ctx}");
    // The narration shows verdicts with their reasons and the notification as received.
    assert!(stdout.contains("verdict: spam score"), "{ctx}");
    assert!(stdout.contains("Subject: Outbound spam notification - mallory@acme.example blocked from sending outbound mail"), "{ctx}");
    assert!(!stdout.contains("MISSING"), "{ctx}");
}

#[test]
fn a_bad_speed_is_a_usage_error() {
    let out = Command::new(common::BIN)
        .args(["demo", "--no-ui", "--speed", "0"])
        .output()
        .expect("run outguard demo");
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
