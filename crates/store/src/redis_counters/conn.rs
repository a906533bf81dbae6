//! The connection under [`super::RedisCounters`]: one Redis server (or a primary) through a
//! reconnecting [`ConnectionManager`], or a **Redis Cluster** through the cluster client.
//!
//! In a cluster every key is hash-tagged with its counter subject (see [`Layout::tag`]), so all
//! the keys one decision touches — the windows of one account, of one connector or of one
//! tenant, and their meta hashes — hash to one slot: each Lua script runs on one master, and a
//! master that is down makes only the decisions of the subjects in its slots fail (`451 4.3.0`
//! upstream); the other masters keep serving (with `cluster-require-full-coverage no`).

use std::time::Duration;

use outguard_policy::CounterError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// The URL scheme of a Redis Cluster `counters` URL:
/// `redis+cluster://host1:port1,host2:port2,…[?prefix=NAME]` (any reachable masters; the
/// client discovers the others).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A single server or a cluster; both are cheap to clone (multiplexed underneath).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(format!("redis: {e}"))
}

/// The node URLs of a `redis+cluster://h1:p1,h2:p2[?query]` URL (prefix already split off):
/// `redis://h1:p1[?query]`, … An empty list or an empty host is an error.
pub fn cluster_nodes(url: &str) -> Result<Vec<String>, String> {
    let rest = url
        .strip_prefix(CLUSTER_SCHEME)
        .ok_or_else(|| format!("a cluster URL starts with {CLUSTER_SCHEME}"))?;
    let (hosts, query) = match rest.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (rest, String::new()),
    };
    let hosts = hosts.trim_end_matches('/');
    let nodes: Vec<String> = hosts
        .split(',')
        .map(|h| h.trim())
        .map(|h| {
            if h.is_empty() || h.contains('/') {
                Err(format!("bad node `{h}` in {url}: use host:port"))
            } else {
                Ok(format!("redis://{h}{query}"))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(nodes)
}

/// Connect to one server (lazily: the first command connects) or to a cluster (the slot map is
/// read now, from any of the nodes named).
pub(super) async fn connect(url: &str, timeout: Duration) -> Result<Conn, CounterError> {
    if url.starts_with(CLUSTER_SCHEME) {
        let nodes = cluster_nodes(url).map_err(unavailable)?;
        let client = redis::cluster::ClusterClientBuilder::new(nodes)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // Each call is bounded by `timeout` above this layer; a couple of quick retries
            // ride over a MOVED/ASK or a reconnect, a dead master fails the call in time.
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(200)
            .build()
            .map_err(unavailable)?;
        let con = tokio::time::timeout(timeout * 4, client.get_async_connection())
            .await
            .map_err(|_| unavailable("no cluster node answered"))?
            .map_err(unavailable)?;
        return Ok(Conn::Cluster(con));
    }
    let client = redis::Client::open(url).map_err(unavailable)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(timeout);
    let con = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
    Ok(Conn::Single(con))
}

/// Key names under the prefix. On a single server a counter key `K` is stored as
/// `PREFIX:z:K` (unchanged from before clusters); on a cluster as `PREFIX:z:{SUBJECT}:WHAT`,
/// the subject (everything before the last `:` of `K`: `a:alice@x`, `c:10.0.0.0/24`, `t:acme`)
/// being the hash tag, so one decision's keys share a slot.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    pub prefix: String,
    pub cluster: bool,
}

impl Layout {
    /// `K` with its subject in braces (cluster) or as is (single server).
    pub fn tag(&self, key: &str) -> String {
        if !self.cluster {
            return key.to_string();
        }
        match key.rsplit_once(':') {
            Some((subject, what)) if !subject.is_empty() => format!("{{{subject}}}:{what}"),
            _ => format!("{{{key}}}"),
        }
    }

    pub fn log_key(&self, key: &str) -> String {
        format!("{}:z:{}", self.prefix, self.tag(key))
    }

    pub fn meta_key(&self, key: &str) -> String {
        format!("{}:z:{}|m", self.prefix, self.tag(key))
    }

    pub fn recent_key(&self, key: &str) -> String {
        format!("{}:l:{}", self.prefix, self.tag(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_every_node() {
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001").unwrap(),
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://h:1/?protocol=resp3").unwrap(),
            ["redis://h:1?protocol=resp3"]
        );
        assert!(cluster_nodes("redis+cluster://").is_err());
        assert!(cluster_nodes("redis+cluster://a:1,,b:2").is_err());
        assert!(cluster_nodes("redis+cluster://a:1/0").is_err());
        assert!(cluster_nodes("redis://a:1").is_err());
    }

    /// Redis's rule: a key's slot is the CRC16 of its hash tag, the text between the first `{`
    /// and the next `}` (when non-empty). One decision's keys (same subject) share one tag.
    fn hash_tag(k: &str) -> &str {
        let open = k.find('{').expect("tagged");
        let close = open + 1 + k[open + 1..].find('}').expect("closed");
        &k[open + 1..close]
    }

    #[test]
    fn one_subject_one_slot() {
        let l = Layout {
            prefix: "p".into(),
            cluster: true,
        };
        let a = ["a:alice@x.example:ext", "a:alice@x.example:rcpt"];
        let keys: Vec<String> = a
            .iter()
            .flat_map(|k| [l.log_key(k), l.meta_key(k), l.recent_key(k)])
            .collect();
        assert_eq!(keys[0], "p:z:{a:alice@x.example}:ext");
        assert!(
            keys.iter().all(|k| hash_tag(k) == "a:alice@x.example"),
            "{keys:?}"
        );
        // An IPv6 connector's subject keeps its colons; a key without a subject is its own tag.
        assert_eq!(l.tag("c:2001:db8::/48:rcpt"), "{c:2001:db8::/48}:rcpt");
        assert_eq!(l.tag("plain"), "{plain}");
        let single = Layout {
            prefix: "p".into(),
            cluster: false,
        };
        assert_eq!(
            single.log_key("a:alice@x.example:ext"),
            "p:z:a:alice@x.example:ext"
        );
    }
}
