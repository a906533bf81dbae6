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

#[path = "web/mod.rs"]
mod web;

/// `GET /api/v1/dnsbl` entry of one IP.
async fn ip_status(relay: &RelayProc, token: &str, ip: &str) -> serde_json::Value {
    let r = web::api(relay.addr("http"), "GET", "/api/v1/dnsbl", token, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let all = r.json();
    all.as_array()
        .and_then(|a| a.iter().find(|s| s["ip"] == ip).cloned())
        .unwrap_or_else(|| panic!("{ip} not in {all}"))
}

/// Poll until `ok(status of ip)` holds.
async fn wait_status(
    relay: &RelayProc,
    token: &str,
    ip: &str,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let st = ip_status(relay, token, ip).await;
        if ok(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{ip} never became {what}: {st}; stderr:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn zone_status(st: &serde_json::Value) -> String {
    st["zones"][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn listed_about(sc: &Scene, ip: &str) -> Vec<String> {
    summaries(&alerts(sc, "ip_listed"))
        .into_iter()
        .filter(|s| s.contains(&format!("IP {ip} ")))
        .collect()
}

/// The monitor's state survives a restart: a drained IP is still drained as soon as the relay
/// is up again, while the zone says nothing (SERVFAIL, then its error code) and when it lists
/// the IP again — with no second `ip_listed` — and it returns only once the zone clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_a_listed_ip_drained_without_a_second_alert() {
    let sc = dnsbl_scene().await;
    sc.provision().await;
    let mut relay = RelayProc::start(sc.dir());
    let token = relay.token.clone().expect("operator token on first start");
    wait_alert(&sc, "ip_listed", "127.0.0.2 ", &relay).await;
    wait_status(&relay, &token, "127.0.0.2", "drained", |s| {
        s["healthy"] == false
    })
    .await;
    assert_eq!(listed_about(&sc, "127.0.0.2").len(), 1);

    // While it is down the zone stops answering for 127.0.0.2: from now on nothing the zone
    // says would list it, so only the saved state can keep it drained.
    sc.dns.update(|z| {
        z.remove("2.0.0.127.bl.test").servfail("2.0.0.127.bl.test");
    });
    let status = relay.terminate();
    assert!(status.success(), "graceful stop: {status:?}");
    let relay = RelayProc::start(sc.dir());
    let first = ip_status(&relay, &token, "127.0.0.2").await;
    assert_eq!(
        first["healthy"], false,
        "drained at once after the restart: {first}"
    );
    wait_status(&relay, &token, "127.0.0.2", "unknown on the zone", |s| {
        zone_status(s) == "unknown"
    })
    .await;
    // The zone answers its error code: still no information, still drained.
    sc.dns.update(|z| {
        z.remove("2.0.0.127.bl.test")
            .a("2.0.0.127.bl.test", [127, 255, 255, 254].into());
    });
    let st = wait_status(&relay, &token, "127.0.0.2", "an error on the zone", |s| {
        zone_status(s) == "error"
    })
    .await;
    assert_eq!(st["healthy"], false, "{st}");
    // Listed again by the same zone: the listing was already reported.
    sc.dns.update(|z| {
        z.remove("2.0.0.127.bl.test")
            .a("2.0.0.127.bl.test", [127, 0, 0, 2].into());
    });
    wait_status(&relay, &token, "127.0.0.2", "listed", |s| {
        zone_status(s) == "listed"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let st = ip_status(&relay, &token, "127.0.0.2").await;
    assert_eq!(st["healthy"], false, "{st}");
    let listed = listed_about(&sc, "127.0.0.2");
    assert_eq!(
        listed.len(),
        1,
        "no second ip_listed after the restart: {listed:?}"
    );

    // Cleared: after clear_checks clean rounds it is delisted and back in rotation.
    sc.dns.update(|z| {
        z.remove("2.0.0.127.bl.test");
    });
    let back = wait_alert(&sc, "ip_delisted", "127.0.0.2 ", &relay).await;
    assert!(back.contains("back in rotation"), "{back}");
    wait_status(&relay, &token, "127.0.0.2", "healthy", |s| {
        s["healthy"] == true
    })
    .await;
    assert_eq!(summaries(&alerts(&sc, "ip_delisted")).len(), 1);
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
