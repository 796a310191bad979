//! The hand-written HTTP/1.1 of the request path: [`request`] parses a head,
//! [`response`] writes an answer, [`date`] formats the `Date` header.

pub mod date;
pub mod request;
pub mod response;
