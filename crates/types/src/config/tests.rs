//! The config file's parser and checks, as tables: every key refused with its name and line.

use super::*;

#[test]
fn empty_file_is_the_embedded_default() {
    let c = Config::parse("", "t.toml").unwrap();
    assert_eq!(c.limits.max_recipients_per_message, 500);
    assert_eq!(c.listeners.submission.unwrap().port(), 2587);
    assert_eq!(c.pools.len(), 3);
}

/// `[webhooks]` with `[[webhooks.hooks]]`, and the older bare `[[webhooks]]` array, both
/// read; mistakes in either name the key.
#[test]
fn webhooks_table_and_the_older_array() {
    let c = Config::parse(
        "[webhooks]\nallow_private = [\"10.20.0.0/16\", \"fd00::/8\"]\n\n\
         [[webhooks.hooks]]\nurl = \"https://h.example/x\"\nsecret = \"s\"\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.webhooks.allow_private.len(), 2);
    assert_eq!(c.webhooks.hooks[0].url, "https://h.example/x");
    let old = Config::parse(
        "[[webhooks]]\nurl = \"http://a.example/\"\nsecret = \"s\"\n\
         [[webhooks]]\nurl = \"http://b.example/\"\nsecret = \"t\"\nkinds = [\"ip_listed\"]\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(old.webhooks.hooks.len(), 2);
    assert_eq!(old.webhooks.hooks[1].kinds, vec!["ip_listed"]);
    assert!(old.webhooks.allow_private.is_empty());
    for (text, want) in [
        (
            "[webhooks]\nallow_private = [\"10.0.0.0/33\"]\n",
            "allow_private",
        ),
        ("[webhooks]\nallow_privat = []\n", "allow_privat"),
        (
            "[[webhooks]]\nurl = \"http://a.example/\"\nsecret = \"s\"\nkind = []\n",
            "kind",
        ),
        (
            "[webhooks]\n[[webhooks.hooks]]\nurl = \"ftp://a.example/\"\nsecret = \"s\"\n",
            "webhooks.hooks[0].url",
        ),
        (
            "[[webhooks]]\nurl = \"http://u@a.example/\"\nsecret = \"s\"\n",
            "user info",
        ),
    ] {
        let e = Config::parse(text, "t.toml").expect_err(text).to_string();
        assert!(e.contains(want), "{text}: `{e}` lacks `{want}`");
    }
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = Config::parse(
        "[limits]\nmax_recipients_per_message = 5\nbogus = 1\n",
        "t.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("bogus") && e.contains("line 3"), "{e}");
}

#[test]
fn bad_values_name_the_key() {
    let e = Config::parse("[limits]\nmax_recipients_per_message = 5000\n", "t.toml").unwrap_err();
    assert!(
        e.to_string().contains("limits.max_recipients_per_message"),
        "{e}"
    );
    let e = Config::parse("[delivery]\nretry_schedule = [\"5 parsecs\"]\n", "t.toml").unwrap_err();
    assert!(
        e.to_string().contains("retry_schedule") || e.to_string().contains("duration"),
        "{e}"
    );
    let e =
        Config::parse("[delivery]\nretry_schedule = [\"10m\", \"5m\"]\n", "t.toml").unwrap_err();
    assert!(
        e.to_string().contains("delivery.retry_schedule") && e.to_string().contains("10m then 5m"),
        "{e}"
    );
}

#[test]
fn guessing_and_hogging_bounds_are_checked_with_their_key() {
    let c = Config::parse("", "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let l = &c.listeners;
    assert_eq!(
        (l.max_auth_failures, l.max_auth_failures_per_account),
        (10, 30)
    );
    assert_eq!(l.auth_lockout, Duration::from_secs(900));
    assert_eq!(l.max_connections_per_ip, 20);
    assert_eq!(l.http_header_timeout, Duration::from_secs(10));
    for (line, key) in [
        ("max_auth_failures = 0", "listeners.max_auth_failures"),
        (
            "max_auth_failures_per_account = 0",
            "listeners.max_auth_failures_per_account",
        ),
        (
            "max_connections_per_ip = 0",
            "listeners.max_connections_per_ip",
        ),
        ("http_max_connections = 0", "listeners.http_max_connections"),
        (
            "http_max_connections_per_ip = 0",
            "listeners.http_max_connections_per_ip",
        ),
        ("auth_lockout = \"0s\"", "listeners.auth_lockout"),
        (
            "auth_failure_window = \"30days\"",
            "listeners.auth_failure_window",
        ),
        (
            "http_header_timeout = \"0s\"",
            "listeners.http_header_timeout",
        ),
    ] {
        let e = Config::parse(&format!("[listeners]\n{line}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}

#[test]
fn dnsbl_zone_codes_are_checked_with_key_and_line() {
    let zone = |listed: &str, errors: &str| {
        format!(
            "[server]\nhostname = \"x\"\n\n[dnsbl]\ninterval = \"5m\"\n\n\
             [[dnsbl.zones]]\nname = \"ok.test\"\n\n\
             [[dnsbl.zones]]\nname = \"bl.test\"\nlisted = [{listed}]\nerrors = [{errors}]\n"
        )
    };
    let good = Config::parse(
        &zone(
            r#""127.0.0.2", "127.0.0.4-127.0.0.7""#,
            r#""127.255.255.254""#,
        ),
        "t",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(good.dnsbl.zones.len(), 2);
    let cases = [
        (
            zone(r#""10.0.0.2""#, ""),
            "dnsbl.zones[1].listed",
            "line 12",
            "10.0.0.2",
        ),
        (
            zone(r#""127.0.0.9-127.0.0.2""#, ""),
            "dnsbl.zones[1].listed",
            "line 12",
            "ends before",
        ),
        (
            zone(r#""127.0.0.2""#, r#""nope""#),
            "dnsbl.zones[1].errors",
            "line 13",
            "127.0.0.0/8",
        ),
        (
            zone(r#""127.0.0.2-127.0.0.11""#, r#""127.0.0.4""#),
            "dnsbl.zones[1].errors",
            "line 13",
            "also a listing code",
        ),
        (
            zone(r#""::1""#, ""),
            "dnsbl.zones[1].listed",
            "line 12",
            "::1",
        ),
    ];
    for (text, key, line, what) in cases {
        let e = Config::parse(&text, "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{e}");
        let e = e.to_string();
        assert!(
            e.contains(line) && e.contains(what) && e.contains("bl.test"),
            "{e}"
        );
    }
    for (text, key, line) in [
        (
            "[dnsbl]\ninterval = \"500ms\"\n",
            "dnsbl.interval",
            "line 2",
        ),
        (
            "[dnsbl]\ninterval = \"2days\"\n",
            "dnsbl.interval",
            "line 2",
        ),
        (
            "\n[dnsbl]\nclear_checks = 0\n",
            "dnsbl.clear_checks",
            "line 3",
        ),
        (
            "[dnsbl]\nclear_checks = 1000\n",
            "dnsbl.clear_checks",
            "line 2",
        ),
        (
            "[[dnsbl.zones]]\nname = \"bad_zone..test\"\n",
            "dnsbl.zones[0].name",
            "line 2",
        ),
        (
            "[[dnsbl.zones]]\nname = \"nodot\"\n",
            "dnsbl.zones[0].name",
            "line 2",
        ),
        (
            "[[dnsbl.zones]]\nname = \"-x.test\"\n",
            "dnsbl.zones[0].name",
            "line 2",
        ),
        (
            "[[dnsbl.zones]]\nname = \"a.test\"\n[[dnsbl.zones]]\nname = \"A.test.\"\n",
            "dnsbl.zones[1].name",
            "line 4",
        ),
    ] {
        let e = Config::parse(text, "t.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(key) && msg.contains(line), "{text}: {msg}");
    }
    assert!(valid_dns_name("zen.spamhaus.org.") && valid_dns_name("b.barracudacentral.org"));
    assert!(!valid_dns_name("") && !valid_dns_name("a..b") && !valid_dns_name("a b.test"));
}

#[test]
fn key_lines() {
    let text = "store = \"sqlite:x\"\n[limits]\nmessages_per_minute = 0\n[[pools]]\nname = \"a\"\n[[pools]]\nname = \"b\"\nsource_ips = []\n";
    assert_eq!(key_line(text, "store"), Some(1));
    assert_eq!(key_line(text, "limits.messages_per_minute"), Some(3));
    assert_eq!(key_line(text, "pools[1].source_ips"), Some(8));
    assert_eq!(
        key_line(text, "pools[0].source_ips"),
        Some(4),
        "the table's header"
    );
    assert_eq!(key_line(text, "dnsbl.interval"), None);
}

#[test]
fn sizes_and_durations() {
    assert_eq!(parse_size("35MB").unwrap(), 35_000_000);
    assert_eq!(parse_size("1KiB").unwrap(), 1024);
    assert!(parse_size("12 parsecs").is_err());
    let c = Config::parse(
        "[limits]\nmax_message_size = \"10MiB\"\n[delivery]\nretry_schedule=[\"1s\",\"2s\"]\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.limits.max_message_size, 10 * 1024 * 1024);
    assert_eq!(
        c.delivery.retry_schedule,
        vec![Duration::from_secs(1), Duration::from_secs(2)]
    );
}

/// Every leaf key of a serialized config (table paths dropped): what the example must name.
fn leaf_keys(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match v {
                    serde_json::Value::Object(_) => leaf_keys(v, out),
                    serde_json::Value::Array(a) if a.iter().any(|x| x.is_object()) => {
                        a.iter().for_each(|x| leaf_keys(x, out))
                    }
                    _ => out.push(k.clone()),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| leaf_keys(x, out)),
        _ => {}
    }
}

/// `outguard.example.toml` parses, its live values are exactly the embedded default, and it
/// names every key the code knows (set or commented out), all 18 policy keys included with
/// valid example values — so the documented file cannot drift from the code.
#[test]
fn the_example_config_parses_is_the_default_and_documents_every_key() {
    let text = include_str!("../../../../outguard.example.toml");
    let c = Config::parse(text, "outguard.example.toml").unwrap_or_else(|e| panic!("{e}"));
    let json = |c: &Config| serde_json::to_value(c).expect("serialize");
    assert_eq!(
        json(&c),
        json(&Config::default()),
        "the example's live values are the embedded defaults"
    );
    let named = |key: &str| {
        text.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} ="))
        })
    };
    let mut keys = Vec::new();
    leaf_keys(&json(&Config::default()), &mut keys);
    // Arrays of tables that are empty by default: their keys come from their own types.
    keys.extend(
        [
            "domains",
            "next_hop",
            "name",
            "listed",
            "errors",
            "url",
            "secret",
            "kinds",
            "domain",
            "selector",
            "key",
            "max_age",
            "tls",
            "auth_user",
            "auth_password_file",
        ]
        .map(String::from),
    );
    keys.extend(crate::policy::POLICY_KEYS.iter().map(|k| k.to_string()));
    // Empty arrays of tables (`routes`, `dkim`, …) are documented by their `[[…]]` header.
    let table_array =
        |key: &str| text.contains(&format!("[[{key}]]")) || text.contains(&format!(".{key}]]"));
    // Optional tables absent by default (`srs`) are documented by their `# [key]` header.
    let table = |key: &str| {
        text.lines()
            .any(|l| l.trim_start_matches(['#', ' ']) == format!("[{key}]"))
    };
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !named(k) && !table_array(k) && !table(k))
        .collect();
    assert!(
        missing.is_empty(),
        "outguard.example.toml does not document {missing:?}"
    );
    for table in [
        "[server]",
        "[listeners]",
        "[tls]",
        "[limits]",
        "[dns]",
        "[delivery]",
        "[[pools]]",
        "[[routes]]",
        "[[dkim]]",
        "[dnsbl]",
        "[[dnsbl.zones]]",
        "[fbl]",
        "[srs]",
        "[notifications]",
        "[policy.default]",
        "[spam]",
        "[webhooks]",
        "[[webhooks.hooks]]",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches(['#', ' ']) == table),
            "no {table} in the example"
        );
    }
    // The commented policy examples, uncommented, are valid and set all 18 keys.
    let start = text.find("[policy.default]").expect("policy table");
    let block: String = text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.strip_prefix("# ").filter(|r| r.contains(" = ")))
        .map(|l| format!("{l}\n"))
        .collect();
    let c = Config::parse(&format!("[policy.default]\n{block}"), "policy block")
        .unwrap_or_else(|e| panic!("{e}\n{block}"));
    let set = serde_json::to_value(&c.policy.default).expect("serialize");
    assert_eq!(
        set.as_object().map(|m| m.len()),
        Some(crate::policy::POLICY_KEYS.len()),
        "{set}"
    );
}

#[test]
fn srs_is_checked_with_key_and_line() {
    let srs = |body: &str| format!("[server]\nhostname = \"x\"\n\n[srs]\n{body}");
    let ok = Config::parse(
        &srs("domain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\n"),
        "t",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got = ok.srs.as_ref().expect("srs");
    assert_eq!(
        (got.domain.as_str(), got.max_age_days()),
        ("srs.x.example", 21)
    );
    assert!(!format!("{got:?}").contains("0123456789abcdef"));
    assert!(ok.warnings().is_empty());
    assert!(Config::default().warnings()[0].contains("[srs] is not configured"));
    let cases = [
        (
            "domain = \"srs.x.example\"\nsecret = \"short\"\n",
            "srs.secret",
            "line 6",
            "at least 16 bytes",
        ),
        (
            "domain = \"not a domain\"\nsecret = \"0123456789abcdef\"\n",
            "srs.domain",
            "line 5",
            "not a valid DNS name",
        ),
        (
            "domain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\nmax_age = \"2000d\"\n",
            "srs.max_age",
            "line 7",
            "between 1d and 1000d",
        ),
        (
            "domain = \"srs.x.example\"\nsecret = \"0123456789abcdef\"\nmax_age = \"36h\"\n",
            "srs.max_age",
            "line 7",
            "whole days",
        ),
    ];
    for (body, key, line, what) in cases {
        let e = Config::parse(&srs(body), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{e}");
        let e = e.to_string();
        assert!(e.contains(line) && e.contains(what), "{e}");
    }
    // The example's commented `[srs]` keys, uncommented, are valid.
    let text = include_str!("../../../../outguard.example.toml");
    let start = text.find("# [srs]").expect("[srs] in the example");
    let keys: String = text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            ["domain =", "secret =", "max_age ="]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let ex = Config::parse(&srs(&keys), "example").unwrap_or_else(|e| panic!("{e}\n{keys}"));
    assert_eq!(ex.srs.map(|s| s.max_age_days()), Some(21));
    let e = Config::parse(&srs("domain = \"srs.x.example\"\n"), "t").unwrap_err();
    assert!(e.to_string().contains("secret"), "{e}");
}

/// SPEC §9 `[fbl]` keys: defaults, accepted forms, and refusals naming the key.
#[test]
fn fbl_trust_keys() {
    let c = Config::parse("", "t.toml").unwrap();
    assert_eq!(c.fbl.max_report_size, 1_000_000);
    assert_eq!(c.fbl.reports_per_minute_per_ip, 60);
    assert!(c.fbl.trusted_reporters.is_empty() && c.fbl.trusted_dkim_domains.is_empty());
    let c = Config::parse(
        "[fbl]\ntrusted_reporters = [\"192.0.2.7\", \"198.51.100.9/24\", \"2001:db8::/32\"]\n\
         trusted_dkim_domains = [\"fbl.isp.example\"]\nmax_report_size = \"2MB\"\n\
         reports_per_minute_per_ip = 5\n",
        "t.toml",
    )
    .unwrap();
    let nets: Vec<String> = c
        .fbl
        .trusted_nets()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(nets, ["192.0.2.7/32", "198.51.100.0/24", "2001:db8::/32"]);
    assert_eq!(c.fbl.max_report_size, 2_000_000);
    for (text, key) in [
        (
            "trusted_reporters = [\"not-an-ip\"]",
            "fbl.trusted_reporters",
        ),
        (
            "trusted_reporters = [\"10.0.0.0/33\"]",
            "fbl.trusted_reporters",
        ),
        ("trusted_dkim_domains = [\"\"]", "fbl.trusted_dkim_domains"),
        (
            "trusted_dkim_domains = [\"a@b.example\"]",
            "fbl.trusted_dkim_domains",
        ),
        ("max_report_size = \"10\"", "fbl.max_report_size"),
        ("max_report_size = \"1GB\"", "fbl.max_report_size"),
        (
            "reports_per_minute_per_ip = 0",
            "fbl.reports_per_minute_per_ip",
        ),
    ] {
        let e = Config::parse(&format!("[fbl]\n{text}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{e}");
    }
}

/// `[retention]`: defaults per kind (issue 17), humantime values, and every bad value named by
/// its key and line.
#[test]
fn retention_defaults_and_refusals() {
    let day = Duration::from_secs(24 * 3600);
    let c = Config::parse("", "t.toml").unwrap();
    assert_eq!(c.retention.trace, 30 * day);
    assert_eq!(c.retention.messages, 30 * day);
    assert_eq!(c.retention.reports, 90 * day);
    assert_eq!(c.retention.audit, 365 * day);
    assert_eq!(c.retention.batch, 500);
    let c = Config::parse(
        "[retention]\ntrace = \"7days\"\nmessages = \"2m\"\nbatch = 100\npause = \"0s\"\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.retention.trace, 7 * day);
    assert_eq!(c.retention.messages, Duration::from_secs(120));
    assert_eq!(c.retention.pause, Duration::ZERO);
    for (line, key) in [
        ("trace = \"30\"", "retention.trace"),
        ("trace = 30", "retention.trace"),
        ("messages = \"10s\"", "retention.messages"),
        ("reports = \"soon\"", "retention.reports"),
        ("audit = \"0s\"", "retention.audit"),
        ("alerts = \"200years\"", "retention.alerts"),
        ("interval = \"0s\"", "retention.interval"),
        ("batch = 0", "retention.batch"),
        ("batch = 20000", "retention.batch"),
        ("pause = \"5m\"", "retention.pause"),
        ("traces = \"1d\"", "retention.traces"),
    ] {
        let e = Config::parse(&format!("[retention]\n{line}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{line}: {e}");
        assert!(e.to_string().contains("line 2"), "{line}: {e}");
    }
}

/// `[[shaping]]` and `[delivery.adaptive]` (issue 22): the providers' defaults apply without
/// `[[shaping]]`, a file's rules replace them, and every bad value is named by its key.
#[test]
fn shaping_defaults_overrides_and_refusals() {
    let c = Config::parse("", "t.toml").unwrap();
    assert!(c.shaping.iter().any(|r| r.destination == "*.google.com"));
    assert!(c.delivery.adaptive.enabled);
    assert!(c.delivery.adaptive.patterns.iter().any(|p| p == "4.7.28"));
    let c = Config::parse(
        "[[shaping]]\ndestination = \"*.example.net\"\npool = \"regular\"\nmessages_per_minute = 60\n\
         [delivery.adaptive]\naction = \"suspend\"\nsuspend_for = \"2m\"\npatterns = [\"slow down\"]\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.shaping.len(), 1, "a file's rules replace the defaults");
    assert_eq!(c.shaping[0].messages_per_minute, Some(60));
    assert_eq!(c.delivery.adaptive.action, super::ThrottleAction::Suspend);
    assert_eq!(c.delivery.adaptive.suspend_for, Duration::from_secs(120));
    for (text, key) in [
        (
            "[[shaping]]\ndestination = \"*.com\"\nmax_connections = 1\n",
            "shaping[0].destination",
        ),
        (
            "[[shaping]]\ndestination = \"a b\"\nmax_connections = 1\n",
            "shaping[0].destination",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\n",
            "shaping[0].destination",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\nmax_connections = 0\n",
            "shaping[0].max_connections",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\nmax_messages_per_connection = 0\n",
            "shaping[0].max_messages_per_connection",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\nmessages_per_minute = 0\n",
            "shaping[0].messages_per_minute",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\npool = \"nope\"\nmessages_per_minute = 1\n",
            "shaping[0].pool",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\nsource_ip = \"nope\"\nmessages_per_minute = 1\n",
            "shaping[0].source_ip",
        ),
        (
            "[[shaping]]\ndestination = \"x.example\"\nrate = 1\nmax_connections = 1\n",
            "shaping[0].rate",
        ),
        (
            "[delivery.adaptive]\naction = \"pause\"\n",
            "delivery.adaptive.action",
        ),
        (
            "[delivery.adaptive]\nsuspend_for = \"0s\"\n",
            "delivery.adaptive.suspend_for",
        ),
        (
            "[delivery.adaptive]\nrestore_after = 0\n",
            "delivery.adaptive.restore_after",
        ),
        (
            "[delivery.adaptive]\nmin_messages_per_minute = 0\n",
            "delivery.adaptive.min_messages_per_minute",
        ),
        (
            "[delivery.adaptive]\npatterns = []\n",
            "delivery.adaptive.patterns",
        ),
        (
            "[delivery.adaptive]\npatterns = [\" \"]\n",
            "delivery.adaptive.patterns[0]",
        ),
    ] {
        let e = Config::parse(text, "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{text}: {e}");
    }
}

/// `[suppression]` (issue 25): defaults, and every bad value named by its key.
#[test]
fn suppression_defaults_and_refusals() {
    let c = Config::parse("", "t.toml").unwrap();
    assert!(c.suppression.enabled);
    assert_eq!(c.suppression.duration, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(c.suppression.signal_after, 5);
    let c = Config::parse(
        "[suppression]\nenabled = false\nduration = \"7days\"\nsignal_after = 2\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.suppression.enabled);
    assert_eq!(c.suppression.duration, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(c.suppression.signal_after, 2);
    for (line, key) in [
        ("duration = \"10s\"", "suppression.duration"),
        ("duration = \"2years\"", "suppression.duration"),
        ("duration = 30", "suppression.duration"),
        ("signal_after = 0", "suppression.signal_after"),
        ("signal_after = 200000", "suppression.signal_after"),
        ("days = 3", "suppression.days"),
    ] {
        let e = Config::parse(&format!("[suppression]\n{line}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{line}: {e}");
    }
}

/// `[trust_ramp]` (issue 25): off by default, 10 % for 14 days, bad values named by key.
#[test]
fn trust_ramp_defaults_and_refusals() {
    let c = Config::parse("", "t.toml").unwrap();
    assert!(!c.trust_ramp.enabled);
    assert_eq!((c.trust_ramp.start_percent, c.trust_ramp.days), (10, 14));
    for (line, key) in [
        ("start_percent = 0", "trust_ramp.start_percent"),
        ("start_percent = 101", "trust_ramp.start_percent"),
        ("days = 0", "trust_ramp.days"),
        ("days = 1000", "trust_ramp.days"),
        ("fraction = 0.1", "trust_ramp.fraction"),
    ] {
        let e = Config::parse(&format!("[trust_ramp]\n{line}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{line}: {e}");
    }
}

/// `[bulk]` (issue 25 part 4): on, 5000 a day, three providers; bad values named by key.
#[test]
fn bulk_defaults_and_refusals() {
    let c = Config::parse("", "t.toml").unwrap();
    assert!(c.bulk.enabled);
    assert_eq!(c.bulk.provider_recipients_per_day, 5000);
    assert_eq!(
        c.bulk
            .provider_of("GoogleMail.com")
            .map(|p| p.name.as_str()),
        Some("Gmail")
    );
    assert_eq!(
        c.bulk.provider_of("aol.com").map(|p| p.name.as_str()),
        Some("Yahoo")
    );
    assert!(c.bulk.provider_of("example.com").is_none());
    let c = Config::parse(
        "[bulk]\nprovider_recipients_per_day = 10\n[[bulk.providers]]\nname = \"Corp\"\ndomains = [\"corp.example\"]\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.bulk.providers.len(), 1);
    for (text, key) in [
        (
            "[bulk]\nprovider_recipients_per_day = 0\n",
            "bulk.provider_recipients_per_day",
        ),
        ("[bulk]\nthreshold = 5\n", "bulk.threshold"),
        (
            "[[bulk.providers]]\nname = \"X\"\ndomains = [\"Not A Domain\"]\n",
            "bulk.providers.domains",
        ),
        (
            "[[bulk.providers]]\nname = \"X\"\ndomains = []\n",
            "bulk.providers.domains",
        ),
        (
            "[[bulk.providers]]\nname = \"X\"\ndomains = [\"a.example\"]\n[[bulk.providers]]\nname = \"Y\"\ndomains = [\"a.example\"]\n",
            "bulk.providers.domains",
        ),
        (
            "[[bulk.providers]]\nname = \"\"\ndomains = [\"a.example\"]\n",
            "bulk.providers.name",
        ),
        (
            "[policy.default]\nbulk_dmarc_action = \"explode\"\n",
            "policy.default.bulk_dmarc_action",
        ),
    ] {
        let e = Config::parse(text, "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{text}: {e}");
    }
    let c = Config::parse(
        "[policy.default]\nbulk_dmarc_action = \"reject\"\nbulk_dkim_action = \"high-risk\"\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(
        c.policy.default.bulk_dmarc_action,
        Some(crate::policy::BulkAction::Reject)
    );
}

/// `[login_behaviour]` (issue 25 part 1): defaults, and every bad value named by its key.
#[test]
fn login_behaviour_defaults_and_refusals() {
    let c = Config::parse("", "t.toml").unwrap();
    let l = &c.login_behaviour;
    assert!(l.enabled && l.restrict);
    assert_eq!(
        (
            l.burst_networks,
            l.networks_per_hour,
            l.networks_per_day,
            l.wide_networks_per_day,
            l.new_networks_per_day
        ),
        (8, 20, 50, 25, 30)
    );
    let c = Config::parse(
        "[login_behaviour]\nnetworks_per_hour = 5\nrestrict = false\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.login_behaviour.networks_per_hour, 5);
    assert!(!c.login_behaviour.restrict);
    for (line, key) in [
        ("burst_networks = 1", "login_behaviour.burst_networks"),
        ("networks_per_hour = 0", "login_behaviour.networks_per_hour"),
        ("networks_per_day = 501", "login_behaviour.networks_per_day"),
        (
            "wide_networks_per_day = -1",
            "login_behaviour.wide_networks_per_day",
        ),
        (
            "new_networks_per_day = 100000",
            "login_behaviour.new_networks_per_day",
        ),
        ("countries = 3", "login_behaviour.countries"),
    ] {
        let e = Config::parse(&format!("[login_behaviour]\n{line}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{line}: {e}");
    }
}

/// `[provider_deferrals]` (issue 25 part 5): defaults, and every bad value named by its key.
#[test]
fn provider_deferrals_defaults_and_refusals() {
    let c = Config::parse("", "t.toml").unwrap();
    let d = &c.provider_deferrals;
    assert!(d.enabled && d.restrict);
    assert_eq!((d.account_after, d.tenant_after), (10, 100));
    assert_eq!(d.window, Duration::from_secs(24 * 3600));
    assert_eq!(d.patterns, super::default_sender_patterns());
    let c = Config::parse(
        "[provider_deferrals]\npatterns = [\"5.7.99*blocked\"]\nwindow = \"1h\"\naccount_after = 3\n",
        "t.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.provider_deferrals.matches("451 5.7.99 you are BLOCKED"));
    assert!(!c.provider_deferrals.matches("451 4.7.650 rate limited"));
    for (line, key) in [
        ("patterns = []", "provider_deferrals.patterns"),
        ("patterns = [\" * \"]", "provider_deferrals.patterns[0]"),
        ("window = \"10s\"", "provider_deferrals.window"),
        ("window = \"60days\"", "provider_deferrals.window"),
        ("account_after = 0", "provider_deferrals.account_after"),
        ("tenant_after = 0", "provider_deferrals.tenant_after"),
        ("threshold = 3", "provider_deferrals.threshold"),
    ] {
        let e = Config::parse(&format!("[provider_deferrals]\n{line}\n"), "t.toml").unwrap_err();
        assert_eq!(e.keys(), [key], "{line}: {e}");
    }
}
