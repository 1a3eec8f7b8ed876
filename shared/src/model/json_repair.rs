//! What the webhooks accept and the dispatcher must therefore process: JSON that is well
//! formed but that a full parse refuses. The ingest reads only the fields it routes on and
//! skips the rest as syntax, so a signed payload may carry a lone UTF-16 surrogate escape
//! (`"\ud800"`) or a number beyond `f64` (`1e400`). Rather than pay a full parse at the door,
//! the dispatcher repairs such a record lossily: a lone surrogate becomes U+FFFD, an
//! out-of-range number becomes the same digits as a string.

/// The record with every lone surrogate escape and out-of-range number replaced; `None`
/// when there was nothing to repair (or the text is not JSON this can walk).
pub fn repair(json: &str) -> Option<String> {
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len());
    let (mut i, mut copied, mut changed) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] != b'\\' {
                        i += 1;
                        continue;
                    }
                    if b.get(i + 1) != Some(&b'u') {
                        i += 2;
                        continue;
                    }
                    let unit = hex4(b, i + 2)?;
                    let paired = (0xD800..0xDC00).contains(&unit)
                        && b.get(i + 6) == Some(&b'\\')
                        && b.get(i + 7) == Some(&b'u')
                        && hex4(b, i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
                    if paired {
                        i += 12;
                    } else if (0xD800..0xE000).contains(&unit) {
                        out.push_str(&json[copied..i]);
                        out.push_str("\\ufffd");
                        i += 6;
                        copied = i;
                        changed = true;
                    } else {
                        i += 6;
                    }
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let number = &json[start..i];
                if number.parse::<f64>().is_ok_and(f64::is_infinite) {
                    out.push_str(&json[copied..start]);
                    out.push('"');
                    out.push_str(number);
                    out.push('"');
                    copied = i;
                    changed = true;
                }
            }
            _ => i += 1,
        }
    }
    changed.then(|| {
        out.push_str(&json[copied..]);
        out
    })
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::repair;
    use crate::model::event::Event;

    #[test]
    fn what_a_full_parse_refuses_is_repaired_and_then_parses() {
        for (raw, want) in [
            (r#"{"a":"x\ud800y"}"#, r#"{"a":"x\ufffdy"}"#),
            (r#"{"a":"\udc00"}"#, r#"{"a":"\ufffd"}"#),
            (r#"{"a":"\ud800\u0041"}"#, r#"{"a":"\ufffd\u0041"}"#),
            (r#"{"n":1e400,"m":[-2E+999]}"#, r#"{"n":"1e400","m":["-2E+999"]}"#),
        ] {
            assert_eq!(repair(raw).as_deref(), Some(want), "{raw}");
            serde_json::from_str::<serde_json::Value>(want).expect("the repair parses");
        }
    }

    #[test]
    fn what_a_full_parse_accepts_is_left_alone() {
        for raw in [
            r#"{"a":"\ud83d\ude00 ok","b":"\\ud800 is text","c":1e300,"d":-0.5e-400,"e":"1e400"}"#,
            r#"{"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
            "{}",
        ] {
            assert_eq!(repair(raw), None, "{raw}");
        }
    }

    #[test]
    fn a_repaired_record_is_an_event() {
        let record = r#"{"id":"e","type":"github.push","timestamp":"2026-11-26T00:00:00Z","source":"github","data":{"payload":{"name":"\ud800","size":1e400}}}"#;
        assert!(Event::from_json(record).is_err(), "a full parse refuses the original");
        let fixed = repair(record).expect("repaired");
        let event = Event::from_json(&fixed).expect("an event");
        assert_eq!(event.data["payload"]["name"], "\u{fffd}");
        assert_eq!(event.data["payload"]["size"], "1e400");
    }
}
