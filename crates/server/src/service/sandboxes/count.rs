//! `max_sandboxes_per_user` without a lock around every create (issue 19).
//!
//! Parallel creates of one user must not all pass the count. The count and the insert used to
//! run under one lock per user, and so every create of a busy user (a CI account, 50 clients)
//! waited in line for each other's count and insert: at 50 concurrent creates that wait was
//! 1.16 s of a 1.37 s create. Now each create is *reserved* from its count check to the end of
//! its insert, and a check counts the user's rows plus the reservations under way:
//!
//! 1. reserve: under a short mutex, add this create and take a snapshot of the user's
//!    reservations (how many, and the sandbox ids of those that know theirs);
//! 2. read the user's rows, minus those whose id the snapshot holds (they are counted once, as
//!    reservations);
//! 3. pass if rows + reservations ≤ the ceiling.
//!
//! Of two concurrent creates, the one that reserved second sees the other: still reserved in
//! its snapshot, or, released before it, with its row inserted before the rows are read. So the
//! last of any set of creates to reserve sees all of them, and no set passes the ceiling
//! together. A create can be counted twice (it inserted between another's snapshot and that
//! one's read), which errs on the side of refusing; a refusal while others are under way is
//! checked once more under the per-user lock, after they are done. (Servers sharing one
//! PostgreSQL database do not see each other's reservations: there, parallel creates through
//! several servers may pass by those under way on the others.)

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use amika_types::ErrorCode;

use crate::service::{Caller, Result, Service, ServiceError};

/// A reservation's user and, once known, its sandbox id.
type Entry = (String, Option<String>);

/// Creates under way, by reservation number.
#[derive(Debug, Default, Clone)]
pub(crate) struct Creating(Arc<Mutex<(u64, HashMap<u64, Entry>)>>);

impl Creating {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, Entry>)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserve a create of `user_id`; with how many of the user's are under way (this one
    /// included) and the ids of those that know theirs.
    fn reserve(&self, user_id: &str) -> (Reservation, u64, HashSet<String>) {
        let mut state = self.lock();
        state.0 += 1;
        let key = state.0;
        state.1.insert(key, (user_id.to_string(), None));
        let mine = state.1.values().filter(|(u, _)| u == user_id);
        let count = mine.clone().count() as u64;
        let ids = mine.filter_map(|(_, id)| id.clone()).collect();
        let reservation = Reservation {
            creating: self.clone(),
            key,
        };
        (reservation, count, ids)
    }
}

/// One create counted against its user's ceiling until dropped (after its insert).
#[derive(Debug)]
pub(super) struct Reservation {
    creating: Creating,
    key: u64,
}

impl Reservation {
    /// The sandbox id this create inserts, before it does.
    pub(super) fn set_id(&self, id: &str) {
        if let Some(entry) = self.creating.lock().1.get_mut(&self.key) {
            entry.1 = Some(id.to_string());
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.creating.lock().1.remove(&self.key);
    }
}

impl Service {
    /// Reserve a create for `caller`, or refuse it if the caller's sandboxes and creates under
    /// way already reach `max_sandboxes_per_user`. Held until the row is inserted.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn reserve_sandbox(&self, caller: &Caller) -> Result<Reservation> {
        let Some(max) = self.config.ceilings.max_sandboxes_per_user else {
            return Ok(self.creating.reserve(&caller.user_id).0);
        };
        let (reservation, under_way, ids) = self.creating.reserve(&caller.user_id);
        let Err(refused) = self.count_within(caller, max, under_way, &ids).await? else {
            return Ok(reservation);
        };
        if under_way == 1 {
            return Err(refused);
        }
        // Others were under way, and one may have been counted twice: counted again, one
        // refused create at a time.
        drop(reservation);
        let lock = self
            .locks
            .handle(&format!("sandbox-count:{}", caller.user_id));
        let _guard = lock.lock().await;
        let (reservation, under_way, ids) = self.creating.reserve(&caller.user_id);
        self.count_within(caller, max, under_way, &ids).await??;
        Ok(reservation)
    }

    /// `Ok(Err(refusal))` if the caller's rows (less those of `ids`) and `under_way` creates
    /// are more than `max`.
    async fn count_within(
        &self,
        caller: &Caller,
        max: u64,
        under_way: u64,
        ids: &HashSet<String>,
    ) -> Result<Result<()>> {
        let rows = self.store.list_sandboxes(&caller.user_id).await?;
        let have = rows.iter().filter(|r| !ids.contains(&r.id)).count() as u64;
        if have + under_way <= max {
            return Ok(Ok(()));
        }
        let others = under_way - 1;
        let also = if others > 0 {
            format!(" and {others} more being created")
        } else {
            String::new()
        };
        Ok(Err(ServiceError::unprocessable(
            ErrorCode::OverLimit,
            format!(
                "you have {have} sandboxes{also}, this server's ceiling max_sandboxes_per_user = {max}: delete one first"
            ),
        )))
    }
}
