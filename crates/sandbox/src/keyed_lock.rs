//! One async lock per key (a sandbox id), so that the lifecycle operations of one sandbox never
//! interleave while those of different sandboxes run in parallel. Used by the local provider and
//! by the server's service layer.
//!
//! A key's entry exists only while someone holds a [`KeyedLock`] for it (holding or waiting for
//! the lock): the last handle to go removes it. A map that only ever grew kept one entry per
//! sandbox ever created; and removing an entry while others still held it (what `remove` did)
//! let the next caller make a second lock for the same sandbox. Handles are made and dropped
//! under the map's mutex, so "last" is exact.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

type Entries = HashMap<String, Arc<tokio::sync::Mutex<()>>>;

/// The locks of every key in use. A clone shares the same locks.
#[derive(Debug, Clone, Default)]
pub struct KeyedLocks {
    entries: Arc<Mutex<Entries>>,
}

impl KeyedLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle on the lock of `key`, made on first use. Lock it with [`KeyedLock::lock`].
    pub fn handle(&self, key: &str) -> KeyedLock {
        let lock = self.entries().entry(key.to_owned()).or_default().clone();
        KeyedLock {
            key: key.to_owned(),
            lock: Some(lock),
            entries: self.entries.clone(),
        }
    }

    /// How many keys have an entry now (each has at least one live handle).
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The lock of one key. The guards it hands out borrow it, so it outlives them; dropping the
/// last handle of a key removes the key's entry.
pub struct KeyedLock {
    key: String,
    /// `Some` until dropped (taken in `drop`, under the map's mutex).
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    entries: Arc<Mutex<Entries>>,
}

impl KeyedLock {
    /// Wait for the lock.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.mutex().lock().await
    }

    /// The lock if nobody holds it now.
    pub fn try_lock(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, tokio::sync::TryLockError> {
        self.mutex().try_lock()
    }

    fn mutex(&self) -> &tokio::sync::Mutex<()> {
        self.lock.as_ref().expect("taken only in drop")
    }
}

impl Drop for KeyedLock {
    fn drop(&mut self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Released under the map's mutex, like every clone is made under it: if only the map's
        // reference is left, no handle of this key exists and none can appear meanwhile.
        drop(self.lock.take());
        if entries
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            entries.remove(&self.key);
        }
    }
}

impl fmt::Debug for KeyedLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLock").field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_entry_lives_exactly_as_long_as_its_handles() {
        let locks = KeyedLocks::new();
        let first = locks.handle("a");
        let second = locks.handle("a");
        let other = locks.handle("b");
        assert_eq!(locks.len(), 2);
        let guard = first.lock().await;
        assert!(second.try_lock().is_err(), "one lock per key");
        assert!(other.try_lock().is_ok(), "keys do not share locks");
        drop(other);
        assert_eq!(locks.len(), 1);
        drop(guard);
        drop(first);
        assert_eq!(locks.len(), 1, "`second` still holds the key");
        drop(second);
        assert!(locks.is_empty());
    }

    /// The per-id maps only grew: one entry per sandbox ever started, stopped or deleted.
    #[tokio::test]
    async fn the_map_does_not_grow_over_many_keys() {
        let locks = KeyedLocks::new();
        for i in 0..1000 {
            let lock = locks.handle(&format!("sbx_{i}"));
            let _guard = lock.lock().await;
        }
        assert!(locks.is_empty());
    }

    /// Removing a key's entry while another caller waited on it (what the provider's `remove`
    /// did) gave the next caller a second, fresh lock for the same key: two operations on one
    /// sandbox at once.
    #[tokio::test]
    async fn a_waiting_handle_keeps_the_key_locked_for_newcomers() {
        let locks = KeyedLocks::new();
        let holder = locks.handle("a");
        let guard = holder.lock().await;
        let waiter = locks.handle("a");
        // The holder is done (say, a remove): its handle goes, the waiter's stays.
        drop(guard);
        drop(holder);
        let _waited = waiter.lock().await;
        let newcomer = locks.handle("a");
        assert!(
            newcomer.try_lock().is_err(),
            "the newcomer waits for the waiter"
        );
    }
}
