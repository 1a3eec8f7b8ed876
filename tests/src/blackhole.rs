//! A loopback TCP listener that accepts connections and never answers: a server whose
//! packets are dropped (a security group gone wrong, a node in trouble), as opposed to a
//! killed process, which refuses at once. It can later heal: new connections are then
//! forwarded to a real server, and the ones it held are closed.

use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct State {
    forward_to: Option<u16>,
    held: Vec<TcpStream>,
}

#[derive(Debug)]
pub struct BlackHole {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let forward_to = shared.lock().expect("lock").forward_to;
                match forward_to {
                    // Held open, never read from, never written to.
                    None => shared.lock().expect("lock").held.push(socket),
                    Some(target) => {
                        tokio::spawn(async move {
                            let mut socket = socket;
                            if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)).await {
                                let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                            }
                        });
                    }
                }
            }
        });
        Self { port, state, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// From now on, forward to the server on `port`; close what was held.
    pub fn heal(&self, port: u16) {
        let mut state = self.state.lock().expect("lock");
        state.forward_to = Some(port);
        state.held.clear();
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}
