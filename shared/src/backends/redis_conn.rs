//! One lazily opened, self-healing Redis connection shared by the bus and the store, for
//! every shape a user deploys: a standalone server, ElastiCache Serverless (cluster mode,
//! one endpoint owning every slot) and a sharded cluster.
//!
//! Every call has a deadline ([`CALL_DEADLINE`], connecting included), and a circuit breaker
//! per instance fails calls at once while Redis does not answer: a Redis that drops packets
//! costs one deadline, not one per call. After [`COOL_DOWN`] the next call probes Redis
//! again; when it answers, calls flow.

use crate::backends::error::BackendError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, Pipeline, RedisFuture, Value};
use std::sync::Arc;
use std::time::Duration;

/// TCP and TLS handshake, and the first commands on a new connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One command's answer. In-VPC Redis answers in about a millisecond; a 5 MB value in tens.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// All of one call: connecting, the command, and its one retry after a dropped connection.
/// Slack waits 3 s for an answer and a webhook may make a Redis call before it enqueues.
pub const CALL_DEADLINE: Duration = Duration::from_millis(1500);
/// How long the breaker fails calls at once before it lets one through to probe.
pub const COOL_DOWN: Duration = Duration::from_secs(5);
/// How long a call that arrives while the probe is out waits for its answer. A Redis that is
/// back answers the probe in milliseconds; so the records a dispatcher retries together
/// after the cool-down all go through, instead of one probing and the rest failing fast
/// again (engine::dispatch's first retry comes just after [`COOL_DOWN`]).
pub const PROBE_WAIT: Duration = Duration::from_millis(300);

/// The breaker's state, per instance: closed (calls flow), open (calls fail at once until
/// the cool-down ends), probing (one call is finding out whether Redis answers again).
#[derive(Debug, Default)]
enum Breaker {
    #[default]
    Closed,
    Open {
        until: tokio::time::Instant,
    },
    Probing {
        since: tokio::time::Instant,
    },
}

fn breaker_open() -> BackendError {
    BackendError::unavailable("redis", "not answering; failing fast until the circuit breaker's next probe")
}

/// A Redis client whose connection is opened at first use, not at start, so a Lambda cold
/// start pays nothing for Redis until a request needs it. The first connection asks the
/// server how it is deployed ([`Shape`]) and keeps the connection that suits it; either kind
/// reconnects by itself, and a `MOVED` answer (a cluster resharded under a plain connection)
/// makes the next call look again.
#[derive(Clone)]
pub struct RedisHandle {
    client: redis::Client,
    conn: Arc<std::sync::RwLock<Option<Conn>>>,
    connecting: Arc<tokio::sync::Mutex<()>>,
    breaker: Arc<std::sync::Mutex<Breaker>>,
    /// Told when a probe reports.
    probed: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for RedisHandle {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisHandle")
    }
}

/// How the server is deployed, as far as the client must care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Standalone,
    /// Cluster mode with one node owning all 16,384 slots: ElastiCache Serverless's endpoint.
    /// A plain connection reaches every key; a MULTI may still touch only one slot.
    SingleShard,
    /// Slots spread over several nodes: the cluster-aware connection routes each command.
    Sharded,
}

/// The connection of either kind; both multiplex, so a clone is a cheap handle.
#[derive(Clone)]
pub enum Conn {
    Plain(ConnectionManager, Shape),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn({:?})", self.shape())
    }
}

impl Conn {
    pub fn shape(&self) -> Shape {
        match self {
            Self::Plain(_, shape) => *shape,
            Self::Cluster(_) => Shape::Sharded,
        }
    }

    /// A MULTI may touch only one slot.
    pub fn cluster_mode(&self) -> bool {
        self.shape() != Shape::Standalone
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Plain(c, _) => c.req_packed_command(cmd),
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
            Self::Plain(c, _) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Plain(c, _) => c.get_db(),
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
            crate::backends::http_client::install_crypto_provider();
        }
        let client = redis::Client::open(url)
            .map_err(|e| BackendError::rejected("redis", format!("invalid Redis URL ({:?})", e.kind())))?;
        Ok(Self {
            client,
            conn: Arc::default(),
            connecting: Arc::default(),
            breaker: Arc::default(),
            probed: Arc::default(),
        })
    }

    /// Whether a call may go to Redis now (`Ok(true)`), or once the probe that is out has
    /// reported (`Ok(false)`). After the cool-down, one call is let through as the probe; a
    /// probe that never reported (its caller gave up) is replaced after two deadlines.
    fn admit(&self) -> Result<bool, BackendError> {
        let now = tokio::time::Instant::now();
        let mut state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match *state {
            Breaker::Closed => Ok(true),
            Breaker::Open { until } if now < until => Err(breaker_open()),
            Breaker::Probing { since } if now.duration_since(since) < CALL_DEADLINE * 2 => Ok(false),
            _ => {
                *state = Breaker::Probing { since: now };
                Ok(true)
            }
        }
    }

    /// Open the breaker when Redis did not answer (a timeout, a refused or dropped
    /// connection); close it on anything Redis said, an error reply included.
    ///
    /// A sharded cluster never opens it: one node's outage fails only its own slots' calls,
    /// and failing every call would leave keys on the healthy nodes (a route's `running`
    /// claim) unwritten for no reason. Each call there still has its deadline.
    fn record<T>(&self, outcome: &Result<T, BackendError>) {
        let sharded = self.current().is_some_and(|c| c.shape() == Shape::Sharded);
        let outage =
            !sharded && matches!(outcome, Err(BackendError::Timeout { .. } | BackendError::Unavailable { .. }));
        let mut state = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        let probe_reported = matches!(*state, Breaker::Probing { .. });
        match (outage, &*state) {
            (true, _) => {
                if matches!(*state, Breaker::Closed) {
                    tracing::warn!(cool_down_ms = COOL_DOWN.as_millis() as u64, "redis is not answering; failing fast");
                }
                let until = tokio::time::Instant::now() + COOL_DOWN;
                *state = Breaker::Open { until };
            }
            (false, Breaker::Closed) => {}
            (false, _) => {
                tracing::info!("redis answers again");
                *state = Breaker::Closed;
            }
        }
        if probe_reported {
            self.probed.notify_waiters();
        }
    }

    /// `call` behind the breaker and under [`CALL_DEADLINE`].
    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        // Created before the breaker is asked, so a probe reporting in between is not missed.
        let probed = self.probed.notified();
        if !self.admit()? {
            let _ = tokio::time::timeout(PROBE_WAIT, probed).await;
            if !self.admit()? {
                return Err(breaker_open());
            }
        }
        let outcome =
            tokio::time::timeout(CALL_DEADLINE, call).await.unwrap_or(Err(BackendError::Timeout { backend: "redis" }));
        self.record(&outcome);
        outcome
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

    fn current(&self) -> Option<Conn> {
        self.conn.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The connection, opened (and the server's shape detected) on the first call.
    pub async fn conn(&self) -> Result<Conn, BackendError> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        self.guarded(self.open_conn()).await
    }

    async fn open_conn(&self) -> Result<Conn, BackendError> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let conn = self.connect().await?;
        tracing::debug!(shape = ?conn.shape(), "redis connected");
        *self.conn.write().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// Forget the connection so that the next call detects the shape again.
    fn reset(&self) {
        *self.conn.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn connect(&self) -> Result<Conn, BackendError> {
        let db = self.client.get_connection_info().redis_settings().db();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut plain = match ConnectionManager::new_with_config(self.client.clone(), config).await {
            Ok(c) => c,
            // The handshake's SELECT is the first thing a cluster refuses.
            Err(e) if db != 0 && in_cluster_mode_refusal(&e) => return Err(cluster_db_error(db)),
            Err(e) => return Err(e.into()),
        };
        if !cluster_enabled(&mut plain).await? {
            return Ok(Conn::Plain(plain, Shape::Standalone));
        }
        if db != 0 {
            return Err(cluster_db_error(db));
        }
        if one_node_owns_every_slot(&mut plain).await? {
            return Ok(Conn::Plain(plain, Shape::SingleShard));
        }
        let cluster = ClusterClient::builder([self.client.get_connection_info().clone()])
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(3)
            .build()?;
        Ok(Conn::Cluster(cluster.get_async_connection().await?))
    }

    /// How the server is deployed (opens the connection if needed).
    pub async fn shape(&self) -> Result<Shape, BackendError> {
        Ok(self.conn().await?.shape())
    }

    /// Run a command, retrying once when the connection dropped under it (Redis restarted):
    /// the connection reconnects in the background after the first failure.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BackendError> {
        self.guarded(async {
            let mut conn = self.open_conn().await?;
            let first = cmd.query_async(&mut conn).await;
            match self.retry_worthy(&conn, first) {
                Ok(outcome) => outcome,
                Err(mut conn) => Ok(cmd.query_async(&mut conn).await?),
            }
        })
        .await
    }

    /// [`RedisHandle::query`] for a pipeline (MULTI/EXEC when built with `atomic()`). In
    /// cluster mode every key of one pipeline must hash to one slot.
    pub async fn query_pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, BackendError> {
        self.guarded(async {
            let mut conn = self.open_conn().await?;
            let first = pipe.query_async(&mut conn).await;
            match self.retry_worthy(&conn, first) {
                Ok(outcome) => outcome,
                Err(mut conn) => Ok(pipe.query_async(&mut conn).await?),
            }
        })
        .await
    }

    /// The first attempt's outcome, or the connection to try once more on: after a dropped
    /// connection (it reconnects in the background), or after `MOVED` on a plain connection
    /// (the cluster was resharded: detect the shape again).
    fn retry_worthy<T>(&self, conn: &Conn, first: redis::RedisResult<T>) -> Result<Result<T, BackendError>, Conn> {
        match first {
            Err(e) if lost(&e) => {
                tracing::debug!(error = %e, "redis connection lost; retrying once");
                Err(conn.clone())
            }
            Err(e)
                if matches!(conn, Conn::Plain(..))
                    && e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved) =>
            {
                tracing::warn!(
                    "redis answered MOVED: the cluster has more than one shard now; reconnecting cluster-aware"
                );
                self.reset();
                Ok(Err(e.into()))
            }
            other => Ok(other.map_err(BackendError::from)),
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

/// `CLUSTER SLOTS` lists one range, 0 to 16383, on one node: everything is one hop away.
async fn one_node_owns_every_slot(conn: &mut ConnectionManager) -> Result<bool, BackendError> {
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let covers_all = |r: &Vec<redis::Value>| {
        matches!((r.first(), r.get(1)), (Some(redis::Value::Int(0)), Some(redis::Value::Int(16383))))
    };
    Ok(ranges.len() == 1 && covers_all(&ranges[0]))
}

fn in_cluster_mode_refusal(e: &redis::RedisError) -> bool {
    e.to_string().contains("cluster mode")
}

/// A connection that dropped and reconnects by itself: worth one more try. Not a timeout:
/// a Redis that did not answer once will not answer the retry either, and the deadline is
/// better spent elsewhere.
fn lost(e: &redis::RedisError) -> bool {
    !e.is_timeout() && (e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error())
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
