use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn ring(now: i64) -> KeyRing {
    KeyRing::generate(JwtAlgorithm::EdDSA, now).unwrap()
}

#[test]
fn a_new_ring_has_a_current_key_and_a_published_next_one() {
    let ring = ring(1000);
    let keys = ring.signing_keys(1000, HOUR).unwrap();
    assert_eq!(keys.current_kid(), ring.kids(KeyState::Current)[0]);
    let published: Vec<&str> = keys.published().iter().map(|key| key.kid()).collect();
    assert_eq!(published.len(), 2);
    assert_eq!(published[1], ring.kids(KeyState::Next)[0]);
}

#[test]
fn the_stored_form_reads_back_as_the_same_ring() {
    let ring = ring(1000).rotate(5000, HOUR, false).unwrap();
    let again = KeyRing::parse(JwtAlgorithm::EdDSA, &ring.to_json()).unwrap();
    for state in [KeyState::Next, KeyState::Current, KeyState::Previous] {
        assert_eq!(again.kids(state), ring.kids(state));
    }
    assert!(KeyRing::parse(JwtAlgorithm::ES256, &ring.to_json()).is_err());
}

#[test]
fn a_rotation_promotes_next_retires_current_and_publishes_a_new_next() {
    let before = ring(1000);
    let (current, next) = (before.kids(KeyState::Current), before.kids(KeyState::Next));
    let after = before.rotate(5000, HOUR, false).unwrap();
    assert_eq!(after.kids(KeyState::Current), next);
    assert_eq!(after.kids(KeyState::Previous), current);
    let new_next = after.kids(KeyState::Next);
    assert_eq!(new_next.len(), 1);
    assert!(new_next != next && new_next != current);
}

#[test]
fn a_next_key_signs_only_once_it_has_been_published_long_enough() {
    let refused = ring(1000).rotate(1000 + 600, HOUR, false);
    assert_eq!(
        refused.err(),
        Some(RotateRefused::TooSoon { wait_secs: 3000 })
    );
    assert!(ring(1000).rotate(1000 + 600, HOUR, true).is_ok());
}

#[test]
fn a_previous_key_verifies_until_its_tokens_have_expired_then_goes() {
    let ring = ring(0).rotate(10_000, HOUR, false).unwrap();
    let previous = ring.kids(KeyState::Previous)[0].clone();
    let verifies = |now| {
        let keys = ring.signing_keys(now, Duration::from_secs(910)).unwrap();
        keys.published().iter().any(|key| key.kid() == previous)
    };
    assert!(verifies(10_000));
    assert!(verifies(10_909));
    assert!(!verifies(10_910));
}

#[test]
fn previous_keys_leave_the_stored_ring_after_any_token_lifetime() {
    let ring = ring(0)
        .rotate(10_000, HOUR, false)
        .unwrap()
        .rotate(20_000, HOUR, false)
        .unwrap();
    assert_eq!(ring.kids(KeyState::Previous).len(), 2);
    let later = ring
        .rotate(10_000 + KEEP_PREVIOUS_SECS, HOUR, false)
        .unwrap();
    assert_eq!(later.kids(KeyState::Previous).len(), 2);
}

#[test]
fn a_damaged_stored_ring_is_refused_without_echoing_it() {
    let text = ring(0).to_json();
    let two_current = text.replace("\"next\"", "\"current\"");
    assert!(KeyRing::parse(JwtAlgorithm::EdDSA, &two_current).is_err());
    let why = KeyRing::parse(JwtAlgorithm::EdDSA, &text[..text.len() / 2])
        .err()
        .unwrap();
    assert!(!why.contains("pkcs8"), "{why}");
}
