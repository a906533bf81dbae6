//! Cost of one full RCPT decision (`reserve_recipient`: 3 windows on 2 keys, atomic, with the
//! measures for the trace) on the embedded counters, plus a per-call latency distribution
//! (criterion reports the mean; the p50/p99 the issue asks for are printed by `percentiles`).
//!
//! `cargo bench -p outguard-policy --bench decision`

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use outguard_policy::{RcptDecision, RcptRequest, SenderRef, reserve_recipient};
use outguard_store::memory_counters::MemoryCounters;
use outguard_types::policy::{EffectivePolicy, PolicySettings};

/// MemoryCounters futures are always ready: poll once, no runtime in the measurement.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("MemoryCounters future was not ready"),
    }
}

struct Setup {
    counters: MemoryCounters,
    eff: EffectivePolicy,
    accounts: Vec<String>,
}

fn setup() -> Setup {
    // Generous limits so the steady state is "admit" with full windows to search.
    let s = PolicySettings {
        recipient_limit_external_per_hour: Some(10_000),
        recipient_limit_internal_per_hour: Some(10_000),
        recipient_limit_per_day: Some(10_000),
        ..Default::default()
    };
    let eff = s.resolve(&PolicySettings::default(), &PolicySettings::default());
    let accounts = (0..1000)
        .map(|i| format!("user{i}@tenant{}.example", i % 50))
        .collect();
    Setup {
        counters: MemoryCounters::new(),
        eff,
        accounts,
    }
}

fn decide(s: &Setup, i: usize, now: i64) -> bool {
    let acct = &s.accounts[i % s.accounts.len()];
    let req = RcptRequest {
        sender: SenderRef::Account(acct),
        tenant: "t",
        internal: i.is_multiple_of(4),
        n: 1,
    };
    let d = ready(reserve_recipient(&s.counters, &req, &s.eff, &[], now))
        .expect("memory counters do not fail");
    if let RcptDecision::Admit { reservation, .. } = &d {
        // Keep the windows from filling: give back most reservations, as aborted transactions do.
        if !i.is_multiple_of(8) {
            let _ = ready(outguard_policy::Counters::release(&s.counters, reservation));
        }
    }
    matches!(d, RcptDecision::Admit { .. })
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let mut i = 0usize;
    let mut now = 1_795_456_800_000i64;
    c.bench_function("rcpt_decision_memory", |b| {
        b.iter(|| {
            i += 1;
            now += 1;
            decide(&s, i, now)
        })
    });
    percentiles(&s, now);
}

fn percentiles(s: &Setup, mut now: i64) {
    const N: usize = 200_000;
    let mut lat = Vec::with_capacity(N);
    let start = Instant::now();
    for i in 0..N {
        now += 1;
        let t = Instant::now();
        std::hint::black_box(decide(s, i, now));
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let total = start.elapsed();
    lat.sort_unstable();
    let p = |q: f64| lat[((N as f64 * q) as usize).min(N - 1)] as f64 / 1000.0;
    println!(
        "rcpt_decision_memory: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us; {:.0} decisions/s (single thread, {N} decisions)",
        p(0.50),
        p(0.99),
        p(0.999),
        lat[N - 1] as f64 / 1000.0,
        N as f64 / total.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
