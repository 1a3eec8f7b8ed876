//! The VM registry: the dispatcher keeps it from `vm.*` events (the write side, a route
//! action), and `/aetherium-vm-list` reads it ([`active`]).

use crate::backends::error::BackendError;
use crate::backends::store::Store;
use crate::engine::action::Action;
use crate::model::event::{Event, topics};
use crate::model::integration::IntegrationError;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// The store hash: VM id → `{"name": ..., "state": ...}`.
pub const VM_REGISTRY_KEY: &str = "vms";

/// One listed VM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActiveVm {
    pub name: String,
    pub id: String,
    pub state: String,
}

/// The VMs that are neither stopped nor failed, sorted by name then id.
pub async fn active(store: &dyn Store) -> Result<Vec<ActiveVm>, BackendError> {
    let mut vms: Vec<ActiveVm> = store
        .hash_all(VM_REGISTRY_KEY)
        .await?
        .into_iter()
        .map(|(id, raw)| {
            let v: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
            let name = v["name"].as_str().unwrap_or("(unnamed)").to_owned();
            let state = v["state"].as_str().unwrap_or("unknown").to_owned();
            ActiveVm { name, id, state }
        })
        .collect();
    vms.sort();
    Ok(vms)
}

#[derive(Debug)]
pub struct VmRegistry {
    store: Arc<dyn Store>,
}

impl VmRegistry {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

fn store_error(e: BackendError) -> IntegrationError {
    IntegrationError::Transient { integration: "vm-registry".into(), reason: e.to_string(), retry_after: None }
}

#[async_trait]
impl Action for VmRegistry {
    fn name(&self) -> &str {
        "vm.registry"
    }

    fn kind(&self) -> &str {
        "vm registry"
    }

    /// created → listed as `created`; started → `running`; stopped or failed → no longer active.
    async fn run(&self, event: &Event) -> Result<(), IntegrationError> {
        let Some(id) = event.data_str("vm_id") else {
            return Err(IntegrationError::Permanent {
                integration: "vm-registry".into(),
                reason: "the event has no vm_id".into(),
            });
        };
        let state = match event.kind.as_str() {
            topics::VM_CREATED => "created",
            topics::VM_STARTED => "running",
            topics::VM_STOPPED | topics::VM_FAILED => {
                self.store.hash_delete(VM_REGISTRY_KEY, id).await.map_err(store_error)?;
                return Ok(());
            }
            _ => return Ok(()),
        };
        let known = self.store.hash_get(VM_REGISTRY_KEY, id).await.map_err(store_error)?;
        let known: Value = known.and_then(|k| serde_json::from_str(&k).ok()).unwrap_or(Value::Null);
        let name = event.data_str("vm_name").or(known["name"].as_str()).unwrap_or("(unnamed)");
        let entry = json!({ "name": name, "state": state });
        self.store.hash_set(VM_REGISTRY_KEY, id, &entry.to_string()).await.map_err(store_error)
    }
}
