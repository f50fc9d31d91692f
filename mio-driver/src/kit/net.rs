//! Binding and resolving, the same for every driver: OxenMQ's address forms become sockets.
//!
//! The node asks for listeners and dials with [`Address`]es (`tcp://host:port`, `tcp://*:port`,
//! `ipc:///path`). [`bind`] turns one into a bound, non-blocking standard-library listener
//! (a poller-based driver converts it, as mio's `from_std` does), applying a unix socket's
//! permissions and replacing a stale socket file as libzmq does; [`resolve`] looks a host name
//! up, preferring IPv4 as OxenMQ does with IPv6 off. Both block on the operating system (a
//! host name lookup can take long): drivers that must not block resolve on another thread.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use lokimq_core::address::Address;
use lokimq_core::node::DisconnectCause;

/// Who may connect to a unix-socket listener: permission bits and owner applied to the socket
/// file right after binding (OxenMQ's `STARTUP_UMASK`, `SOCKET_UID` and `SOCKET_GID`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnixSocketAccess {
    /// Permission bits of the socket file (e.g. `0o660`).
    pub mode: Option<u32>,
    /// Owner of the socket file.
    pub uid: Option<u32>,
    /// Group of the socket file.
    pub gid: Option<u32>,
}

/// A bound listening socket, non-blocking.
#[derive(Debug)]
pub enum BoundListener {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A unix-socket listener.
    Unix(UnixListener),
}

/// What [`bind`] bound.
#[derive(Debug)]
pub struct Bound {
    /// The socket.
    pub listener: BoundListener,
    /// The address actually bound (the real port for `tcp://…:0`), without a pubkey.
    pub local: Address,
    /// For a unix socket, the file to remove when the listener closes (as libzmq does).
    pub unix_path: Option<PathBuf>,
}

/// Resolves `host:port`, preferring IPv4 as OxenMQ does with IPv6 off.
///
/// # Errors
///
/// OxenMQ's "could not resolve" text, with the resolver's reason.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("could not resolve {host}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("could not resolve {host}: no addresses"))
}

/// The TCP socket address to dial for `addr`, resolving a host name (which blocks), or the unix
/// socket path; `Err` says why it cannot be dialled at all.
///
/// # Errors
///
/// An address with neither a usable host and port nor a path, or a name that does not resolve.
pub fn dial_target(addr: &Address) -> Result<DialTarget, String> {
    if let Some(path) = addr.socket() {
        return Ok(DialTarget::Unix(PathBuf::from(path)));
    }
    if let Some(sa) = addr.socket_addr() {
        return Ok(DialTarget::Tcp(sa));
    }
    match (addr.host(), addr.port()) {
        (Some(host), Some(port)) => resolve(host, port).map(DialTarget::Tcp),
        _ => Err(format!("cannot dial {addr}")),
    }
}

/// Where to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A unix socket path.
    Unix(PathBuf),
}

/// Binds a listener: TCP (`*` meaning every interface) or a unix socket (replacing a stale
/// socket file, then applying `access`), in non-blocking mode.
///
/// # Errors
///
/// The operating system's, or an address without a port or host.
pub fn bind(addr: &Address, access: UnixSocketAccess) -> io::Result<Bound> {
    if let Some(path) = addr.socket() {
        let path = PathBuf::from(path);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            std::fs::remove_file(&path)?;
        }
        let l = UnixListener::bind(&path)?;
        if let Err(e) = apply_unix_access(&path, access) {
            // Best effort: a socket file nobody may use must not linger.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        l.set_nonblocking(true)?;
        return Ok(Bound {
            listener: BoundListener::Unix(l),
            local: Address::ipc(path.to_string_lossy().into_owned()),
            unix_path: Some(path),
        });
    }
    let port = addr
        .port()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no port"))?;
    let sa = match (addr.socket_addr(), addr.host()) {
        (Some(sa), _) => sa,
        (None, Some("*")) => SocketAddr::from(([0, 0, 0, 0], port)),
        (None, Some(host)) => {
            resolve(host, port).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        }
        (None, None) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "no host")),
    };
    let l = std::net::TcpListener::bind(sa)?;
    l.set_nonblocking(true)?;
    let local = l.local_addr()?;
    Ok(Bound {
        listener: BoundListener::Tcp(l),
        local: Address::from_socket_addr(local),
        unix_path: None,
    })
}

/// Applies a unix listener's permission bits and owner (OxenMQ's umask, uid and gid options).
fn apply_unix_access(path: &Path, access: UnixSocketAccess) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(mode) = access.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot set permissions on {}: {e}", path.display()),
            )
        })?;
    }
    if access.uid.is_some() || access.gid.is_some() {
        std::os::unix::fs::chown(path, access.uid, access.gid).map_err(|e| {
            let what = if access.gid.is_some() {
                "group"
            } else {
                "owner"
            };
            io::Error::new(
                e.kind(),
                format!("cannot set {what} on {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}

/// How a failed dial is reported to the node: a refusal is told apart (the node fails a
/// `connect_remote` at once with `ConnectError::Refused`); anything else keeps the system's
/// text.
#[must_use]
pub fn connect_failure(e: &io::Error) -> DisconnectCause {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        DisconnectCause::Refused
    } else {
        DisconnectCause::ConnectFailed(e.to_string())
    }
}

/// The peer's address as the node wants it in `accept`: an IP without port, "(unknown)" for a
/// unix peer (OxenMQ's text for a missing peer address).
#[must_use]
pub fn peer_text(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| String::from("(unknown)"), |a| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_tcp_on_an_ephemeral_port_and_reports_it() {
        let b = bind(&Address::tcp("127.0.0.1", 0), UnixSocketAccess::default()).unwrap();
        assert!(b.local.port().is_some_and(|p| p != 0));
        assert!(matches!(b.listener, BoundListener::Tcp(_)));
    }

    #[test]
    fn binds_unix_replacing_a_stale_socket_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let addr = Address::ipc(path.to_string_lossy().into_owned());
        let access = UnixSocketAccess {
            mode: Some(0o600),
            ..UnixSocketAccess::default()
        };
        drop(bind(&addr, access).unwrap());
        // The file is left behind by the drop above: a second bind replaces it.
        let b = bind(&addr, access).unwrap();
        assert_eq!(b.unix_path.as_deref(), Some(path.as_path()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn dial_targets() {
        assert_eq!(
            dial_target(&Address::tcp("127.0.0.1", 5)).unwrap(),
            DialTarget::Tcp(SocketAddr::from(([127, 0, 0, 1], 5)))
        );
        assert_eq!(
            dial_target(&Address::tcp("localhost", 6)).unwrap(),
            DialTarget::Tcp(SocketAddr::from(([127, 0, 0, 1], 6)))
        );
        assert!(dial_target(&Address::tcp("no-such-host.invalid", 1)).is_err());
    }

    #[test]
    fn peer_texts() {
        assert_eq!(peer_text(None), "(unknown)");
        assert_eq!(
            peer_text(Some(SocketAddr::from(([10, 0, 0, 1], 99)))),
            "10.0.0.1"
        );
    }
}
