//! The test harness: real servers on free loopback ports. A test that cannot start or
//! reach its server fails with a message saying how to get it; it never skips.

pub mod app;
pub mod blackhole;
pub mod fixtures;
pub mod github_app;
pub mod github_fake;
pub mod logs;
pub mod redis_server;
pub mod runner;
pub mod runtime_api;
pub mod samples;
pub mod sqs;
pub mod stand_in;
pub mod wait;

pub use app::{Answer, TestApp};
pub use redis_server::RedisServer;
pub use runner::{Running, config};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}
