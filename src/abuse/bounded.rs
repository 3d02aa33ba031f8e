use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// A map of at most `capacity` keys, each with a deadline after which it no longer matters.
///
/// When a new key arrives at a full map, the key with the earliest deadline is dropped: the one
/// whose state is worth least. For a rate limit the deadline is when the key is back to its full
/// allowance, so keys that already are go first, and a key over its limit (the latest deadline)
/// only goes when every other key is over its limit too. A flood of fresh keys, each with one
/// request, can therefore not push an active attacker out.
///
/// The deadlines are kept ordered beside the map, so eviction and pruning cost O(log n) per key.
pub(super) struct DeadlineMap<K, V> {
    capacity: usize,
    entries: HashMap<K, (Instant, V)>,
    by_deadline: BTreeSet<(Instant, K)>,
}

impl<K: Copy + Ord + Hash, V> DeadlineMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }

    pub fn get(&self, key: &K) -> Option<(Instant, &V)> {
        self.entries
            .get(key)
            .map(|(deadline, value)| (*deadline, value))
    }

    /// Sets `key`, making room first when it is new and the map is full.
    pub fn insert(&mut self, key: K, deadline: Instant, value: V) {
        if let Some((old, _)) = self.entries.get(&key) {
            self.by_deadline.remove(&(*old, key));
        } else if self.entries.len() >= self.capacity
            && let Some((_, evicted)) = self.by_deadline.pop_first()
        {
            self.entries.remove(&evicted);
        }
        self.entries.insert(key, (deadline, value));
        self.by_deadline.insert((deadline, key));
    }

    pub fn remove(&mut self, key: &K) {
        if let Some((deadline, _)) = self.entries.remove(key) {
            self.by_deadline.remove(&(deadline, *key));
        }
    }

    /// Drops every key whose deadline is not after `now`.
    pub fn prune(&mut self, now: Instant) {
        while let Some(&(deadline, key)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            self.entries.remove(&key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_full_map_drops_the_earliest_deadline_first() {
        let now = Instant::now();
        let mut map = DeadlineMap::new(3);
        map.insert(1, now + Duration::from_secs(30), ());
        map.insert(2, now + Duration::from_secs(10), ());
        map.insert(3, now + Duration::from_secs(20), ());
        map.insert(4, now + Duration::from_secs(5), ());
        assert_eq!(map.len(), 3);
        assert!(map.get(&2).is_none());
        // Updating a present key evicts nothing.
        map.insert(4, now + Duration::from_secs(40), ());
        assert_eq!(map.len(), 3);
        map.insert(5, now, ());
        assert!(map.get(&3).is_none());
        assert!(map.get(&1).is_some() && map.get(&4).is_some() && map.get(&5).is_some());
    }

    #[test]
    fn prune_and_remove_keep_both_indexes_in_step() {
        let now = Instant::now();
        let mut map = DeadlineMap::new(10);
        for key in 0..5_u32 {
            map.insert(key, now + Duration::from_secs(u64::from(key)), key);
        }
        map.remove(&4);
        map.prune(now + Duration::from_secs(2));
        assert_eq!(map.len(), 1);
        assert_eq!(map.by_deadline.len(), 1);
        assert_eq!(map.get(&3).map(|(_, value)| *value), Some(3));
    }
}
