//! `integrations.<name>` sections other than github and slack: the options a custom
//! integration's factory reads, and whether it is enabled.

use super::Problem;
use crate::model::integration::IntegrationConfig;
use serde_json::{Map, Value as Json};
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;

/// Every remaining section, as options; a section that is not a mapping is a problem.
pub(super) fn resolve(
    sections: BTreeMap<String, Yaml>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, IntegrationConfig> {
    let mut custom = BTreeMap::new();
    for (name, raw) in sections {
        let key = format!("integrations.{name}");
        let json: Json = match raw {
            Yaml::Null => Json::Object(Map::new()),
            other => match serde_json::to_value(&other) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(Problem { key, message: format!("cannot be read as options: {e}") });
                    continue;
                }
            },
        };
        let Json::Object(mut options) = json else {
            problems.push(Problem { key, message: "must be a mapping of options (enabled: true, ...)".into() });
            continue;
        };
        let enabled = match options.remove("enabled") {
            None => true,
            Some(Json::Bool(b)) => b,
            Some(Json::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => {
                problems.push(Problem { key: format!("{key}.enabled"), message: "must be true or false".into() });
                false
            }
        };
        custom.insert(name, IntegrationConfig { enabled, options });
    }
    custom
}
