//! The settings in the units the code uses.

use std::time::Duration;

use super::{AbuseSettings, MailSettings, PasswordSettings, ServerSettings, TokenSettings};
use crate::abuse::LimitsConfig;

impl ServerSettings {
    /// Whether the API listens only where the machine itself can reach it: how a developer's
    /// `cargo run` looks, unlike any deployment.
    pub fn listens_on_loopback(&self) -> bool {
        match self.addr.parse::<std::net::SocketAddr>() {
            Ok(addr) => addr.ip().is_loopback(),
            Err(_) => self
                .addr
                .rsplit_once(':')
                .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers.map(usize::from).unwrap_or_else(available_cpus)
    }
}

impl TokenSettings {
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl)
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::from_secs(self.refresh_ttl)
    }

    pub fn session_max_age(&self) -> Duration {
        Duration::from_secs(self.session_max_age)
    }

    pub fn refresh_reuse_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_reuse_interval)
    }

    pub fn jwt_key_reload_interval(&self) -> Duration {
        Duration::from_secs(self.jwt_key_reload_interval)
    }

    pub fn prune_interval(&self) -> Duration {
        Duration::from_secs(self.prune_interval)
    }
}

impl PasswordSettings {
    pub fn hash_threads(&self) -> usize {
        self.hash_threads
            .map(usize::from)
            .unwrap_or_else(available_cpus)
    }
}

impl AbuseSettings {
    pub fn limits(&self) -> LimitsConfig {
        LimitsConfig {
            enabled: self.rate_limits,
            login_per_ip: self.rate_login_per_ip,
            login_per_account: self.rate_login_per_account,
            signup_per_ip: self.rate_signup_per_ip,
            refresh_per_ip: self.rate_refresh_per_ip,
            forgot_per_ip: self.rate_forgot_per_ip,
            forgot_per_email: self.rate_forgot_per_email,
            resend_per_user: self.rate_resend_per_user,
            lockout_threshold: self.lockout_threshold,
            lockout_base_delay: Duration::from_secs(self.lockout_base_delay),
            max_keys: self.rate_limit_keys as usize,
        }
    }
}

impl MailSettings {
    pub fn reset_ttl(&self) -> Duration {
        Duration::from_secs(self.reset_ttl)
    }

    pub fn mail_retry_delay(&self) -> Duration {
        Duration::from_secs(self.mail_retry_delay)
    }

    pub fn verify_ttl(&self) -> Duration {
        Duration::from_secs(self.verify_ttl)
    }
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
