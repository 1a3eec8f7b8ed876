//! Redis's glob-style pattern matching (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), so that the
//! in-memory bus matches exactly the channels PSUBSCRIBE would.

/// Whether `pattern` holds any glob metacharacter; plain topics use SUBSCRIBE.
pub fn is_glob(pattern: &str) -> bool {
    pattern.bytes().any(|b| matches!(b, b'*' | b'?' | b'['))
}

pub fn matches(pattern: &str, subject: &str) -> bool {
    match_bytes(pattern.as_bytes(), subject.as_bytes())
}

/// Whether an event on `topic` is for `pattern`, a topic or a glob: the one rule for bus
/// subscriptions, routes and the config's publish-loop check.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    if is_glob(pattern) { matches(pattern, topic) } else { pattern == topic }
}

fn match_bytes(mut p: &[u8], mut s: &[u8]) -> bool {
    // Backtracking point for the last `*`: where the pattern resumes and the subject position.
    let mut star: Option<(&[u8], &[u8])> = None;
    loop {
        if let Some((&pc, prest)) = p.split_first() {
            match pc {
                b'*' => {
                    star = Some((prest, s));
                    p = prest;
                    continue;
                }
                b'?' if !s.is_empty() => {
                    p = prest;
                    s = &s[1..];
                    continue;
                }
                b'[' if !s.is_empty() => {
                    if let Some((true, after)) = class(prest, s[0]) {
                        p = after;
                        s = &s[1..];
                        continue;
                    }
                }
                b'\\' if !prest.is_empty() && !s.is_empty() && prest[0] == s[0] => {
                    p = &prest[1..];
                    s = &s[1..];
                    continue;
                }
                c if c != b'\\' && c != b'[' && c != b'?' && !s.is_empty() && c == s[0] => {
                    p = prest;
                    s = &s[1..];
                    continue;
                }
                _ => {}
            }
        } else if s.is_empty() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more byte, or fail.
        match star {
            Some((after_star, at)) if !at.is_empty() => {
                star = Some((after_star, &at[1..]));
                p = after_star;
                s = &at[1..];
            }
            _ => return false,
        }
    }
}

/// Match one byte against a `[...]` class whose body starts at `p`; returns whether it
/// matched and the pattern after the closing `]`. An unterminated class never matches.
fn class(p: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negate, mut i) = if p.first() == Some(&b'^') { (true, 1) } else { (false, 0) };
    let mut hit = false;
    while i < p.len() && p[i] != b']' {
        let mut lo = p[i];
        if lo == b'\\' && i + 1 < p.len() {
            i += 1;
            lo = p[i];
        }
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            let hi = p[i + 2];
            let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            hit |= (a..=b).contains(&c);
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    if i >= p.len() {
        return None;
    }
    Some((hit != negate, &p[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_glob_semantics() {
        let yes = [
            ("vm.*", "vm.created"),
            ("*", "anything.at.all"),
            ("github.*.opened", "github.pull_request.opened"),
            ("github.*", "github.push"),
            ("task.?tarted", "task.started"),
            ("vm.[cs]*", "vm.stopped"),
            ("vm.[^x]*", "vm.created"),
            ("vm.[a-d]reated", "vm.created"),
            ("a\\*b", "a*b"),
            ("*.failed", "task.failed"),
            ("**", ""),
        ];
        for (p, s) in yes {
            assert!(matches(p, s), "{p} should match {s}");
        }
        let no = [
            ("vm.*", "task.created"),
            ("vm.*", "vm"),
            ("task.?tarted", "task.tarted"),
            ("vm.[^c]*", "vm.created"),
            ("a\\*b", "axb"),
            ("vm.[ab", "vm.a"),
            ("vm.created", "vm.created2"),
        ];
        for (p, s) in no {
            assert!(!matches(p, s), "{p} should not match {s}");
        }
    }

    #[test]
    fn glob_detection() {
        assert!(is_glob("vm.*"));
        assert!(is_glob("task.?"));
        assert!(!is_glob("github.pull_request.opened"));
    }
}
