//! Micro-benchmarks of the per-request token work, through the library's public API only:
//! access tokens (sign and verify: HS256, and per algorithm HS256, EdDSA, ES256), refresh tokens (generate, successor, SHA-256 lookup
//! key) and the in-memory revocation set.
//!
//! `cargo bench --bench auth` measures; `cargo bench --bench auth -- --test` runs every
//! benchmark once without timing (what CI runs). Whole-server figures are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use latchkey::auth::{
    AccessTokens, JwtAlgorithm, JwtSecret, KeySet, PrivateKey, RefreshTokens, RevocationList,
    SigningKeys,
};
use latchkey::domain::Role;
use uuid::Uuid;

const SECRET: &str = "Bm4Xq9Tv2Nk7Rz5Wc1Ly8Hd3Jf6Gs0Pa";

fn secret() -> JwtSecret {
    JwtSecret::new(SECRET).expect("the benchmark secret is long enough")
}

fn access_tokens() -> AccessTokens {
    AccessTokens::new(
        &KeySet::single(secret()),
        "latchkey",
        Duration::from_secs(900),
    )
}

fn access(c: &mut Criterion) {
    let tokens = access_tokens();
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    let mut group = c.benchmark_group("access_token");
    group.bench_function("issue", |b| {
        b.iter(|| {
            tokens
                .issue(black_box(user), black_box(session), Role::User)
                .expect("issues")
        })
    });
    let token = tokens
        .issue(user, session, Role::User)
        .expect("issues")
        .token;
    group.bench_function("verify", |b| {
        b.iter(|| tokens.verify(black_box(&token)).expect("verifies"))
    });
    // What a forged or corrupted token costs: the signature check fails.
    let mut forged = token.clone();
    let last = forged.pop().expect("a token is not empty");
    forged.push(if last == 'A' { 'B' } else { 'A' });
    group.bench_function("verify_bad_signature", |b| {
        b.iter(|| tokens.verify(black_box(&forged)).expect_err("refused"))
    });
    group.finish();
}

/// Access tokens signed with `alg`: the secret for HS256, a generated key pair otherwise.
fn access_tokens_with(alg: JwtAlgorithm) -> AccessTokens {
    let ttl = Duration::from_secs(900);
    if !alg.is_asymmetric() {
        return access_tokens();
    }
    let key = PrivateKey::generate(alg).expect("generates a key");
    let keys = SigningKeys::new(alg, key, vec![], vec![]).expect("one key is a key set");
    AccessTokens::asymmetric(&keys, "latchkey", ttl)
}

/// Sign and verify for each `LATCHKEY_JWT_ALG`, side by side.
fn access_by_algorithm(c: &mut Criterion) {
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    let mut group = c.benchmark_group("access_token_by_alg");
    for alg in [
        JwtAlgorithm::HS256,
        JwtAlgorithm::EdDSA,
        JwtAlgorithm::ES256,
    ] {
        let tokens = access_tokens_with(alg);
        group.bench_function(BenchmarkId::new("issue", alg), |b| {
            b.iter(|| {
                tokens
                    .issue(black_box(user), black_box(session), Role::User)
                    .expect("issues")
            })
        });
        let token = tokens
            .issue(user, session, Role::User)
            .expect("issues")
            .token;
        group.bench_function(BenchmarkId::new("verify", alg), |b| {
            b.iter(|| tokens.verify(black_box(&token)).expect("verifies"))
        });
    }
    group.finish();
}

fn refresh(c: &mut Criterion) {
    let tokens = RefreshTokens::new(&secret());
    let mut group = c.benchmark_group("refresh_token");
    let session = Uuid::new_v4();
    group.bench_function("generate", |b| b.iter(|| tokens.generate(session)));
    let parent = tokens.generate(session);
    group.bench_function("successor", |b| {
        b.iter(|| tokens.successor(black_box(parent.as_str()), session, 1))
    });
    group.bench_function("hash", |b| b.iter(|| black_box(&parent).hash()));
    group.bench_function("read", |b| {
        b.iter(|| tokens.read(black_box(parent.as_str())))
    });
    // Everything a refresh does with tokens before its database transaction.
    group.bench_function("rotate_tokens", |b| {
        b.iter_batched(
            || tokens.generate(session).into_string(),
            |presented| {
                let lookup = tokens.read(&presented);
                let next = tokens.successor(&presented, session, 1);
                (lookup, next.hash(), next)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn revocation(c: &mut Criterion) {
    let mut group = c.benchmark_group("revocation_list");
    for size in [0_usize, 10_000] {
        let list = RevocationList::new(TimeDelta::seconds(910));
        let now = Utc::now();
        let revoked: Vec<Uuid> = (0..size).map(|_| Uuid::new_v4()).collect();
        list.revoke(revoked.iter().map(|id| (*id, now)));
        assert_eq!(list.len(), size);
        let miss = Uuid::new_v4();
        group.bench_with_input(BenchmarkId::new("is_revoked_miss", size), &miss, |b, id| {
            b.iter(|| list.is_revoked(black_box(id)))
        });
        if let Some(hit) = revoked.get(size / 2) {
            group.bench_with_input(BenchmarkId::new("is_revoked_hit", size), hit, |b, id| {
                b.iter(|| list.is_revoked(black_box(id)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: these functions take micro- or nanoseconds, and two seconds of samples are
    // plenty for them on a 2-core machine.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = access, access_by_algorithm, refresh, revocation
}
criterion_main!(benches);
