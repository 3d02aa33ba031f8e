use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Proxies whose `X-Forwarded-For` is believed (`LATCHKEY_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) and single addresses (`127.0.0.1`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is not an IP address or CIDR"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client behind `peer`. Only a trusted peer's `X-Forwarded-For` is read, right to
    /// left: each trusted hop is skipped, and the first untrusted address is the client. What
    /// anyone else writes there is ignored, so a spoofed header changes nothing.
    ///
    /// A hop that is not an address (`unknown`, an obfuscated name, garbage) ends the walk and
    /// the last trusted hop seen is the client: skipping it would let whatever the client wrote
    /// further left choose its own address, and escape every per-address limit. IPv4-mapped IPv6
    /// addresses count as their IPv4 address, as a dual-stack listener reports IPv4 peers so.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(&peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.trusts(&ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, bare or with a port (`198.51.100.7:5678`,
/// `[2001:db8::1]:443`), or a bracketed IPv6 address (`[2001:db8::1]`), as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let bracketed = || {
        let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
        inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    };
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(bracketed)
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(&["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap()
    }

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let client = proxies().client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter());
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_names_the_client_right_to_left() {
        // A spoofed left-most entry, the real client, then two of our proxies.
        let hops = ["6.6.6.6", "198.51.100.7", "10.1.2.3"];
        let client = proxies().client_ip(ip("127.0.0.1"), hops.into_iter());
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn no_header_means_the_peer() {
        let client = proxies().client_ip(ip("10.0.0.1"), std::iter::empty());
        assert_eq!(client, ip("10.0.0.1"));
    }

    #[test]
    fn hops_with_ports_and_brackets_are_parsed() {
        for (hop, expected) in [
            ("198.51.100.7:5678", "198.51.100.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            (" 198.51.100.7 ", "198.51.100.7"),
        ] {
            let hops = ["6.6.6.6", hop, "10.1.2.3:80"];
            let client = proxies().client_ip(ip("127.0.0.1"), hops.into_iter());
            assert_eq!(client, ip(expected), "{hop:?}");
        }
    }

    #[test]
    fn an_unparseable_hop_stops_the_walk_at_the_last_trusted_hop() {
        // Skipping `unknown` (or garbage) would hand the choice of address to whatever the
        // client wrote further left.
        for junk in [
            "unknown",
            "junk",
            "",
            "_hidden",
            "198.51.100.7:port",
            "[2001:db8::1",
        ] {
            let hops = ["6.6.6.6", junk, "10.1.2.3"];
            let client = proxies().client_ip(ip("127.0.0.1"), hops.into_iter());
            assert_eq!(client, ip("10.1.2.3"), "{junk:?}");
            let client = proxies().client_ip(ip("10.0.0.1"), ["6.6.6.6", junk].into_iter());
            assert_eq!(client, ip("10.0.0.1"), "{junk:?}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let client =
            proxies().client_ip(ip("::ffff:127.0.0.1"), ["::ffff:198.51.100.7"].into_iter());
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example.com".into()]).is_err());
    }
}
