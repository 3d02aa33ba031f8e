use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::Rate;
use super::lockout::Lockout;

/// Longest lockout of one account for one address.
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
}

/// A request refused for going over a limit; retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited(pub Duration);

/// Per client address and per account limits, and the account lockout. In memory: each instance
/// counts what it sees.
pub struct Limits {
    enabled: bool,
    login_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_per_account: DefaultKeyedRateLimiter<String>,
    signup_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    refresh_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    forgot_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    forgot_per_email: DefaultKeyedRateLimiter<String>,
    resend_per_user: DefaultKeyedRateLimiter<Uuid>,
    lockout: Lockout,
    clock: DefaultClock,
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            enabled: config.enabled,
            login_per_ip: keyed(config.login_per_ip),
            login_per_account: keyed(config.login_per_account),
            signup_per_ip: keyed(config.signup_per_ip),
            refresh_per_ip: keyed(config.refresh_per_ip),
            forgot_per_ip: keyed(config.forgot_per_ip),
            forgot_per_email: keyed(config.forgot_per_email),
            resend_per_user: keyed(config.resend_per_user),
            lockout: Lockout::new(
                config.lockout_threshold,
                config.lockout_base_delay,
                MAX_LOCKOUT,
            ),
            clock: DefaultClock::default(),
        }
    }

    pub fn signup(&self, ip: IpAddr) -> Result<(), RateLimited> {
        self.check(&self.signup_per_ip, &ip)
    }

    pub fn refresh(&self, ip: IpAddr) -> Result<(), RateLimited> {
        self.check(&self.refresh_per_ip, &ip)
    }

    /// A password-reset mail requested for `email` from `ip`. Counted whether or not an account
    /// has the address, so the answer says nothing about which ones exist; the address's own
    /// limit stops anyone from flooding one mailbox, from however many addresses.
    pub fn forgot_password(&self, ip: IpAddr, email: &str) -> Result<(), RateLimited> {
        self.check(&self.forgot_per_ip, &ip)?;
        self.check(&self.forgot_per_email, &email.to_owned())
    }

    /// A verification mail sent again at the request of `user_id`, or because their login was
    /// refused for an unverified address.
    pub fn resend_verification(&self, user_id: Uuid) -> Result<(), RateLimited> {
        self.check(&self.resend_per_user, &user_id)
    }

    /// Before a password of `account` is checked for a request from `ip`: a login, or a
    /// current password in a self-service change. The address's own limit and lockout come
    /// first, so a locked-out address does not use up the account's allowance.
    pub fn password_attempt(&self, ip: IpAddr, account: &str) -> Result<(), RateLimited> {
        if !self.enabled {
            return Ok(());
        }
        self.check(&self.login_per_ip, &ip)?;
        if let Some(left) = self.lockout.locked_for(account, ip, Instant::now()) {
            return Err(RateLimited(left));
        }
        self.check(&self.login_per_account, &account.to_owned())
    }

    pub fn password_failed(&self, ip: IpAddr, account: &str) {
        if self.enabled {
            self.lockout.failed(account, ip, Instant::now());
        }
    }

    pub fn password_succeeded(&self, ip: IpAddr, account: &str) {
        if self.enabled {
            self.lockout.succeeded(account, ip);
        }
    }

    /// Forgets keys that are back to their full allowance, and stale lockout records.
    pub fn prune(&self) {
        self.login_per_ip.retain_recent();
        self.login_per_account.retain_recent();
        self.signup_per_ip.retain_recent();
        self.refresh_per_ip.retain_recent();
        self.forgot_per_ip.retain_recent();
        self.forgot_per_email.retain_recent();
        self.resend_per_user.retain_recent();
        self.lockout.prune(Instant::now());
    }

    fn check<K: Clone + Hash + Eq>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
    ) -> Result<(), RateLimited> {
        if !self.enabled {
            return Ok(());
        }
        limiter
            .check_key(key)
            .map_err(|not_until| RateLimited(not_until.wait_time_from(self.clock.now())))
    }
}

fn keyed<K: Clone + Hash + Eq>(rate: Rate) -> DefaultKeyedRateLimiter<K> {
    let period = rate.window / rate.count.get();
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(rate.count))
        .allow_burst(rate.count);
    RateLimiter::keyed(quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(enabled: bool) -> LimitsConfig {
        LimitsConfig {
            enabled,
            login_per_ip: "3/min".parse().unwrap(),
            login_per_account: "5/min".parse().unwrap(),
            signup_per_ip: "2/min".parse().unwrap(),
            refresh_per_ip: "2/min".parse().unwrap(),
            forgot_per_ip: "3/min".parse().unwrap(),
            forgot_per_email: "2/min".parse().unwrap(),
            resend_per_user: "1/min".parse().unwrap(),
            lockout_threshold: 2,
            lockout_base_delay: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_retry_delay() {
        let limits = Limits::new(&config(true));
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(limits.signup(ip).is_ok());
        assert!(limits.signup(ip).is_ok());
        let RateLimited(wait) = limits.signup(ip).unwrap_err();
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limits.signup("203.0.113.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_locked_out_address_does_not_use_up_the_accounts_allowance() {
        let limits = Limits::new(&config(true));
        let attacker: IpAddr = "198.51.100.7".parse().unwrap();
        let victim: IpAddr = "203.0.113.1".parse().unwrap();
        for _ in 0..2 {
            limits.password_attempt(attacker, "ada").unwrap();
            limits.password_failed(attacker, "ada");
        }
        assert!(limits.password_attempt(attacker, "ada").is_err());
        assert!(limits.password_attempt(attacker, "ada").is_err());
        assert!(limits.password_attempt(victim, "ada").is_ok());
    }

    #[test]
    fn forgot_password_is_limited_per_address_and_per_email() {
        let limits = Limits::new(&config(true));
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "203.0.113.1".parse().unwrap();
        assert!(limits.forgot_password(ip, "ada@example.com").is_ok());
        assert!(limits.forgot_password(other, "ada@example.com").is_ok());
        // The email's allowance is spent, from any address.
        assert!(limits.forgot_password(ip, "ada@example.com").is_err());
        // The first address has one request left, for another email; then it is spent too.
        assert!(limits.forgot_password(ip, "bob@example.com").is_ok());
        assert!(limits.forgot_password(ip, "eve@example.com").is_err());
    }

    #[test]
    fn disabled_limits_refuse_nothing() {
        let limits = Limits::new(&config(false));
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..100 {
            assert!(limits.signup(ip).is_ok());
            assert!(limits.password_attempt(ip, "ada").is_ok());
            limits.password_failed(ip, "ada");
        }
    }
}
