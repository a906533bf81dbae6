//! The demo's simulated mail clients: a small SMTP client over plain TCP on loopback (the demo
//! relay offers AUTH without TLS to 127.0.0.0/8), keeping every reply so the narration can show
//! exactly what a sender was told — the `550 5.2.2` at the RCPT that crossed a limit, the
//! `550 5.1.8` at MAIL once restricted.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What happened to one submission.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Reply to each RCPT, in order (empty when MAIL was refused).
    pub rcpt_replies: Vec<String>,
    /// The first refusal before DATA (AUTH or MAIL), if any.
    pub refused: Option<String>,
    /// The reply to the final dot, when DATA was reached.
    pub final_reply: Option<String>,
}

impl Outcome {
    /// The id of `250 2.0.0 Ok: queued as <id>`.
    pub fn queued_id(&self) -> Option<String> {
        let r = self.final_reply.as_deref()?;
        r.starts_with("250")
            .then(|| r.rsplit(' ').next().map(str::to_string))
            .flatten()
    }
}

/// One authenticated sender.
pub struct Sender<'a> {
    pub addr: SocketAddr,
    pub user: &'a str,
    pub password: &'a str,
}

struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    async fn reply(&mut self) -> anyhow::Result<String> {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.r.read_line(&mut line))
                .await
                .context("the relay did not answer in time")??;
            if n == 0 {
                anyhow::bail!("the relay closed the connection");
            }
            let l = line.trim_end().to_string();
            let last = l.len() < 4 || l.as_bytes().get(3) == Some(&b' ');
            out.push(l);
            if last {
                return Ok(out.join(" / "));
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> anyhow::Result<String> {
        self.r
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        self.reply().await
    }
}

/// Dot-stuff and CRLF-normalise a message for DATA.
fn dot_stuffed(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    let text = data.replace("\r\n", "\n");
    for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

impl Sender<'_> {
    /// EHLO, AUTH PLAIN, MAIL, every RCPT (continuing past refusals, as real clients do), DATA
    /// when at least one recipient was accepted.
    pub async fn send(&self, rcpts: &[String], data: &str) -> anyhow::Result<Outcome> {
        let s = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        let mut c = Conn {
            r: BufReader::new(s),
        };
        let mut out = Outcome::default();
        c.reply().await?;
        c.cmd("EHLO workstation.demo").await?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{}\0{}", self.user, self.password));
        let r = c.cmd(&format!("AUTH PLAIN {token}")).await?;
        if !r.starts_with("235") {
            out.refused = Some(r);
            return Ok(out);
        }
        let r = c.cmd(&format!("MAIL FROM:<{}>", self.user)).await?;
        if !r.starts_with("250") {
            out.refused = Some(r);
            let _ = c.cmd("QUIT").await;
            return Ok(out);
        }
        for to in rcpts {
            out.rcpt_replies
                .push(c.cmd(&format!("RCPT TO:<{to}>")).await?);
        }
        if out.rcpt_replies.iter().any(|r| r.starts_with("250")) {
            let r = c.cmd("DATA").await?;
            if r.starts_with("354") {
                c.r.get_mut()
                    .write_all(dot_stuffed(data).as_bytes())
                    .await?;
                out.final_reply = Some(c.cmd(".").await?);
            } else {
                out.final_reply = Some(r);
            }
        }
        let _ = c.cmd("QUIT").await;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_queued_id() {
        assert_eq!(dot_stuffed("a\n.b\r\nc"), "a\r\n..b\r\nc\r\n");
        let o = Outcome {
            final_reply: Some("250 2.0.0 Ok: queued as 01ABC".into()),
            ..Outcome::default()
        };
        assert_eq!(o.queued_id().as_deref(), Some("01ABC"));
        let o = Outcome {
            final_reply: Some("550 5.7.1 no".into()),
            ..Outcome::default()
        };
        assert_eq!(o.queued_id(), None);
    }
}
