//! Where a presented refresh token stands. A session keeps one row however often it refreshes:
//! the live token's hash, its generation and expiry, and when it replaced its predecessor. A token
//! names its session and generation, so an older generation is an ancestor of the live token:
//! presented again after the reuse interval, it is a copy, and the session ends as stolen.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a session's row says of its refresh tokens.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Chain {
    pub refresh_hash: Option<String>,
    pub refresh_generation: i64,
    pub refresh_rotated_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    /// The session's live token.
    Live(Uuid),
    /// Rotated away within the reuse interval: a concurrent refresh, perhaps. Only the token the
    /// live one directly replaced (`predecessor`) may be answered with the live one.
    JustRotated {
        session_id: Uuid,
        predecessor: bool,
    },
    /// Rotated away before the reuse interval: someone holds a copy.
    Reused(Uuid),
    Invalid,
}

/// How a token of the current form, of `generation` and with lookup key `hash`, stands in its
/// session's `chain`. An older generation counts as an ancestor only with an authentic tag (else
/// anyone who knows a session id could end it). When the chain moved on within the reuse
/// interval, an older token might have been rotated in it too, so it is refused, not judged
/// stolen, as it would be if each token kept the time of its own rotation.
pub(super) fn standing(
    session_id: Uuid,
    generation: u32,
    authentic: bool,
    hash: &str,
    chain: &Chain,
    now: DateTime<Utc>,
    reuse_since: DateTime<Utc>,
) -> Standing {
    let generation = i64::from(generation);
    let live = chain
        .refresh_expires_at
        .is_some_and(|expires| expires > now);
    if generation == chain.refresh_generation {
        return if live && chain.refresh_hash.as_deref() == Some(hash) {
            Standing::Live(session_id)
        } else {
            Standing::Invalid
        };
    }
    if generation > chain.refresh_generation {
        return Standing::Invalid;
    }
    if chain
        .refresh_rotated_at
        .is_some_and(|rotated| rotated >= reuse_since)
    {
        Standing::JustRotated {
            session_id,
            predecessor: generation + 1 == chain.refresh_generation,
        }
    } else if authentic {
        Standing::Reused(session_id)
    } else {
        Standing::Invalid
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn chain(generation: i64, rotated_ago: TimeDelta, now: DateTime<Utc>) -> Chain {
        Chain {
            refresh_hash: Some("live".to_owned()),
            refresh_generation: generation,
            refresh_rotated_at: Some(now - rotated_ago),
            refresh_expires_at: Some(now + TimeDelta::days(30)),
        }
    }

    #[test]
    fn each_generation_stands_where_the_rules_put_it() {
        let (id, now) = (Uuid::new_v4(), Utc::now());
        let reuse_since = now - TimeDelta::seconds(10);
        let settled = chain(5, TimeDelta::minutes(1), now);
        let moving = chain(5, TimeDelta::seconds(1), now);
        let judge = |generation, authentic, hash, chain: &Chain| {
            standing(id, generation, authentic, hash, chain, now, reuse_since)
        };
        assert_eq!(judge(5, true, "live", &settled), Standing::Live(id));
        assert_eq!(judge(5, false, "live", &settled), Standing::Live(id));
        assert_eq!(judge(5, true, "forged", &settled), Standing::Invalid);
        assert_eq!(judge(6, true, "live", &settled), Standing::Invalid);
        assert_eq!(judge(4, true, "old", &settled), Standing::Reused(id));
        assert_eq!(judge(0, true, "old", &settled), Standing::Reused(id));
        assert_eq!(judge(2, false, "made-up", &settled), Standing::Invalid);
        assert_eq!(
            judge(4, true, "old", &moving),
            Standing::JustRotated {
                session_id: id,
                predecessor: true
            }
        );
        assert_eq!(
            judge(3, true, "old", &moving),
            Standing::JustRotated {
                session_id: id,
                predecessor: false
            }
        );
    }

    #[test]
    fn an_expired_live_token_and_a_session_without_a_chain_are_invalid() {
        let (id, now) = (Uuid::new_v4(), Utc::now());
        let mut expired = chain(1, TimeDelta::days(40), now);
        expired.refresh_expires_at = Some(now - TimeDelta::seconds(1));
        let legacy = Chain {
            refresh_hash: None,
            refresh_generation: 0,
            refresh_rotated_at: None,
            refresh_expires_at: Some(now + TimeDelta::days(1)),
        };
        for chain in [expired, legacy] {
            assert_eq!(
                standing(
                    id,
                    chain.refresh_generation as u32,
                    true,
                    "live",
                    &chain,
                    now,
                    now
                ),
                Standing::Invalid
            );
        }
    }
}
