//! The CLI's contract for bad input (SPEC §5): exit 64 with the key, its line and a hint.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_outguard");

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, text).expect("write");
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_names_the_key_its_line_and_gives_a_hint() {
    let (code, err) =
        check("[server]\nhostname = \"x\"\n[limits]\nmax_recipients_per_mesage = 5\n");
    assert_eq!(code, 64);
    assert!(
        err.contains("line 4") && err.contains("max_recipients_per_mesage"),
        "{err}"
    );
    assert!(
        err.contains("hint: ") && err.contains("outguard.example.toml"),
        "{err}"
    );

    let (code, err) = check("[limits]\nmessages_per_minute = 0\n");
    assert_eq!(code, 64);
    assert!(
        err.contains("limits.messages_per_minute") && err.contains("hint: "),
        "{err}"
    );

    let (code, err) = check("[delivery]\nretry_schedule = [\"5 parsecs\"]\n");
    assert_eq!(code, 64);
    assert!(
        err.contains("retry_schedule") || err.contains("duration"),
        "{err}"
    );
}

#[test]
fn check_config_refuses_bad_dnsbl_zone_codes_with_key_and_line() {
    let (code, err) = check(
        "[dnsbl]\ninterval = \"10m\"\n\n[[dnsbl.zones]]\nname = \"bl.test\"\n\
         listed = [\"127.0.0.2-127.0.0.11\"]\nerrors = [\"127.0.0.4\"]\n",
    );
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("dnsbl.zones[0].errors")
            && err.contains("line 7")
            && err.contains("127.0.0.4")
            && err.contains("also a listing code"),
        "{err}"
    );
    let (code, err) = check("[[dnsbl.zones]]\nname = \"bl.test\"\nlisted = [\"10.0.0.2\"]\n");
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("dnsbl.zones[0].listed") && err.contains("line 3") && err.contains("10.0.0.2"),
        "{err}"
    );
}

#[test]
fn bad_usage_exits_64() {
    let out = Command::new(BIN).arg("no-such-verb").output().expect("run");
    assert_eq!(out.status.code(), Some(64));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["queue", "list", "--state", "bogus", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--state"));
    // A file named on the command line that cannot be read is bad usage too (SPEC §5).
    let missing = dir.path().join("missing.eml");
    let out = Command::new(BIN)
        .args(["spam", "scan"])
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.eml"));
}

/// `outguard … | head`: the reader goes away, the CLI ends quietly (issue 20: it panicked).
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("m.eml");
    std::fs::write(&f, "From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n").expect("write");
    let mut child = Command::new(BIN)
        .args(["spam", "scan", "--json"])
        .args(std::iter::repeat_n(&f, 3000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    drop(child.stdout.take()); // like `head` that has read enough
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}
