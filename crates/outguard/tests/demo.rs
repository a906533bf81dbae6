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
    if let Err(e) = deliveries_follow_their_own_verdicts(&stdout) {
        panic!("{e}\n{ctx}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("the relay's notification delivered to mx.acme.example")),
        "the notification's delivery is told as the relay's own\n{ctx}"
    );
}

/// Issue 20: the narration printed "delivered" before "verdict", and the relay's notification
/// under the newsletter's block as if it were the newsletter. Now a narrated `delivered to`
/// line comes after the verdict of the message queued last, and is from that message's sender;
/// mail from postmaster is told only as the relay's notification.
fn deliveries_follow_their_own_verdicts(stdout: &str) -> Result<(), String> {
    // (sender, verdict seen) of the block being narrated.
    let mut block: Option<(String, bool)> = None;
    let mut narrated = 0;
    for line in stdout.lines() {
        // "  12.3s   text": drop the elapsed-time stamp.
        let t = line.trim_start();
        let text = match t.split_once(' ') {
            Some((stamp, rest))
                if stamp
                    .strip_suffix('s')
                    .is_some_and(|n| n.parse::<f64>().is_ok()) =>
            {
                rest.trim_start()
            }
            _ => t,
        };
        if let Some((who, _)) = text.split_once(" recipient(s): 250 queued as ") {
            let sender = who.split(" → ").next().unwrap_or(who).to_string();
            block = Some((sender, false));
        } else if text.starts_with("verdict: ") {
            if let Some(b) = &mut block {
                b.1 = true;
            }
        } else if let Some(rest) = text.strip_prefix("delivered to ") {
            let from = rest
                .split_once("]: ")
                .and_then(|(_, r)| r.split(" → ").next())
                .unwrap_or("");
            match &block {
                Some((sender, true)) if sender == from => narrated += 1,
                Some((sender, false)) => {
                    return Err(format!("delivered before its verdict ({sender}): {line}"));
                }
                Some((sender, _)) => {
                    return Err(format!("{from}'s delivery under {sender}'s block: {line}"));
                }
                None => return Err(format!("a delivery before any message: {line}")),
            }
        } else if text.contains(" delivered to ") && text.contains("postmaster@") {
            if !text.starts_with("the relay's notification delivered to ") {
                return Err(format!("the relay's mail not told as such: {line}"));
            }
        } else if text.starts_with("[") {
            block = None;
        }
    }
    if narrated == 0 {
        return Err("no narrated delivery at all".into());
    }
    Ok(())
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
