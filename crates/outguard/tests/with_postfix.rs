//! Outguard behind a real Postfix (issue 23): a private Postfix instance under a temp dir
//! (`postfix -c DIR start`, its own main.cf/master.cf, loopback ports, never the system
//! service) with `check_policy_service` at our policy listener, `smtpd_milters` at our milter,
//! SASL through a Dovecot-protocol stub (Postfix speaks the Dovecot auth protocol over TCP, so
//! no Dovecot is needed) and `relayhost` = a test SMTP sink. An AUTH'd submission through
//! Postfix hits the hourly limit exactly at N+1 and is then refused `5.1.8`; spam is rejected
//! with its reasons; clean mail arrives at the sink with our headers, and the trace shows it.
//!
//! Needs the Debian `postfix` package (`scripts/test` installs it) and root (Postfix's master
//! runs as root and drops to the `postfix` user).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::client::Client;
use common::{RelayProc, Scene, message, scene};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(60);
const POSTFIX: &str = "/usr/sbin/postfix";

fn require_postfix() {
    assert!(
        Path::new(POSTFIX).exists(),
        "{POSTFIX} is missing: install it with `DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix` (scripts/test does)"
    );
}

/// A Dovecot auth-protocol server (what `smtpd_sasl_type = dovecot` talks to) that knows the
/// scene's passwords; enough of the protocol for Postfix's PLAIN and LOGIN.
async fn dovecot_auth_stub(users: &'static [(&'static str, &'static str)]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (r, mut w) = tcp.into_split();
                let hello = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\t0123456789abcdef0123456789abcdef\nDONE\n";
                if w.write_all(hello.as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let f: Vec<&str> = line.split('\t').collect();
                    if f.first() != Some(&"AUTH") || f.len() < 3 {
                        continue;
                    }
                    let id = f[1];
                    let resp = f.iter().find_map(|x| x.strip_prefix("resp="));
                    let Some(resp) = resp else {
                        // No initial response: ask for it (Postfix then sends CONT).
                        let _ = w.write_all(format!("FAIL\t{id}\n").as_bytes()).await;
                        continue;
                    };
                    let plain = base64::engine::general_purpose::STANDARD
                        .decode(resp)
                        .unwrap_or_default();
                    let parts: Vec<&[u8]> = plain.split(|&b| b == 0).collect();
                    let ok = parts.len() == 3
                        && users
                            .iter()
                            .any(|(u, p)| parts[1] == u.as_bytes() && parts[2] == p.as_bytes());
                    let answer = if ok {
                        format!("OK\t{id}\tuser={}\n", String::from_utf8_lossy(parts[1]))
                    } else {
                        format!("FAIL\t{id}\n")
                    };
                    if w.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A private Postfix: started in `new`, stopped on drop.
struct Postfix {
    dir: PathBuf,
    smtpd: std::net::SocketAddr,
}

impl Postfix {
    fn conf(&self) -> PathBuf {
        self.dir.join("conf")
    }

    fn start(base: &Path, relay: &RelayProc, sink_port: u16, sasl_port: u16) -> Postfix {
        require_postfix();
        let dir = base.join("postfix");
        for d in ["conf", "queue", "data"] {
            std::fs::create_dir_all(dir.join(d)).expect("postfix dirs");
        }
        let st = Command::new("chown")
            .args(["postfix"])
            .arg(dir.join("data"))
            .status()
            .expect("chown");
        assert!(st.success(), "chown postfix data dir (run as root)");
        let port = common::free_port_on(&["127.0.0.1"]);
        let policy = relay.addr("policy");
        let milter = relay.addr("milter");
        let d = dir.display();
        let main_cf = format!(
            r#"compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = no
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.outguard.test
mydomain = outguard.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.1/32
relayhost = [127.0.0.10]:{sink_port}
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:{sasl_port}
smtpd_sender_restrictions = check_policy_service inet:{policy}
smtpd_recipient_restrictions = check_policy_service inet:{policy}, permit_sasl_authenticated, reject
smtpd_end_of_data_restrictions = check_policy_service inet:{policy}
smtpd_milters = inet:{milter}
milter_default_action = tempfail
milter_protocol = 6
"#
        );
        std::fs::write(dir.join("conf/main.cf"), main_cf).expect("main.cf");
        let master_cf = format!(
            "127.0.0.1:{port} inet n - n - - smtpd\n{}",
            [
                "cleanup unix n - n - 0 cleanup",
                "qmgr unix n - n 300 1 qmgr",
                "rewrite unix - - n - - trivial-rewrite",
                "bounce unix - - n - 0 bounce",
                "defer unix - - n - 0 bounce",
                "trace unix - - n - 0 bounce",
                "verify unix - - n - 1 verify",
                "flush unix n - n 1000? 0 flush",
                "proxymap unix - - n - - proxymap",
                "smtp unix - - n - - smtp",
                "relay unix - - n - - smtp",
                "showq unix n - n - - showq",
                "error unix - - n - - error",
                "retry unix - - n - - error",
                "discard unix - - n - - discard",
                "anvil unix - - n - 1 anvil",
                "scache unix - - n - 1 scache",
                "postlog unix-dgram n - n - 1 postlogd",
            ]
            .join("\n")
        );
        std::fs::write(dir.join("conf/master.cf"), master_cf + "\n").expect("master.cf");
        let pf = Postfix {
            dir,
            smtpd: ([127, 0, 0, 1], port).into(),
        };
        let out = Command::new(POSTFIX)
            .arg("-c")
            .arg(pf.conf())
            .arg("start")
            .output()
            .expect("run postfix");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            pf.log()
        );
        // Ready when smtpd answers.
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(pf.smtpd).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "postfix never listened on {}: {}",
                pf.smtpd,
                pf.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pf
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.conf())
            .arg("abort")
            .output();
        // `abort` signals master; wait for it to go so the temp dir can be removed.
        let pid_file = self.dir.join("queue/pid/master.pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pid_file.exists()
            && std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn postfix_scene(settings: &[&str]) -> Scene {
    let sc = scene("").await;
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let cfg = cfg.replacen(
        "[listeners]\n",
        "[listeners]\npolicy = \"127.0.0.1:0\"\nmilter = \"127.0.0.1:0\"\n",
        1,
    );
    std::fs::write(&path, cfg).expect("config");
    sc.provision().await;
    let mut args = vec!["policy", "set", "--tenant", "a"];
    args.extend_from_slice(settings);
    sc.ok(&args);
    sc
}

/// One submission through Postfix, bounded (a stuck Postfix fails the test, never hangs it).
async fn send(pf: &Postfix, auth: (&str, &str), to: &str, msg: &str) -> String {
    tokio::time::timeout(
        WAIT,
        Client::send_mail(pf.smtpd, Some(auth), auth.0, &[to], msg),
    )
    .await
    .unwrap_or_else(|_| panic!("postfix did not answer in time:\n{}", pf.log()))
}

const USERS: &[(&str, &str)] = &[("bob@a.example", "bob-pw"), ("alice@a.example", "alice-pw")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_with_outguard_limits_restricts_scans_and_traces() {
    require_postfix();
    let engine = outguard_spam::Engine::builtin();
    let (_, spam_at) = engine.thresholds();
    let reject_at = format!("reject_score={spam_at}");
    let sc = postfix_scene(&["recipient_limit_external_per_hour=3", &reject_at]).await;
    let relay = RelayProc::start(sc.dir());
    let sasl = dovecot_auth_stub(USERS).await;
    let pf = Postfix::start(sc.dir(), &relay, sc.port, sasl);

    // bob: three messages of one recipient each pass; the fourth recipient in the hour (N+1)
    // is refused with our code, and then bob is restricted (5.1.8).
    let bob = ("bob@a.example", "bob-pw");
    for i in 0..3 {
        let to = format!("r{i}@dest.example");
        let m = message(bob.0, &to, "Minutes", "The minutes of Monday's meeting.");
        let r = send(&pf, bob, &to, &m).await;
        assert!(r.starts_with("250"), "message {i}: {r}\n{}", pf.log());
    }
    let m = message(bob.0, "r3@dest.example", "Minutes", "Once more.");
    let r = send(&pf, bob, "r3@dest.example", &m).await;
    assert!(
        r.starts_with("550 5.2.2") && r.contains("Submission quota exceeded"),
        "the 4th recipient: {r}"
    );
    let r = send(&pf, bob, "r4@dest.example", &m).await;
    assert!(
        r.starts_with("550 5.1.8") && r.contains("Access denied, bad outbound sender"),
        "restricted: {r}"
    );

    // bob's three arrive at the sink through Postfix, with our headers.
    let got = sc.dest.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3, "{}", pf.log());
    let mut ids = Vec::new();
    for m in &got {
        let d = String::from_utf8_lossy(&m.data);
        assert!(d.contains("X-Outguard-Verdict: clean"), "{d}");
        assert!(d.contains("X-Outguard-Pool: regular"), "{d}");
        let id = d
            .lines()
            .find_map(|l| l.strip_prefix("X-Outguard-Id: "))
            .expect("X-Outguard-Id")
            .trim()
            .to_string();
        ids.push(id);
    }

    // Spam from alice: rejected at end of data with its reasons.
    let alice = ("alice@a.example", "alice-pw");
    let spam = common::corpus_files("spam")
        .into_iter()
        .map(|f| common::readdress(&std::fs::read(f).expect("read"), alice.0, "x@dest.example"))
        .find(|m| {
            engine
                .scan(m.as_bytes(), &outguard_spam::ScanContext::default())
                .score
                >= spam_at + 2.0
        })
        .expect("the corpus has spam");
    let r = send(&pf, alice, "x@dest.example", &spam).await;
    assert!(
        r.starts_with("550 5.7.1 Message rejected as spam ("),
        "spam: {r}"
    );

    // The trace shows each delivered message, with Postfix's queue id.
    for id in &ids {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let (code, out, _) = sc.cli(&["trace", "--id", id]);
            if code == 0 && out.contains("handed back to Postfix") {
                assert!(out.contains("account bob@a.example"), "{out}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "trace of {id} never complete: {out}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
