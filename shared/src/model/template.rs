//! Message templates: `{{field}}` replaced by the event's data (`{{a.b}}` reaches into
//! objects). Parsed once at start; rendering names a missing field. Rendered for a
//! destination ([`Markup`]), every value is escaped for it: only the literal text may
//! carry markup.

use crate::model::markup::{self, Markup};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` at byte {} is never closed", src.len() - rest.len() + open))?;
            let name = after[..close].trim();
            let ok = !name.is_empty()
                && name.split('.').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if !ok {
                return Err(format!(
                    "`{{{{{}}}}}` is not a field name (letters, digits, _ and . between)",
                    &after[..close]
                ));
            }
            parts.push(Part::Field(name.to_owned()));
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err("`}}` without a matching `{{`".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Text taken as it is, without looking for fields.
    pub fn literal(text: &str) -> Self {
        Self { parts: vec![Part::Text(text.to_owned())] }
    }

    /// The fields the template reads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Values inserted as they are: for identifiers and data, never for text a destination
    /// parses as markup.
    pub fn render(&self, data: &Map<String, Value>) -> Result<String, String> {
        self.render_for(data, Markup::Plain)
    }

    /// Values escaped for `markup`; the literal text is kept as written, and decides whether
    /// a value sits inside a code span.
    pub fn render_for(&self, data: &Map<String, Value>, markup: Markup) -> Result<String, String> {
        let mut out = String::new();
        let mut in_code = false;
        for part in &self.parts {
            match part {
                Part::Text(t) => {
                    out.push_str(t);
                    in_code = markup::opens_code(t, in_code);
                }
                Part::Field(f) => match lookup(data, f) {
                    Some(Value::String(s)) => out.push_str(&markup.escape(s, in_code)),
                    Some(other) => out.push_str(&markup.escape(&other.to_string(), in_code)),
                    None => return Err(format!("the event has no `{f}`")),
                },
            }
        }
        Ok(out)
    }
}

/// Check every string inside a JSON value parses as a template.
pub fn check_value(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) => Template::parse(s).map(drop),
        Value::Array(items) => items.iter().try_for_each(check_value),
        Value::Object(map) => map.values().try_for_each(check_value),
        _ => Ok(()),
    }
}

/// Render every string inside a JSON value. A string that is exactly one `{{field}}` keeps
/// the field's JSON type (a number stays a number).
pub fn render_value(value: &Value, data: &Map<String, Value>) -> Result<Value, String> {
    render_value_for(value, data, Markup::Plain)
}

/// [`render_value`] with every inserted string escaped for `markup`; a lone `{{field}}`
/// that is a string is escaped too, other JSON types are data and kept.
pub fn render_value_for(value: &Value, data: &Map<String, Value>, markup: Markup) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let t = Template::parse(s)?;
            match t.parts.as_slice() {
                [Part::Field(f)] => match lookup(data, f).ok_or_else(|| format!("the event has no `{f}`"))? {
                    Value::String(s) => Value::String(markup.escape(s, false).into_owned()),
                    other => other.clone(),
                },
                _ => Value::String(t.render_for(data, markup)?),
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| render_value_for(v, data, markup)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value_for(v, data, markup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup<'a>(data: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    let mut segments = field.split('.');
    let mut v = data.get(segments.next()?);
    for s in segments {
        v = v.and_then(|v| v.get(s));
    }
    v.filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_and_names_missing_ones() {
        let t = Template::parse("🚀 New VM: `{{vm_name}}` (ID: `{{vm_id}}`) cpus={{spec.vcpus}}").expect("parse");
        let data = json!({"vm_name": "my-vm", "vm_id": "v1", "spec": {"vcpus": 2}});
        assert_eq!(t.render(data.as_object().expect("obj")).as_deref(), Ok("🚀 New VM: `my-vm` (ID: `v1`) cpus=2"));
        let err = t.render(json!({"vm_name": "x"}).as_object().expect("obj")).expect_err("missing");
        assert!(err.contains("vm_id"), "{err}");
        assert_eq!(t.fields().collect::<Vec<_>>(), vec!["vm_name", "vm_id", "spec.vcpus"]);
    }

    #[test]
    fn json_values_render_and_a_lone_field_keeps_its_type() {
        let spec =
            json!({"kind": "create_vm", "parameters": {"name": "pr-{{number}}", "vcpus": 2, "pr": "{{number}}"}});
        let data = json!({"number": 42});
        let out = render_value(&spec, data.as_object().expect("obj")).expect("render");
        assert_eq!(out, json!({"kind": "create_vm", "parameters": {"name": "pr-42", "vcpus": 2, "pr": 42}}));
        assert!(check_value(&json!({"a": ["{{ok}}", "{{bad"]})).is_err());
    }

    #[test]
    fn values_are_escaped_for_the_destination_and_literal_text_is_not() {
        let t = Template::parse("<!here> New VM: `{{vm_name}}` by {{user}}").expect("parse");
        let data = json!({"vm_name": "x` <!channel> <https://evil.example|click>", "user": "@octocat"});
        let data = data.as_object().expect("obj");
        assert_eq!(
            t.render_for(data, Markup::Slack).as_deref(),
            Ok("<!here> New VM: `x` &lt;!channel&gt; &lt;https://evil.example|click&gt;` by @octocat")
        );
        assert_eq!(
            t.render_for(data, Markup::GithubMarkdown).as_deref(),
            Ok("<!here> New VM: `x\u{02CB} <!channel> <https://evil.example|click>` by @\u{200B}octocat")
        );
        assert_eq!(
            t.render(data).as_deref(),
            Ok("<!here> New VM: `x` <!channel> <https://evil.example|click>` by @octocat")
        );
    }

    #[test]
    fn bad_templates_are_named() {
        assert!(Template::parse("hi {{name").expect_err("open").contains("never closed"));
        assert!(Template::parse("hi {{}}").is_err());
        assert!(Template::parse("hi {{a b}}").is_err());
        assert!(Template::parse("hi }} there").is_err());
        assert!(Template::parse("plain text").is_ok());
    }
}
