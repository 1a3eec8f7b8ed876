//! A Lambda Runtime API emulator on loopback: the real function binaries run against it
//! exactly as inside Lambda (`AWS_LAMBDA_RUNTIME_API`), one invocation at a time.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(String),
    Error(String),
}

#[derive(Default)]
struct Inner {
    pending: Mutex<VecDeque<(String, String)>>,
    arrived: Notify,
    outcomes: Mutex<HashMap<String, Outcome>>,
    settled: Notify,
    first_next: Mutex<Option<Instant>>,
    init_error: Mutex<Option<String>>,
}

pub struct RuntimeApi {
    pub addr: std::net::SocketAddr,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RuntimeApi({})", self.addr)
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> (HeaderMap, String) {
    inner.first_next.lock().expect("lock").get_or_insert_with(Instant::now);
    loop {
        let notified = inner.arrived.notified();
        if let Some((id, payload)) = inner.pending.lock().expect("lock").pop_front() {
            let mut h = HeaderMap::new();
            let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            h.insert("lambda-runtime-aws-request-id", id.parse().expect("id"));
            h.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().expect("deadline"));
            h.insert(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:test".parse().expect("arn"),
            );
            h.insert(
                "lambda-runtime-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".parse().expect("trace"),
            );
            return (h, payload);
        }
        notified.await;
    }
}

async fn respond(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    inner.outcomes.lock().expect("lock").insert(id, Outcome::Response(String::from_utf8_lossy(&body).into_owned()));
    inner.settled.notify_waiters();
    StatusCode::ACCEPTED
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    inner.outcomes.lock().expect("lock").insert(id, Outcome::Error(String::from_utf8_lossy(&body).into_owned()));
    inner.settled.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *inner.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&body).into_owned());
    inner.settled.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner }
    }

    /// When the function first asked for work: the end of its init.
    pub fn first_next(&self) -> Option<Instant> {
        *self.inner.first_next.lock().expect("lock")
    }

    /// Invoke with `payload` and wait for the function's answer.
    pub async fn invoke(&self, payload: &str) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        self.inner.pending.lock().expect("lock").push_back((id.clone(), payload.to_owned()));
        self.inner.arrived.notify_waiters();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.inner.settled.notified();
            if let Some(o) = self.inner.outcomes.lock().expect("lock").remove(&id) {
                return o;
            }
            if let Some(e) = self.inner.init_error.lock().expect("lock").clone() {
                return Outcome::Error(format!("init error: {e}"));
            }
            assert!(Instant::now() < deadline, "the function did not answer within 20 s");
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// Where the function binaries are: `AETHERIUM_BIN_DIR` (scripts/test builds them there).
pub fn binary(name: &str) -> std::path::PathBuf {
    let dir = std::env::var("AETHERIUM_BIN_DIR")
        .unwrap_or_else(|_| format!("{}/../target/debug", env!("CARGO_MANIFEST_DIR")));
    let path = std::path::Path::new(&dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: run the suite with scripts/test, which builds the function binaries",
        path.display()
    );
    path
}

/// A function binary running against `api`, killed on drop.
#[derive(Debug)]
pub struct Function {
    child: Child,
    pub started: Instant,
    /// Its stdout, read as it is written (see [`Function::spawn_capturing`]).
    captured: Option<Arc<Mutex<Vec<u8>>>>,
}

impl Function {
    pub fn spawn(name: &str, api: &RuntimeApi, env: &[(&str, &str)]) -> Self {
        Self::start(binary(name), name, api, env)
    }

    /// [`Function::spawn`] with its stdout (its log lines) read as it is written, so a chatty
    /// log level cannot fill the pipe and stall it; [`Function::logs`] returns it.
    pub fn spawn_capturing(name: &str, api: &RuntimeApi, env: &[(&str, &str)]) -> Self {
        Self::spawn(name, api, env).capture()
    }

    fn capture(mut self) -> Self {
        let f = &mut self;
        let captured = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut stdout) = f.child.stdout.take() {
            let sink = captured.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                    if n == 0 {
                        break;
                    }
                    sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                }
            });
        }
        f.captured = Some(captured);
        self
    }

    /// What a capturing function has logged so far.
    pub fn logs(&self) -> String {
        self.captured
            .as_ref()
            .map(|c| String::from_utf8_lossy(&c.lock().expect("lock")).into_owned())
            .unwrap_or_default()
    }

    /// The binary `name` from `dir` (release builds for benchmarks), its log read as written:
    /// a bench at the production log level must not stall on a full pipe.
    pub fn spawn_from(dir: &str, name: &str, api: &RuntimeApi, env: &[(&str, &str)]) -> Self {
        Self::start(std::path::Path::new(dir).join(name), name, api, env).capture()
    }

    fn start(path: std::path::PathBuf, name: &str, api: &RuntimeApi, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(path);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_REGION", "us-east-1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { child, started, captured: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the process to end by itself; its exit success and what it logged.
    pub fn wait_exit(&mut self, limit: Duration) -> (bool, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(Instant::now() < deadline, "the function did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        (status.success(), out)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
