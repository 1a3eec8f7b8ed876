//! `${VAR}` and `${VAR:-default}` in config values, resolved from an injectable environment.

/// Replace every `${NAME}` (empty when unset) and `${NAME:-default}` (the default when unset
/// or empty) in `input`. `$${` stands for a literal `${`. Errors name what is malformed.
pub fn interpolate(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("`${{` at byte {pos} has no closing `}}`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if !is_var_name(name) {
                return Err(format!("`${{{expr}}}` is not a variable reference: use ${{NAME}} or ${{NAME:-default}}"));
            }
            let value = env(name).filter(|v| !(default.is_some() && v.is_empty()));
            out.push_str(&value.or_else(|| default.map(str::to_owned)).unwrap_or_default());
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("ghp_abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let cases = [
            ("${TOKEN}", "ghp_abc"),
            ("Bearer ${TOKEN}!", "Bearer ghp_abc!"),
            ("${MISSING}", ""),
            ("${MISSING:-fallback}", "fallback"),
            ("${EMPTY:-fallback}", "fallback"),
            ("${TOKEN:-fallback}", "ghp_abc"),
            ("${MISSING:-}", ""),
            ("redis://${HOST:-localhost}:6379/1", "redis://localhost:6379/1"),
            ("price $5 and $${LITERAL}", "price $5 and ${LITERAL}"),
            ("no vars", "no vars"),
            ("trailing $", "trailing $"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn malformed_references_are_named() {
        let err = interpolate("x ${TOKEN", &env).expect_err("unterminated");
        assert!(err.contains("no closing"), "{err}");
        let err = interpolate("${1BAD}", &env).expect_err("bad name");
        assert!(err.contains("${1BAD}"), "{err}");
    }
}
