//! The VM registry the dispatcher keeps from `vm.*` events, for `/aetherium-vm-list`.

use crate::event::{Event, topics};
use crate::integration::IntegrationError;
use crate::routes::Action;
use crate::slack::commands::VM_REGISTRY_KEY;
use crate::store::Store;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug)]
pub struct VmRegistry {
    store: Arc<dyn Store>,
}

impl VmRegistry {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

fn store_error(e: crate::error::BackendError) -> IntegrationError {
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
