//! The dispatcher's envelope parse against the full parse (differential): for any record the
//! two accept and reject the same inputs and agree on the id and topic. Neither may panic.
#![no_main]

use aetherium::Event;
use aetherium::model::event::EventHead;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (head, full) = (EventHead::from_json(text), Event::from_json(text));
    assert_eq!(head.is_ok(), full.is_ok(), "{text:?}: {:?} / {:?}", head.as_ref().err(), full.as_ref().err());
    if let (Ok(head), Ok(full)) = (head, full) {
        assert_eq!((head.id.as_ref(), head.kind.as_ref(), head.timestamp), (full.id.as_str(), full.kind.as_str(), full.timestamp));
    }
});
