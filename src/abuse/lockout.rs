use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Escalating lockout after repeated wrong passwords for one account from one client address.
///
/// Keyed by account *and* address: an attacker hammering a victim's account from one address
/// locks only that address out of that account, never the victim on another address. (The
/// per-account rate limit is what slows an attack spread over many addresses.)
pub struct Lockout {
    threshold: u32,
    base_delay: Duration,
    max_delay: Duration,
    entries: Mutex<HashMap<(String, IpAddr), Failures>>,
}

struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

impl Lockout {
    pub fn new(threshold: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            base_delay,
            max_delay,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How much longer this account is locked for this address, if it is.
    pub fn locked_for(&self, account: &str, ip: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(account.to_owned(), ip))
            .and_then(|failures| failures.locked_until)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }

    /// Records a wrong password. From the `threshold`-th failure on, each one locks the pair for
    /// twice as long as the one before, up to `max_delay`.
    pub fn failed(&self, account: &str, ip: IpAddr, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let failures = entries.entry((account.to_owned(), ip)).or_insert(Failures {
            count: 0,
            locked_until: None,
            last: now,
        });
        failures.count = failures.count.saturating_add(1);
        failures.last = now;
        if failures.count >= self.threshold {
            let doublings = (failures.count - self.threshold).min(20);
            let delay = self
                .base_delay
                .saturating_mul(1 << doublings)
                .min(self.max_delay);
            failures.locked_until = Some(now + delay);
        }
    }

    /// A correct password clears the record.
    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&(account.to_owned(), ip));
    }

    /// Forgets records that no longer lock anything and are older than the longest delay.
    pub fn prune(&self, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let max_delay = self.max_delay;
        entries.retain(|_, failures| {
            failures.locked_until.is_some_and(|until| until > now)
                || now.saturating_duration_since(failures.last) < max_delay
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &str = "198.51.100.7";

    fn lockout() -> Lockout {
        Lockout::new(3, Duration::from_secs(10), Duration::from_secs(60))
    }

    #[test]
    fn locks_from_the_threshold_on_and_doubles_each_time_up_to_the_cap() {
        let lockout = lockout();
        let ip: IpAddr = IP.parse().unwrap();
        let now = Instant::now();
        lockout.failed("ada", ip, now);
        lockout.failed("ada", ip, now);
        assert_eq!(lockout.locked_for("ada", ip, now), None);
        lockout.failed("ada", ip, now);
        assert_eq!(
            lockout.locked_for("ada", ip, now),
            Some(Duration::from_secs(10))
        );
        lockout.failed("ada", ip, now);
        assert_eq!(
            lockout.locked_for("ada", ip, now),
            Some(Duration::from_secs(20))
        );
        for _ in 0..10 {
            lockout.failed("ada", ip, now);
        }
        assert_eq!(
            lockout.locked_for("ada", ip, now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            lockout.locked_for("ada", ip, now + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn other_addresses_and_accounts_are_not_locked_and_success_resets() {
        let lockout = lockout();
        let ip: IpAddr = IP.parse().unwrap();
        let other: IpAddr = "203.0.113.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            lockout.failed("ada", ip, now);
        }
        assert!(lockout.locked_for("ada", ip, now).is_some());
        assert_eq!(lockout.locked_for("ada", other, now), None);
        assert_eq!(lockout.locked_for("bob", ip, now), None);
        lockout.succeeded("ada", ip);
        assert_eq!(lockout.locked_for("ada", ip, now), None);
    }

    #[test]
    fn prune_keeps_live_locks_only() {
        let lockout = lockout();
        let ip: IpAddr = IP.parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            lockout.failed("ada", ip, now);
        }
        lockout.failed("bob", ip, now);
        lockout.prune(now + Duration::from_secs(59));
        assert!(
            lockout
                .locked_for("ada", ip, now + Duration::from_secs(5))
                .is_some()
        );
        lockout.prune(now + Duration::from_secs(120));
        assert!(lockout.entries.lock().unwrap().is_empty());
    }
}
