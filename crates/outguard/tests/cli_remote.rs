//! End to end, the management verbs through a running server's admin API (SPEC §5: `--server
//! URL --token T`): the real binary as server and as client on loopback. The client runs with
//! an empty data dir of its own, so a verb that quietly used a local store would show nothing.
//! A real policy hit makes the restriction, the held message and the alert; tenant A's admin
//! never sees tenant B's rows; bad tokens exit 1 with the API's message, a stopped server 69,
//! `--server` without a token 64.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{BIN, message, scene};
use outguard_harness::sink::{Reply as SinkReply, Script};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

/// The CLI as a remote client: `--server`/`--token` (when given) and an empty data dir.
struct Remote {
    server: String,
    empty: tempfile::TempDir,
}

impl Remote {
    fn run(&self, token: Option<&str>, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("OUTGUARD_SERVER")
            .env_remove("OUTGUARD_TOKEN")
            .env_remove("OUTGUARD_CONFIG")
            .arg("--data-dir")
            .arg(self.empty.path())
            .arg("--server")
            .arg(&self.server);
        if let Some(t) = token {
            cmd.arg("--token").arg(t);
        }
        let out = cmd.args(args).output().expect("run outguard");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, token: &str, args: &[&str]) -> String {
        let (code, out, err) = self.run(Some(token), args);
        assert_eq!(code, 0, "outguard {args:?} failed ({code}): {err}");
        out
    }

    fn json(&self, token: &str, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(token, &a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Exits with `code`, the stderr containing `want`.
    fn fails(&self, token: Option<&str>, args: &[&str], code: i32, want: &str) {
        let (got, out, err) = self.run(token, args);
        assert_eq!(got, code, "outguard {args:?}: stdout {out} stderr {err}");
        assert!(
            err.contains(want),
            "outguard {args:?}: {err:?} lacks {want:?}"
        );
    }

    /// Polls a JSON list verb until `pred` holds.
    fn wait_for(&self, token: &str, args: &[&str], pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.json(token, args);
            if pred(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{args:?} never matched: {v}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn column(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|r| r[key].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_verbs_through_the_admin_api() {
    let sc = scene("").await;
    sc.provision().await;
    // dest.example defers everything, so what is sent there stays in the queue.
    sc.dest.set_script(Script::fail_first(
        1_000_000,
        SinkReply::new(451, "4.7.1 later"),
    ));
    let mut relay = common::RelayProc::start(sc.dir());
    let op = relay
        .token
        .clone()
        .expect("first start prints an operator token");
    let r = Remote {
        server: format!("http://{}", relay.addr("http")),
        empty: tempfile::tempdir().expect("tempdir"),
    };

    // Tokens made through the API: an admin of tenant a, a reader of tenant b.
    let ta = r.ok(
        &op,
        &[
            "admin",
            "token",
            "create",
            "--role",
            "tenant_admin",
            "--tenant",
            "a",
        ],
    );
    let ta = ta.trim().to_string();
    assert!(
        !ta.is_empty() && !ta.contains(' '),
        "the token alone: {ta:?}"
    );
    let rb = r.json(
        &op,
        &[
            "admin",
            "token",
            "create",
            "--role",
            "tenant_reader",
            "--tenant",
            "b",
        ],
    );
    let (rb_id, rb) = (
        rb["id"].as_str().expect("id").to_string(),
        rb["secret"].as_str().expect("secret").to_string(),
    );

    // tenant list: the same table as the store path; each tenant token sees its own tenant.
    let out = r.ok(&op, &["tenant", "list"]);
    assert!(out.starts_with("TENANT  CREATED\n"), "{out}");
    assert!(out.contains("\na ") && out.contains("\nb "), "{out}");
    assert_eq!(
        column(&r.json(&op, &["tenant", "list"]), "name"),
        ["a", "b"]
    );
    assert_eq!(column(&r.json(&ta, &["tenant", "list"]), "name"), ["a"]);
    assert_eq!(column(&r.json(&rb, &["tenant", "list"]), "name"), ["b"]);
    r.fails(
        Some(&ta),
        &["tenant", "add", "c"],
        1,
        "forbidden: this needs an operator token",
    );

    // account list / add, scoped to tenant a.
    let out = r.ok(&ta, &["account", "list"]);
    assert!(
        out.starts_with("ADDRESS") && out.contains("SEND-AS"),
        "{out}"
    );
    assert!(
        out.contains("alice@a.example") && !out.contains("carol@b.example"),
        "{out}"
    );
    let out = r.ok(&ta, &["account", "add", "--tenant", "a", "dave@a.example"]);
    assert!(
        out.contains("account dave@a.example added to tenant a"),
        "{out}"
    );
    assert!(
        out.contains("password: "),
        "the generated password is shown once: {out}"
    );
    let all = r.json(&op, &["account", "list"]);
    let addrs = column(&all, "address");
    assert!(addrs.contains(&"dave@a.example".into()) && addrs.contains(&"carol@b.example".into()));
    r.fails(
        Some(&ta),
        &["account", "add", "--tenant", "b", "x@b.example"],
        1,
        "not found",
    );
    r.fails(
        Some(&op),
        &["account", "add", "--tenant", "a", "dave@a.example"],
        1,
        "",
    );

    // policy show / set: the table with the values in force; bad keys are bad usage.
    let out = r.ok(
        &ta,
        &[
            "policy",
            "set",
            "--tenant",
            "a",
            "recipient_limit_external_per_hour=5",
        ],
    );
    assert!(out.contains("default policy of tenant a updated"), "{out}");
    let out = r.ok(&ta, &["policy", "show", "--tenant", "a"]);
    assert!(out.starts_with("default policy of tenant a\nKEY"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("recipient_limit_external_per_hour "))
        .expect("key row");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[1..],
        ["5", "5"],
        "{out}"
    );
    let shown = r.json(&ta, &["policy", "show", "--tenant", "a"]);
    assert_eq!(shown["effective"]["external_per_hour"], 5, "{shown}");
    assert!(
        r.ok(&op, &["policy", "list", "--tenant", "a"])
            .starts_with("POLICY")
    );
    r.fails(
        Some(&ta),
        &["policy", "set", "--tenant", "a", "bogus_key=1"],
        64,
        "bogus_key",
    );
    r.fails(
        Some(&ta),
        &["policy", "show", "--tenant", "b"],
        1,
        "not found",
    );

    // A real policy hit: bob's sixth external recipient in the hour restricts him.
    let sub = relay.addr("submission");
    let bob = Some(("bob@a.example", "bob-pw"));
    let five: Vec<String> = (0..5).map(|i| format!("r{i}@dest.example")).collect();
    let five: Vec<&str> = five.iter().map(String::as_str).collect();
    let body = message("bob@a.example", "r0@dest.example", "monthly", "news");
    let reply = Client::send_mail(sub, bob, "bob@a.example", &five, &body).await;
    assert!(reply.starts_with("250 "), "{reply}");
    let held_id = queued_id(&reply);
    let reply = Client::send_mail(sub, bob, "bob@a.example", &["r9@dest.example"], &body).await;
    assert!(
        reply.starts_with("550 5.2.2"),
        "the crossing recipient: {reply}"
    );
    // Tenant b's mail, also stuck in the queue; alice's, delivered.
    let carol = Some(("carol@b.example", "carol-pw"));
    let body_c = message("carol@b.example", "z@dest.example", "b's", "mail");
    let reply =
        Client::send_mail(sub, carol, "carol@b.example", &["z@dest.example"], &body_c).await;
    assert!(reply.starts_with("250 "), "{reply}");
    let carol_id = queued_id(&reply);
    let body_a = message("alice@a.example", "carol@b.example", "hello", "there");
    let reply = Client::send_mail(
        sub,
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &["carol@b.example"],
        &body_a,
    )
    .await;
    assert!(reply.starts_with("250 "), "{reply}");
    let delivered_id = queued_id(&reply);

    // restricted list: bob, for both tokens of the operator and tenant a; not for tenant b.
    let list = r.wait_for(&ta, &["restricted", "list"], |v| {
        !v.as_array().is_none_or(Vec::is_empty)
    });
    assert!(list.to_string().contains("bob@a.example"), "{list}");
    let out = r.ok(&op, &["restricted", "list"]);
    assert!(
        out.starts_with("SUBJECT") && out.contains("bob@a.example"),
        "{out}"
    );
    assert_eq!(r.json(&rb, &["restricted", "list"]), Value::Array(vec![]));

    // alerts: the restriction's alert; tenant a's admin sees only tenant a's alerts.
    let alerts = r.wait_for(&ta, &["alerts"], |v| {
        v.to_string().contains("user_restricted")
    });
    assert!(
        column(&alerts, "tenant").iter().all(|t| t == "a"),
        "{alerts}"
    );
    let out = r.ok(&op, &["alerts", "--kind", "user_restricted"]);
    assert!(
        out.starts_with("TIME") && out.contains("bob@a.example"),
        "{out}"
    );
    r.fails(Some(&ta), &["alerts", "--kind", "nope"], 64, "--kind");

    // queue list: bob's message held by the restriction; tenant a never sees carol's message.
    let held = r.wait_for(&ta, &["queue", "list", "--state", "held"], |v| {
        column(v, "id").contains(&held_id)
    });
    assert!(!held.to_string().contains(&carol_id), "{held}");
    let mine = r.json(&ta, &["queue", "list"]);
    assert!(!mine.to_string().contains(&carol_id), "{mine}");
    let everyone = r.wait_for(&op, &["queue", "list"], |v| {
        column(v, "id").contains(&carol_id)
    });
    assert!(column(&everyone, "id").contains(&held_id));
    let out = r.ok(&op, &["queue", "list", "--state", "held"]);
    assert!(
        out.starts_with("ID") && out.contains(&held_id) && out.contains("held"),
        "{out}"
    );
    r.fails(
        Some(&ta),
        &["queue", "release", &carol_id],
        1,
        "not in the queue",
    );

    // restricted lift: a reader may not; tenant a's admin may; the message stays held.
    r.fails(
        Some(&rb),
        &["restricted", "lift", "bob@a.example", "--reason", "x"],
        1,
        "no active restriction of bob@a.example found",
    );
    r.fails(
        Some(&ta),
        &["restricted", "lift", "bob@a.example", "--reason", " "],
        64,
        "--reason",
    );
    let out = r.ok(
        &ta,
        &[
            "restricted",
            "lift",
            "bob@a.example",
            "--reason",
            "password reset",
        ],
    );
    assert!(
        out.contains("bob@a.example: restriction") && out.contains("lifted"),
        "{out}"
    );
    assert_eq!(r.json(&ta, &["restricted", "list"]), Value::Array(vec![]));
    r.fails(
        Some(&ta),
        &["restricted", "lift", "bob@a.example", "--reason", "again"],
        1,
        "no active restriction",
    );

    // queue release: out of held.
    let out = r.ok(&ta, &["queue", "release", &held_id]);
    assert_eq!(out.trim(), format!("{held_id}: released"));
    r.wait_for(&op, &["queue", "list", "--state", "held"], |v| {
        !column(v, "id").contains(&held_id)
    });

    // trace of a delivered message: its table and timeline; other tenants' tokens get 404.
    let detail = r.wait_for(&ta, &["trace", "--id", &delivered_id], |v| {
        v["message"]["state"] == "delivered"
    });
    assert!(
        detail["events"].to_string().contains("delivered"),
        "{detail}"
    );
    let out = r.ok(&op, &["trace", "--id", &delivered_id]);
    assert!(
        out.starts_with("ID") && out.contains(&delivered_id),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("delivered") && l.contains('T')),
        "{out}"
    );
    r.fails(Some(&rb), &["trace", "--id", &delivered_id], 1, "not found");
    let found = r.json(&ta, &["trace", "--from", "bob@a.example"]);
    assert!(column(&found, "id").contains(&held_id), "{found}");
    let found = r.json(&ta, &["trace", "--from", "carol@b.example"]);
    assert_eq!(
        found,
        Value::Array(vec![]),
        "tenant b's messages stay hidden"
    );

    // The environment variables work like the flags.
    let out = Command::new(BIN)
        .env("OUTGUARD_SERVER", &r.server)
        .env("OUTGUARD_TOKEN", &rb)
        .args(["--data-dir"])
        .arg(r.empty.path())
        .args(["tenant", "list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nb "));

    // Revoked and wrong tokens exit 1 with the API's message.
    r.ok(&op, &["admin", "token", "revoke", &rb_id]);
    r.fails(
        Some(&rb),
        &["tenant", "list"],
        1,
        "token rejected: unknown or revoked token",
    );
    r.fails(Some("not-a-token"), &["alerts"], 1, "token rejected");
    // No token, https, and a verb the API lacks: bad usage.
    r.fails(None, &["tenant", "list"], 64, "--server needs --token");
    r.fails(
        Some(&op),
        &["dnsbl", "check"],
        64,
        "not available through --server",
    );
    let (code, _, err) = Command::new(BIN)
        .args([
            "--server",
            "https://127.0.0.1:1",
            "--token",
            "t",
            "tenant",
            "list",
        ])
        .output()
        .map(|o| {
            (
                o.status.code(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .expect("run");
    assert_eq!(code, Some(64), "{err}");

    // A stopped server is unavailable: 69, naming the URL.
    relay.terminate();
    r.fails(Some(&op), &["tenant", "list"], 69, &r.server);
}
