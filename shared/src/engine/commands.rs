//! Slash commands, answered inline: `/aetherium-status`, `/aetherium-vm-list`, `/aetherium-task`.

use crate::backends::store::Store;
use crate::engine::health::HealthCheck;
use crate::engine::ingest::{Answer, Enqueue, Id};
use crate::engine::vms;
use crate::integrations::source::Command;
use crate::model::event::{Event, topics};
use crate::model::markup;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Slack waits 3 s for an answer; the checks must be done well before.
pub const STATUS_DEADLINE: Duration = Duration::from_millis(1500);

fn ephemeral(text: impl Into<String>) -> Value {
    json!({ "response_type": "ephemeral", "text": text.into() })
}

pub const HELP: &str = "Aetherium commands:\n\
• `/aetherium-status`: the health of every component\n\
• `/aetherium-vm-list`: the active VMs\n\
• `/aetherium-task create vm name=<name> vcpus=<n> [memory=<MB>]`: create a VM";

const TASK_USAGE: &str = "Usage: `/aetherium-task create vm name=<name> vcpus=<n> [memory=<MB>]` \
(name: lower-case letters, digits and -, up to 63; vcpus 1-64; memory 128-262144 MB, default 2048)";

/// What the commands read and write: the health checks, the VM registry's store, the queue.
#[derive(Debug, Clone)]
pub struct Commands {
    health: HealthCheck,
    store: Arc<dyn Store>,
    enqueue: Enqueue,
}

impl Commands {
    pub fn new(health: HealthCheck, store: Arc<dyn Store>, enqueue: Enqueue) -> Self {
        Self { health, store, enqueue }
    }
}

#[async_trait]
impl Answer for Commands {
    async fn answer(&self, cmd: &Command) -> Value {
        match cmd.command.trim_start_matches('/') {
            "aetherium-status" => ephemeral(status(&self.health).await),
            "aetherium-vm-list" => ephemeral(vm_list(self.store.as_ref()).await),
            "aetherium-task" => task(&self.enqueue, cmd).await,
            _ => ephemeral(format!("Unknown command `{}`.\n{HELP}", cmd.command)),
        }
    }
}

fn label(component: &str) -> String {
    match component {
        "github" => "GitHub".into(),
        "slack" => "Slack".into(),
        "event_bus" => "Event Bus".into(),
        "queue" => "Queue".into(),
        "bus_bridge" => "Bus Bridge".into(),
        other => other.to_owned(),
    }
}

pub async fn status(health: &HealthCheck) -> String {
    let report = health.check(STATUS_DEADLINE).await;
    let mut lines = vec!["Aetherium is running! 🚀".to_owned()];
    let order = ["github", "slack", "event_bus", "queue"];
    let mut names: Vec<&String> = report.components.keys().collect();
    names.sort_by_key(|n| (order.iter().position(|o| o == n).unwrap_or(order.len()), n.as_str().to_owned()));
    for name in names {
        let state = &report.components[name];
        let shown = match state.as_str() {
            "healthy" => "✅ healthy".to_owned(),
            "disabled" => "disabled".to_owned(),
            other => format!("❌ {other}"),
        };
        lines.push(format!("- {}: {}", markup::slack(&label(name)), markup::slack(&shown)));
    }
    lines.join("\n")
}

pub async fn vm_list(store: &dyn Store) -> String {
    let vms = match vms::active(store).await {
        Ok(v) => v,
        Err(error) => {
            tracing::warn!(%error, "VM registry unavailable");
            return "The VM registry is unavailable right now; try again shortly.".into();
        }
    };
    let mut lines = vec!["Active VMs:".to_owned()];
    // Names, ids and states come from platform events: escaped, so no VM can ping a channel.
    let text = |s: &str| markup::slack(s).into_owned();
    lines.extend(vms.iter().map(|vm| format!("• {} ({}) - {}", text(&vm.name), text(&vm.id), text(&vm.state))));
    lines.push(format!("Total: {} VMs", vms.len()));
    lines.join("\n")
}

#[derive(Debug, PartialEq, Eq)]
pub struct VmRequest {
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: u32,
}

/// Parse `create vm name=<name> vcpus=<n> [memory=<MB>]`; the error names the problem.
pub fn parse_task(text: &str) -> Result<VmRequest, String> {
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("create"), Some("vm")) => {}
        (Some("create"), Some(other)) => return Err(format!("`{other}` is not something I can create; only `vm`")),
        (Some("create"), None) => return Err("create what? Only `vm`".into()),
        (Some(other), _) => return Err(format!("`{other}` is not a subcommand; use `create`")),
        (None, _) => return Err("nothing to do".into()),
    }
    let (mut name, mut vcpus, mut memory) = (None, None, None);
    for word in words {
        let (k, v) = word.split_once('=').ok_or_else(|| format!("`{word}` is not key=value"))?;
        match k {
            "name" => name = Some(v.to_owned()),
            "vcpus" => vcpus = Some(v.parse::<u32>().map_err(|_| format!("vcpus `{v}` is not a whole number"))?),
            "memory" => {
                memory = Some(v.parse::<u32>().map_err(|_| format!("memory `{v}` is not a whole number of MB"))?)
            }
            other => return Err(format!("`{other}` is not a parameter; use name, vcpus, memory")),
        }
    }
    let name = name.ok_or("name= is required")?;
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !name_ok {
        return Err(format!("name `{name}` must be lower-case letters, digits and -, up to 63"));
    }
    let vcpus = vcpus.ok_or("vcpus= is required")?;
    if !(1..=64).contains(&vcpus) {
        return Err(format!("vcpus must be 1 to 64, not {vcpus}"));
    }
    let memory_mb = memory.unwrap_or(2048);
    if !(128..=262_144).contains(&memory_mb) {
        return Err(format!("memory must be 128 to 262144 MB, not {memory_mb}"));
    }
    Ok(VmRequest { name, vcpus, memory_mb })
}

async fn task(enqueue: &Enqueue, cmd: &Command) -> Value {
    let req = match parse_task(&cmd.text) {
        Ok(r) => r,
        Err(problem) => return ephemeral(format!("Could not create the task: {problem}.\n{TASK_USAGE}")),
    };
    let task_id = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "task_id": task_id,
        "kind": "create_vm",
        "parameters": { "name": req.name, "vcpus": req.vcpus, "memory_mb": req.memory_mb },
        "requested_by": { "user_id": cmd.user_id, "user_name": cmd.user_name },
        "channel_id": cmd.channel_id,
    });
    let event =
        Event::identified(&task_id, topics::TASK_CREATED, "slack", data.as_object().cloned().unwrap_or_default());
    match enqueue.send("slack", &event.record(), Id::Minted).await {
        Ok(_) => ephemeral(format!("Creating task: {}\nTask ID: {task_id}", markup::slack(cmd.text.trim()))),
        Err(error) => {
            tracing::warn!(%error, "could not queue a task from Slack");
            ephemeral("Could not queue the task right now; nothing was created. Please try again.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_text_is_validated_with_named_problems() {
        assert_eq!(
            parse_task("create vm name=quick-test vcpus=2"),
            Ok(VmRequest { name: "quick-test".into(), vcpus: 2, memory_mb: 2048 })
        );
        assert_eq!(parse_task("create vm vcpus=4 name=big memory=8192").map(|r| r.memory_mb), Ok(8192));
        for (text, want) in [
            ("", "nothing to do"),
            ("delete vm name=x vcpus=1", "`delete` is not a subcommand"),
            ("create disk name=x", "only `vm`"),
            ("create vm vcpus=2", "name= is required"),
            ("create vm name=x", "vcpus= is required"),
            ("create vm name=x vcpus=0", "vcpus must be 1 to 64"),
            ("create vm name=x vcpus=two", "not a whole number"),
            ("create vm name=Bad_Name vcpus=1", "lower-case"),
            ("create vm name=x vcpus=1 memory=64", "memory must be"),
            ("create vm name=x vcpus=1 gpu=1", "`gpu` is not a parameter"),
            ("create vm name=x vcpus", "not key=value"),
        ] {
            let err = parse_task(text).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
