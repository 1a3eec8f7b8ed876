//! A private Redis deployment per test, on free ports, killed on drop: a standalone server,
//! a one-node cluster owning all 16,384 slots (how ElastiCache Serverless presents itself),
//! or a three-master cluster (how a sharded ElastiCache or a self-run cluster does).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The Redis shapes a user deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Standalone,
    /// `--cluster-enabled yes` with `CLUSTER ADDSLOTSRANGE 0 16383` on one node.
    OneNodeCluster,
    /// Three masters, no replicas, slots split in thirds.
    ThreeMasters,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Standalone, Shape::OneNodeCluster, Shape::ThreeMasters];

    fn nodes(self) -> usize {
        match self {
            Shape::Standalone | Shape::OneNodeCluster => 1,
            Shape::ThreeMasters => 3,
        }
    }
}

#[derive(Debug)]
struct Node {
    port: u16,
    child: Option<Child>,
}

#[derive(Debug)]
pub struct RedisServer {
    shape: Shape,
    nodes: Vec<Node>,
    /// Where cluster nodes keep `nodes.conf`, so a restarted node rejoins with its slots.
    dir: PathBuf,
}

impl RedisServer {
    /// A standalone `redis-server` (or `$REDIS_SERVER`) without persistence, answering PING.
    pub async fn start() -> Self {
        Self::start_shape(Shape::Standalone).await
    }

    /// A deployment of the given shape, ready: a cluster reports `cluster_state:ok` on every
    /// node and every node knows every master.
    pub async fn start_shape(shape: Shape) -> Self {
        let dir = std::env::temp_dir().join(format!("aetherium-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir for redis");
        let mut server = Self { shape, nodes: Vec::new(), dir };
        for _ in 0..shape.nodes() {
            let port = server.unused_port();
            server.nodes.push(Node { port, child: None });
        }
        for i in 0..server.nodes.len() {
            // A port free a moment ago may be taken by another test's server: try another.
            let mut tries = 0;
            while !server.try_spawn(i).await {
                tries += 1;
                assert!(tries < 3, "redis-server did not answer PING within 10 s on three ports");
                server.kill_node(i);
                server.nodes[i].port = server.unused_port();
            }
        }
        if shape != Shape::Standalone {
            server.form_cluster().await;
        }
        server
    }

    /// A free port that no node of this deployment has: two nodes given one port would see
    /// the first answer the second's PING, and the cluster would never form.
    fn unused_port(&self) -> u16 {
        loop {
            let port = crate::free_port();
            if self.nodes.iter().all(|n| n.port != port) {
                return port;
            }
        }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The first node's port.
    pub fn port(&self) -> u16 {
        self.nodes[0].port
    }

    /// The URL a user would configure: the first node, database 0.
    pub fn url(&self) -> String {
        node_url(self.nodes[0].port)
    }

    /// Every node's URL, the first one first.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| node_url(n.port)).collect()
    }

    /// Every node's port, the first one first.
    pub fn node_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `redis-cli -p <port> [-c] args...` against node `node`, as a platform engineer types
    /// it: its output, trimmed.
    pub fn cli(&self, node: usize, args: &[&str]) -> String {
        let port = self.nodes[node].port.to_string();
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port]);
        if self.cluster() {
            cmd.arg("-c");
        }
        let out = cmd.args(args).output().expect("redis-cli runs (scripts/test installs it)");
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Wait (30 s at most: a function's first start under `cargo lambda watch` is slow) until
    /// `clients` connections each hold `patterns` pattern subscriptions, as `CLIENT LIST`
    /// shows them (`psub=`), counted over every node: that many bridges listening. A cluster
    /// subscriber may sit on any node, and after a restart it reconnects to whichever answers.
    pub async fn wait_for_pattern_subscribers(&self, clients: usize, patterns: usize) {
        let marker = format!(" psub={patterns} ");
        let lists = || (0..self.nodes.len()).map(|i| self.cli(i, &["CLIENT", "LIST"])).collect::<Vec<_>>();
        let heard = crate::wait::until(Duration::from_secs(30), || {
            let found = lists().iter().flat_map(|l| l.lines()).filter(|l| l.contains(&marker)).count() >= clients;
            async move { found.then_some(()) }
        })
        .await;
        assert!(heard.is_some(), "{clients} clients with {patterns} patterns: {:?}", lists());
    }

    fn cluster(&self) -> bool {
        self.shape != Shape::Standalone
    }

    async fn spawn(&mut self, i: usize) {
        let port = self.nodes[i].port;
        assert!(self.try_spawn(i).await, "redis-server on port {port} did not answer PING within 10 s");
    }

    /// Start node `i`; `true` once it answers PING.
    async fn try_spawn(&mut self, i: usize) -> bool {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let port = self.nodes[i].port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
        let conf = format!("nodes-{port}.conf");
        let dir = self.dir.to_string_lossy().into_owned();
        if self.cluster() {
            args.extend(["--cluster-enabled", "yes", "--cluster-config-file", &conf, "--dir", &dir]);
            args.extend(["--cluster-node-timeout", "2000"]);
        }
        let child =
            Command::new(&binary).args(&args).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap_or_else(
                |e| panic!("cannot start `{binary}` ({e}); run the suite with scripts/test, which installs it"),
            );
        self.nodes[i].child = Some(child);
        let port = self.nodes[i].port;
        let ready = crate::wait::until(Duration::from_secs(10), || async move {
            command::<String>(port, &mut redis::cmd("PING")).await.ok()
        })
        .await;
        // Another test's server on the port answers PING too, while ours exits unable to bind.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let alive = self.nodes[i].child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)));
        ready.is_some() && alive
    }

    async fn form_cluster(&self) {
        let n = self.nodes.len() as u32;
        for (i, node) in self.nodes.iter().enumerate() {
            let (first, last) = (16384 * i as u32 / n, 16384 * (i as u32 + 1) / n - 1);
            command::<()>(node.port, redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(first).arg(last))
                .await
                .expect("CLUSTER ADDSLOTSRANGE");
        }
        for node in &self.nodes[1..] {
            command::<()>(self.nodes[0].port, redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(node.port))
                .await
                .expect("CLUSTER MEET");
        }
        self.wait_cluster_ok().await;
    }

    /// Every node answers `cluster_state:ok` and knows all the masters.
    async fn wait_cluster_ok(&self) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        let masters = ports.len();
        let ok = crate::wait::until(Duration::from_secs(30), || {
            let ports = ports.clone();
            async move {
                for port in ports {
                    let info: String = command(port, redis::cmd("CLUSTER").arg("INFO")).await.ok()?;
                    let known = format!("cluster_known_nodes:{masters}");
                    if !(info.contains("cluster_state:ok") && info.contains(&known)) {
                        return None;
                    }
                }
                Some(())
            }
        })
        .await;
        assert!(ok.is_some(), "the {:?} cluster on {ports:?} did not reach cluster_state:ok within 30 s", self.shape);
    }

    /// Kill every node (SIGKILL: no goodbye to clients, as in a crash).
    pub fn kill(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
    }

    /// Kill one node of the deployment.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start every node again on the same ports, with no data; a cluster keeps its
    /// membership and slots (`nodes.conf`) and is ready when this returns.
    pub async fn restart(&mut self) {
        self.kill();
        for i in 0..self.nodes.len() {
            self.spawn(i).await;
        }
        if self.cluster() {
            self.wait_cluster_ok().await;
        }
    }

    /// Start one killed node again; the cluster is ready when this returns.
    pub async fn restart_node(&mut self, i: usize) {
        self.kill_node(i);
        self.spawn(i).await;
        if self.cluster() {
            self.wait_cluster_ok().await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/0")
}

/// One command on one node, over a fresh plain connection.
async fn command<T: redis::FromRedisValue>(port: u16, cmd: &mut redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(node_url(port))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

/// Test bodies run once per Redis shape, each in its own test: `per_shape!(case, ...)`
/// expands to a module per case with `standalone`, `one_node_cluster` and `three_masters`,
/// each calling `case(RedisServer)`.
#[macro_export]
macro_rules! per_shape {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn standalone() {
                    super::$case($crate::RedisServer::start_shape($crate::redis_server::Shape::Standalone).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn one_node_cluster() {
                    super::$case($crate::RedisServer::start_shape($crate::redis_server::Shape::OneNodeCluster).await).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn three_masters() {
                    super::$case($crate::RedisServer::start_shape($crate::redis_server::Shape::ThreeMasters).await).await;
                }
            }
        )*
    };
}
