//! Benchmark of the what-if replay (issue 22): one week of synthetic traffic at 1 M messages a
//! day (`--days`, `--per-day`), generated a day at a time (so the week need not sit in memory)
//! and replayed through `outguard_policy::simulate::Replay` on the embedded counters, with the
//! default policy and a tighter candidate. Prints the replay time and rates.
//!
//! `cargo run --release -p outguard-policy --example simulate_bench -- [--days 7] [--per-day 1000000]`
//! (or `bench/simulate.sh`).
//!
//! The traffic: 20,000 accounts in 200 tenants; 1–3 recipients per message (a fifth internal);
//! 3 % of messages spam; a few hundred heavy senders send 20× the average, so limits are
//! crossed and restrictions made during the run (the decisions' slow paths are exercised too).

use std::time::Instant;

use outguard_policy::simulate::{Candidate, Recorded, Replay, SimMessage, SimRcpt, SimSender, Txn};
use outguard_store::memory_counters::MemoryCounters;
use outguard_types::policy::PolicySettings;
use outguard_types::verdict::Class;

const DAY_MS: i64 = 86_400_000;
// 2026-11-23 00:00:00 UTC
const START: i64 = 1_795_392_000_000;
const ACCOUNTS: u64 = 20_000;
const TENANTS: u64 = 200;

/// A small deterministic generator (xorshift64*), so every run replays the same traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn day(rng: &mut Rng, d: i64, per_day: u64, addrs: &[String]) -> Vec<Txn> {
    let mut out = Vec::with_capacity(per_day as usize);
    for i in 0..per_day {
        let at = START + d * DAY_MS + (i as i64 * DAY_MS) / per_day as i64;
        // One message in ten from the 1 % heaviest senders.
        let a = if rng.below(10) == 0 {
            rng.below(ACCOUNTS / 100)
        } else {
            rng.below(ACCOUNTS)
        };
        let tenant = a % TENANTS;
        let n = 1 + rng.below(3);
        let rcpts = (0..n)
            .map(|k| {
                let internal = rng.below(5) == 0;
                SimRcpt {
                    address: if internal {
                        format!("u{k}@t{tenant}.example")
                    } else {
                        format!("r{}@dest.example", rng.below(1000))
                    },
                    internal,
                }
            })
            .collect();
        let class = if rng.below(100) < 3 {
            Class::Spam
        } else {
            Class::Clean
        };
        let address = addrs[a as usize].clone();
        out.push(Txn {
            at,
            sender: SimSender::Account {
                address: address.clone(),
            },
            tenant: format!("t{tenant}"),
            policy_sender: address,
            rcpts,
            message: Some(SimMessage {
                id: format!("m{d}-{i}"),
                at,
                class,
                score: None,
            }),
        });
    }
    out
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn run(label: &str, days: i64, per_day: u64, over: &PolicySettings) {
    let addrs: Vec<String> = (0..ACCOUNTS)
        .map(|a| format!("user{a}@t{}.example", a % TENANTS))
        .collect();
    let candidate = Candidate::new(PolicySettings::default(), 30)
        .with_overrides(over)
        .expect("candidate");
    let recorded = Recorded {
        restrictions: Vec::new(),
        from: START,
        to: START + days * DAY_MS,
    };
    let counters = MemoryCounters::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut replay = Replay::new(&counters, candidate, recorded);
    let (mut generating, mut replaying) = (0.0, 0.0);
    for d in 0..days {
        let t = Instant::now();
        let txns = day(&mut rng, d, per_day, &addrs);
        generating += t.elapsed().as_secs_f64();
        let t = Instant::now();
        rt.block_on(async {
            for txn in &txns {
                replay.feed(txn).await.expect("replay");
            }
        });
        replaying += t.elapsed().as_secs_f64();
        // The relay sweeps its counters periodically; so does the replay, daily.
        counters.sweep(START + (d + 1) * DAY_MS);
    }
    let report = replay.finish(60_000);
    let total = days as u64 * per_day;
    println!(
        "{label}: {total} messages ({} recipients) over {days} days replayed in {replaying:.1} s \
         ({:.0} messages/s; generating them took {generating:.1} s more); {} restrictions, {} \
         recipients refused",
        report.recipients,
        total as f64 / replaying,
        report.restrictions.len(),
        report.refused
    );
}

fn main() {
    let days = i64::try_from(arg("--days", 7)).unwrap_or(7);
    let per_day = arg("--per-day", 1_000_000);
    run("default policy", days, per_day, &PolicySettings::default());
    let tight = PolicySettings {
        recipient_limit_external_per_hour: Some(50),
        spam_messages_per_hour: Some(3),
        ..Default::default()
    };
    run("tighter candidate", days, per_day, &tight);
}
