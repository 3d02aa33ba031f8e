use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::bounded::DeadlineMap;

/// Escalating lockout after repeated wrong passwords for one key: an account together with the
/// client address, or with the device, that tried them.
///
/// Keyed by account *and* origin: an attacker hammering a victim's account from one address
/// locks only that address out of that account, never the victim on another address. (The
/// per-account rate limit is what slows an attack spread over many addresses.)
///
/// At most `capacity` records are kept. A record is forgotten `max_delay` after its last event
/// (the last failure, or the end of its lock), and when room is needed the record that would be
/// forgotten soonest goes first: every record that is not locked goes before any that is, so a
/// flood of single failures cannot unlock an attacker.
pub struct Lockout<K> {
    threshold: u32,
    base_delay: Duration,
    max_delay: Duration,
    records: Mutex<DeadlineMap<K, Failures>>,
}

struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

impl<K: Copy + Ord + Hash> Lockout<K> {
    pub fn new(threshold: u32, base_delay: Duration, max_delay: Duration, capacity: usize) -> Self {
        Self {
            threshold: threshold.max(1),
            base_delay,
            max_delay,
            records: Mutex::new(DeadlineMap::new(capacity)),
        }
    }

    /// How much longer `key` is locked, if it is.
    pub fn locked_for(&self, key: K, now: Instant) -> Option<Duration> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records
            .get(&key)
            .and_then(|(_, failures)| failures.locked_until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }

    /// Records a wrong password. From the `threshold`-th failure on, each one locks the key for
    /// twice as long as the one before, up to `max_delay`.
    pub fn failed(&self, key: K, now: Instant) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let count = records
            .get(&key)
            .map_or(0, |(_, failures)| failures.count)
            .saturating_add(1);
        let locked_until = self.delay_after(count).map(|delay| now + delay);
        let forget_at = locked_until.unwrap_or(now) + self.max_delay;
        records.insert(
            key,
            forget_at,
            Failures {
                count,
                locked_until,
            },
        );
    }

    /// How long `failures` wrong passwords lock a key: from the `threshold`-th on, each one twice
    /// as long as the one before, up to `max_delay`.
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        (failures >= self.threshold).then(|| {
            let doublings = (failures - self.threshold).min(20);
            self.base_delay
                .saturating_mul(1 << doublings)
                .min(self.max_delay)
        })
    }

    /// A correct password clears the record.
    pub fn succeeded(&self, key: K) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.remove(&key);
    }

    /// Forgets records `max_delay` after their last failure or the end of their lock.
    pub fn prune(&self, now: Instant) {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.prune(now);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        records.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    const IP: &str = "198.51.100.7";

    fn lockout() -> Lockout<(&'static str, IpAddr)> {
        Lockout::new(3, Duration::from_secs(10), Duration::from_secs(60), 100)
    }

    #[test]
    fn locks_from_the_threshold_on_and_doubles_each_time_up_to_the_cap() {
        let lockout = lockout();
        let key = ("ada", IP.parse().unwrap());
        let now = Instant::now();
        lockout.failed(key, now);
        lockout.failed(key, now);
        assert_eq!(lockout.locked_for(key, now), None);
        lockout.failed(key, now);
        assert_eq!(lockout.locked_for(key, now), Some(Duration::from_secs(10)));
        lockout.failed(key, now);
        assert_eq!(lockout.locked_for(key, now), Some(Duration::from_secs(20)));
        for _ in 0..10 {
            lockout.failed(key, now);
        }
        assert_eq!(lockout.locked_for(key, now), Some(Duration::from_secs(60)));
        assert_eq!(lockout.locked_for(key, now + Duration::from_secs(61)), None);
    }

    #[test]
    fn other_addresses_and_accounts_are_not_locked_and_success_resets() {
        let lockout = lockout();
        let ip: IpAddr = IP.parse().unwrap();
        let other: IpAddr = "203.0.113.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            lockout.failed(("ada", ip), now);
        }
        assert!(lockout.locked_for(("ada", ip), now).is_some());
        assert_eq!(lockout.locked_for(("ada", other), now), None);
        assert_eq!(lockout.locked_for(("bob", ip), now), None);
        lockout.succeeded(("ada", ip));
        assert_eq!(lockout.locked_for(("ada", ip), now), None);
    }

    #[test]
    fn prune_keeps_live_locks_only() {
        let lockout = lockout();
        let ip: IpAddr = IP.parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            lockout.failed(("ada", ip), now);
        }
        lockout.failed(("bob", ip), now);
        lockout.prune(now + Duration::from_secs(59));
        assert!(
            lockout
                .locked_for(("ada", ip), now + Duration::from_secs(5))
                .is_some()
        );
        lockout.prune(now + Duration::from_secs(120));
        assert_eq!(lockout.len(), 0);
    }

    #[test]
    fn a_flood_of_failures_elsewhere_does_not_unlock_a_locked_key() {
        let lockout = lockout();
        let attacker = ("ada", IP.parse().unwrap());
        let now = Instant::now();
        for _ in 0..3 {
            lockout.failed(attacker, now);
        }
        for n in 0..10_000_u32 {
            let later = now + Duration::from_millis(u64::from(n));
            lockout.failed(("bob", IpAddr::from(n.to_be_bytes())), later);
        }
        assert_eq!(lockout.len(), 100);
        assert!(lockout.locked_for(attacker, now).is_some());
    }
}
