//! The [`SignalStore`] contract as executable checks (STYLE rule 7), run by the store's tests on
//! the embedded backend and on Redis alike. Keys start with `prefix` so runs can share a Redis.

use outguard_types::model::Millis;

use super::SignalStore;
use super::campaign;
use crate::counters::HOUR_MS;
use crate::restriction::Subject;

type Check = Result<(), String>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok { Ok(()) } else { Err(what()) }
}

fn err(e: crate::CounterError) -> String {
    e.to_string()
}

/// Spam sets the state; `clear_after` clean outcomes in a row end it; a spam in between starts
/// over; clearing ends it at once.
pub async fn reputation_cycle(s: &dyn SignalStore, prefix: &str, now: Millis) -> Check {
    let k = format!("{prefix}:rep");
    ensure(
        s.reputation(&k, false, 3, now)
            .await
            .map_err(err)?
            .is_none(),
        || "a sender with no spam is under reputation".into(),
    )?;
    ensure(
        s.reputation(&k, true, 3, now).await.map_err(err)?.is_none(),
        || "state before the first spam".into(),
    )?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(s.reputation(&k, false, 3, now).await.map_err(err)?);
    }
    ensure(seen == vec![Some(0), Some(1), Some(2)], || {
        format!("clean streak {seen:?}")
    })?;
    ensure(
        s.reputation(&k, false, 3, now)
            .await
            .map_err(err)?
            .is_none(),
        || "still under reputation after 3 clean in a row".into(),
    )?;
    s.reputation(&k, true, 3, now).await.map_err(err)?;
    s.reputation(&k, false, 3, now).await.map_err(err)?;
    let peeked = s.peek_reputation(&k, now).await.map_err(err)?;
    ensure(peeked == Some(1), || format!("peek: {peeked:?}"))?;
    let again = s.reputation(&k, true, 3, now).await.map_err(err)?;
    ensure(again == Some(1), || {
        format!("before the second spam: {again:?}")
    })?;
    ensure(
        s.reputation(&k, false, 3, now).await.map_err(err)? == Some(0),
        || "a spam starts the streak over".into(),
    )?;
    ensure(s.clear_reputation(&k).await.map_err(err)?, || {
        "clear found nothing".into()
    })?;
    ensure(!s.clear_reputation(&k).await.map_err(err)?, || {
        "clear twice".into()
    })?;
    ensure(
        s.reputation(&k, false, 3, now)
            .await
            .map_err(err)?
            .is_none(),
        || "under reputation after a clear".into(),
    )
}

/// The state expires [`super::reputation::REPUTATION_TTL_MS`] after its latest outcome. `now`
/// must be the wall clock: Redis judges its expiries by its own.
pub async fn reputation_expires(s: &dyn SignalStore, prefix: &str, now: Millis) -> Check {
    let ttl = super::reputation::REPUTATION_TTL_MS;
    let old = format!("{prefix}:rep-old");
    s.reputation(&old, true, 3, now - ttl - 60_000)
        .await
        .map_err(err)?;
    let peeked = s.peek_reputation(&old, now).await.map_err(err)?;
    ensure(peeked.is_none(), || {
        format!("spam recorded longer ago than the expiry is still kept: {peeked:?}")
    })?;
    let before = s.reputation(&old, false, 3, now).await.map_err(err)?;
    ensure(before.is_none(), || {
        format!("an expired state counted a clean message: {before:?}")
    })?;
    // A clean message within the expiry keeps the state alive for another full period.
    let live = format!("{prefix}:rep-live");
    s.reputation(&live, true, 3, now - ttl + 60_000)
        .await
        .map_err(err)?;
    let before = s.reputation(&live, false, 3, now).await.map_err(err)?;
    ensure(before == Some(0), || format!("live state: {before:?}"))?;
    let later = s.peek_reputation(&live, now + 120_000).await.map_err(err)?;
    ensure(later == Some(1), || {
        format!("a clean message did not renew the state: {later:?}")
    })
}

/// Units land in their hour; older hours than asked are 0 (and gone).
pub async fn hourly_buckets(s: &dyn SignalStore, prefix: &str, start: Millis) -> Check {
    let k = format!("{prefix}:hourly");
    let t0 = start - start.rem_euclid(HOUR_MS);
    let a = s.hourly(&k, 2, t0 + 10, 4).await.map_err(err)?;
    ensure(a == vec![2, 0, 0, 0], || format!("first: {a:?}"))?;
    let b = s.hourly(&k, 3, t0 + HOUR_MS - 1, 4).await.map_err(err)?;
    ensure(b == vec![5, 0, 0, 0], || format!("same hour: {b:?}"))?;
    let c = s.hourly(&k, 1, t0 + 2 * HOUR_MS, 4).await.map_err(err)?;
    ensure(c == vec![1, 0, 5, 0], || format!("two hours on: {c:?}"))?;
    let d = s.hourly(&k, 0, t0 + 5 * HOUR_MS, 4).await.map_err(err)?;
    ensure(d == vec![0, 0, 0, 1], || format!("read only: {d:?}"))?;
    let e = s.hourly(&k, 0, t0 + 9 * HOUR_MS, 4).await.map_err(err)?;
    ensure(e == vec![0, 0, 0, 0], || format!("all old: {e:?}"))
}

/// New members are counted once; the cap bounds what is remembered.
pub async fn first_seen_counts(s: &dyn SignalStore, prefix: &str, now: Millis) -> Check {
    let k = format!("{prefix}:seen");
    let v = |x: &[&str]| x.iter().map(|m| m.to_string()).collect::<Vec<_>>();
    let ttl = 30 * 86_400_000;
    let a = s
        .first_seen(&k, &v(&["a.example", "b.example"]), now, ttl, 3)
        .await
        .map_err(err)?;
    ensure(a == 2, || format!("first: {a}"))?;
    let b = s
        .first_seen(
            &k,
            &v(&["a.example", "c.example", "d.example"]),
            now,
            ttl,
            3,
        )
        .await
        .map_err(err)?;
    ensure(b == 2, || format!("second: {b}"))?;
    let c = s
        .first_seen(&k, &v(&["d.example", "b.example"]), now, ttl, 3)
        .await
        .map_err(err)?;
    ensure(c == 1, || format!("d was over the cap: {c}"))
}

/// A timed list returns what it held before, within the window, and drops older entries.
pub async fn near_lists(s: &dyn SignalStore, prefix: &str, start: Millis) -> Check {
    let keys = vec![format!("{prefix}:n1"), format!("{prefix}:n2")];
    let one = vec![keys[0].clone()];
    let a = s.near(&keys, "m1", start, HOUR_MS, 10).await.map_err(err)?;
    ensure(a.is_empty(), || format!("first: {a:?}"))?;
    let mut b = s
        .near(&one, "m2", start + 1000, HOUR_MS, 10)
        .await
        .map_err(err)?;
    b.sort();
    ensure(b == vec!["m1"], || format!("second: {b:?}"))?;
    let mut c = s
        .near(&keys, "m3", start + 2000, HOUR_MS, 10)
        .await
        .map_err(err)?;
    c.sort();
    ensure(c == vec!["m1", "m2"], || format!("deduplicated: {c:?}"))?;
    let d = s
        .near(&one, "m4", start + 1000 + HOUR_MS, HOUR_MS, 10)
        .await
        .map_err(err)?;
    ensure(d == vec!["m3"], || format!("window: {d:?}"))?;
    let capped = vec![format!("{prefix}:cap")];
    for i in 0..5 {
        s.near(&capped, &format!("c{i}"), start + i, HOUR_MS, 2)
            .await
            .map_err(err)?;
    }
    let mut e = s
        .near(&capped, "c5", start + 10, HOUR_MS, 2)
        .await
        .map_err(err)?;
    e.sort();
    ensure(e == vec!["c3", "c4"], || format!("cap: {e:?}"))
}

/// Three senders of one tenant share one campaign through the store: the third sees two others,
/// and the spam bit of the first.
pub async fn campaign_is_shared(s: &dyn SignalStore, prefix: &str, start: Millis) -> Check {
    let text = format!(
        "{prefix} Your parcel could not be delivered because the customs fee of 1.99 EUR was \
         not paid. Pay now to release it: https://parcel-fee.example/pay?id=123 otherwise it \
         goes back to the sender within 48 hours."
    );
    let fp = campaign::fingerprint(&text).ok_or("no fingerprint")?;
    let who = |n: u32| Subject::Account(format!("u{n}@{prefix}.example"));
    let a = campaign::assess(s, fp, &who(1), "t1", true, start)
        .await
        .map_err(err)?;
    ensure(a.senders == 1 && !a.matched(), || format!("first: {a:?}"))?;
    let b = campaign::assess(s, fp ^ 0b101, &who(2), "t1", false, start + 1)
        .await
        .map_err(err)?;
    ensure(b.senders == 2 && !b.matched(), || format!("second: {b:?}"))?;
    let same = campaign::assess(s, fp, &who(2), "t1", false, start + 2)
        .await
        .map_err(err)?;
    ensure(same.senders == 2, || format!("one sender twice: {same:?}"))?;
    let c = campaign::assess(s, fp ^ 0b1, &who(3), "t1", false, start + 3)
        .await
        .map_err(err)?;
    ensure(c.senders == 3 && c.matched() && c.alert_now(), || {
        format!("third: {c:?}")
    })?;
    let far = campaign::assess(s, !fp, &who(4), "t1", false, start + 4)
        .await
        .map_err(err)?;
    ensure(far.senders == 1, || format!("unrelated mail: {far:?}"))?;
    let late = campaign::assess(s, fp, &who(5), "t1", false, start + 3 + HOUR_MS)
        .await
        .map_err(err)?;
    ensure(late.senders == 1, || format!("an hour later: {late:?}"))
}

/// The trust rule through the store (the tenant survives the round trip): one tenant's three
/// senders, one called spam, are a campaign for that tenant's mail but not for another
/// tenant's; a second other tenant whose mail was called spam too makes it one.
pub async fn campaign_weighs_tenants(s: &dyn SignalStore, prefix: &str, start: Millis) -> Check {
    let text = format!(
        "{prefix} Our winter sale starts today: every jacket and boot is 30 percent off until \
         Sunday, and members get free returns. Shop the sale at https://shop.example/winter \
         before your size is gone."
    );
    let fp = campaign::fingerprint(&text).ok_or("no fingerprint")?;
    let who = |t: &str, n: u32| Subject::Account(format!("u{n}@{t}.{prefix}.example"));
    for (n, spam) in [(1, true), (2, false), (3, false)] {
        campaign::assess(
            s,
            fp,
            &who("att", n),
            "attacker",
            spam,
            start + i64::from(n),
        )
        .await
        .map_err(err)?;
    }
    let victim = campaign::assess(s, fp ^ 0b10, &who("vic", 1), "victim", false, start + 10)
        .await
        .map_err(err)?;
    ensure(victim.senders == 1 && !victim.matched(), || {
        format!("one other tenant made a campaign of the victim's mail: {victim:?}")
    })?;
    let own = campaign::assess(s, fp, &who("att", 4), "attacker", false, start + 11)
        .await
        .map_err(err)?;
    ensure(own.senders == 4 && own.matched(), || {
        format!("the wave inside one tenant: {own:?}")
    })?;
    campaign::assess(s, fp, &who("oth", 1), "other", true, start + 12)
        .await
        .map_err(err)?;
    let now = campaign::assess(s, fp, &who("vic", 2), "victim", false, start + 13)
        .await
        .map_err(err)?;
    ensure(
        now.matched() && now.senders == 7 && now.other_tenants == 2,
        || format!("two other tenants, spam called in both: {now:?}"),
    )
}

/// A mark keeps the latest time (an older one does not move it back) and is forgotten `ttl`
/// after it, judged by the caller's `now`.
pub async fn marks(s: &dyn SignalStore, prefix: &str, now: Millis) -> Check {
    let k = format!("{prefix}:mark");
    let none = s.last_mark(&k, now).await.map_err(err)?;
    ensure(none.is_none(), || format!("never marked: {none:?}"))?;
    s.mark(&k, now, HOUR_MS).await.map_err(err)?;
    s.mark(&k, now - 1_000, HOUR_MS).await.map_err(err)?;
    let latest = s.last_mark(&k, now + 5).await.map_err(err)?;
    ensure(latest == Some(now), || {
        format!("an older mark moved the latest back: {latest:?}")
    })?;
    let gone = s.last_mark(&k, now + HOUR_MS).await.map_err(err)?;
    ensure(gone.is_none(), || format!("kept after its ttl: {gone:?}"))?;
    s.mark(&k, now + 10, HOUR_MS).await.map_err(err)?;
    let moved = s.last_mark(&k, now + HOUR_MS).await.map_err(err)?;
    ensure(moved == Some(now + 10), || {
        format!("a later mark: {moved:?}")
    })
}

/// Login behaviour (issue 25) on the store: a person's three networks never reach a line over a
/// day of logins; a spray from one new /24 every 3 minutes reaches the hourly line at its 20th
/// network; the windows forget; a network is first seen again after 30 days; a list holds at
/// most [`login::CAP`] networks.
pub async fn login_networks(s: &dyn SignalStore, prefix: &str, start: Millis) -> Check {
    use crate::login;
    use outguard_types::config::LoginBehaviourConfig;
    let cfg = LoginBehaviourConfig::default();
    let person = format!("{prefix}-person@a.example");
    let homes = ["198.51.100.7", "203.0.113.50", "192.0.2.200"];
    let mut last = login::LoginFacts::default();
    for i in 0..60i64 {
        let ip = homes[(i % 3) as usize].parse().map_err(|_| "ip")?;
        last = login::record(s, &person, ip, start + i * 20 * crate::counters::MINUTE_MS)
            .await
            .map_err(err)?;
        let crossed = login::judge(&last, &cfg);
        ensure(crossed.is_empty(), || {
            format!("a person's login {i} crossed {crossed:?}")
        })?;
    }
    ensure(
        (
            last.hour,
            last.day,
            last.wide_day,
            last.new_day,
            last.first_seen,
        ) == (3, 3, 3, 3, false),
        || format!("a person's counts {last:?}"),
    )?;
    let bot = format!("{prefix}-bot@a.example");
    let mut first_crossing = None;
    for i in 0..25i64 {
        let ip = format!("10.{}.{}.9", i / 10, i).parse().map_err(|_| "ip")?;
        let f = login::record(s, &bot, ip, start + i * 3 * crate::counters::MINUTE_MS)
            .await
            .map_err(err)?;
        if first_crossing.is_none() && !login::judge(&f, &cfg).is_empty() {
            first_crossing = Some((i + 1, f));
        }
    }
    let Some((n, f)) = first_crossing else {
        return Err("a spray of 25 /24s in 75 minutes crossed no line".into());
    };
    ensure(n == 20 && f.hour == 20, || {
        format!("first crossing at network {n}: {f:?} (20 networks in an hour)")
    })?;
    // The windows forget: two hours later one network is one network in the hour.
    let later = start + 3 * HOUR_MS;
    let f = login::record(s, &bot, "10.9.9.9".parse().map_err(|_| "ip")?, later)
        .await
        .map_err(err)?;
    ensure(f.hour == 1 && f.burst == 1 && f.day == 26, || {
        format!("after 3 hours: {f:?}")
    })?;
    // First seen again after 30 days; seen within them, not.
    let month = start + login::FIRST_SEEN_MS + crate::counters::DAY_MS;
    let ip = homes[0].parse().map_err(|_| "ip")?;
    let f = login::record(s, &person, ip, month).await.map_err(err)?;
    ensure(f.first_seen && f.day == 1, || {
        format!("after 30 days: {f:?}")
    })?;
    let f = login::record(s, &person, ip, month + HOUR_MS)
        .await
        .map_err(err)?;
    ensure(!f.first_seen, || format!("seen an hour ago: {f:?}"))?;
    // Bounded: at most CAP networks per list, however many there are.
    let many = format!("{prefix}-many@a.example");
    let mut f = login::LoginFacts::default();
    for i in 0..(login::CAP as u32 + 40) {
        let ip = std::net::Ipv4Addr::from((10u32 << 24) | (i << 8) | 1);
        f = login::record(s, &many, ip.into(), start)
            .await
            .map_err(err)?;
    }
    ensure(f.day == login::CAP as u64, || format!("capped: {f:?}"))
}
