//! One lazily opened, self-healing Redis connection shared by the bus and the store, for
//! every shape a user deploys: a standalone server, ElastiCache Serverless (cluster mode,
//! one endpoint owning every slot) and a sharded cluster.

use crate::error::BackendError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, Pipeline, RedisFuture, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// A Redis client whose connection is opened at first use, not at start, so a Lambda cold
/// start pays nothing for Redis until a request needs it. The first connection asks the
/// server whether it runs in cluster mode and keeps a cluster-aware connection if so (it
/// follows `MOVED`/`ASK` and refreshes its slot map); either kind reconnects by itself.
#[derive(Clone)]
pub struct RedisHandle {
    client: redis::Client,
    conn: Arc<OnceCell<Conn>>,
}

impl std::fmt::Debug for RedisHandle {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisHandle")
    }
}

/// The connection of either shape; both multiplex, so a clone is a cheap handle.
#[derive(Clone)]
pub enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_cluster() { "Conn::Cluster" } else { "Conn::Standalone" })
    }
}

impl Conn {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// What a cluster-mode server answers to a `db` other than 0, in our words: which setting
/// to change, not the server's `SELECT is not allowed`.
pub fn cluster_db_error(db: i64) -> BackendError {
    BackendError::Misconfigured {
        backend: "redis",
        reason: format!(
            "Redis runs in cluster mode, which has only database 0, but database {db} is configured: \
             set events.redis.db to 0 (or drop the /{db} path from REDIS_URL)"
        ),
    }
}

impl RedisHandle {
    /// Parses the URL; does no I/O.
    pub fn open(url: &str) -> Result<Self, BackendError> {
        if url.starts_with("rediss://") {
            crate::http_client::install_crypto_provider();
        }
        let client = redis::Client::open(url)
            .map_err(|e| BackendError::rejected("redis", format!("invalid Redis URL ({:?})", e.kind())))?;
        Ok(Self { client, conn: Arc::new(OnceCell::new()) })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A client for another node of the same deployment: same credentials, TLS and db.
    pub fn node_client(&self, host: &str, port: u16) -> Result<redis::Client, BackendError> {
        let info = self.client.get_connection_info().clone();
        let addr = match info.addr() {
            ConnectionAddr::TcpTls { insecure, tls_params, .. } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        Ok(redis::Client::open(info.set_addr(addr))?)
    }

    /// The connection, opened (and its shape detected) on the first call.
    pub async fn conn(&self) -> Result<Conn, BackendError> {
        Ok(self.conn.get_or_try_init(|| self.connect()).await?.clone())
    }

    async fn connect(&self) -> Result<Conn, BackendError> {
        let db = self.client.get_connection_info().redis_settings().db();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut standalone = match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(c) => c,
            // The handshake's SELECT is the first thing a cluster refuses.
            Err(e) if db != 0 && in_cluster_mode_refusal(&e) => return Err(cluster_db_error(db)),
            Err(e) => return Err(e.into()),
        };
        if !cluster_enabled(&mut standalone).await? {
            return Ok(Conn::Standalone(standalone));
        }
        if db != 0 {
            return Err(cluster_db_error(db));
        }
        let cluster = ClusterClient::builder([self.client.get_connection_info().clone()])
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(3)
            .build()?;
        let conn = cluster.get_async_connection().await?;
        tracing::debug!("redis is in cluster mode; using the cluster-aware connection");
        Ok(Conn::Cluster(conn))
    }

    /// `true` when the server runs in cluster mode (opens the connection if needed).
    pub async fn is_cluster(&self) -> Result<bool, BackendError> {
        Ok(self.conn().await?.is_cluster())
    }

    /// Run a command, retrying once when the connection dropped under it (Redis restarted):
    /// the connection reconnects in the background after the first failure.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BackendError> {
        let mut conn = self.conn().await?;
        match cmd.query_async(&mut conn).await {
            Err(e) if lost(&e) => {
                tracing::debug!(error = %e, "redis connection lost; retrying once");
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(cmd.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }

    /// [`RedisHandle::query`] for a pipeline (MULTI/EXEC when built with `atomic()`). On a
    /// cluster every key of one pipeline must hash to one slot.
    pub async fn query_pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, BackendError> {
        let mut conn = self.conn().await?;
        match pipe.query_async(&mut conn).await {
            Err(e) if lost(&e) => {
                tracing::debug!(error = %e, "redis connection lost; retrying once");
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(pipe.query_async(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }
}

/// Asks `INFO cluster`. A server that refuses INFO (some managed proxies restrict it) is
/// taken as standalone; a cluster would then answer MOVED or CROSSSLOT, which the logs show.
async fn cluster_enabled(conn: &mut ConnectionManager) -> Result<bool, BackendError> {
    match redis::cmd("INFO").arg("cluster").query_async::<String>(conn).await {
        Ok(info) => Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1")),
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn in_cluster_mode_refusal(e: &redis::RedisError) -> bool {
    e.to_string().contains("cluster mode")
}

fn lost(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// The part of a key Redis Cluster hashes to choose its slot: the text between the first
/// `{` and the next `}` when that is not empty, else the whole key. Keys with the same tag
/// share a slot, so they can change together in one MULTI.
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(len) = key[open + 1..].find('}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

#[cfg(test)]
mod tests {
    use super::hash_tag;

    #[test]
    fn hash_tags_follow_the_cluster_spec() {
        assert_eq!(hash_tag("evt:{abc}:done"), "abc");
        assert_eq!(hash_tag("{user1000}.following"), "user1000");
        assert_eq!(hash_tag("foo{}{bar}"), "foo{}{bar}", "an empty first tag hashes the whole key");
        assert_eq!(hash_tag("foo{{bar}}zap"), "{bar", "the tag ends at the first closing brace");
        assert_eq!(hash_tag("metrics:counters"), "metrics:counters");
        assert_eq!(hash_tag("open{only"), "open{only");
    }
}
