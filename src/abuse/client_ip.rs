use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use ipnet::IpNet;

use crate::error::ApiError;
use crate::startup::AppState;

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
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.trusts(&peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                continue;
            };
            client = ip;
            if !self.trusts(&ip) {
                break;
            }
        }
        client
    }
}

/// The address of the client that sent the request, through trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(client_ip(req))
    }
}

fn client_ip(req: &HttpRequest) -> Result<ClientIp, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state is missing")))?;
    let peer = req
        .peer_addr()
        .map(|addr| addr.ip())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the peer address is unknown")))?;
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    Ok(ClientIp(
        state.trusted_proxies.client_ip(peer, hops.into_iter()),
    ))
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
    fn garbage_hops_are_skipped_and_no_header_means_the_peer() {
        let client = proxies().client_ip(ip("10.0.0.1"), ["198.51.100.7", "junk"].into_iter());
        assert_eq!(client, ip("198.51.100.7"));
        let client = proxies().client_ip(ip("10.0.0.1"), std::iter::empty());
        assert_eq!(client, ip("10.0.0.1"));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example.com".into()]).is_err());
    }
}
