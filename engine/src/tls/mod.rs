//! TLS for the redirect port: certificates per SNI name, the node's rustls
//! configuration, ticket keys shared across nodes, and a connection driven
//! by byte buffers for the I/O backends.
//!
//! # The model
//!
//! A node has one [`store::CertStore`]: it loads the certificate directory
//! ([`certs`]: `NAME.crt` + `NAME.key` per name, each pair checked and
//! refused on its own) and the ticket keys ([`ticket`], or rustls's own
//! rotating ones), and builds the node's one `Arc<rustls::ServerConfig>`
//! ([`config`]). Every core holds that `Arc` and starts each new
//! connection's [`conn::TlsConn`] from it; the cores share its ticketer and
//! session cache, so a ticket issued on one core resumes on any. When the
//! directory or key file changes the store builds a new config around the
//! same ticketer and cache and hands it out (the engine passes it to the
//! cores on their command channels); established connections keep theirs.
//!
//! [`conn::TlsConn`] owns no socket: the backend gives it received
//! ciphertext and takes ciphertext to send, and in between the existing
//! `core::session::Session` answers the decrypted requests, so plain and TLS
//! connections share every HTTP rule.
//!
//! Wired in by the backends (`backend::uring::tls`: a `TlsConn` in the
//! connection slot, driven by the ring's completions;
//! `backend::glommio_net::tls`: a connection task around one) and by the
//! control thread (`crate::tls_control`: the store, its reloads sent to the
//! cores, pairs pushed to the admin port).

pub mod certs;
pub mod config;
pub mod conn;
pub mod store;
#[cfg(test)]
mod testpki;
pub mod ticket;
mod validity;
