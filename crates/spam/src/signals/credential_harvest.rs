//! CREDENTIAL_HARVEST: account/password/payment-verification wording together with a link or
//! a form — the shape of a phishing mail. The phrases are in the languages phishing is written
//! in (English, Portuguese, Spanish, French, German, Japanese): a request for credentials is the
//! behaviour, whatever the language.

use super::{Cx, Hit};

pub const TAG: &str = "CREDENTIAL_HARVEST";

const PHRASES: &[&str] = &[
    "verify your account",
    "verify your identity",
    "confirm your identity",
    "confirm your account",
    "update your payment",
    "update your billing",
    "account has been suspended",
    "account will be suspended",
    "account has been locked",
    "account has been limited",
    "unusual sign-in",
    "unusual activity",
    "password will expire",
    "password expires",
    "reset your password",
    "confirm your password",
    "validate your account",
    "login to your account",
    "log in to your account",
    "sign in to your account",
    "mailbox is full",
    "storage is full",
    "unauthorized access",
    "security alert",
    "verify your email",
    "re-activate your account",
    "reactivate your account",
    "suspicious activity",
    // Portuguese
    "verifique sua conta",
    "confirme seus dados",
    "atualize seus dados",
    "atualizar seus dados",
    "atualize suas informa",
    "sua conta foi suspensa",
    "sua conta será bloqueada",
    "sua conta sera bloqueada",
    "acesse sua conta",
    // Spanish
    "verifique su cuenta",
    "confirme sus datos",
    "actualice sus datos",
    "actualizar sus datos",
    "su cuenta ha sido suspendida",
    "su cuenta será bloqueada",
    "inicie sesión",
    // French
    "vérifiez votre compte",
    "confirmez vos informations",
    "mettre à jour vos informations",
    "votre compte a été suspendu",
    "votre compte sera suspendu",
    // German
    "bestätigen sie ihr konto",
    "bestätigen sie ihre identität",
    "ihr konto wurde gesperrt",
    "aktualisieren sie ihre daten",
    // Japanese
    "本人確認",
    "アカウントを確認",
    "アカウント情報",
    "アカウントが停止",
    "アカウントの停止",
    "利用停止",
    "お支払い情報",
    "パスワードの有効期限",
    "ログインして",
    "カード情報",
];

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    if d.urls.is_empty() && d.html_info.forms == 0 {
        return;
    }
    let head: String = d
        .text
        .chars()
        .take(6_000)
        .collect::<String>()
        .to_lowercase();
    let subject = d.subject.to_lowercase();
    if let Some(p) = PHRASES
        .iter()
        .find(|p| head.contains(**p) || subject.contains(**p))
    {
        let target = d.urls.first().map(|u| u.host.as_str()).unwrap_or("a form");
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("\"{p}\" with a link to {target}"),
        });
    }
}
