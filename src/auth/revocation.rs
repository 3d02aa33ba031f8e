use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Sessions revoked recently enough that some of their access tokens may still be unexpired.
///
/// Access tokens are verified without a database read, so this in-memory set is what makes a
/// logout take effect at once. An entry is needed only until the last access token the session
/// could have been issued has expired; after that it is dropped.
pub struct RevocationList {
    /// Session id → the instant after which its entry is no longer needed.
    entries: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// Access-token lifetime plus clock-skew leeway.
    retention: chrono::TimeDelta,
}

impl RevocationList {
    pub fn new(retention: chrono::TimeDelta) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            retention,
        }
    }

    /// How far back a revocation can still matter: loading revocations newer than this is
    /// enough to rebuild the set.
    pub fn relevant_since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.retention
    }

    pub fn revoke(&self, revocations: impl IntoIterator<Item = (Uuid, DateTime<Utc>)>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for (session_id, revoked_at) in revocations {
            let drop_after = revoked_at + self.retention;
            entries
                .entry(session_id)
                .and_modify(|existing| *existing = (*existing).max(drop_after))
                .or_insert(drop_after);
        }
    }

    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(session_id)
    }

    /// Drops the entries no unexpired access token can need any more.
    pub fn prune(&self, now: DateTime<Utc>) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, drop_after| *drop_after > now);
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn a_revoked_session_stays_revoked_until_its_tokens_expire() {
        let list = RevocationList::new(TimeDelta::seconds(910));
        let (session, other) = (Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        list.revoke([(session, now)]);
        assert!(list.is_revoked(&session));
        assert!(!list.is_revoked(&other));

        list.prune(now + TimeDelta::seconds(900));
        assert!(list.is_revoked(&session));
        list.prune(now + TimeDelta::seconds(911));
        assert!(!list.is_revoked(&session));
        assert!(list.is_empty());
    }

    #[test]
    fn a_later_revocation_of_the_same_session_extends_its_entry() {
        let list = RevocationList::new(TimeDelta::seconds(10));
        let session = Uuid::new_v4();
        let now = Utc::now();
        list.revoke([(session, now + TimeDelta::seconds(30))]);
        list.revoke([(session, now)]);
        list.prune(now + TimeDelta::seconds(20));
        assert!(list.is_revoked(&session));
    }
}
