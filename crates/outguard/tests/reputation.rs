//! End to end, the sender signals of issue 19 on the real binary, with the harness's DNS server
//! and sinks: a compromised account's spam never leaves from a regular IP once one of its
//! messages was called spam (`ACCOUNT_RECENT_SPAM`) and it is restricted within 10 spam
//! messages; near-identical mail from three accounts of two tenants makes the third suspicious
//! (`CAMPAIGN_MATCH`) although its own content scores clean, and the operator is alerted; an
//! admin clears a reputation through the CLI.

mod common;

use std::time::Duration;

use common::client::Client;
use common::{RelayProc, Scene, message, scene};

const REGULAR_IP: &str = "127.0.0.2";
const HIGH_RISK_IP: &str = "127.0.0.3";

/// What an everyday account writes (the engine calls these clean).
const CLEAN: [(&str, &str); 3] = [
    (
        "Notes from Tuesday",
        "Hi Sam,\r\n\r\nThanks for the notes from Tuesday. I went through the draft and added \
         comments on the budget section; could you look at the travel line before Friday? \
         Otherwise it looks ready to send to the board.\r\n\r\nBest,\r\nAlex",
    ),
    (
        "Quarterly review",
        "Hello team,\r\n\r\nThe quarterly review moves to Thursday at 2pm in the large meeting \
         room. Please bring the updated project timelines and a short summary of open risks. \
         The agenda is in the shared folder.\r\n\r\nThanks,\r\nMaria",
    ),
    (
        "Second batch",
        "Hi Jordan,\r\n\r\nAs discussed on the call, we can deliver the second batch of parts \
         on the 14th. The revised quote reflects the smaller quantity. Let me know if your \
         purchasing team needs anything else from us.\r\n\r\nKind regards,\r\nChris",
    ),
];

async fn send(
    relay: &RelayProc,
    who: (&str, &str),
    to: &str,
    subject: &str,
    body: &str,
) -> String {
    let data = message(who.0, to, subject, body);
    Client::send_mail(relay.addr("submission"), Some(who), who.0, &[to], &data).await
}

fn queued_id(reply: &str) -> Option<String> {
    reply
        .strip_prefix("250 ")
        .and_then(|r| r.rsplit(' ').next())
        .map(str::to_string)
}

/// The message's trace record (`outguard trace --id ID --json`), once the writer has flushed.
async fn trace(sc: &Scene, id: &str) -> serde_json::Value {
    for _ in 0..100 {
        let (code, out, _) = sc.cli(&["trace", "--id", id, "--json"]);
        if code == 0
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&out)
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no trace for {id}");
}
