//! Full disk (issue 10): the spool (`<data_dir>/spool`) sits on a 4 MiB tmpfs that a filler file
//! and queued messages fill up. The relay must answer `452 4.3.1` at the end of DATA instead of
//! acknowledging what it cannot store, leave no partial spool files, accept again as soon as
//! space is freed (no restart), restart cleanly on that spool, and deliver every message it
//! acknowledged with `250` intact.
//!
//! Mounting needs root (CAP_SYS_ADMIN): without it the test fails and says so; it never skips.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};
use outguard_harness::sink::{Reply, Script};

const FULL: &str = "452 4.3.1 Insufficient system storage";

/// A tmpfs mounted for the test; unmounted (lazily, so a straggling handle cannot block it) on
/// drop, before the temp dir holding the mount point is removed.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "disk_full needs root (CAP_SYS_ADMIN) to mount a {size} tmpfs at {}; mount said: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A ~20 KB business-like message, unique per `n`.
fn big_message(n: usize) -> String {
    let mut body = String::new();
    for line in 0..180 {
        body.push_str(&format!(
            "Line {line} of the quarterly report {n}: figures for the northern region are \
             attached, please review them before Friday's meeting.\r\n"
        ));
    }
    message(
        "alice@a.example",
        "x@dest.example",
        &format!("Quarterly report {n}"),
        &body,
    )
}

async fn send(addr: std::net::SocketAddr, data: &str) -> String {
    Client::send_mail(addr, None, "alice@a.example", &["x@dest.example"], data).await
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every acknowledged message reached the sink, byte for byte (after the headers we prepend).
async fn assert_all_delivered(sc: &common::Scene, acked: &HashMap<String, String>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut got: HashMap<String, Vec<u8>> = HashMap::new();
        for m in sc.dest.messages() {
            let text = String::from_utf8_lossy(&m.data).into_owned();
            if let Some(id) = text.lines().find_map(|l| l.strip_prefix("X-Outguard-Id: ")) {
                got.insert(id.trim().to_string(), m.data.clone());
            }
        }
        let missing: Vec<&String> = acked.keys().filter(|id| !got.contains_key(*id)).collect();
        if missing.is_empty() {
            for (id, sent) in acked {
                let data = &got[id];
                assert!(
                    data.ends_with(sent.as_bytes()),
                    "message {id} was corrupted on its way through the full spool"
                );
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "acknowledged messages never delivered: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_answers_452_and_loses_nothing() {
    let sc = scene("").await;
    sc.provision().await;
    let spool = sc.dir().join("data/spool");
    let tmpfs = Tmpfs::mount(&spool, "4m");
    // The destination defers everything for now, so acknowledged messages stay in the spool.
    sc.dest.set_script(Script::fail_first(
        u32::MAX,
        Reply::new(451, "4.3.0 try again later"),
    ));
    let mut relay = RelayProc::start(sc.dir());
    let addr = relay.addr("connector");

    // Leave ~320 KB: a dozen or so messages fit, then the spool is full.
    let filler = spool.join("filler");
    std::fs::write(&filler, vec![0u8; 4 * 1024 * 1024 - 320 * 1024]).expect("filler file");

    let mut acked: HashMap<String, String> = HashMap::new();
    let mut full = 0;
    for n in 0..200 {
        let m = big_message(n);
        let r = send(addr, &m).await;
        if r.starts_with("250") {
            assert_eq!(full, 0, "a message was accepted after the spool filled up");
            acked.insert(queued_id(&r), m);
        } else {
            assert_eq!(r, FULL, "message {n}: the full spool gave the wrong reply");
            full += 1;
            if full == 3 {
                break;
            }
        }
    }
    assert_eq!(full, 3, "the spool never filled up");
    eprintln!(
        "{} messages acknowledged before the spool filled",
        acked.len()
    );
    assert!(
        acked.len() >= 3,
        "some messages fit before the disk filled: {}",
        acked.len()
    );
    // A failed write leaves nothing half-written behind.
    assert_eq!(files_in(&spool.join("tmp")), Vec::<String>::new());
    let queued = files_in(&spool.join("queue"))
        .iter()
        .filter(|f| f.ends_with(".msg"))
        .count();
    assert_eq!(
        queued,
        acked.len(),
        "spool holds exactly the acknowledged messages"
    );

    // Space freed: the same relay accepts again, no restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let m = big_message(1000);
    let r = send(addr, &m).await;
    assert!(r.starts_with("250"), "after freeing space: {r}");
    acked.insert(queued_id(&r), m);

    // A restart on that spool works and keeps everything.
    let status = relay.terminate();
    assert!(status.success(), "graceful stop: {status:?}");
    drop(relay);
    let relay = RelayProc::start(sc.dir());
    let addr = relay.addr("connector");
    let m = big_message(2000);
    let r = send(addr, &m).await;
    assert!(r.starts_with("250"), "after restart: {r}");
    acked.insert(queued_id(&r), m);

    sc.dest.set_script(Script::default());
    assert_all_delivered(&sc, &acked).await;
    assert!(
        !relay.stderr().contains("corrupt spool file"),
        "restart found corrupt spool files:\n{}",
        relay.stderr()
    );
    drop(relay);
    drop(tmpfs);
}

/// Fill whatever space is left in `dir` with one file (written until ENOSPC).
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler file");
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

/// A recipient that bounces while the disk is full: the DSN cannot be spooled, so the message
/// stays queued (its bounce owed) instead of being removed with the sender never told; once
/// space is back the DSN is spooled and delivered, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounce_on_a_full_disk_keeps_the_message_until_its_dsn_is_spooled() {
    let sc = scene("").await;
    sc.provision().await;
    let spool = sc.dir().join("data/spool");
    let tmpfs = Tmpfs::mount(&spool, "4m");
    sc.dest.set_script(Script::fail_first(
        u32::MAX,
        Reply::new(451, "4.3.0 try again later"),
    ));
    let relay = RelayProc::start(sc.dir());
    let r = send(relay.addr("connector"), &big_message(1)).await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);

    let filler = fill(&spool);
    sc.dest.set_script(Script::fail_first(
        u32::MAX,
        Reply::new(550, "5.1.1 no such user"),
    ));
    // The bounce happens at the next retry; its DSN cannot be written.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !relay.stderr().contains("cannot spool DSN") {
        assert!(
            Instant::now() < deadline,
            "no bounce while the disk was full:\n{}",
            relay.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        spool.join("queue").join(format!("{id}.msg")).exists(),
        "the bounced message was removed although its DSN was never written"
    );
    assert!(sc.home.messages().is_empty(), "no DSN can have left yet");

    // Space back: the owed DSN is spooled and delivered to the sender; the message is gone.
    std::fs::remove_file(&filler).expect("remove filler");
    let got = sc.home.wait_for(1, Duration::from_secs(60)).await;
    let dsn = String::from_utf8_lossy(&got[0].data).into_owned();
    assert_eq!(got[0].rcpts, ["alice@a.example"], "{dsn}");
    assert!(
        dsn.contains("x@dest.example") && dsn.contains("5.1.1"),
        "{dsn}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool.join("queue").join(format!("{id}.msg")).exists() {
        assert!(
            Instant::now() < deadline,
            "the message stayed queued after its DSN"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sc.home.messages().len(), 1, "exactly one DSN");
    drop(relay);
    drop(tmpfs);
}
