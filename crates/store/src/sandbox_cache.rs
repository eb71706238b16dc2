//! Sandbox rows kept in memory for the reads that only show them (`GET /sandboxes/{id}`,
//! `GET /sandboxes`, issue 19): filled on read, emptied of a sandbox by every write to it.
//!
//! Which writes: every sandbox write this store makes evicts the sandbox itself, after the
//! statement (see `sql/mod.rs`), before the write returns — so a read that follows a write
//! sees it. On PostgreSQL, where other servers write too, a trigger on the table sends
//! `pg_notify('amika_sandboxes', id)` in the writing transaction and each store's listener
//! ([`crate::postgres`]) evicts what it names; while that listener is not connected the cache
//! serves nothing ([`SandboxCache::suspend`]).
//!
//! Why a fill cannot put back what a write evicted: every eviction moves a generation on, a
//! read takes the generation before it asks the database ([`SandboxCache::ticket`]), and its
//! row goes in only if no eviction happened in between ([`SandboxCache::fill`]). A write that
//! commits while a read is under way either comes before the read's query (the read saw it) or
//! its eviction comes after the ticket (the fill is dropped).
//!
//! Only for showing: a decision (the state check before exec, stop, delete) reads the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::SandboxRow;

/// Rows kept at most (each row once by id, plus the rows of the cached lists): the cache
/// starts over when full.
const MAX_ROWS: usize = 10_000;

/// What a read took before asking the database: the generation it may fill at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

#[derive(Debug, Default)]
struct Inner {
    /// False while evictions may be missed (PostgreSQL: the listener is not connected).
    serving: bool,
    generation: u64,
    by_id: HashMap<String, Arc<SandboxRow>>,
    /// (user, name) → id: only names of rows in `by_id`.
    by_name: HashMap<(String, String), String>,
    /// A user's whole list, as `list_sandboxes` returns it.
    lists: HashMap<String, Arc<Vec<SandboxRow>>>,
    /// Rows held by `lists`.
    listed: usize,
}

impl Inner {
    fn clear(&mut self) {
        self.by_id.clear();
        self.by_name.clear();
        self.lists.clear();
        self.listed = 0;
    }

    fn make_room(&mut self, rows: usize) {
        if self.by_id.len() + self.listed + rows > MAX_ROWS {
            self.clear();
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct SandboxCache(Mutex<Inner>);

impl SandboxCache {
    /// A cache that serves from the start (SQLite: every write goes through this store).
    pub(crate) fn serving() -> Self {
        let cache = Self::default();
        cache.lock().serving = true;
        cache
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ticket a read takes before its query; `None` while the cache does not serve.
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let inner = self.lock();
        inner.serving.then_some(Ticket(inner.generation))
    }

    pub(crate) fn get(&self, id: &str) -> Option<SandboxRow> {
        let inner = self.lock();
        let row = inner.by_id.get(id).filter(|_| inner.serving)?;
        Some(SandboxRow::clone(row))
    }

    pub(crate) fn get_by_name(&self, user_id: &str, name: &str) -> Option<SandboxRow> {
        let inner = self.lock();
        if !inner.serving {
            return None;
        }
        let id = inner
            .by_name
            .get(&(user_id.to_string(), name.to_string()))?;
        Some(SandboxRow::clone(inner.by_id.get(id)?))
    }

    pub(crate) fn list(&self, user_id: &str) -> Option<Arc<Vec<SandboxRow>>> {
        let inner = self.lock();
        let rows = inner.lists.get(user_id).filter(|_| inner.serving)?;
        Some(rows.clone())
    }

    /// Keep `row`, read after `ticket` was taken, unless something was evicted since.
    pub(crate) fn fill(&self, ticket: Ticket, row: &SandboxRow) {
        let mut inner = self.lock();
        if !inner.serving || inner.generation != ticket.0 {
            return;
        }
        inner.make_room(1);
        let name = (row.user_id.clone(), row.name.clone());
        inner.by_name.insert(name, row.id.clone());
        inner.by_id.insert(row.id.clone(), Arc::new(row.clone()));
    }

    /// [`SandboxCache::fill`] for a user's list.
    pub(crate) fn fill_list(&self, ticket: Ticket, user_id: &str, rows: Arc<Vec<SandboxRow>>) {
        let mut inner = self.lock();
        if !inner.serving || inner.generation != ticket.0 {
            return;
        }
        inner.make_room(rows.len());
        inner.listed += rows.len();
        let old = inner.lists.insert(user_id.to_string(), rows);
        inner.listed -= old.map_or(0, |o| o.len());
    }

    /// Forget sandbox `id` (written: inserted, changed or deleted) and every list, since any
    /// list may hold it or be about to (an insert).
    pub(crate) fn evict(&self, id: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        if let Some(row) = inner.by_id.remove(id) {
            let name = (row.user_id.clone(), row.name.clone());
            if inner.by_name.get(&name).is_some_and(|n| n == id) {
                inner.by_name.remove(&name);
            }
        }
        inner.lists.clear();
        inner.listed = 0;
    }

    /// Stop serving and forget everything: evictions may be missed from now on.
    pub(crate) fn suspend(&self) {
        let mut inner = self.lock();
        inner.serving = false;
        inner.generation += 1;
        inner.clear();
    }

    /// Serve again, from empty (evictions are seen again from now on).
    pub(crate) fn resume(&self) {
        let mut inner = self.lock();
        inner.serving = true;
        inner.generation += 1;
        inner.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amika_types::{NetworkMode, SandboxState};

    fn row(id: &str, name: &str) -> SandboxRow {
        let at = chrono::Utc::now();
        SandboxRow {
            id: id.into(),
            org_id: "org".into(),
            user_id: "usr".into(),
            name: name.into(),
            provider: "local".into(),
            state: SandboxState::Running,
            error_message: None,
            secret_env_vars: Default::default(),
            agent_credentials: vec![],
            resolved_agent_credentials: vec![],
            secret_names: vec![],
            injection: Default::default(),
            options: crate::SandboxOptions::new(NetworkMode::None, None, None),
            workspace: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_fill_after_an_eviction_it_raced_is_dropped() {
        let cache = SandboxCache::serving();
        let before = cache.ticket().unwrap();
        cache.evict("sbx_a"); // a write committed while the read was under way
        cache.fill(before, &row("sbx_a", "a"));
        assert!(cache.get("sbx_a").is_none());
        cache.fill_list(before, "usr", Arc::new(vec![row("sbx_a", "a")]));
        assert!(cache.list("usr").is_none());

        let now = cache.ticket().unwrap();
        cache.fill(now, &row("sbx_a", "a"));
        assert_eq!(cache.get_by_name("usr", "a").unwrap().id, "sbx_a");
        cache.evict("sbx_a");
        assert!(cache.get("sbx_a").is_none() && cache.get_by_name("usr", "a").is_none());
    }

    #[test]
    fn a_suspended_cache_serves_nothing_and_takes_nothing() {
        let cache = SandboxCache::serving();
        let t = cache.ticket().unwrap();
        cache.fill(t, &row("sbx_a", "a"));
        cache.fill_list(t, "usr", Arc::new(vec![row("sbx_a", "a")]));
        cache.suspend();
        assert!(cache.ticket().is_none());
        assert!(cache.get("sbx_a").is_none() && cache.list("usr").is_none());
        cache.fill(t, &row("sbx_a", "a"));
        cache.resume();
        assert!(cache.get("sbx_a").is_none(), "resumed empty");
        // A read that took its ticket before the suspension fills nothing after it.
        cache.fill(t, &row("sbx_a", "a"));
        assert!(cache.get("sbx_a").is_none());
    }

    #[test]
    fn it_stays_bounded() {
        let cache = SandboxCache::serving();
        for i in 0..MAX_ROWS + 10 {
            let t = cache.ticket().unwrap();
            cache.fill(t, &row(&format!("sbx_{i}"), &format!("n{i}")));
        }
        let inner = cache.lock();
        assert!(inner.by_id.len() <= MAX_ROWS && inner.by_name.len() <= MAX_ROWS);
    }
}
