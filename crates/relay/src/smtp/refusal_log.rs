//! Refusals in the mail log (README "The mail log"). A MAIL or RCPT the relay refuses has no
//! message id yet, so it is one line of its own under the target `outguard::mail`, event
//! `refused`: the stage, the reply code, who submitted (account or connector), the tenant, the
//! client IP and listener, and the addresses (Debug-quoted: a client wrote them, so control
//! characters are escaped and the line stays one line).

use std::net::IpAddr;

use outguard_proto::Reply;

use super::identity::Identity;

/// Where in the transaction the refusal was answered.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    Mail,
    Rcpt,
}

/// What the refusal log line says about one refused command.
pub struct Refused<'a> {
    pub stage: Stage,
    pub identity: &'a Identity,
    pub client: IpAddr,
    pub listener: &'static str,
    pub from: &'a str,
    pub rcpt: Option<&'a str>,
}

/// Log one refusal line.
pub fn log(r: &Refused<'_>, reply: &Reply) {
    let (stage, what) = match r.stage {
        Stage::Mail => ("mail", "MAIL"),
        Stage::Rcpt => ("rcpt", "RCPT"),
    };
    let account = match r.identity {
        Identity::Account { address, .. } => address.as_str(),
        Identity::Connector { cidr, .. } => cidr.as_str(),
        Identity::None | Identity::FeedbackLoop => "-",
    };
    let code = format!("{} {}", reply.code, reply.enhanced);
    tracing::info!(
        target: "outguard::mail",
        event = "refused",
        stage,
        code = code.trim(),
        account,
        tenant = r.identity.tenant().unwrap_or("-"),
        client = %r.client,
        listener = r.listener,
        from = ?r.from,
        rcpt = ?r.rcpt.unwrap_or("-"),
        "refused at {what}: {}",
        reply.lines.first().map_or("", String::as_str).escape_debug()
    );
}
