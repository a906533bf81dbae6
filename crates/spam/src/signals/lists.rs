//! Reference lists the signals share: free-mail providers, URL shorteners, phished brands.
//! Small and curated on purpose; the model learns how much each signal is worth.

pub const FREEMAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "outlook.com",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "yandex.com",
    "protonmail.com",
    "proton.me",
    "zoho.com",
    "qq.com",
    "163.com",
    "126.com",
    "inbox.com",
];

pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "s.id",
    "t.ly",
    "bl.ink",
    "qrco.de",
    "v.gd",
    "shorte.st",
    "adf.ly",
    "bitly.com",
    "tr.im",
    "snip.ly",
    "x.co",
    "u.to",
    "clck.ru",
];

/// (brand as it appears in a display name, its registrable domains).
pub const BRANDS: &[(&str, &[&str])] = &[
    ("paypal", &["paypal.com", "paypal.co.uk", "paypal.de"]),
    ("apple", &["apple.com", "icloud.com"]),
    ("icloud", &["apple.com", "icloud.com"]),
    (
        "microsoft",
        &["microsoft.com", "office.com", "outlook.com", "live.com"],
    ),
    (
        "office 365",
        &["microsoft.com", "office.com", "office365.com"],
    ),
    (
        "office365",
        &["microsoft.com", "office.com", "office365.com"],
    ),
    ("outlook", &["microsoft.com", "outlook.com"]),
    (
        "amazon",
        &[
            "amazon.com",
            "amazon.co.uk",
            "amazon.de",
            "amazon.co.jp",
            "amazonses.com",
        ],
    ),
    ("netflix", &["netflix.com"]),
    ("google", &["google.com", "gmail.com"]),
    (
        "facebook",
        &["facebook.com", "facebookmail.com", "meta.com"],
    ),
    ("instagram", &["instagram.com", "facebookmail.com"]),
    ("linkedin", &["linkedin.com"]),
    ("dhl", &["dhl.com", "dhl.de"]),
    ("fedex", &["fedex.com"]),
    ("ups", &["ups.com"]),
    ("usps", &["usps.com"]),
    ("wells fargo", &["wellsfargo.com"]),
    ("bank of america", &["bankofamerica.com", "bofa.com"]),
    ("chase", &["chase.com", "jpmorgan.com"]),
    ("citibank", &["citi.com", "citibank.com"]),
    ("hsbc", &["hsbc.com", "hsbc.co.uk"]),
    ("irs", &["irs.gov"]),
    ("docusign", &["docusign.com", "docusign.net"]),
    ("dropbox", &["dropbox.com"]),
    ("ebay", &["ebay.com", "ebay.co.uk"]),
    ("coinbase", &["coinbase.com"]),
    ("binance", &["binance.com"]),
    ("wetransfer", &["wetransfer.com"]),
    ("adobe", &["adobe.com"]),
    ("sharepoint", &["microsoft.com", "sharepoint.com"]),
    ("onedrive", &["microsoft.com", "live.com", "onedrive.com"]),
    ("norton", &["norton.com"]),
    ("mcafee", &["mcafee.com"]),
    ("jcb", &["jcb.co.jp", "jcb.jp"]),
    ("aeon", &["aeon.co.jp", "aeon.com"]),
    ("mercari", &["mercari.com", "mercari.jp"]),
    ("rakuten", &["rakuten.co.jp", "rakuten.com"]),
    ("smbc", &["smbc.co.jp", "smbc-card.com"]),
    ("mufg", &["mufg.jp"]),
    ("bradesco", &["bradesco.com.br"]),
    (
        "santander",
        &["santander.com.br", "santander.com", "santander.es"],
    ),
    ("itau", &["itau.com.br"]),
    ("nubank", &["nubank.com.br"]),
    ("correios", &["correios.com.br"]),
    // The same brands as written in Japanese mail (matched as substrings: no word breaks).
    ("アマゾン", &["amazon.co.jp", "amazon.com"]),
    ("メルカリ", &["mercari.com", "mercari.jp"]),
    ("楽天", &["rakuten.co.jp", "rakuten.com"]),
    ("三井住友", &["smbc.co.jp", "smbc-card.com"]),
    ("イオン", &["aeon.co.jp", "aeon.com"]),
    ("えきねっと", &["eki-net.com"]),
];

/// A brand named in `hay` (lowercase): a whole word for Latin names, a substring for names
/// written in scripts without spaces between words.
pub fn brand_in(hay: &str) -> Option<(&'static str, &'static [&'static str])> {
    BRANDS.iter().copied().find(|(b, _)| {
        if b.is_ascii() {
            contains_word(hay, b)
        } else {
            hay.contains(b)
        }
    })
}

pub fn is_freemail(domain: &str) -> bool {
    FREEMAIL.contains(&domain)
}

pub fn is_shortener(domain: &str) -> bool {
    SHORTENERS.contains(&domain)
}

/// True if `hay` contains `word` delimited by non-alphanumerics (so "ups" is not in "groups").
pub fn contains_word(hay: &str, word: &str) -> bool {
    let mut from = 0;
    while let Some(p) = hay[from..].find(word) {
        let at = from + p;
        let end = at + word.len();
        let ok_before = hay[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let ok_after = hay[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if ok_before && ok_after {
            return true;
        }
        from = end;
    }
    false
}
