//! The ingest against the dispatcher (differential): whatever body the GitHub webhook
//! accepts, the record it queues is one the dispatcher processes (after its lossy repair of
//! JSON a full parse refuses), with the same id and topic. Neither side may panic.
#![no_main]

use aetherium::Event;
use aetherium::github::webhook::normalize;
use aetherium::json_repair::repair;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(n) = normalize("push", "fuzz-delivery", data) else { return };
    let record = repair(&n.record).unwrap_or(n.record);
    let event = Event::from_json(&record).unwrap_or_else(|e| panic!("accepted at the door, refused after: {e}"));
    assert_eq!((event.id.as_str(), event.kind.as_str()), ("fuzz-delivery", n.topic.as_str()));
});
