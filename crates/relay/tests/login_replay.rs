//! No false alarm from login behaviour (issue 25 part 1): 30 days of synthetic logins of 200
//! normal accounts replayed through `outguard_policy::login` on the embedded signal store with
//! an injected clock. Every account logs in for each message it sends (as submission clients
//! do): from its office during working hours, from home in the evening, from its phone at any
//! time — the phone's carrier rotating it through 8 /24s in 3 /16s (CGNAT pools) — and one in
//! ten travels three days of the month (hotel, airport and conference networks, new each day).
//! No login may reach a default `[login_behaviour]` line.

use outguard_policy::login;
use outguard_store::memory_counters::MemoryCounters;
use outguard_types::config::LoginBehaviourConfig;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01 00:00 UTC.
const START: i64 = 1_793_491_200_000;

/// xorshift64*: a fixed, reproducible history.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn addr(a: u64, b: u64, c: u64) -> std::net::IpAddr {
    std::net::Ipv4Addr::new((a % 223 + 1) as u8, (b % 256) as u8, (c % 256) as u8, 9).into()
}

#[tokio::test]
async fn thirty_days_of_normal_logins_cross_no_line() {
    let store = MemoryCounters::new();
    let cfg = LoginBehaviourConfig::default();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut logins = 0u64;
    let mut worst = login::LoginFacts::default();
    for acct in 0..200u64 {
        let who = format!("user{acct}@company{}.example", acct % 20);
        let office = addr(10 + acct % 20, 1, acct % 20);
        let home = addr(60 + acct, rng.below(256), rng.below(256));
        let carrier = 100 + acct % 4;
        let travels = acct % 10 == 3;
        let trip_day = rng.below(27);
        for day in 0..30u64 {
            let base = START + day as i64 * DAY;
            let weekday = (day % 7) < 5;
            let sends = 5 + rng.below(25);
            let mut times: Vec<(u64, u64)> = (0..sends)
                .map(|_| (6 + rng.below(17), rng.below(60))) // 06:00–22:59
                .collect();
            times.sort_unstable();
            for (hour, minute) in times {
                let at = base + hour as i64 * HOUR + minute as i64 * MINUTE;
                let on_trip = travels && (trip_day..trip_day + 3).contains(&day);
                let ip = match (rng.below(10), on_trip) {
                    (0..=3, _) => addr(carrier, 10 + rng.below(3), rng.below(8)),
                    (_, true) => addr(200 + day, day * 7 + rng.below(3), acct),
                    (4..=8, false) if weekday && (8..18).contains(&hour) => office,
                    _ => home,
                };
                let f = login::record(&store, &who, ip, at).await.expect("record");
                logins += 1;
                let crossed = login::judge(&f, &cfg);
                assert!(
                    crossed.is_empty(),
                    "{who} on day {day} at {hour}h from {ip}: {crossed:?} ({f:?})"
                );
                worst.burst = worst.burst.max(f.burst);
                worst.hour = worst.hour.max(f.hour);
                worst.day = worst.day.max(f.day);
                worst.wide_day = worst.wide_day.max(f.wide_day);
                worst.new_day = worst.new_day.max(f.new_day);
            }
        }
    }
    println!("{logins} logins; the highest counts any account reached: {worst:?}");
    assert!(logins > 100_000, "{logins}");
}
