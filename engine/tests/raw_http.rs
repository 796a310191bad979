//! Raw-socket tests: split requests, pipelining, every malformed case, slow
//! and oversized heads, limits; after each, the engine still answers.

mod common;

use common::{Engine, parse_responses, raw, read_responses, read_to_close, snapshot_dir};
use snapshots::Link;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn engine(extra: &[&str]) -> (tempfile::TempDir, Engine) {
    let (dir, path) = snapshot_dir(1, &[Link::new("abc", "https://example.com/abc")]);
    let mut args = vec!["--snapshot", path.to_str().unwrap(), "--cores", "1"];
    args.extend_from_slice(extra);
    let engine = Engine::start(&args);
    (dir, engine)
}

fn still_serves(engine: &Engine) {
    assert_eq!(
        engine.get("/abc"),
        (301, Some("https://example.com/abc".into()))
    );
}

#[test]
fn request_split_at_every_byte() {
    let (_dir, engine) = engine(&[]);
    let request =
        b"GET /abc?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: split-test\r\nAccept: */*\r\n\r\n";
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for split in 1..request.len() {
        stream.write_all(&request[..split]).unwrap();
        stream.flush().unwrap();
        // Make the first part a separate read on the server more often than
        // not; correctness does not depend on it.
        std::thread::yield_now();
        stream.write_all(&request[split..]).unwrap();
        let responses = read_responses(&mut stream, 1);
        assert_eq!(responses.len(), 1, "split at {split}");
        assert_eq!(responses[0].status, 301, "split at {split}");
        assert_eq!(
            responses[0].header("location"),
            Some("https://example.com/abc")
        );
    }
    // Byte by byte in one go, too.
    for byte in request {
        stream.write_all(&[*byte]).unwrap();
    }
    assert_eq!(read_responses(&mut stream, 1)[0].status, 301);
}

#[test]
fn hundred_pipelined_requests_in_one_write() {
    let (_dir, engine) = engine(&[]);
    let mut batch = Vec::new();
    for i in 0..100 {
        let path = if i % 3 == 0 { "/nope" } else { "/abc" };
        let method = if i % 10 == 9 { "HEAD" } else { "GET" };
        batch.extend_from_slice(
            format!("{method} {path} HTTP/1.1\r\nHost: h\r\nX-N: {i}\r\n\r\n").as_bytes(),
        );
    }
    batch.extend_from_slice(b"GET /abc HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let bytes = raw(engine.listen, &batch);
    let text = String::from_utf8(bytes).unwrap();
    // Bodies end in "\n" and HEAD answers have none, so split on the
    // status lines themselves.
    let statuses: Vec<&str> = text.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
    assert_eq!(statuses.len(), 101, "{text}");
    for (i, status) in statuses.iter().take(100).enumerate() {
        let expected = if i % 3 == 0 { "404" } else { "301" };
        assert_eq!(*status, expected, "response {i}");
    }
    assert_eq!(statuses[100], "301");
    assert!(text.ends_with("Connection: close\r\nContent-Length: 0\r\n\r\n"));
    assert_eq!(
        engine.metric_sum("engine_connections_accepted_total", ""),
        1.0
    );
}

#[test]
fn malformed_requests_get_an_error_and_a_closed_connection() {
    let (_dir, engine) = engine(&[]);
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(5000));
    let long_header = format!(
        "GET /abc HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    let mut many_headers = String::from("GET /abc HTTP/1.1\r\nHost: h\r\n");
    for i in 0..80 {
        many_headers.push_str(&format!("X-{i}: v\r\n"));
    }
    many_headers.push_str("\r\n");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400),
        ("no host on 1.1", b"GET /abc HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("two hosts", b"GET /abc HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        (
            "CL and TE",
            b"POST /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        ("bad CL", b"POST /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 4x\r\n\r\n".to_vec(), 400),
        (
            "two CLs",
            b"POST /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab".to_vec(),
            400,
        ),
        ("bad TE", b"POST /abc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(), 400),
        ("TE on 1.0", b"POST /abc HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        // A version the engine does not speak is 505; one that is not a
        // version is 400.
        ("HTTP/2.0", b"GET /abc HTTP/2.0\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("HTTP/1.2", b"GET /abc HTTP/1.2\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("HTTP/2", b"GET /abc HTTP/2\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("HTTP/3", b"GET /abc HTTP/3\r\nHost: a\r\n\r\n".to_vec(), 505),
        ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), 505),
        ("garbage version", b"GET /abc HTTP/x.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("bad escape", b"GET /ab%zz HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("short escape", b"GET /ab%6 HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("space in header name", b"GET /abc HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n".to_vec(), 400),
        ("bare LF in value", b"GET /abc HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n".to_vec(), 400),
        ("relative target", b"GET abc HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(), 400),
        ("uri too long", long_uri.into_bytes(), 414),
        ("header too large", long_header.into_bytes(), 431),
        ("too many headers", many_headers.into_bytes(), 431),
        (
            "body too large",
            b"POST /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n".to_vec(),
            413,
        ),
    ];
    for (name, bytes, status) in cases {
        let response = raw(engine.listen, &bytes);
        let parsed = parse_responses(&response);
        assert_eq!(
            parsed.len(),
            1,
            "{name}: {:?}",
            String::from_utf8_lossy(&response)
        );
        assert_eq!(parsed[0].status, status, "{name}");
        assert_eq!(parsed[0].header("connection"), Some("close"), "{name}");
        still_serves(&engine);
    }
    assert!(engine.metric_sum("engine_parse_errors_total", "") >= 15.0);
}

#[test]
fn percent_encoded_paths_are_decoded_before_the_lookup() {
    let (_dir, engine) = engine(&[]);
    for path in ["/ab%63", "/%61%62%63", "/%61bc?x=1"] {
        assert_eq!(
            engine.get(path),
            (301, Some("https://example.com/abc".into())),
            "{path}"
        );
    }
    // Longer than any code once decoded, or decoded to no code: 404.
    let long = format!("/{}", "%61".repeat(100));
    assert_eq!(engine.get(&long).0, 404);
    assert_eq!(engine.get("/ab%2Fc").0, 404);
}

/// Connections that never send a byte hold a slot only for the header
/// timeout from accept, not the idle timeout.
#[test]
fn silent_connections_are_closed_by_the_header_timeout_from_accept() {
    const SILENT: usize = 200;
    let (_dir, engine) = engine(&["--header-timeout-ms", "1000", "--idle-timeout-ms", "60000"]);
    let mut silent: Vec<TcpStream> = (0..SILENT)
        .map(|_| {
            let s = TcpStream::connect(engine.listen).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            s
        })
        .collect();
    // Each read gives up (and the test fails) after 15 s, long before the
    // 60 s idle timeout would close a connection.
    for (i, stream) in silent.iter_mut().enumerate() {
        assert!(
            read_to_close(stream).is_empty(),
            "silent connection {i} got an answer"
        );
    }
    common::eventually(Duration::from_secs(5), "all counted", || {
        engine.metric_sum("engine_first_byte_timeouts_total", "") == SILENT as f64
            && engine.metric_sum("engine_connections_open", "") == 0.0
    });
    // The first request's deadline also runs from the accept: a head begun
    // late still has to be whole 1 s after the connection was made.
    let mut late = TcpStream::connect(engine.listen).unwrap();
    let accepted = std::time::Instant::now();
    late.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    late.write_all(b"GET /abc HTTP/1.1\r\n").unwrap();
    let response = read_to_close(&mut late);
    assert_eq!(parse_responses(&response)[0].status, 408);
    assert!(
        accepted.elapsed() < Duration::from_millis(1600),
        "408 after {:?}: the deadline restarted at the first byte",
        accepted.elapsed()
    );
    still_serves(&engine);
}

/// When more than 3/4 of a core's slots are taken, a new connection must
/// send its first byte within the crowded deadline, however long the header
/// timeout is; connections that speak are served. The core sheds silent
/// connections until it is no longer crowded, not below: how many go depends
/// on how the accepts spread over the sweeps, at least the excess over 3/4.
#[test]
fn a_crowded_core_closes_silent_connections_sooner() {
    let (_dir, engine) = engine(&[
        "--max-connections-per-core",
        "40",
        "--header-timeout-ms",
        "60000",
        "--crowded-first-byte-timeout-ms",
        "300",
    ]);
    let silent: Vec<TcpStream> = (0..35)
        .map(|_| TcpStream::connect(engine.listen).unwrap())
        .collect();
    // One that speaks at once is answered despite the crowd.
    still_serves(&engine);
    // 35 silent of 40 slots: at least the 5 over 3/4 (30) are cut off, each
    // unanswered. The wait gives up after 15 s, long before the 60 s header
    // timeout would close any: a close seen here is the crowded core's doing.
    common::eventually(Duration::from_secs(15), "silent connections shed", || {
        engine.metric_sum("engine_first_byte_timeouts_total", "") >= 5.0
            && engine.metric_sum("engine_connections_open", "") <= 30.0
    });
    drop(silent);
    common::eventually(Duration::from_secs(5), "connections released", || {
        engine.metric_sum("engine_connections_open", "") == 0.0
    });
    // Uncrowded again: a silent connection keeps its full header timeout.
    let mut quiet = TcpStream::connect(engine.listen).unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = quiet.read(&mut byte).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}

#[test]
fn smuggled_second_request_is_never_answered() {
    let (_dir, engine) = engine(&[]);
    // A CL.TE smuggling attempt: the engine refuses the whole thing.
    let response = raw(
        engine.listen,
        b"POST /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /abc HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let parsed = parse_responses(&response);
    assert_eq!(
        parsed.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![400]
    );
}

#[test]
fn bodies_are_discarded_and_chunked_closes() {
    let (_dir, engine) = engine(&[]);
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Body split across writes, with the next request right behind it.
    stream
        .write_all(b"POST /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    let first = read_responses(&mut stream, 1);
    assert_eq!(first[0].status, 405);
    stream
        .write_all(b"worldGET /abc HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let both = read_responses(&mut stream, 1);
    assert_eq!(both[0].status, 301);
    // A GET with a small body works as well.
    stream.write_all(b"GET /abc HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /nope HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let two = read_responses(&mut stream, 2);
    assert_eq!((two[0].status, two[1].status), (301, 404));
    // Chunked: answered, then closed.
    stream.write_all(b"POST /abc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").unwrap();
    let rest = read_to_close(&mut stream);
    let parsed = parse_responses(&rest);
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].status, 405);
    assert_eq!(parsed[0].header("connection"), Some("close"));
}

#[test]
fn http10_and_connection_close() {
    let (_dir, engine) = engine(&[]);
    let response = raw(
        engine.listen,
        b"GET /abc HTTP/1.0\r\n\r\nGET /abc HTTP/1.0\r\n\r\n",
    );
    let parsed = parse_responses(&response);
    assert_eq!(
        parsed.len(),
        1,
        "HTTP/1.0 without keep-alive closes after one answer"
    );
    assert_eq!(parsed[0].header("connection"), Some("close"));

    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /abc HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let first = read_responses(&mut stream, 1);
    assert_eq!(first[0].header("connection"), Some("keep-alive"));
    stream.write_all(b"GET /abc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /abc HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let rest = read_to_close(&mut stream);
    assert_eq!(
        parse_responses(&rest).len(),
        1,
        "nothing after Connection: close"
    );
}

#[test]
fn slow_headers_get_408() {
    let (_dir, engine) = engine(&["--header-timeout-ms", "300"]);
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /abc HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    // Never finish the head: the engine answers 408 and closes.
    let response = read_to_close(&mut stream);
    let parsed = parse_responses(&response);
    assert_eq!(parsed.len(), 1, "{:?}", String::from_utf8_lossy(&response));
    assert_eq!(parsed[0].status, 408);
    assert_eq!(engine.metric_sum("engine_header_timeouts_total", ""), 1.0);
    still_serves(&engine);
}

#[test]
fn trickled_headers_are_cut_off_by_the_deadline() {
    let (_dir, engine) = engine(&["--header-timeout-ms", "300"]);
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    stream.write_all(b"GET /abc HTTP/1.1\r\n").unwrap();
    // One header byte per read timeout: each read resets nothing, the
    // deadline set at the first byte still applies.
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    loop {
        if stream.write_all(b"X").is_err() {
            break;
        }
        let mut chunk = [0u8; 512];
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never cut off");
    }
    assert!(
        String::from_utf8_lossy(&got).starts_with("HTTP/1.1 408"),
        "{got:?}"
    );
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let (_dir, engine) = engine(&["--idle-timeout-ms", "200"]);
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /abc HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1)[0].status, 301);
    // Say nothing more: the engine closes without a response.
    let rest = read_to_close(&mut stream);
    let text = String::from_utf8_lossy(&rest);
    assert!(
        !text.contains("HTTP/1.1 408"),
        "idle close must be silent: {text}"
    );
    assert_eq!(engine.metric_sum("engine_connections_open", ""), 0.0);
}

#[test]
fn connection_limit_per_core() {
    let (_dir, engine) = engine(&["--max-connections-per-core", "2"]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(engine.listen).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /abc HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_responses(&mut s, 1)[0].status, 301);
        held.push(s);
    }
    let mut third = TcpStream::connect(engine.listen).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = third.write_all(b"GET /abc HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        read_to_close(&mut third).is_empty(),
        "third connection must be closed unanswered"
    );
    assert_eq!(
        engine.metric_sum("engine_connections_refused_total", ""),
        1.0
    );
    drop(held);
    common::eventually(Duration::from_secs(5), "connections released", || {
        engine.metric_sum("engine_connections_open", "") == 0.0
    });
    still_serves(&engine);
}

/// A client that pipelines far more than the engine buffers, and only then
/// reads: the engine stops reading while its answers are unsent (so the
/// client's writes block on TCP flow control, not the engine's memory), and
/// every request is answered, in order, once the client reads.
#[test]
fn pipelining_beyond_the_output_limit_is_answered_in_full() {
    let (_dir, engine) = engine(&[]);
    const REQUESTS: usize = 50_000;
    let one = b"GET /abc HTTP/1.1\r\nHost: h\r\n\r\n";
    let mut stream = TcpStream::connect(engine.listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(one.len() * 1000);
        for _ in 0..REQUESTS / 1000 {
            batch.clear();
            for _ in 0..1000 {
                batch.extend_from_slice(one);
            }
            writer.write_all(&batch).unwrap();
        }
        writer
            .write_all(b"GET /abc HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .unwrap();
    });
    // Let the engine's output back up before anything is read.
    std::thread::sleep(Duration::from_millis(300));
    let bytes = read_to_close(&mut stream);
    sender.join().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let answers = text.matches("HTTP/1.1 301 ").count();
    assert_eq!(answers, REQUESTS + 1);
    assert!(text.ends_with("Connection: close\r\nContent-Length: 0\r\n\r\n"));
    still_serves(&engine);
}
