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
        max_keys: 1_000,
    }
}

fn ip(raw: &str) -> IpAddr {
    raw.parse().unwrap()
}

/// Fails the password of `account` from `client` as often as [`config`]'s lockout threshold.
async fn lock_out(limits: &Limits, client: IpAddr, account: &str) {
    for _ in 0..2 {
        limits.password_attempt(client, account).await.unwrap();
        limits.password_failed(client, account).await.unwrap();
    }
}

#[tokio::test]
async fn a_burst_is_allowed_then_refused_with_a_retry_delay() {
    let limits = Limits::new(&config(true));
    let client = ip("198.51.100.7");
    assert!(limits.signup(client).await.is_ok());
    assert!(limits.signup(client).await.is_ok());
    let Err(Refused::RateLimited(wait)) = limits.signup(client).await else {
        panic!("the third signup was not limited");
    };
    assert!(
        wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
    assert!(limits.signup(ip("203.0.113.1")).await.is_ok());
}

#[tokio::test]
async fn a_locked_out_address_does_not_use_up_the_accounts_allowance() {
    let limits = Limits::new(&config(true));
    let (attacker, victim) = (ip("198.51.100.7"), ip("203.0.113.1"));
    lock_out(&limits, attacker, "ada").await;
    assert!(limits.password_attempt(attacker, "ada").await.is_err());
    assert!(limits.password_attempt(attacker, "ada").await.is_err());
    assert!(limits.password_attempt(victim, "ada").await.is_ok());
}

#[tokio::test]
async fn forgot_password_is_limited_per_address_and_per_email() {
    let limits = Limits::new(&config(true));
    let (client, other) = (ip("198.51.100.7"), ip("203.0.113.1"));
    assert!(
        limits
            .forgot_password(client, "ada@example.com")
            .await
            .is_ok()
    );
    assert!(
        limits
            .forgot_password(other, "ada@example.com")
            .await
            .is_ok()
    );
    // The email's allowance is spent, from any address.
    assert!(
        limits
            .forgot_password(client, "ada@example.com")
            .await
            .is_err()
    );
    // The first address has one request left, for another email; then it is spent too.
    assert!(
        limits
            .forgot_password(client, "bob@example.com")
            .await
            .is_ok()
    );
    assert!(
        limits
            .forgot_password(client, "eve@example.com")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn disabled_limits_refuse_nothing() {
    let limits = Limits::new(&config(false));
    let client = ip("198.51.100.7");
    for _ in 0..100 {
        assert!(limits.signup(client).await.is_ok());
        assert!(limits.password_attempt(client, "ada").await.is_ok());
        limits.password_failed(client, "ada").await.unwrap();
    }
}

#[tokio::test]
async fn a_flood_of_new_keys_stays_at_the_cap_and_keeps_attackers_limited() {
    let limits = Limits::new(&config(true));
    let attacker = ip("198.51.100.66");
    // Over the signup limit, and locked out of ada's account.
    while limits.signup(attacker).await.is_ok() {}
    lock_out(&limits, attacker, "ada").await;
    assert!(limits.password_attempt(attacker, "ada").await.is_err());

    for n in 0..100_000_u32 {
        let flooder = IpAddr::from((0x0a00_0000 | n).to_be_bytes());
        let account = format!("user{n}@example.com");
        let _ = limits.signup(flooder).await;
        let _ = limits.forgot_password(flooder, &account).await;
        if limits.password_attempt(flooder, &account).await.is_ok() {
            limits.password_failed(flooder, &account).await.unwrap();
        }
    }

    for (limit, keys) in limits.key_counts() {
        let flooded = !matches!(
            limit,
            "login_per_device" | "refresh_per_ip" | "resend_per_user"
        );
        assert_eq!(keys, if flooded { 1_000 } else { 0 }, "{limit}");
    }
    assert!(
        limits.signup(attacker).await.is_err(),
        "the attacker was forgotten"
    );
    assert!(limits.password_attempt(attacker, "ada").await.is_err());
}

#[tokio::test]
async fn ipv6_addresses_share_limits_per_64_and_ipv4_per_address() {
    let limits = Limits::new(&config(true));
    assert!(limits.signup(ip("2001:db8:1:2::1")).await.is_ok());
    assert!(
        limits
            .signup(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
            .await
            .is_ok()
    );
    assert!(limits.signup(ip("2001:db8:1:2::3")).await.is_err());
    assert!(limits.signup(ip("2001:db8:1:3::1")).await.is_ok());

    assert!(limits.signup(ip("198.51.100.1")).await.is_ok());
    assert!(limits.signup(ip("198.51.100.1")).await.is_ok());
    assert!(limits.signup(ip("::ffff:198.51.100.1")).await.is_err());
    assert!(limits.signup(ip("198.51.100.2")).await.is_ok());

    // The lockout is per /64 too.
    for host in ["2001:db8:9::1", "2001:db8:9::2"] {
        limits.password_attempt(ip(host), "ada").await.unwrap();
        limits.password_failed(ip(host), "ada").await.unwrap();
    }
    assert!(
        limits
            .password_attempt(ip("2001:db8:9::3"), "ada")
            .await
            .is_err()
    );
}

/// Shared state in memory, as PostgreSQL keeps it, counting the statements it is sent.
#[derive(Default)]
struct CountingShared {
    full_at: Mutex<std::collections::HashMap<(&'static str, Vec<u8>), Instant>>,
    admits: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl SharedLimits for CountingShared {
    async fn admit(
        &self,
        name: &'static str,
        key: &[u8],
        interval: Duration,
        burst: Duration,
    ) -> Result<Option<Duration>, Unavailable> {
        self.admits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = Instant::now();
        let mut full_at = self.full_at.lock().unwrap();
        let entry = full_at.entry((name, key.to_vec())).or_insert(now);
        let next = (*entry).max(now) + interval;
        if next > now + burst {
            return Ok(Some(next - (now + burst)));
        }
        *entry = next;
        Ok(None)
    }

    async fn locked_for(&self, _: &[u8]) -> Result<Option<Duration>, Unavailable> {
        Ok(None)
    }

    async fn failed(
        &self,
        _: &[u8],
        _: &(dyn Fn(u32) -> Option<Duration> + Sync),
        _: Duration,
    ) -> Result<(), Unavailable> {
        Ok(())
    }

    async fn succeeded(&self, _: &[u8]) -> Result<(), Unavailable> {
        Ok(())
    }

    async fn prune(&self) -> Result<(), Unavailable> {
        Ok(())
    }
}

fn shared_limits(refresh_per_ip: &str, shared: &Arc<CountingShared>) -> Limits {
    let config = LimitsConfig {
        refresh_per_ip: refresh_per_ip.parse().unwrap(),
        ..config(true)
    };
    Limits::with_shared(&config, Some(shared.clone() as Arc<dyn SharedLimits>))
}

async fn admitted_refreshes(limits: &Limits, client: IpAddr, requests: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..requests {
        match limits.refresh(client).await {
            Ok(()) => admitted += 1,
            Err(Refused::RateLimited(_)) => {}
            Err(Refused::Unavailable(err)) => panic!("{err}"),
        }
    }
    admitted
}

#[tokio::test]
async fn a_busy_address_refreshes_with_a_statement_per_many_requests() {
    let shared = Arc::new(CountingShared::default());
    let limits = shared_limits("1000000/s", &shared);
    let client = ip("198.51.100.7");
    assert_eq!(admitted_refreshes(&limits, client, 2_000).await, 2_000);
    let statements = shared.admits.load(std::sync::atomic::Ordering::Relaxed);
    assert!(statements <= 2_000 / 32, "{statements} statements");
}

#[tokio::test]
async fn reserved_refreshes_never_admit_more_than_the_limit_across_instances() {
    let shared = Arc::new(CountingShared::default());
    let (a, b) = (
        shared_limits("100/min", &shared),
        shared_limits("100/min", &shared),
    );
    let client = ip("198.51.100.7");
    let on_a = admitted_refreshes(&a, client, 40).await;
    let on_b = admitted_refreshes(&b, client, 150).await;
    let on_a = on_a + admitted_refreshes(&a, client, 150).await;
    assert_eq!(on_a + on_b, 100, "{on_a} on A, {on_b} on B");
    // What A reserved and had not used yet was all B went without.
    assert!(on_b >= 100 - 40 - 12, "{on_b} on B");
    // Another address has its own allowance.
    assert_eq!(admitted_refreshes(&b, ip("203.0.113.1"), 1).await, 1);
}
