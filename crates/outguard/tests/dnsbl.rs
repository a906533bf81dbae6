//! End to end, DNSBL monitor (SPEC §4): the real binary checks its pool IPs against a zone
//! served by a real DNS server on loopback. One regular IP is listed (127.0.0.2 + TXT), the
//! other regular IP's query answers a Spamhaus-style error code (127.255.255.254), the relay
//! IP is not listed (NXDOMAIN) and the high-risk IP is listed too. Only the listed regular IP
//! is drained and alerted; mail keeps flowing from the other; the high-risk IP is alerted, not
//! drained; once the listing is removed the IP returns and `ip_delisted` is raised.

mod common;

use std::time::{Duration, Instant};

use common::client::Client;
use common::{RelayProc, Scene, message, scene};

const WAIT: Duration = Duration::from_secs(30);

const DNSBL: &str = r#"
[dnsbl]
interval = "1s"
clear_checks = 2

[[dnsbl.zones]]
name = "bl.test"
listed = ["127.0.0.2-127.0.0.11"]
errors = ["127.255.255.252", "127.255.255.254", "127.255.255.255"]

[notifications]
operator_recipients = ["ops@b.example"]
"#;

/// Two regular IPs (127.0.0.2 and 127.0.0.5) instead of the common scene's one.
async fn dnsbl_scene() -> Scene {
    let sc = scene(DNSBL).await;
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let two = cfg.replacen(
        r#"source_ips = ["127.0.0.2"]"#,
        r#"source_ips = ["127.0.0.2", "127.0.0.5"]"#,
        1,
    );
    assert_ne!(cfg, two, "the common config's regular pool changed shape");
    std::fs::write(&path, two).expect("config");
    sc.dns.update(|z| {
        z.a("2.0.0.127.bl.test", [127, 0, 0, 2].into())
            .txt(
                "2.0.0.127.bl.test",
                "Listed for sending spam, see https://bl.test/127.0.0.2",
            )
            .a("5.0.0.127.bl.test", [127, 255, 255, 254].into())
            .a("3.0.0.127.bl.test", [127, 0, 0, 4].into());
    });
    sc
}

/// Alerts of `kind` as JSON values.
fn alerts(sc: &Scene, kind: &str) -> Vec<serde_json::Value> {
    let out = sc.ok(&["alerts", "--kind", kind, "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("alerts --json: {e}: {out}"))
}

fn summaries(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|a| a["summary"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn wait_alert(sc: &Scene, kind: &str, needle: &str, relay: &RelayProc) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(s) = summaries(&alerts(sc, kind))
            .into_iter()
            .find(|s| s.contains(needle))
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} alert about {needle}; stderr:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn send(relay: &RelayProc, n: usize, tag: &str) {
    for i in 0..n {
        let m = message(
            "alice@a.example",
            "x@dest.example",
            &format!("Minutes {tag} {i}"),
            "Hi team, the minutes of today's meeting are below. Regards, Alice",
        );
        let r = Client::send_mail(
            relay.addr("submission"),
            Some(("alice@a.example", "alice-pw")),
            "alice@a.example",
            &["x@dest.example"],
            &m,
        )
        .await;
        assert!(r.starts_with("250"), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_regular_ip_is_drained_alerted_and_returned() {
    let sc = dnsbl_scene().await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());

    let listed = wait_alert(&sc, "ip_listed", "127.0.0.2 ", &relay).await;
    assert!(
        listed.contains("bl.test") && listed.contains("127.0.0.2"),
        "{listed}"
    );
    assert!(
        listed.contains("Listed for sending spam"),
        "the TXT reason is in the alert: {listed}"
    );
    assert!(listed.contains("taken out"), "{listed}");
    let hr = wait_alert(&sc, "ip_listed", "127.0.0.3 ", &relay).await;
    assert!(
        hr.contains("monitored only"),
        "high-risk IPs are never drained: {hr}"
    );
    // A few more rounds: the error code and the NXDOMAIN never raise anything.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let all = summaries(&alerts(&sc, "ip_listed"));
    assert_eq!(all.len(), 2, "one alert per (IP, zone) listing: {all:?}");
    assert!(
        !all.iter()
            .any(|s| s.contains("IP 127.0.0.5") || s.contains("IP 127.0.0.4")),
        "{all:?}"
    );

    // Mail keeps flowing, from the other regular IP only.
    send(&relay, 6, "drained").await;
    let got = sc.dest.wait_for(6, WAIT).await;
    assert_eq!(got.len(), 6);
    assert!(
        got.iter().all(|m| m.peer.ip().to_string() == "127.0.0.5"),
        "{:?}",
        got.iter().map(|m| m.peer).collect::<Vec<_>>()
    );

    // The operators got the alert by mail (through our own queue).
    let ops = sc.home.wait_for(1, WAIT).await;
    assert!(
        ops.iter().any(|m| m.rcpts == ["ops@b.example"]
            && String::from_utf8_lossy(&m.data).contains("ip_listed")),
        "operator mail"
    );

    // `dnsbl check` (store + resolver, no server needed) prints every IP × zone.
    let table = sc.ok(&["dnsbl", "check"]);
    for want in [
        "127.0.0.2",
        "listed",
        "127.0.0.5",
        "error",
        "127.255.255.254",
        "127.0.0.4",
        "clean",
    ] {
        assert!(table.contains(want), "{want} missing:\n{table}");
    }
    let one: Vec<serde_json::Value> =
        serde_json::from_str(&sc.ok(&["dnsbl", "check", "127.0.0.5", "--json"])).expect("json");
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0]["status"], "error",
        "an error code is never a listing: {one:?}"
    );

    // Delisting: after clear_checks clean rounds the IP returns and ip_delisted is raised.
    sc.dns.update(|z| {
        z.remove("2.0.0.127.bl.test");
    });
    let back = wait_alert(&sc, "ip_delisted", "127.0.0.2 ", &relay).await;
    assert!(back.contains("back in rotation"), "{back}");
    send(&relay, 4, "returned").await;
    let got = sc.dest.wait_for(10, WAIT).await;
    let late: Vec<String> = got[6..].iter().map(|m| m.peer.ip().to_string()).collect();
    assert!(
        late.iter().any(|ip| ip == "127.0.0.2"),
        "the returned IP is used again: {late:?}"
    );
    assert!(
        summaries(&alerts(&sc, "ip_delisted"))
            .iter()
            .all(|s| !s.contains("127.0.0.3")),
        "127.0.0.3 is still listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_zone_code_refuses_to_start_with_exit_64() {
    let sc = scene("[[dnsbl.zones]]\nname = \"bl.test\"\nlisted = [\"10.0.0.2\"]\n").await;
    let mut child = std::process::Command::new(common::BIN)
        .args(["serve", "--config"])
        .arg(sc.dir().join("outguard.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("outguard serve did not refuse the bad zone");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut err = String::new();
    use std::io::Read as _;
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    assert_eq!(status.code(), Some(64), "{err}");
    assert!(err.contains("bl.test") && err.contains("10.0.0.2"), "{err}");
}
