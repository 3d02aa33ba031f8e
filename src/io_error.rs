//! I/O errors as an operator reads them.

/// What is wrong, without "(os error 2)".
pub(crate) fn describe(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        // A socket's read timeout reports WouldBlock on Unix.
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".to_owned(),
        std::io::ErrorKind::AddrInUse => "address already in use".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "address not available on this machine".to_owned(),
        _ => err.to_string(),
    }
}
