//! The SAM template: valid for `sam validate --lint`, and one function per function crate.

use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

#[test]
fn sam_validate_lint_is_clean() {
    let sam = std::env::var("SAM_CLI")
        .unwrap_or_else(|_| panic!("SAM_CLI is not set: run the suite with scripts/test, which installs aws-sam-cli"));
    let out = Command::new(&sam)
        .args(["validate", "--lint", "--template-file"])
        .arg(root().join("template.yaml"))
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {sam}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "sam validate --lint failed:\n{text}");
    assert!(text.contains("is a valid SAM Template"), "{text}");
}

#[test]
fn template_functions_and_function_crates_match_one_to_one() {
    let t = template();
    let resources = t["Resources"].as_mapping().expect("Resources");
    let mut binaries = BTreeSet::new();
    for (name, res) in resources {
        if res["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        assert_eq!(res["Metadata"]["BuildMethod"].as_str(), Some("rust-cargolambda"), "{name:?}");
        let bin =
            res["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| panic!("{name:?} names no Binary"));
        assert!(binaries.insert(bin.to_owned()), "{bin} appears twice");
    }
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!crates.is_empty());
    assert_eq!(binaries, crates, "template.yaml functions vs functions/*");

    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
}

#[test]
fn the_sample_config_in_the_repo_loads() {
    let path = root().join("config/aetherium.yaml");
    let path = path.to_str().expect("utf8").to_owned();
    let env = move |k: &str| match k {
        "AETHERIUM_CONFIG" => Some(path.clone()),
        "GITHUB_TOKEN" => Some("ghp_sample".into()),
        _ => None,
    };
    let config = aetherium::config::Config::load(&env).expect("the sample config is valid");
    assert!(config.github.enabled && config.slack.enabled);
    assert_eq!(config.github.token.as_ref().map(aetherium::Secret::expose), Some("ghp_sample"));
    assert_eq!(config.bus, aetherium::config::BusProvider::Memory);
}
