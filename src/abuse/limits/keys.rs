//! The keys the limits count by, and their bytes in the shared state.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A client that logged in to an account before, as named by its device token
/// (`crate::auth::DeviceTokens`): random bits that the token's MAC binds to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId(pub [u8; 16]);

/// An account as the limits know it: a digest of its normalised email. A fixed size, so what a
/// key costs does not depend on the address's length.
pub(super) type AccountKey = [u8; 16];

/// Where a password attempt came from, for the lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Origin {
    Address(IpAddr),
    Device(DeviceId),
}

/// The key of a client address. IPv6 addresses count per /64, the block one host or one
/// customer usually gets whole: otherwise a single machine could try from a new address each
/// time, past every per-address limit and the lockout. IPv4 addresses count one by one, and an
/// IPv4-mapped IPv6 address as its IPv4 address.
pub(super) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

pub(super) fn account_key(account: &str) -> AccountKey {
    let digest = Sha256::digest(account.as_bytes());
    let mut key = AccountKey::default();
    let len = key.len();
    key.copy_from_slice(&digest[..len]);
    key
}

pub(super) fn origin(ip: IpAddr, device: Option<DeviceId>) -> Origin {
    device.map_or(Origin::Address(address_key(ip)), Origin::Device)
}

/// A key as the shared state stores it.
pub(super) trait LimitKey: Copy + Ord + Hash {
    fn bytes(&self) -> Vec<u8>;
}

impl LimitKey for IpAddr {
    fn bytes(&self) -> Vec<u8> {
        match self {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        }
    }
}

impl LimitKey for AccountKey {
    fn bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl LimitKey for DeviceId {
    fn bytes(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

impl LimitKey for Uuid {
    fn bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

/// A lockout record's key in the shared state: the account, then what kind of origin, then the
/// origin.
pub(super) fn lockout_key((account, origin): (AccountKey, Origin)) -> Vec<u8> {
    let (kind, origin) = match origin {
        Origin::Address(ip) => (b'a', ip.bytes()),
        Origin::Device(device) => (b'd', device.bytes()),
    };
    [account.as_slice(), &[kind], &origin].concat()
}
