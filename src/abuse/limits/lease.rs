//! A busy key's shared allowance, reserved several units at a time.
//!
//! With the limits in PostgreSQL, one client address refreshing thousands of times a second
//! would cost a statement per request, every one of them queued on the same row. An instance
//! instead reserves several units of the key's allowance in one statement and hands them out from
//! memory. A unit is counted in the shared state before it is handed out, so the instances
//! together never admit more than the limit; units an instance holds are only unavailable to the
//! others until they lapse. A reservation starts at one unit, doubles while the key stays busy,
//! and never exceeds an eighth of the key's burst, so a small allowance spread over several
//! instances loses little to reservations; near the limit the instance asks for one unit at a
//! time, and the last units go exactly as they would without reservations.

use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::super::bounded::DeadlineMap;

/// How long reserved units stay usable. Short, so that units a quiet key did not use are back in
/// the shared allowance soon (they are counted there until their reservation's time is up).
const LEASE_LIFETIME: Duration = Duration::from_secs(1);

/// The most units one statement reserves.
const MAX_UNITS: u32 = 64;

/// Units reserved for one key, and how many the last reservation asked for.
#[derive(Clone, Copy)]
struct Lease {
    left: u32,
    size: u32,
}

pub(super) struct Leases<K> {
    held: Mutex<DeadlineMap<K, Lease>>,
    max_units: u32,
}

impl<K: Copy + Ord + Hash> Leases<K> {
    /// Reservations for a limit whose burst is `burst_units` requests.
    pub fn new(burst_units: u32, max_keys: usize) -> Self {
        Self {
            held: Mutex::new(DeadlineMap::new(max_keys)),
            max_units: (burst_units / 8).clamp(1, MAX_UNITS),
        }
    }

    /// Takes a reserved unit of `key`; without one, says how many units to reserve next: twice
    /// the last reservation if it was used up before it lapsed, half of it otherwise.
    pub fn take(&self, key: K, now: Instant) -> Result<(), u32> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((until, &lease)) = held.get(&key) else {
            return Err(1);
        };
        if until <= now {
            return Err((lease.size / 2).max(1));
        }
        if lease.left == 0 {
            return Err(lease.size.saturating_mul(2).min(self.max_units));
        }
        let left = lease.left - 1;
        held.insert(key, until, Lease { left, ..lease });
        Ok(())
    }

    /// Records a reservation of `key` that granted `units` (none if refused), one of which the
    /// request that made it uses. The units of reservations made at once add up.
    pub fn settle(&self, key: K, units: u32, now: Instant) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let left = match held.get(&key) {
            Some((until, lease)) if until > now => lease.left,
            _ => 0,
        };
        let lease = Lease {
            left: left.saturating_add(units.saturating_sub(1)),
            size: units.max(1),
        };
        held.insert(key, now + LEASE_LIFETIME, lease);
    }

    pub fn prune(&self, now: Instant) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .prune(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_grow_while_used_up_and_shrink_once_lapsed() {
        let leases = Leases::new(1_000, 10);
        let now = Instant::now();
        assert_eq!(leases.take(1, now), Err(1));
        leases.settle(1, 1, now);
        assert_eq!(leases.take(1, now), Err(2));
        leases.settle(1, 2, now);
        assert_eq!(leases.take(1, now), Ok(()));
        assert_eq!(leases.take(1, now), Err(4));
        leases.settle(1, 4, now);
        let later = now + LEASE_LIFETIME;
        assert_eq!(leases.take(1, later), Err(2), "lapsed with units left");
    }

    #[test]
    fn a_reservation_never_exceeds_an_eighth_of_the_burst() {
        let leases = Leases::new(40, 10);
        let now = Instant::now();
        leases.settle(7, 4, now);
        for _ in 0..3 {
            assert_eq!(leases.take(7, now), Ok(()));
        }
        assert_eq!(leases.take(7, now), Err(5));
        assert_eq!(Leases::<u8>::new(3, 10).max_units, 1);
        assert_eq!(Leases::<u8>::new(1_000_000, 10).max_units, MAX_UNITS);
    }

    #[test]
    fn a_refused_reservation_starts_again_at_one_unit() {
        let leases = Leases::new(1_000, 10);
        let now = Instant::now();
        leases.settle(1, 32, now);
        leases.settle(1, 0, now);
        for _ in 0..31 {
            assert_eq!(
                leases.take(1, now),
                Ok(()),
                "units granted before stay usable"
            );
        }
        assert_eq!(leases.take(1, now), Err(2));
    }
}
