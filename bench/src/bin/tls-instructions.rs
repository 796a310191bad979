//! Runs N server-side TLS handshakes (or keep-alive exchanges) in memory, for
//! counting the server's instructions with callgrind, which is steady on a
//! shared machine where timings are not:
//!
//! ```sh
//! cargo build --profile bench -p bench --bin tls-instructions
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     --toggle-collect='bench::tls::tls_server_*' \
//!     target/release/tls-instructions aws-lc-rs tls13_full 200
//! ```
//!
//! Only the server's calls are collected (see `bench::tls`), but the two
//! set-up handshakes are server calls too: run it with two counts and take
//! (Collected(N2) - Collected(N1)) / (N2 - N1). Under valgrind the CPU has
//! no ADX or SHA-NI, so aws-lc takes its generic paths there (see
//! `bench/README.md`); the binary also prints native timings (fastest and
//! median batch of 10), for a quiet machine.
//!
//! Arguments: provider (`aws-lc-rs`, `ring`), kind (`tls13_full`,
//! `tls13_resumed`, `tls12_full`, `keepalive` on rustls's buffered API,
//! `keepalive_unbuffered` on its unbuffered one), count, and optionally
//! `aes128` for a client offering only the AES-128-GCM/SHA-256 suites.

use bench::tls::{
    Handshakes, KeepAlive, Kind, Offer, Pki, Provider, REQUEST, RESPONSE, Unbuffered, client_flush,
    client_receive, tls_server_unbuffered,
};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tls-instructions aws-lc-rs|ring tls13_full|tls13_resumed|tls12_full|keepalive|keepalive_unbuffered COUNT [aes128]";
    let (offer, args) = match &args[..] {
        [rest @ .., last] if last == "aes128" => (Offer::Aes128, rest),
        all => (Offer::Default, all),
    };
    let [_, provider, kind, count] = args else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (Some(provider), Ok(count)) = (Provider::parse(provider), count.parse::<u32>()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let pki = Pki::new();
    let mut run: Box<dyn FnMut() -> Duration> = if kind == "keepalive" {
        let mut k = KeepAlive::new(provider, &pki);
        Box::new(move || k.exchange())
    } else if kind == "keepalive_unbuffered" {
        let (mut client, mut server) = Unbuffered::established(provider, &pki);
        let (mut c2s, mut plain, mut s2c) = (Vec::new(), Vec::new(), Vec::new());
        Box::new(move || {
            client.writer().write_all(REQUEST).expect("request");
            client_flush(&mut client, &mut c2s);
            plain.clear();
            let t = Instant::now();
            let out = tls_server_unbuffered(&mut server, &c2s, &mut plain, RESPONSE);
            let spent = t.elapsed();
            s2c.clear();
            s2c.extend_from_slice(out);
            assert_eq!(plain, REQUEST);
            client_receive(&mut client, &s2c);
            let mut answer = [0u8; 512];
            let n = client.reader().read(&mut answer).expect("answer");
            assert_eq!(&answer[..n], RESPONSE);
            spent
        })
    } else {
        let Some(kind) = Kind::parse(kind) else {
            eprintln!("{usage}");
            std::process::exit(2);
        };
        let mut h = Handshakes::offering(provider, kind, &pki, offer);
        eprintln!("suite: {}", h.suite());
        Box::new(move || h.run())
    };
    // Timings too, in batches of 10: on a shared machine the fastest batch
    // is the one least disturbed by others.
    let mut batches: Vec<f64> = (0..count.div_ceil(10))
        .map(|_| {
            let spent: Duration = (0..10).map(|_| run()).sum();
            spent.as_secs_f64() * 1e6 / 10.0
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    println!(
        "{} {kind}: {} runs, server µs each: fastest batch {:.1}, median batch {:.1}",
        provider.name(),
        batches.len() * 10,
        batches[0],
        batches[batches.len() / 2]
    );
}
