//! The client's address as the extractor [`ClientIp`], resolved through trusted proxies by
//! [`crate::abuse::TrustedProxies`].

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::http::error::ApiError;

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
    let state = super::app_state(req)?;
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
