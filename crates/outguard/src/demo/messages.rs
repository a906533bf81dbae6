//! The demo's mail: realistic modern messages written for the demo, so it needs no corpus. The
//! spam is the kind a compromised account sends (credential phishing, advance-fee lottery, pill
//! spam, work-from-home); the clean mail is what colleagues and a community newsletter send.
//! The unit tests below check that the shipped model agrees with these labels, with a margin.

/// A message's headers and body, CRLF line endings.
fn compose(
    from: &str,
    to: &str,
    subject: &str,
    extra_headers: &str,
    body: &str,
    n: usize,
) -> String {
    let domain = from.rsplit('@').next().unwrap_or("demo.example");
    let mut out = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <demo-{n}-{stamp}@{domain}>\r\n\
         Date: Mon, 23 Nov 2026 10:{mm:02}:00 +0000\r\nMIME-Version: 1.0\r\n{extra_headers}\r\n",
        stamp = std::process::id(),
        mm = n % 60,
    );
    for line in body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

const TEXT: &str = "Content-Type: text/plain; charset=utf-8\r\n";

/// Ordinary mail between colleagues and partners (`n` picks one of three).
pub fn clean(from: &str, to: &str, n: usize) -> String {
    let (subject, body) = CLEAN[n % CLEAN.len()];
    compose(from, to, subject, TEXT, body, n)
}

/// The bulk sender's monthly community update (clean content; its volume is the problem).
pub fn newsletter(from: &str, to: &str, n: usize) -> String {
    compose(
        from,
        to,
        "Globex community update - November",
        TEXT,
        NEWSLETTER,
        100 + n,
    )
}

/// What the compromised account sends (`n` picks one of four).
pub fn spam(from: &str, to: &str, n: usize) -> String {
    let (subject, html, body) = SPAM[n % SPAM.len()];
    let ct = if html {
        "Content-Type: text/html; charset=utf-8\r\n"
    } else {
        TEXT
    };
    compose(from, to, subject, ct, body, 200 + n)
}

pub const SPAM_COUNT: usize = 4;

const CLEAN: [(&str, &str); 3] = [
    (
        "Notes from Tuesday's planning meeting",
        "Hi Bob,\n\nThanks for joining on Tuesday. As agreed, I'll send the revised project plan by Friday and\n\
         Marta will book the room for the review on the 3rd. Could you check the budget figures in\n\
         the second sheet before then? I think the travel line is off by a few hundred.\n\nBest,\nAlice",
    ),
    (
        "Re: lunch on Thursday?",
        "Thursday works for me. Shall we say 12:30 at the place near the station? I'll ask Tom\n\
         whether he can join; he wanted to talk about the migration schedule anyway.\n\nSee you then",
    ),
    (
        "Quote for the spring maintenance contract",
        "Hello Ms Laurent,\n\nAs discussed on the phone, please find below our quote for the spring maintenance\n\
         contract: two visits, parts included, invoiced after each visit. The offer is valid until the\n\
         end of January. Let me know if you would like us to adjust the schedule.\n\nKind regards,\nSales team",
    ),
];

const NEWSLETTER: &str = "Hello from the Globex team,\n\n\
This month we opened the new workshop in Lyon, welcomed three new members to the support\n\
team, and fixed the invoice export that several of you reported. The next user meeting is on\n\
the 12th of December; the agenda and the minutes of the last one are on the community page.\n\n\
Thank you for your feedback,\nThe Globex team";

const SPAM: [(&str, bool, &str); SPAM_COUNT] = [
    (
        "URGENT: Your account will be suspended - verify now!!!",
        true,
        "<html><body><p>Dear Customer,</p>\n\
         <p>We detected unusual activity on your account. Your account will be SUSPENDED within 24 hours unless you verify your identity.</p>\n\
         <p><a href=\"http://secure-login-verify.top/acc/update?id=88213\">CLICK HERE TO VERIFY YOUR ACCOUNT NOW</a></p>\n\
         <p>Failure to verify will result in permanent loss of access. Act now!</p>\n\
         <p>Security Department</p></body></html>",
    ),
    (
        "Congratulations! You have WON $1,000,000 - claim your prize",
        false,
        "CONGRATULATIONS!!! You have been selected as the WINNER of our international lottery.\n\
         You won $1,000,000.00 USD cash prize! To claim your prize send your full name, bank account\n\
         number and a processing fee of $99 to our claims agent. This offer is 100% risk free and\n\
         guaranteed. Reply now, limited time only! Click here: http://claim-prize-now.xyz/winner\n\
         Act now, do not miss this once in a lifetime opportunity. Free money, no obligation.",
    ),
    (
        "Cheap meds online - Viagra Cialis 80% OFF, no prescription",
        false,
        "Best prices on Viagra, Cialis, Levitra! No prescription needed! 80% OFF!\n\
         Order now from our online pharmacy and get FREE shipping worldwide. Discreet packaging.\n\
         Lowest prices guaranteed, satisfaction guaranteed or your money back.\n\
         Visit http://cheap-pills-rx.biz/order now! Buy now and save $$$.\n\
         To unsubscribe from this mailing list click here.",
    ),
    (
        "Make $5000 per week from home - guaranteed income",
        false,
        "Make money fast! Earn $5000 per week working from home. No experience needed!\n\
         This is not a scam, 100% guaranteed income. Thousands of people are already making money\n\
         with our amazing system. Click here to join now: http://easy-cash-system.click/join\n\
         Limited spots available!!! Order now and receive a FREE bonus. Call now toll free.\n\
         You are receiving this because you signed up. To be removed from our list click here.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_spam::{Engine, ScanContext};
    use outguard_types::verdict::Class;

    fn ctx() -> ScanContext<'static> {
        ScanContext {
            sender_domain: Some("acme.example"),
            tenant_domains: &[],
        }
    }

    #[test]
    fn the_shipped_model_calls_the_demo_spam_spam_with_a_margin() {
        let engine = Engine::builtin();
        let (_, spam_at) = engine.thresholds();
        for n in 0..SPAM_COUNT {
            let m = spam("mallory@acme.example", "x@example.com", n);
            let v = engine.scan(m.as_bytes(), &ctx());
            assert_eq!(v.class, Class::Spam, "spam {n}: {v:?}");
            assert!(
                v.score >= spam_at + 2.0,
                "spam {n} scores {} (threshold {spam_at})",
                v.score
            );
        }
    }

    #[test]
    fn the_shipped_model_calls_the_demo_clean_mail_clean() {
        let engine = Engine::builtin();
        let mut all: Vec<String> = (0..3)
            .map(|n| clean("alice@acme.example", "bob@example.com", n))
            .collect();
        all.push(newsletter("news@globex.example", "list@example.com", 0));
        for m in all {
            let v = engine.scan(m.as_bytes(), &ctx());
            assert_eq!(v.class, Class::Clean, "{m}\n{v:?}");
        }
    }
}
