use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::Rate;
use super::bounded::DeadlineMap;
use super::lockout::Lockout;
use super::shared::{SharedLimits, Unavailable};

mod keys;
mod lease;

pub use keys::DeviceId;
use keys::{AccountKey, LimitKey, Origin, account_key, address_key, lockout_key, origin};
use lease::Leases;

/// Longest lockout of one account for one address or device.
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// The limits in force, from the configuration.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub enabled: bool,
    pub login_per_ip: Rate,
    pub login_per_account: Rate,
    pub signup_per_ip: Rate,
    pub refresh_per_ip: Rate,
    pub forgot_per_ip: Rate,
    pub forgot_per_email: Rate,
    pub resend_per_user: Rate,
    pub lockout_threshold: u32,
    pub lockout_base_delay: Duration,
    /// Keys each limit, and the lockout, keeps at most (see [`Limits`]).
    pub max_keys: usize,
}

/// Why a request may not go on.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Over a limit, or locked out; retry after this long.
    #[error("rate limited")]
    RateLimited(Duration),
    /// The shared state could not be consulted: password checks fail closed.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Per client address, per account and per device limits, and the lockout. In memory when one
/// process serves (SQLite), or in [`SharedLimits`] when instances share a database (PostgreSQL):
/// then the in-memory tables stay empty, and only the refresh limit keeps units of a busy
/// address's allowance it reserved ahead (see [`Leases`]).
///
/// Client addresses are counted per IPv4 address and per IPv6 /64 (see [`address_key`]).
///
/// Memory is bounded: each of the eight limits and the lockout keeps at most
/// `LimitsConfig::max_keys` keys. When a new key arrives at a full limit, the key closest to its
/// full allowance is forgotten first (keys already back at it cost nothing to forget), so a flood
/// of new addresses or emails, one request each, pushes out only keys less used than its own, and
/// never a key that is over its limit (unless `max_keys` keys are). A key costs at most about
/// 260 bytes in a limit and 560 bytes in the lockout (measured at the peak of a table's growth),
/// so all of it stays under `max_keys` × 2.7 KB: about 27 MB at the default of 10,000.
pub struct Limits {
    enabled: bool,
    login_per_ip: KeyedLimit<IpAddr>,
    login_per_account: KeyedLimit<AccountKey>,
    login_per_device: KeyedLimit<DeviceId>,
    signup_per_ip: KeyedLimit<IpAddr>,
    refresh_per_ip: KeyedLimit<IpAddr>,
    forgot_per_ip: KeyedLimit<IpAddr>,
    forgot_per_email: KeyedLimit<AccountKey>,
    resend_per_user: KeyedLimit<Uuid>,
    lockout: Lockout<(AccountKey, Origin)>,
    shared: Option<Arc<dyn SharedLimits>>,
}

impl Limits {
    /// Limits kept in this process's memory.
    pub fn new(config: &LimitsConfig) -> Self {
        Self::with_shared(config, None)
    }

    /// Limits kept in `shared`, when given, so that every instance counts as one.
    pub fn with_shared(config: &LimitsConfig, shared: Option<Arc<dyn SharedLimits>>) -> Self {
        let max_keys = config.max_keys;
        Self {
            enabled: config.enabled,
            login_per_ip: KeyedLimit::new("login_per_ip", config.login_per_ip, max_keys),
            login_per_account: KeyedLimit::new(
                "login_per_account",
                config.login_per_account,
                max_keys,
            ),
            // A device gets the allowance a whole account has, for itself.
            login_per_device: KeyedLimit::new(
                "login_per_device",
                config.login_per_account,
                max_keys,
            ),
            signup_per_ip: KeyedLimit::new("signup_per_ip", config.signup_per_ip, max_keys),
            // Refreshes come thousands a second; reserving a busy address's allowance a few
            // units at a time keeps them from queueing on one row of the shared state.
            refresh_per_ip: KeyedLimit::new("refresh_per_ip", config.refresh_per_ip, max_keys)
                .leased(config.refresh_per_ip, max_keys),
            forgot_per_ip: KeyedLimit::new("forgot_per_ip", config.forgot_per_ip, max_keys),
            forgot_per_email: KeyedLimit::new(
                "forgot_per_email",
                config.forgot_per_email,
                max_keys,
            ),
            resend_per_user: KeyedLimit::new("resend_per_user", config.resend_per_user, max_keys),
            shared,
            lockout: Lockout::new(
                config.lockout_threshold,
                config.lockout_base_delay,
                MAX_LOCKOUT,
                max_keys,
            ),
        }
    }

    pub async fn signup(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.signup_per_ip, address_key(ip)).await
    }

    pub async fn refresh(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.refresh_per_ip, address_key(ip)).await
    }

    /// A password-reset mail requested for `email` from `ip`. Counted whether or not an account
    /// has the address, so the answer says nothing about which ones exist; the address's own
    /// limit stops anyone from flooding one mailbox, from however many addresses.
    pub async fn forgot_password(&self, ip: IpAddr, email: &str) -> Result<(), Refused> {
        self.check(&self.forgot_per_ip, address_key(ip)).await?;
        self.check(&self.forgot_per_email, account_key(email)).await
    }

    /// A verification mail sent again at the request of `user_id`, or because their login was
    /// refused for an unverified address.
    pub async fn resend_verification(&self, user_id: Uuid) -> Result<(), Refused> {
        self.check(&self.resend_per_user, user_id).await
    }

    /// Before a password of `account` is checked for a request from `ip`, without a device
    /// token: a self-service change. [`Limits::address_attempt`], then
    /// [`Limits::account_attempt`] without a device.
    pub async fn password_attempt(&self, ip: IpAddr, account: &str) -> Result<(), Refused> {
        self.address_attempt(ip).await?;
        self.account_attempt(ip, account, None).await
    }

    /// The first check of a login, before anything is looked up: the client address's own
    /// limit, which every attempt counts against, whatever it presents.
    pub async fn address_attempt(&self, ip: IpAddr) -> Result<(), Refused> {
        self.check(&self.login_per_ip, address_key(ip)).await
    }

    /// The second check, before the password is: the lockout of the account for this origin,
    /// then the allowance the attempt is counted in. With the device token of a client that
    /// logged in to this account before (`device`), that is the device's own lockout and
    /// allowance: an attacker spending the account's allowance, or locking out an address the
    /// owner shares, does not stop the owner's device, and a stolen device token buys only a few
    /// guesses. Without one, it is the address's lockout and the allowance of the account, shared
    /// by every address, which bounds the guesses against one account. The lockout comes first,
    /// so a locked-out origin does not use up an allowance.
    pub async fn account_attempt(
        &self,
        ip: IpAddr,
        account: &str,
        device: Option<DeviceId>,
    ) -> Result<(), Refused> {
        if !self.enabled {
            return Ok(());
        }
        let account = account_key(account);
        let key = (account, origin(ip, device));
        let locked_for = match &self.shared {
            None => self.lockout.locked_for(key, Instant::now()),
            Some(shared) => shared.locked_for(&lockout_key(key)).await?,
        };
        if let Some(left) = locked_for {
            return Err(Refused::RateLimited(left));
        }
        match device {
            Some(device) => self.check(&self.login_per_device, device).await,
            None => self.check(&self.login_per_account, account).await,
        }
    }

    pub async fn password_failed(&self, ip: IpAddr, account: &str) -> Result<(), Unavailable> {
        self.attempt_failed(ip, account, None).await
    }

    pub async fn password_succeeded(&self, ip: IpAddr, account: &str) -> Result<(), Unavailable> {
        self.attempt_succeeded(ip, account, None).await
    }

    /// A wrong password, counted against the origin [`Limits::account_attempt`] checked.
    pub async fn attempt_failed(
        &self,
        ip: IpAddr,
        account: &str,
        device: Option<DeviceId>,
    ) -> Result<(), Unavailable> {
        let Some(key) = self.lockout_record(ip, account, device) else {
            return Ok(());
        };
        let Some(shared) = &self.shared else {
            self.lockout.failed(key, Instant::now());
            return Ok(());
        };
        let lock = |failures| self.lockout.delay_after(failures);
        shared.failed(&lockout_key(key), &lock, MAX_LOCKOUT).await
    }

    /// A correct password clears the lockout record of the origin it came from.
    pub async fn attempt_succeeded(
        &self,
        ip: IpAddr,
        account: &str,
        device: Option<DeviceId>,
    ) -> Result<(), Unavailable> {
        let Some(key) = self.lockout_record(ip, account, device) else {
            return Ok(());
        };
        let Some(shared) = &self.shared else {
            self.lockout.succeeded(key);
            return Ok(());
        };
        shared.succeeded(&lockout_key(key)).await
    }

    /// The lockout record an attempt counts in; none with the limits off.
    fn lockout_record(
        &self,
        ip: IpAddr,
        account: &str,
        device: Option<DeviceId>,
    ) -> Option<(AccountKey, Origin)> {
        self.enabled
            .then(|| (account_key(account), origin(ip, device)))
    }

    /// Forgets keys that are back to their full allowance, and stale lockout records.
    pub async fn prune(&self) -> Result<(), Unavailable> {
        let now = Instant::now();
        self.login_per_ip.prune(now);
        self.login_per_account.prune(now);
        self.login_per_device.prune(now);
        self.signup_per_ip.prune(now);
        self.refresh_per_ip.prune(now);
        self.forgot_per_ip.prune(now);
        self.forgot_per_email.prune(now);
        self.resend_per_user.prune(now);
        self.lockout.prune(now);
        match &self.shared {
            None => Ok(()),
            Some(shared) => shared.prune().await,
        }
    }

    #[cfg(test)]
    fn key_counts(&self) -> [(&'static str, usize); 9] {
        [
            ("login_per_ip", self.login_per_ip.len()),
            ("login_per_account", self.login_per_account.len()),
            ("login_per_device", self.login_per_device.len()),
            ("signup_per_ip", self.signup_per_ip.len()),
            ("refresh_per_ip", self.refresh_per_ip.len()),
            ("forgot_per_ip", self.forgot_per_ip.len()),
            ("forgot_per_email", self.forgot_per_email.len()),
            ("resend_per_user", self.resend_per_user.len()),
            ("lockout", self.lockout.len()),
        ]
    }

    async fn check<K: LimitKey>(&self, limit: &KeyedLimit<K>, key: K) -> Result<(), Refused> {
        if !self.enabled {
            return Ok(());
        }
        let wait = match &self.shared {
            None => limit.check(key, Instant::now()).err(),
            Some(shared) => limit.admit_shared(shared.as_ref(), key).await?,
        };
        wait.map_or(Ok(()), |wait| Err(Refused::RateLimited(wait)))
    }
}

/// A rate limit per key, by the generic cell rate algorithm: a key's whole state is the instant
/// its allowance is full again, which moves `interval` later with each request. A request that
/// would put it more than the burst (the whole window) ahead is refused.
struct KeyedLimit<K> {
    /// Names the limit in the shared state.
    name: &'static str,
    interval: Duration,
    burst: Duration,
    keys: Mutex<DeadlineMap<K, ()>>,
    /// Reservations of the shared allowance, for a limit checked on busy paths.
    leases: Option<Leases<K>>,
}

impl<K: LimitKey> KeyedLimit<K> {
    fn new(name: &'static str, rate: Rate, max_keys: usize) -> Self {
        let interval = (rate.window / rate.count.get()).max(Duration::from_nanos(1));
        Self {
            name,
            interval,
            burst: interval.saturating_mul(rate.count.get()),
            keys: Mutex::new(DeadlineMap::new(max_keys)),
            leases: None,
        }
    }

    /// Reserves the shared allowance several units at a time (see [`Leases`]).
    fn leased(self, rate: Rate, max_keys: usize) -> Self {
        Self {
            leases: Some(Leases::new(rate.count.get(), max_keys)),
            ..self
        }
    }

    /// Admits a request of `key` against the shared state, or says how long to wait.
    async fn admit_shared(
        &self,
        shared: &dyn SharedLimits,
        key: K,
    ) -> Result<Option<Duration>, Unavailable> {
        let Some(leases) = &self.leases else {
            return shared
                .admit(self.name, &key.bytes(), self.interval, self.burst)
                .await;
        };
        let units = match leases.take(key, Instant::now()) {
            Ok(()) => return Ok(None),
            Err(units) => units,
        };
        // Only now: a unit held in memory costs no allocation.
        let bytes = key.bytes();
        // Several units are one request that moves the key's allowance `units` intervals on.
        if units > 1 {
            let interval = self.interval.saturating_mul(units);
            if shared
                .admit(self.name, &bytes, interval, self.burst)
                .await?
                .is_none()
            {
                leases.settle(key, units, Instant::now());
                return Ok(None);
            }
        }
        let wait = shared
            .admit(self.name, &bytes, self.interval, self.burst)
            .await?;
        leases.settle(key, u32::from(wait.is_none()), Instant::now());
        Ok(wait)
    }

    /// Admits a request of `key`, or says how long to wait.
    fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let full_at = keys.get(&key).map_or(now, |(full_at, ())| full_at.max(now));
        let next = full_at + self.interval;
        let latest = now + self.burst;
        if next > latest {
            return Err(next - latest);
        }
        keys.insert(key, next, ());
        Ok(())
    }

    fn prune(&self, now: Instant) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .prune(now);
        if let Some(leases) = &self.leases {
            leases.prune(now);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests;
