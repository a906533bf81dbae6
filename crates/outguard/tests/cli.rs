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

/// `outguard serve --config FILE` in `dir`, killed if it has not exited within 30 s (a serve
/// that starts is a failure here): exit code and stderr.
fn serve(dir: &std::path::Path, config: &std::path::Path) -> (i32, String) {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with a bad configuration");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.code().unwrap_or(-1), err)
}

/// Issue 20: `check-config` said `ok` for a missing TLS certificate and DKIM key that `serve`
/// then refused with exit 1 after creating its data dir. Both now refuse the file with 64,
/// naming every key, and `serve` creates nothing.
#[test]
fn check_config_and_serve_refuse_missing_files_before_creating_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let f = dir.path().join("outguard.toml");
    std::fs::write(
        &f,
        format!(
            "[server]\ndata_dir = \"{d}/data\"\n\
             [listeners]\nsubmission = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\n\
             connector = \"127.0.0.1:0\"\nfbl = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n\
             [[dkim]]\ndomain = \"a.example\"\nselector = \"s1\"\nkey = \"{d}/dkim.pem\"\n"
        ),
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for want in [
        format!("line 10: tls.cert: cannot read {d}/cert.pem: no such file"),
        format!("line 11: tls.key: cannot read {d}/key.pem: no such file"),
        format!("line 15: dkim[0].key: cannot read {d}/dkim.pem: no such file"),
    ] {
        assert!(err.contains(&want), "{err} lacks {want}");
    }
    let (code, err) = serve(dir.path(), &f);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("tls.cert") && err.contains("tls.key") && err.contains("dkim[0].key"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "serve created its data dir before refusing the config"
    );
    // With the files in place, the same file is fine.
    write_tls_and_dkim(dir.path());
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A matching self-signed certificate and key (`cert.pem`, `key.pem`) and an Ed25519 DKIM key
/// (`dkim.pem`) in `dir`.
fn write_tls_and_dkim(dir: &std::path::Path) {
    use base64::Engine as _;
    let (cert, key) = outguard_harness::self_signed_pem("relay.test").expect("cert");
    std::fs::write(dir.join("cert.pem"), cert).expect("write");
    std::fs::write(dir.join("key.pem"), key).expect("write");
    let pkcs8 = mail_auth::common::crypto::Ed25519Key::generate_pkcs8().expect("key");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&pkcs8)
    );
    std::fs::write(dir.join("dkim.pem"), pem).expect("write");
}

/// Issue 20: what only loading can tell — a TLS key that is not the certificate's, a DKIM key
/// that is PEM but no key — was found by `serve` at start (exit 1, data dir created). Both
/// now refuse the file with 64 naming the key, `serve` before creating anything.
#[test]
fn check_config_and_serve_load_the_files_a_mismatched_tls_key_and_a_bad_dkim_key_and_a_corrupt_model()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let f = dir.path().join("outguard.toml");
    std::fs::write(
        &f,
        format!(
            "[server]\ndata_dir = \"{d}/data\"\n\
             [listeners]\nsubmission = \"127.0.0.1:0\"\nsubmissions = \"127.0.0.1:0\"\n\
             connector = \"127.0.0.1:0\"\nfbl = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"{d}/cert.pem\"\nkey = \"{d}/key.pem\"\n\
             [[dkim]]\ndomain = \"a.example\"\nselector = \"s1\"\nkey = \"{d}/dkim.pem\"\n\
             [spam]\nmodel = \"{d}/model.bin\"\n"
        ),
    )
    .expect("write");
    write_tls_and_dkim(dir.path());
    // A model file cut short (readable, so only loading it can tell).
    std::fs::write(dir.path().join("model.bin"), b"OGM1 truncated").expect("write");
    // Another certificate's key; a PEM block that holds no key.
    let (_, other_key) = outguard_harness::self_signed_pem("other.test").expect("cert");
    std::fs::write(dir.path().join("key.pem"), other_key).expect("write");
    std::fs::write(
        dir.path().join("dkim.pem"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&f)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    for want in [
        format!("line 11: tls.key: {d}/key.pem does not match the certificate in tls.cert"),
        format!("line 15: dkim[0].key: {d}/dkim.pem cannot be used to sign"),
        format!("line 17: spam.model: {d}/model.bin is not a spam model"),
    ] {
        assert!(err.contains(&want), "{err} lacks {want}");
    }
    let (code, err) = serve(dir.path(), &f);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("tls.key")
            && err.contains("does not match")
            && err.contains("dkim[0].key")
            && err.contains("spam.model"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "serve created its data dir before refusing the config"
    );
}

/// Issue 20: only the first problem was reported, durations got `expected number at 0`, an
/// out-of-range port did not name its key, a bad operator address passed. Every problem is
/// now listed with its line and key, by `check-config` and by `serve` alike.
#[test]
fn every_problem_is_listed_with_its_key_by_check_config_and_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("outguard.toml");
    std::fs::write(
        &f,
        format!(
            "[server]\ndata_dir = \"{}/data\"\nshutdown_grace = \"thirty seconds\"\nhostnme = \"x\"\n\
             [listeners]\nsubmission = \"127.0.0.1:70000\"\n\
             [delivery]\nport = 70000\n\
             [limits]\nmessages_per_minute = 0\n\
             [notifications]\noperator_recipients = [\"not an address\"]\n",
            dir.path().display()
        ),
    )
    .expect("write");
    let want = [
        r#"line 3: server.shutdown_grace: "thirty seconds" is not a duration (e.g. "30s", "5m")"#,
        "line 4: server.hostnme: unknown field `hostnme`",
        r#"line 6: listeners.submission: "127.0.0.1:70000": port 70000 is out of range 0–65535"#,
        "line 8: delivery.port: 70000 is out of range 1–65535",
        "line 10: limits.messages_per_minute: must be at least 1",
        r#"line 12: notifications.operator_recipients[0]: "not an address" is not an email address"#,
    ];
    let (code, err) = check(&std::fs::read_to_string(&f).expect("read"));
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("6 problems"), "{err}");
    for w in want {
        assert!(err.contains(w), "{err}\nlacks: {w}");
    }
    assert!(
        err.contains("hint: ") && err.contains("outguard.example.toml"),
        "{err}"
    );
    let (code, err) = serve(dir.path(), &f);
    assert_eq!(code, 64, "{err}");
    for w in want {
        assert!(err.contains(w), "{err}\nlacks: {w}");
    }
    assert!(!dir.path().join("data").exists());
}

/// `spam eval` takes corpus directories (positional or `--corpus`, either manifest layout) and
/// reports each separately; the modern layout gets its source groups, commercial ham apart
/// (issue 19). Uses the spam crate's synthetic modern-layout fixture, so it runs on a fresh clone.
#[test]
fn spam_eval_reports_the_modern_layout_by_source_group() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../spam/tests/fixtures/modern");
    let out = Command::new(BIN)
        .args(["spam", "eval", fixture, "--json"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(v["split"], "validation");
    assert_eq!(v["messages"], 5);
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    assert!(groups.contains(&"commercial ham"), "{groups:?}");
    // Two corpora: an array, one report each, in order.
    let out = Command::new(BIN)
        .args([
            "spam", "eval", "--json", "--corpus", fixture, "--corpus", fixture,
        ])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    // Text output names the corpus and the per-group lines.
    let out = Command::new(BIN)
        .args(["spam", "eval", fixture])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("corpus modern (validation split)") && text.contains("commercial ham"),
        "{text}"
    );
    // No corpus named: bad usage.
    let out = Command::new(BIN)
        .args(["spam", "eval"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
}
