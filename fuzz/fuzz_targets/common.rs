//! Shared by the fuzz targets: an in-memory app, a runtime, and mutation of a signed request.
// Each target includes this file and uses part of it.
#![allow(dead_code)]

use aetherium::edge::api::{self, Endpoint};
use aetherium::engine::clock::Clock;
use aetherium::config::Config;
use aetherium::backends::queue::MemoryQueue;
use aetherium::backends::store::MemoryStore;
use aetherium::{App, backends::bus::MemoryBus};
use std::sync::{Arc, OnceLock};

pub const GITHUB_SECRET: &str = "fuzz-github-secret";
pub const SLACK_SECRET: &str = "fuzz-slack-secret";
pub const NOW: i64 = 1_795_672_800;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

pub fn config() -> Config {
    let env = |k: &str| match k {
        "GITHUB_WEBHOOK_SECRET" => Some(GITHUB_SECRET.to_owned()),
        "SLACK_SIGNING_SECRET" => Some(SLACK_SECRET.to_owned()),
        _ => None,
    };
    Config::load(&env).expect("config")
}

pub fn app() -> App {
    let (bus, queue, store) = (Arc::new(MemoryBus::new()), Arc::new(MemoryQueue::default()), Arc::new(MemoryStore::new()));
    App::from_parts(config(), bus, queue, store).with_clock(Clock::fixed(NOW))
}

pub fn status(app: &App, route: Endpoint, req: api::Request) -> u16 {
    runtime().block_on(api::handle(app, route, req)).status().as_u16()
}

/// XOR `mask` into `parts` (spread over every byte of every part); whether the result differs
/// from the original (two mask bytes on one position can cancel out).
pub fn mutate(parts: &mut [&mut Vec<u8>], mask: &[u8]) -> bool {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total == 0 {
        return false;
    }
    let before: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    for (i, m) in mask.iter().enumerate() {
        if *m == 0 {
            continue;
        }
        let mut pos = (i.wrapping_mul(7919)) % total;
        for p in parts.iter_mut() {
            if pos < p.len() {
                p[pos] ^= m;
                break;
            }
            pos -= p.len();
        }
    }
    parts.iter().zip(&before).any(|(p, b)| p.as_slice() != b.as_slice())
}
