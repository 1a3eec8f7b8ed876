//! The in-process store, with Redis's semantics for expiry and types.

use super::Store;
use crate::backends::error::BackendError;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
enum Value {
    Str(String),
    List(VecDeque<String>),
    Hash(BTreeMap<String, String>),
}

#[derive(Debug, Clone)]
struct Entry {
    value: Value,
    expires: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    ops: u64,
}

/// Expired entries are swept every this many operations (the key being read is always
/// checked), so one access costs O(1) however many keys are held.
const SWEEP_EVERY: u64 = 4096;

fn wrong_type() -> BackendError {
    BackendError::rejected("memory store", "WRONGTYPE: the key holds another kind of value")
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `f` on the entries with `key` expired if its time has come.
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        entries.ops += 1;
        if entries.ops.is_multiple_of(SWEEP_EVERY) {
            entries.map.retain(|_, e| e.expires.is_none_or(|t| t > now));
        } else if entries.map.get(key).is_some_and(|e| e.expires.is_some_and(|t| t <= now)) {
            entries.map.remove(key);
        }
        f(&mut entries.map)
    }

    fn hash_mut<'a>(
        map: &'a mut HashMap<String, Entry>,
        key: &str,
    ) -> Result<&'a mut BTreeMap<String, String>, BackendError> {
        let entry =
            map.entry(key.to_owned()).or_insert_with(|| Entry { value: Value::Hash(BTreeMap::new()), expires: None });
        match &mut entry.value {
            Value::Hash(h) => Ok(h),
            _ => Err(wrong_type()),
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<String>, BackendError> {
        self.with(key, |m| match m.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type()),
        })
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<(), BackendError> {
        let expires = ttl.map(|t| Instant::now() + t);
        self.with(key, |m| m.insert(key.to_owned(), Entry { value: Value::Str(value.to_owned()), expires }));
        Ok(())
    }

    async fn set_if_absent_or_get(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<String>, BackendError> {
        let expires = Some(Instant::now() + ttl);
        self.with(key, |m| match m.get(key).map(|e| &e.value) {
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type()),
            None => {
                m.insert(key.to_owned(), Entry { value: Value::Str(value.to_owned()), expires });
                Ok(None)
            }
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.with(key, |m| m.remove(key).is_some()))
    }

    async fn incr_window(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, BackendError> {
        let expires = Some(Instant::now() + ttl);
        self.with(key, |m| {
            let entry = m.entry(key.to_owned()).or_insert_with(|| Entry { value: Value::Str("0".into()), expires });
            let Value::Str(s) = &mut entry.value else { return Err(wrong_type()) };
            let n: i64 = s.parse().map_err(|_| BackendError::rejected("memory store", "value is not an integer"))?;
            let n =
                n.checked_add(by).ok_or_else(|| BackendError::rejected("memory store", "increment would overflow"))?;
            *s = n.to_string();
            Ok(n)
        })
    }

    async fn log_append(&self, key: &str, entry: &str, cap: usize) -> Result<(), BackendError> {
        self.with(key, |m| {
            let e =
                m.entry(key.to_owned()).or_insert_with(|| Entry { value: Value::List(VecDeque::new()), expires: None });
            let Value::List(list) = &mut e.value else { return Err(wrong_type()) };
            list.push_front(entry.to_owned());
            list.truncate(cap.max(1));
            Ok(())
        })
    }

    async fn log_recent(&self, key: &str, limit: usize) -> Result<Vec<String>, BackendError> {
        self.with(key, |m| match m.get(key).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::List(list)) => Ok(list.iter().take(limit).cloned().collect()),
            Some(_) => Err(wrong_type()),
        })
    }

    async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<(), BackendError> {
        self.with(key, |m| Self::hash_mut(m, key).map(|h| drop(h.insert(field.to_owned(), value.to_owned()))))
    }

    async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, BackendError> {
        self.with(key, |m| match m.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Hash(h)) => Ok(h.get(field).cloned()),
            Some(_) => Err(wrong_type()),
        })
    }

    async fn hash_delete(&self, key: &str, field: &str) -> Result<bool, BackendError> {
        self.with(key, |m| {
            let Some(entry) = m.get_mut(key) else { return Ok(false) };
            let Value::Hash(h) = &mut entry.value else { return Err(wrong_type()) };
            let existed = h.remove(field).is_some();
            // Redis deletes a hash whose last field goes.
            if h.is_empty() {
                m.remove(key);
            }
            Ok(existed)
        })
    }

    async fn hash_all(&self, key: &str) -> Result<Vec<(String, String)>, BackendError> {
        self.with(key, |m| match m.get(key).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::Hash(h)) => Ok(h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Some(_) => Err(wrong_type()),
        })
    }

    async fn hash_incr(&self, key: &str, field: &str, by: i64) -> Result<i64, BackendError> {
        self.with(key, |m| {
            let h = Self::hash_mut(m, key)?;
            let current: i64 = h
                .get(field)
                .map(|v| v.parse().map_err(|_| BackendError::rejected("memory store", "hash value is not an integer")))
                .transpose()?
                .unwrap_or(0);
            let n = current
                .checked_add(by)
                .ok_or_else(|| BackendError::rejected("memory store", "increment would overflow"))?;
            h.insert(field.to_owned(), n.to_string());
            Ok(n)
        })
    }

    async fn hash_incr_window(&self, key: &str, field: &str, by: i64, ttl: Duration) -> Result<i64, BackendError> {
        let n = self.hash_incr(key, field, by).await?;
        let expires = Instant::now().checked_add(ttl);
        self.with(key, |m| {
            if let Some(entry) = m.get_mut(key)
                && entry.expires.is_none()
            {
                entry.expires = expires;
            }
        });
        Ok(n)
    }

    async fn health(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}
