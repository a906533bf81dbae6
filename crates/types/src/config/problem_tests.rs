//! Issue 20: one check reports every problem of a file, each with its key and line, in words an
//! operator can act on; `check-config` and `serve` also check the files the config names.

use std::path::PathBuf;

use super::*;

/// The problems of `text` as `line: key: message` strings, in order.
fn problems(text: &str) -> Vec<String> {
    match Config::parse(text, "t.toml") {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(e) => panic!("not a list of problems: {e}"),
    }
}

fn keys(text: &str) -> Vec<String> {
    match Config::parse(text, "t.toml") {
        Ok(_) => Vec::new(),
        Err(e) => e.keys().iter().map(|k| k.to_string()).collect(),
    }
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let text = "\
bogus_top = 1
[server]
shutdown_grace = \"thirty seconds\"
[listeners]
submission = \"127.0.0.1:70000\"
max_connections = 0
[limits]
max_recipients_per_message = 5000
messages_per_minute = \"lots\"
[delivery]
port = 70000
retry_schedule = [\"10m\", \"5m\"]
[notifications]
operator_recipients = [\"not an address\"]
";
    assert_eq!(
        keys(text),
        [
            "bogus_top",
            "server.shutdown_grace",
            "listeners.submission",
            "listeners.max_connections",
            "limits.max_recipients_per_message",
            "limits.messages_per_minute",
            "delivery.port",
            "delivery.retry_schedule",
            "notifications.operator_recipients[0]",
        ]
    );
    let all = problems(text);
    for (i, line) in [1, 3, 5, 6, 8, 9, 11, 12, 14].iter().enumerate() {
        assert!(all[i].starts_with(&format!("line {line}: ")), "{all:#?}");
    }
    let e = Config::parse(text, "t.toml").unwrap_err().to_string();
    assert!(
        e.starts_with("t.toml: 9 problems\n  line 1: bogus_top: "),
        "{e}"
    );
}

#[test]
fn durations_say_what_a_duration_looks_like() {
    assert_eq!(
        problems("[server]\nshutdown_grace = \"thirty seconds\"\n"),
        [r#"line 2: server.shutdown_grace: "thirty seconds" is not a duration (e.g. "30s", "5m")"#]
    );
    assert_eq!(
        problems("[dnsbl]\ninterval = 30\n"),
        [r#"line 2: dnsbl.interval: 30 is not a duration: give a unit, e.g. "30s" or "30m""#]
    );
    assert_eq!(
        problems("[delivery]\nretry_schedule = [\"5m\", \"soon\"]\n"),
        [
            r#"line 2: delivery.retry_schedule: entry 1: "soon" is not a duration (e.g. "30s", "5m")"#
        ]
    );
    let c = Config::parse("[server]\nshutdown_grace = \"1m 30s\"\n", "t").unwrap();
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(90));
}

#[test]
fn mta_sts_keys_are_checked() {
    assert_eq!(
        problems("[delivery.mta_sts]\nhttps_port = 0\n"),
        ["line 2: delivery.mta_sts.https_port: 0 is out of range 1–65535"]
    );
    assert_eq!(
        keys("[delivery.mta_sts]\nenabled = \"yes\"\nport = 443\n"),
        ["delivery.mta_sts.enabled", "delivery.mta_sts.port"]
    );
    let c = Config::parse(
        "[delivery.mta_sts]\nenabled = false\nhttps_port = 8443\n",
        "t.toml",
    )
    .expect("valid");
    assert_eq!(
        c.delivery.mta_sts,
        MtaStsConfig {
            enabled: false,
            https_port: 8443
        }
    );
    assert!(Config::default().delivery.mta_sts.enabled);
}

#[test]
fn ports_out_of_range_name_their_key() {
    assert_eq!(
        problems("[delivery]\nport = 70000\n"),
        ["line 2: delivery.port: 70000 is out of range 1–65535"]
    );
    assert_eq!(keys("[delivery]\nport = 0\n"), ["delivery.port"]);
    assert_eq!(
        problems("[listeners]\nsubmission = \"127.0.0.1:70000\"\n"),
        [r#"line 2: listeners.submission: "127.0.0.1:70000": port 70000 is out of range 0–65535"#]
    );
    let e = problems("[listeners]\nhttp = \"localhost\"\n");
    assert!(
        e[0].starts_with("line 2: listeners.http: \"localhost\" is not an address like"),
        "{e:?}"
    );
    assert_eq!(
        keys("[dns]\nresolver = \"1.2.3.4:99999\"\n"),
        ["dns.resolver"]
    );
    // Port 0 on a listener: any free port (the tests' way).
    let c = Config::parse("[listeners]\nsubmission = \"127.0.0.1:0\"\n", "t").unwrap();
    assert_eq!(c.listeners.submission.map(|a| a.port()), Some(0));
}

/// The policy tables list all their problems too, each with its own key and line.
#[test]
fn policy_problems_name_each_key() {
    let text = "[policy.default]\nrecipient_limit_per_day = 20000\nspam_ratio = 2.0\n\
                notify_recipients = [\"nobody\"]\n[policy.ceilings]\nspam_ratio = 3.0\n";
    assert_eq!(
        problems(text),
        [
            "line 2: policy.default.recipient_limit_per_day: 20000 is outside 0–10000",
            "line 3: policy.default.spam_ratio: 2 is outside 0–1",
            "line 4: policy.default.notify_recipients: `nobody` is not an email address",
            "line 6: policy.ceilings.spam_ratio: 3 is outside 0–1",
        ]
    );
}

/// Replacing the built-in pools without `relay` is refused where the pools are; a pool that
/// could not be read is reported once, not again as missing.
#[test]
fn missing_pools_are_told_once() {
    let pool =
        |name: &str, ips: &str| format!("[[pools]]\nname = \"{name}\"\nsource_ips = {ips}\n");
    let two = format!(
        "[server]\nhostname = \"x\"\n{}{}",
        pool("regular", "[\"127.0.0.2\"]"),
        pool("high-risk", "[\"127.0.0.3\"]")
    );
    assert_eq!(problems(&two), ["line 3: pools: pool `relay` is missing"]);
    let bad = format!(
        "{}{}{}",
        pool("regular", "\"127.0.0.2\""),
        pool("high-risk", "[\"127.0.0.3\"]"),
        pool("relay", "[\"127.0.0.4\"]")
    );
    assert_eq!(keys(&bad), ["pools[0].source_ips"], "{:?}", problems(&bad));
}

/// Unknown keys are refused in every table, nested and in arrays of tables, all of them.
#[test]
fn unknown_keys_are_reported_in_every_table() {
    let text = "\
tls_cert = \"x\"
[server]
hostnme = \"x\"
[listeners]
submision = \"127.0.0.1:2587\"
[[pools]]
name = \"regular\"
source_ips = [\"127.0.0.1\"]
[[pools]]
name = \"high-risk\"
source_ips = [\"127.0.0.1\"]
eho = \"x\"
[[pools]]
name = \"relay\"
source_ips = [\"127.0.0.1\"]
[policy.default]
recipient_limits = 5
[[dnsbl.zones]]
name = \"bl.test\"
lsted = []
[webhooks]
allow_privat = []
";
    assert_eq!(
        keys(text),
        [
            "tls_cert",
            "server.hostnme",
            "listeners.submision",
            "pools[1].eho",
            "policy.default.recipient_limits",
            "dnsbl.zones[0].lsted",
            "webhooks.allow_privat",
        ]
    );
    assert!(
        problems(text)[1].contains("unknown field `hostnme`"),
        "{:?}",
        problems(text)
    ); // Every table refuses what it does not know (serde's deny_unknown_fields on each type).
    for table in [
        "[server]",
        "[listeners]",
        "[tls]",
        "[limits]",
        "[dns]",
        "[delivery]",
        "[dnsbl]",
        "[fbl]",
        "[srs]",
        "[notifications]",
        "[policy.default]",
        "[policy.ceilings]",
        "[spam]",
        "[webhooks]",
        "[[pools]]",
        "[[routes]]",
        "[[dkim]]",
        "[[dnsbl.zones]]",
        "[[webhooks.hooks]]",
    ] {
        let name = table.trim_matches(['[', ']']);
        let index = if table.starts_with("[[") { "[0]" } else { "" };
        assert_eq!(
            keys(&format!("{table}\nzzz = 1\n")),
            [format!("{name}{index}.zzz")],
            "{table}"
        );
    }
}

/// A bad element of an array of tables is dropped and reported once; the elements after it
/// keep their index in the report.
#[test]
fn problems_in_arrays_of_tables_keep_their_index() {
    let text = "\
[[routes]]
domains = \"a.example\"
next_hop = \"127.0.0.1:25\"
[[routes]]
domains = [\"b.example\"]
next_hop = \"127.0.0.1:25\"
[[routes]]
domains = [\"c.example\"]
next_hop = \"nowhere\"
[[routes]]
domains = [\"d.example\"]
nexthop = \"127.0.0.1:25\"
";
    // Route 0 is dropped (its `domains` is not a list); route 2's next hop is still checked
    // and reported under its index in the file; route 3's typo hides its missing `next_hop`.
    assert_eq!(
        keys(text),
        [
            "routes[0].domains",
            "routes[2].next_hop",
            "routes[3].nexthop"
        ],
        "{:#?}",
        problems(text)
    );
    let all = problems(text);
    assert!(
        all[2].starts_with("line 12: routes[3].nexthop: unknown field"),
        "{all:#?}"
    );
    // Nothing dropped before it: the index is the same either way.
    let text2 = "\
[[routes]]
domains = [\"c.example\"]
next_hop = \"nowhere\"
[[routes]]
domains = \"a.example\"
next_hop = \"127.0.0.1:25\"
";
    assert_eq!(keys(text2), ["routes[0].next_hop", "routes[1].domains"]);
}

#[test]
fn notification_addresses_are_checked() {
    assert_eq!(
        problems(
            "[notifications]\noperator_recipients = [\"ops@x.example\", \"not an address\"]\n"
        ),
        [
            r#"line 2: notifications.operator_recipients[1]: "not an address" is not an email address"#
        ]
    );
    assert_eq!(
        keys("[notifications]\nfrom = \"nobody\"\n"),
        ["notifications.from"]
    );
    assert_eq!(
        keys("[notifications]\nfrom = \"Outguard <postmaster>\"\n"),
        ["notifications.from"]
    );
    for ok in ["Outguard <postmaster@x.example>", "postmaster@x.example"] {
        let text =
            format!("[notifications]\nfrom = {ok:?}\noperator_recipients = [\"a@x.example\"]\n");
        assert!(problems(&text).is_empty(), "{ok}");
    }
}

#[test]
fn tls_needs_both_halves_and_dkim_names_a_domain() {
    assert_eq!(keys("[tls]\ncert = \"/x/c.pem\"\n"), ["tls.key"]);
    assert_eq!(keys("[tls]\nkey = \"/x/k.pem\"\n"), ["tls.cert"]);
    let dkim = |domain: &str, selector: &str| {
        format!(
            "[[dkim]]\ndomain = \"a.example\"\nselector = \"s1\"\nkey = \"/k\"\n\
             [[dkim]]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nkey = \"/k\"\n"
        )
    };
    assert!(keys(&dkim("b.example", "2024._x")).is_empty());
    assert_eq!(keys(&dkim("A.example", "s2")), ["dkim[1].domain"]);
    assert_eq!(keys(&dkim("not a domain", "s2")), ["dkim[1].domain"]);
    assert_eq!(keys(&dkim("b.example", "")), ["dkim[1].selector"]);
}

/// A private scratch directory for file checks, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("og-cfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }
    fn load(&self, text: &str) -> Result<Config, ConfigError> {
        Config::load_for_serve(std::path::Path::new(&self.file("c.toml", text)))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

/// Issue 20: `check-config` said `ok` for a missing certificate and DKIM key that `serve` then
/// refused. Every file serve reads is checked, and all are reported together.
#[test]
fn files_serve_reads_are_checked_all_at_once() {
    let s = Scratch::new("missing");
    let d = s.0.display();
    let text = format!(
        "[tls]\ncert = \"{d}/no-cert.pem\"\nkey = \"{d}/no-key.pem\"\n\
         [spam]\nmodel = \"{d}/no-model.bin\"\n\
         [webhooks]\nextra_roots = \"{d}/no-roots.pem\"\n\
         [[dkim]]\ndomain = \"a.example\"\nselector = \"s1\"\nkey = \"{d}/no-dkim.pem\"\n"
    );
    assert!(
        Config::parse(&text, "t").is_ok(),
        "the values alone are fine"
    );
    let e = s.load(&text).expect_err("missing files");
    assert_eq!(
        e.keys(),
        [
            "tls.cert",
            "tls.key",
            "spam.model",
            "webhooks.extra_roots",
            "dkim[0].key"
        ],
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "line 2: tls.cert: cannot read {d}/no-cert.pem: no such file"
        )),
        "{msg}"
    );
    // Together with the problems of the values.
    let e = s
        .load(&format!("{text}[limits]\nmessages_per_minute = 0\n"))
        .expect_err("both");
    assert!(e.keys().contains(&"limits.messages_per_minute"), "{e}");
    assert!(e.keys().contains(&"dkim[0].key"), "{e}");
}

#[test]
fn files_must_hold_what_serve_looks_for() {
    let s = Scratch::new("content");
    let (cert, key, junk) = (
        s.file("c.pem", CERT),
        s.file("k.pem", KEY),
        s.file("junk.pem", "hello"),
    );
    let model = s.file("model.bin", "{}");
    let text = |c: &str, k: &str| {
        format!(
            "[tls]\ncert = \"{c}\"\nkey = \"{k}\"\n[spam]\nmodel = \"{model}\"\n\
             [webhooks]\nextra_roots = \"{c}\"\n\
             [[dkim]]\ndomain = \"a.example\"\nselector = \"s1\"\nkey = \"{k}\"\n"
        )
    };
    s.load(&text(&cert, &key)).unwrap_or_else(|e| panic!("{e}"));
    let e = s.load(&text(&key, &cert)).expect_err("swapped");
    assert_eq!(
        e.keys(),
        ["tls.cert", "tls.key", "webhooks.extra_roots", "dkim[0].key"],
        "{e}"
    );
    assert!(e.to_string().contains("holds no PEM private key"), "{e}");
    assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
    let e = s.load(&text(&junk, &key)).expect_err("junk");
    assert_eq!(e.keys(), ["tls.cert", "webhooks.extra_roots"], "{e}");
    // A directory is not a file; a data_dir that is a file cannot hold the store.
    let e = s
        .load(&format!(
            "[spam]\nmodel = \"{}\"\n[server]\ndata_dir = \"{cert}\"\n",
            s.0.display()
        ))
        .expect_err("dir");
    assert_eq!(e.keys(), ["spam.model", "server.data_dir"], "{e}");
}

/// `serve` checks the configuration in hand (after `--data-dir`) before creating anything.
#[test]
fn check_for_serve_reads_the_files_too() {
    Config::default()
        .check_for_serve()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c = Config::default();
    c.dkim.push(DkimConfig {
        domain: "a.example".into(),
        selector: "s".into(),
        key: "/nonexistent/dkim.pem".into(),
    });
    let e = c.check_for_serve().expect_err("missing key");
    assert_eq!(e.keys(), ["dkim[0].key"]);
    assert!(
        e.to_string()
            .starts_with("configuration: dkim[0].key: cannot read"),
        "{e}"
    );
}

/// Issue 18: a Redis Cluster counter URL is accepted; a malformed one names `counters`.
#[test]
fn cluster_counter_urls_are_checked() {
    for ok in [
        "counters = \"redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002\"\n",
        "counters = \"redis+cluster://r1.internal:6379?prefix=eu1\"\n",
    ] {
        assert_eq!(problems(ok), Vec::<String>::new(), "{ok}");
    }
    for bad in [
        "counters = \"redis+cluster://\"\n",
        "counters = \"redis+cluster://h1:7000,h2\"\n",
        "counters = \"redis+cluster://h1:7000/2\"\n",
        "counters = \"redis+cluster://h1:0\"\n",
        "counters = \"redis+cluster://h1:7000?prefix=a{b}\"\n",
    ] {
        assert_eq!(keys(bad), ["counters"], "{bad}");
    }
}

#[test]
fn policy_service_keys_are_named() {
    assert_eq!(
        keys("[policy_service]\nunknown = \"maybe\"\n"),
        ["policy_service.unknown"]
    );
    assert_eq!(
        keys("[policy_service]\nclients = [\"127.0.0.0/8\", \"loopback\"]\n"),
        ["policy_service.clients[1]"]
    );
    assert_eq!(
        keys("[listeners]\npolicy = \"nowhere\"\nmilter = \"127.0.0.1:11332\"\n"),
        ["listeners.policy"]
    );
    let c = Config::parse(
        "[listeners]\npolicy = \"127.0.0.1:10040\"\n[policy_service]\nunknown = \"reject\"\n",
        "t.toml",
    )
    .expect("valid");
    assert_eq!(c.listeners.policy, Some(([127, 0, 0, 1], 10040).into()));
    assert_eq!(c.policy_service.unknown, UnknownSender::Reject);
}

/// `[dns] dnssec`: only `off` or `trust_ad`, and `trust_ad` only with a resolver on loopback
/// (the AD bit is believed, so it must not cross a network); `dane` is never a configured policy.
#[test]
fn dnssec_trusts_only_a_loopback_resolver() {
    assert_eq!(keys("[dns]\ndnssec = \"yes\"\n"), ["dns.dnssec"]);
    assert_eq!(keys("[dns]\ndnssec = \"trust_ad\"\n"), ["dns.dnssec"]);
    assert_eq!(
        keys("[dns]\ndnssec = \"trust_ad\"\nresolver = \"192.0.2.53:53\"\n"),
        ["dns.dnssec"]
    );
    let c = Config::parse(
        "[dns]\ndnssec = \"trust_ad\"\nresolver = \"127.0.0.1:53\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.dns.dnssec, super::Dnssec::TrustAd);
    assert_eq!(
        Config::parse("", "t").unwrap().dns.dnssec,
        super::Dnssec::Off
    );
    assert_eq!(keys("[delivery]\ntls = \"dane\"\n"), ["delivery.tls"]);
}
