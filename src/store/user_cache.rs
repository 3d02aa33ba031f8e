//! Recently read users, so `GET /v1/me` under load costs no database round trip. Exact on this
//! instance: every write here that changes a user forgets it before the request that made the
//! change answers. A change made elsewhere (another instance, the admin CLI) shows within
//! [`FRESH_FOR`], the bound revocations already have.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::User;

/// How long a read user is served from memory.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Past this many users, the cache starts over: memory stays bounded whatever the traffic.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct UserCache {
    users: Mutex<HashMap<Uuid, (Instant, User)>>,
    /// Counts the forgetting: a read that began before one may have read what was forgotten, so
    /// it is not kept (see [`UserCache::keep`]).
    forgotten: AtomicU64,
}

/// Taken before a database read, given back with its result.
#[derive(Clone, Copy)]
pub struct ReadTicket(u64);

impl UserCache {
    pub fn get(&self, id: Uuid) -> Option<User> {
        let users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        users
            .get(&id)
            .filter(|(read_at, _)| read_at.elapsed() < FRESH_FOR)
            .map(|(_, user)| user.clone())
    }

    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.forgotten.load(Ordering::Acquire))
    }

    /// Keeps a user read from the database, unless some user was forgotten since the read began.
    pub fn keep(&self, ticket: ReadTicket, user: &User) {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.forgotten.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if users.len() >= CAPACITY {
            users.clear();
        }
        users.insert(user.id, (Instant::now(), user.clone()));
    }

    pub fn forget(&self, id: Uuid) {
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        users.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::Role;

    fn user() -> User {
        User {
            id: Uuid::new_v4(),
            email: "ada@example.com".to_owned(),
            name: None,
            role: Role::User,
            disabled: false,
            email_verified: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_kept_user_is_served_until_forgotten() {
        let cache = UserCache::default();
        let ada = user();
        cache.keep(cache.ticket(), &ada);
        assert_eq!(cache.get(ada.id), Some(ada.clone()));
        cache.forget(ada.id);
        assert_eq!(cache.get(ada.id), None);
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = UserCache::default();
        let ada = user();
        let ticket = cache.ticket();
        cache.forget(ada.id);
        cache.keep(ticket, &ada);
        assert_eq!(cache.get(ada.id), None);
    }
}
