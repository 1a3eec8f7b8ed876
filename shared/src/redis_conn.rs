//! One lazily opened, self-healing Redis connection shared by the bus and the store.

use crate::error::BackendError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis client whose multiplexed connection is opened at first use, not at start, so a
/// Lambda cold start pays nothing for Redis until a request needs it. The connection
/// reconnects by itself after Redis restarts.
#[derive(Clone)]
pub struct RedisHandle {
    client: redis::Client,
    conn: Arc<OnceCell<ConnectionManager>>,
}

impl std::fmt::Debug for RedisHandle {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisHandle")
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

    pub async fn conn(&self) -> Result<ConnectionManager, BackendError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn =
            self.conn.get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config)).await?;
        Ok(conn.clone())
    }

    /// Run a command, retrying once when the connection dropped under it (Redis restarted):
    /// the connection manager reconnects in the background after the first failure.
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

    /// [`RedisHandle::query`] for a pipeline (MULTI/EXEC when built with `atomic()`).
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

fn lost(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}
