use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn parse(flag: &str, value: u64) -> Result<Config, clap::Error> {
    Cli::try_parse_from(["latchkey", &format!("--{flag}={value}")]).map(|cli| cli.config)
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let config = Config::defaults();
    assert_eq!(config.server.addr, "127.0.0.1:8080");
    assert_eq!(config.database.database_url, "sqlite://latchkey.db");
    assert_eq!(config.tokens.jwt_secret, None);
    assert_eq!(config.tokens.jwt_alg, crate::auth::JwtAlgorithm::HS256);
    assert_eq!(config.tokens.jwt_key_reload_interval, 5);
    assert_eq!(config.tokens.access_ttl, 900);
    assert_eq!(config.tokens.refresh_ttl, 30 * 86_400);
    assert_eq!(config.abuse.rate_login_per_ip, "20/min".parse().unwrap());
    assert!(config.abuse.rate_limits);
    assert_eq!(config.server.workers, None);
}

/// Found in the field: a refresh TTL this large was accepted, and every signup then panicked
/// its worker adding it to the current time.
#[test]
fn a_refresh_ttl_past_any_date_is_refused() {
    assert!(parse("refresh-ttl", 99_999_999_999_999).is_err());
}

#[test]
fn every_duration_setting_accepts_its_maximum_and_refuses_more() {
    for (flag, max) in [
        ("access-ttl", 86_400),
        ("refresh-ttl", MAX_SESSION_SECS),
        ("session-max-age", MAX_SESSION_SECS),
        ("refresh-reuse-interval", 300),
        ("jwt-key-reload-interval", 300),
        ("prune-interval", MAX_PRUNE_INTERVAL_SECS),
        ("lockout-base-delay", 900),
        ("reset-ttl", 7 * 86_400),
        ("verify-ttl", 30 * 86_400),
    ] {
        assert!(parse(flag, max).is_ok(), "--{flag}={max} was refused");
        assert!(
            parse(flag, max + 1).is_err(),
            "--{flag}={} was accepted",
            max + 1
        );
    }
}
