//! The harness's own behaviour, checked with a bare TCP client and raw DNS queries.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use outguard_harness::{DnsServer, Reply, Script, SinkOptions, SmtpSink, Zones};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

async fn ask(server: &DnsServer, name: &str, rtype: RecordType) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_str(name).unwrap(), rtype));
    sock.send_to(&q.to_vec().unwrap(), server.addr())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

#[tokio::test]
async fn dns_answers_and_changes_while_running() {
    let mut z = Zones::new();
    z.a("host.test", Ipv4Addr::new(127, 0, 0, 2))
        .servfail("bad.test")
        .null_mx("null.test");
    let dns = DnsServer::start(z).await.unwrap();
    let a = ask(&dns, "HOST.test.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(matches!(a.answers[0].data, RData::A(ip) if ip.0 == Ipv4Addr::new(127, 0, 0, 2)));
    assert_eq!(
        ask(&dns, "host.test.", RecordType::MX)
            .await
            .metadata
            .response_code,
        ResponseCode::NoError
    );
    assert_eq!(
        ask(&dns, "bad.test.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    assert_eq!(
        ask(&dns, "none.test.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let null = ask(&dns, "null.test.", RecordType::MX).await;
    assert!(matches!(&null.answers[0].data, RData::MX(mx) if mx.exchange.is_root()));
    dns.update(|z| {
        z.remove("host.test");
    });
    assert_eq!(
        ask(&dns, "host.test.", RecordType::A)
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

async fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).await.unwrap();
    s
}

#[tokio::test]
async fn sink_scripts_replies_and_records_the_peer() {
    let script = Script {
        data: None,
        ..Script::fail_first(1, Reply::new(421, "4.7.0 slow down"))
    }
    .refuse_rcpt("no@x.test", Reply::new(550, "5.1.1 unknown"));
    let opts = SinkOptions {
        starttls: true,
        script,
        ..SinkOptions::default()
    };
    let sink = SmtpSink::start_with("127.0.0.1:0", opts).await.unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut r = BufReader::new(sock.connect(sink.addr()).await.unwrap());
    assert!(line(&mut r).await.starts_with("220 "));
    r.get_mut()
        .write_all(b"EHLO client.test\r\n")
        .await
        .unwrap();
    let mut ehlo = Vec::new();
    loop {
        let l = line(&mut r).await;
        let last = l.starts_with("250 ");
        ehlo.push(l);
        if last {
            break;
        }
    }
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")));
    r.get_mut()
        .write_all(b"MAIL FROM:<a@x.test>\r\n")
        .await
        .unwrap();
    assert!(line(&mut r).await.starts_with("421 4.7.0"));
    r.get_mut()
        .write_all(
            b"MAIL FROM:<a@x.test>\r\nRCPT TO:<no@x.test>\r\nRCPT TO:<yes@x.test>\r\nDATA\r\n",
        )
        .await
        .unwrap();
    assert!(line(&mut r).await.starts_with("250"));
    assert!(line(&mut r).await.starts_with("550 5.1.1"));
    assert!(line(&mut r).await.starts_with("250"));
    assert!(line(&mut r).await.starts_with("354"));
    r.get_mut()
        .write_all(b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    assert!(line(&mut r).await.starts_with("250"));
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].peer.ip().to_string(), "127.0.0.3");
    assert_eq!(got[0].ehlo, "client.test");
    assert_eq!(got[0].rcpts, vec!["yes@x.test".to_string()]);
    assert_eq!(got[0].data, b"Subject: x\r\n\r\n.dot\r\n");
    assert_eq!(got[0].raw, b"Subject: x\r\n\r\n..dot\r\n.\r\n");
    assert_eq!(sink.transactions(), 2);
}
