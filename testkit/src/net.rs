//! Free loopback ports for servers started by a test.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A loopback address (`127.0.0.1:port`) whose port was free a moment ago: bound on
/// port 0, read back, and released.
///
/// There is a small race: between the release and the code under test binding it,
/// another process (or a parallel test) may take the port; the kernel hands out
/// ephemeral ports in rotation, so this is rare. Where the code under test can take a
/// listener or report the address it bound (bind to port 0 itself), prefer that.
///
/// # Panics
///
/// When no loopback port can be bound at all (the machine is out of ports).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("testkit::free_addr: cannot bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("testkit::free_addr: bound socket has no local address")
}

/// The port of [`free_addr`], with the same race.
pub fn free_port() -> u16 {
    free_addr().port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_can_be_bound_again() {
        let addr = free_addr();
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(addr.port(), 0);
        TcpListener::bind(addr).expect("a port free_addr returned is bindable");
        assert_ne!(free_port(), 0);
    }
}
