//! `latchkey healthcheck`: whether the server configured here answers `GET /healthz`, for a
//! container's HEALTHCHECK without curl in the image.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The whole check, connection included, stays within this, so it ends before the image's
/// HEALTHCHECK --timeout (5 s) would kill it and report a timeout instead of the reason.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET /healthz` over plain HTTP/1.0 on a blocking socket: one request and a status line do not
/// justify an HTTP client dependency, and the command runs nothing else that could be blocked.
pub fn check(addr: &str) -> Result<(), String> {
    let target = probe_address(addr)?;
    let deadline = Instant::now() + HEALTHCHECK_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&target, HEALTHCHECK_TIMEOUT)
        .map_err(|error| format!("{} to {target}", crate::io_error::describe(&error)))?;
    let failed = |error: std::io::Error| {
        format!("{} talking to {target}", crate::io_error::describe(&error))
    };
    stream
        .set_write_timeout(Some(remaining(deadline, target)?))
        .map_err(failed)?;
    stream
        .write_all(
            format!("GET /healthz HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(failed)?;
    // Only the status line matters. Reading stops at its end, and the deadline is checked
    // before every read, so a server trickling bytes cannot hold the check past the timeout.
    let mut head = Vec::new();
    let mut chunk = [0_u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        stream
            .set_read_timeout(Some(remaining(deadline, target)?))
            .map_err(failed)?;
        match stream.read(&mut chunk).map_err(failed)? {
            0 => break,
            read => head.extend_from_slice(&chunk[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status_line = head.lines().next().unwrap_or_default().trim_end();
    let mut parts = status_line.split(' ');
    match (parts.next(), parts.next()) {
        (Some(version), Some("200")) if version.starts_with("HTTP/") => Ok(()),
        _ if status_line.is_empty() => Err(format!("no answer from {target}")),
        _ => Err(format!("GET /healthz on {target} answered {status_line:?}")),
    }
}

/// Where a client reaches a server bound to `addr`: an unspecified address (0.0.0.0 or [::], as
/// in the container) accepts connections on loopback of the same family, the one address the
/// check can rely on; host names (`localhost:8080`) are resolved like the server resolves them.
fn probe_address(addr: &str) -> Result<SocketAddr, String> {
    let mut target = addr
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve LATCHKEY_ADDR {addr}: {error}"))?
        .next()
        .ok_or_else(|| format!("LATCHKEY_ADDR {addr} resolves to no address"))?;
    if target.ip().is_unspecified() {
        target.set_ip(match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(target)
}

/// Time left before the deadline; an error once it has passed, since a zero socket timeout is
/// not "no time left" but invalid.
fn remaining(deadline: Instant, target: SocketAddr) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(format!("timed out talking to {target}"));
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::probe_address;

    /// On Linux a connection to 0.0.0.0 happens to reach loopback anyway, so the integration
    /// test against a server cannot tell whether the address was rewritten; this can.
    #[test]
    fn an_unspecified_address_is_probed_on_loopback_of_its_family() {
        let probe = |addr| probe_address(addr).unwrap().to_string();
        assert_eq!(probe("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(probe("[::]:8080"), "[::1]:8080");
        assert_eq!(probe("10.1.2.3:80"), "10.1.2.3:80");
    }
}
