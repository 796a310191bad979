//! `max_visits` through the real binaries (docs/max-visits.md): control
//! leases a limited link's visits to engines over NATS, engines hand them to
//! their cores, and the link redirects exactly `max_visits` times in all,
//! then answers as expired (its `expired_url`), on one engine of two cores
//! and across two engines sharing the budget; an engine killed mid-run
//! takes only its own leases with it.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TARGET: &str = "https://limited.example/offer";
const EXPIRED: &str = "https://limited.example/sold-out";

/// What one visit got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    Redirected,
    Exhausted,
}

/// A client that opens a new connection per request, so visits spread over
/// every core of an engine (`SO_REUSEPORT`).
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn visit(http: &reqwest::Client, engine: &str, code: &str) -> Visit {
    let r = http
        .get(format!("http://{engine}/{code}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    match (status, location.as_deref()) {
        (301, Some(TARGET)) => {
            // A cached redirect would be a visit nobody counts.
            let cache = cache.unwrap_or_default();
            assert!(
                cache.contains("no-store") || cache.contains("max-age=0"),
                "a limited link's redirect may be cached: {cache:?}"
            );
            Visit::Redirected
        }
        (302, Some(EXPIRED)) => Visit::Exhausted,
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn create_limited(stack: &e2e::stack::Stack, key: &str, max: u32) -> Value {
    let (status, link) = stack
        .call(
            key,
            reqwest::Method::POST,
            "/v1/links",
            Some(json!({ "target": TARGET, "expired_url": EXPIRED, "max_visits": max })),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["max_visits"], max);
    link
}

/// Visits `code` on `engines` from [`WORKERS`] concurrent clients, each
/// new connection on the next engine, until `max` redirects were served
/// (never more: checked at every answer), or `budget` visits were made and
/// none was served for [`QUIET`]; the redirects and the exhausted answers
/// seen meanwhile (the temporary undershoot: visits held by another core or
/// engine at that moment). The give-up bounds only a failing run (a passing
/// one stops at `max`). It is not a count alone because the exhausted
/// answers while visits move between cores and engines grow with the
/// machine's load (a budget of 50,000 ran out with 9 of 1,000 visits still
/// on their way under the whole suite's load), and it is not a clock alone
/// because a run with an engine killed never reaches `max`.
async fn drain(engines: &[String], code: &str, max: u32, budget: u32) -> (u32, u32) {
    drain_to(engines, code, max, 0, max, budget).await
}

/// How long a drain past its budget waits for the next redirect.
const QUIET: Duration = Duration::from_secs(5);

/// [`drain`] from `already` redirects served, stopping at `stop_at`, never
/// past `max` in all.
async fn drain_to(
    engines: &[String],
    code: &str,
    max: u32,
    already: u32,
    stop_at: u32,
    budget: u32,
) -> (u32, u32) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
    let started = Instant::now();
    let (served, refused, made, last_served_ms) = (
        Arc::new(AtomicU32::new(already)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (served, refused, made, last_served_ms) = (
                served.clone(),
                refused.clone(),
                made.clone(),
                last_served_ms.clone(),
            );
            let (engines, code) = (engines.to_vec(), code.to_owned());
            tokio::spawn(async move {
                let http = fresh_connections();
                while served.load(SeqCst) < stop_at {
                    let n = made.fetch_add(1, SeqCst);
                    let since_served =
                        started.elapsed() - Duration::from_millis(last_served_ms.load(SeqCst));
                    if n >= budget && since_served >= QUIET {
                        break;
                    }
                    let engine = &engines[n as usize % engines.len()];
                    match visit(&http, engine, &code).await {
                        Visit::Redirected => {
                            let now = served.fetch_add(1, SeqCst) + 1;
                            last_served_ms.store(started.elapsed().as_millis() as u64, SeqCst);
                            assert!(now <= max, "served {now} of max_visits {max}");
                        }
                        Visit::Exhausted => {
                            refused.fetch_add(1, SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    (served.load(SeqCst) - already, refused.load(SeqCst))
}

/// A stack whose engine and a second one (node `second_node`) run two
/// cores each, with a link limited to `max` visits that both have leased
/// visits of.
struct TwoEngines {
    stack: e2e::stack::Stack,
    second: e2e::Proc,
    _second_dir: tempfile::TempDir,
    code: String,
}

async fn two_engines_with_a_limited_link(
    name: &'static str,
    second_node: &str,
    max: u32,
) -> TwoEngines {
    let mut options = e2e::stack::StackOptions::new(name);
    options.engine_args = ["--cores", "2"].map(str::to_owned).to_vec();
    let second_admin = testkit::free_addr().to_string();
    options.extra_engine_admins = vec![second_admin.clone()];
    let stack = e2e::stack::Stack::start(options).await;
    let second_dir = tempfile::tempdir().unwrap();
    let second = stack
        .spawn_engine_with(
            &second_admin,
            second_dir.path(),
            &["--node-id", second_node],
        )
        .await;
    stack.wait_following(&second_admin).await;
    let key = stack.create_key(&["--org", "acme"]).await;
    let link = create_limited(&stack, &key, max).await;
    let code = link["code"].as_str().unwrap().to_owned();
    for admin in [stack.engine_admin(), second_admin] {
        testkit::wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
            let admin = admin.clone();
            async move { leased(&admin).await > 0.0 }
        })
        .await
        .expect("each engine leased visits of the limited link");
    }
    TwoEngines {
        stack,
        second,
        _second_dir: second_dir,
        code,
    }
}

/// Concurrent visitors.
const WORKERS: usize = 8;

async fn leased(admin: &str) -> f64 {
    e2e::clicks::metrics(admin)
        .await
        .unwrap()
        .get("engine_lease_visits_leased_total")
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_link_redirects_exactly_max_visits_times_on_two_cores() {
    let mut options = e2e::stack::StackOptions::new("e2e_max_visits");
    options.engine_args = ["--cores", "2"].map(str::to_owned).to_vec();
    let stack = e2e::stack::Stack::start(options).await;
    let key = stack.create_key(&["--org", "acme"]).await;
    const MAX: u32 = 200;
    let link = create_limited(&stack, &key, MAX).await;
    let code = link["code"].as_str().unwrap().to_owned();
    // The engine asks for the link's visits when the change arrives.
    let admin = stack.engine_admin();
    testkit::wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
        let admin = admin.clone();
        async move { leased(&admin).await > 0.0 }
    })
    .await
    .expect("the engine leased visits of the limited link");

    let engines = [stack.engine().listen()];
    let started = Instant::now();
    let (served, refused) = drain(&engines, &code, MAX, 50 * MAX).await;
    eprintln!(
        "one engine, 2 cores: {served} of {MAX} served, {refused} answered as exhausted meanwhile, in {:?}",
        started.elapsed()
    );
    assert_eq!(served, MAX, "every visit of the budget is served");
    // Spent: every further visit gets the expired answer.
    let http = fresh_connections();
    for _ in 0..50 {
        assert_eq!(
            visit(&http, &engines[0], &code).await,
            Visit::Exhausted,
            "a visit past max_visits was served"
        );
    }
    let (status, shown) = stack
        .call(
            &key,
            reqwest::Method::GET,
            &format!("/v1/links/{code}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["visits_left"], 0, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_sharing_max_visits_never_serve_more_in_total() {
    const MAX: u32 = 1000;
    let TwoEngines {
        stack,
        second,
        code,
        ..
    } = two_engines_with_a_limited_link("e2e_max_visits2", "second", MAX).await;

    let engines = [stack.engine().listen(), second.listen()];
    let started = Instant::now();
    let (served, refused) = drain(&engines, &code, MAX, 50 * MAX).await;
    eprintln!(
        "two engines, 2 cores each: {served} of {MAX} served, {refused} answered as exhausted meanwhile, in {:?}",
        started.elapsed()
    );
    assert_eq!(served, MAX);
    let http = fresh_connections();
    for i in 0..50 {
        assert_eq!(
            visit(&http, &engines[i % 2], &code).await,
            Visit::Exhausted,
            "a visit past max_visits was served"
        );
    }
}

/// An engine killed mid-run takes its leased visits with it: control keeps
/// them counted (the engine may have served any of them), so the survivor
/// serves the rest and never more: in all, at most `max_visits` and at
/// least `max_visits` less what the dead engine held in leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_killed_mid_run_takes_only_its_leases_with_it() {
    const MAX: u32 = 1000;
    let TwoEngines {
        stack,
        second,
        code,
        ..
    } = two_engines_with_a_limited_link("e2e_max_visits3", "doomed", MAX).await;
    let both = [stack.engine().listen(), second.listen()];
    let (before, _) = drain_to(&both, &code, MAX, 0, MAX / 2, 50 * MAX).await;
    second.kill().await.unwrap();
    // The survivor serves what is left but what the dead engine held; a
    // fixed number of visits, since those never come back.
    let survivor = [stack.engine().listen()];
    let (after, refused) = drain_to(&survivor, &code, MAX, before, MAX, 10 * MAX).await;
    let total = before + after;
    // Read last: a lease the dead engine asked for just before it died may
    // have been granted after it died.
    // One connection, not a pool: the machine's PostgreSQL is shared by
    // every test running beside this one.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(stack.pg.url())
        .await
        .unwrap();
    let held: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(v.visits), 0)::bigint FROM visit_leases v
           JOIN links l ON l.id = v.link_id WHERE l.code = $1 AND v.node = 'doomed'",
    )
    .bind(&code)
    .fetch_one(&mut db)
    .await
    .unwrap();
    let floor = MAX - u32::try_from(held).unwrap().min(MAX);
    eprintln!(
        "engine killed after {before} served: the dead engine held {held} visits in leases; \
         {total} of {MAX} served in all ({refused} expired answers after the kill)"
    );
    assert!(total <= MAX, "{total} served of {MAX}");
    // The survivor goes on serving after the death.
    assert!(after > 0, "nothing served after the kill");
    // Every visit is served but the unserved part of what the dead engine
    // held. Its rows include the visits it moved from an older lease into
    // a newer one (before those were reported, about one run in three
    // ended 2 to 254 visits short of this floor).
    let rows: Vec<(String, i32)> = sqlx::query_as(
        "SELECT v.node, v.visits FROM visit_leases v
           JOIN links l ON l.id = v.link_id WHERE l.code = $1 ORDER BY v.id",
    )
    .bind(&code)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(
        total >= floor,
        "{total} served, {} below max_visits less the dead engine's leases; lease rows {rows:?}",
        floor - total
    );
}
