//! Prints the enrichment accuracy table on the committed corpora, for the
//! analytics README, next to the woothee-based parser it replaced.
//!
//! `cargo run -p analytics --release --example accuracy [-- --misses]`
//!
//! `--misses` also prints up to 40 misses per line of the table;
//! `-- --parse 'AGENT'` prints what the sidecar stores for one agent.

#[path = "../tests/scoring/mod.rs"]
mod scoring;

use analytics::enrich::agent::{self, Agent};
use scoring::{Measured, Score};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--parse") {
        let ua = args.get(i + 1).map(String::as_str).unwrap_or("");
        println!("{:?}", agent::parse(ua.as_bytes()));
        return;
    }
    let show_misses = std::env::args().any(|a| a == "--misses");
    let ours = scoring::measure(&agent::parse);
    let woothee = woothee::parser::Parser::new();
    let before = scoring::measure(&|ua| woothee_agent(&woothee, ua));

    println!("| measure | goal | now | woothee (before) |");
    println!("| --- | --- | --- | --- |");
    let line = |name: &str, goal: &str, f: &dyn Fn(&Measured) -> &Score, invert: bool| {
        let cell = |s: &Score| {
            let (p, n) = if invert {
                (100.0 - s.percent(), s.total - s.hits)
            } else {
                (s.percent(), s.hits)
            };
            format!("{p:.2}% ({n}/{})", s.total)
        };
        println!(
            "| {name} | {goal} | {} | {} |",
            cell(f(&ours)),
            cell(f(&before))
        );
    };
    line(
        "bot recall, crawler-user-agents",
        ">= 99%",
        &|m| &m.crawler_recall,
        false,
    );
    line(
        "bot recall, Matomo bot fixtures",
        "",
        &|m| &m.matomo_bot_recall,
        false,
    );
    line(
        "people flagged as bots (Matomo browsers and apps)",
        "<= 0.5%",
        &|m| &m.humans_kept,
        true,
    );
    line(
        "device class (desktop, mobile, tablet, feature phone)",
        ">= 97%",
        &|m| &m.device,
        false,
    );
    for class in ["desktop", "mobile", "tablet", "feature_phone"] {
        line(
            &format!("&nbsp;&nbsp;{class}"),
            "",
            &move |m| &m.device_by_class[class],
            false,
        );
    }
    line(
        "device class, held-out sample (phones and tablets never read while tuning)",
        ">= 97%",
        &|m| &m.heldout_device,
        false,
    );
    for class in ["mobile", "tablet"] {
        line(
            &format!("&nbsp;&nbsp;{class}"),
            "",
            &move |m| &m.heldout_by_class[class],
            false,
        );
    }
    line(
        "appliance (TV, console, car, smart display)",
        "",
        &|m| &m.appliances,
        false,
    );
    line(
        "browser family (mainstream)",
        ">= 95%",
        &|m| &m.browser,
        false,
    );
    line("OS family (mainstream)", ">= 95%", &|m| &m.os, false);

    if show_misses {
        let dump = |name: &str, s: &Score| {
            println!("\n## {name}: {} misses", s.total - s.hits);
            let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
            for miss in &s.misses {
                *kinds
                    .entry(miss.split('\t').next().unwrap_or(""))
                    .or_default() += 1;
            }
            if kinds.len() > 1 && kinds.len() < s.misses.len() {
                println!("{kinds:?}");
            }
            for miss in s.misses.iter().take(40) {
                println!("{miss}");
            }
        };
        dump("crawlers", &ours.crawler_recall);
        dump("matomo bots", &ours.matomo_bot_recall);
        dump("people flagged", &ours.humans_kept);
        let mut why = std::collections::BTreeMap::<String, usize>::new();
        let mut examples = std::collections::BTreeMap::<String, Vec<String>>::new();
        for ua in scoring::people() {
            let lower = ua.trim().to_ascii_lowercase();
            if agent::parse(ua.as_bytes()).is_bot {
                let rule = analytics::enrich::bots::rules().explain(&lower);
                let rule = rule.unwrap_or_else(|| "empty".into());
                let e = examples.entry(rule.clone()).or_default();
                if e.len() < 8 {
                    e.push(ua.clone());
                }
                *why.entry(rule).or_default() += 1;
            }
        }
        let mut why: Vec<_> = why.into_iter().collect();
        why.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        println!("\n## people flagged, by rule");
        for (rule, n) in why {
            println!("{n}\t{rule}");
            for ua in &examples[&rule] {
                println!("\t\t{ua}");
            }
        }
        for (class, s) in &ours.device_by_class {
            dump(class, s);
        }
        dump("held-out device class", &ours.heldout_device);
        dump("appliances", &ours.appliances);
        dump("browser", &ours.browser);
        dump("os", &ours.os);
    }
}

/// The agent as the sidecar parsed it before uap-core (woothee plus a
/// marker list), for the "before" column.
fn woothee_agent(parser: &woothee::parser::Parser, ua: &[u8]) -> Agent {
    const MARKERS: &[&str] = &[
        "slackbot",
        "twitterbot",
        "facebookexternalhit",
        "discordbot",
        "telegrambot",
        "whatsapp",
        "linkedinbot",
        "applebot",
        "skypeuripreview",
        "pinterest",
        "snapchat",
        "googlebot",
        "bingbot",
        "yandexbot",
        "duckduckbot",
        "baiduspider",
        "gptbot",
        "bot/",
        "bot;",
        "crawler",
        "spider",
        "headlesschrome",
        "curl/",
        "wget/",
        "python-requests",
        "python-urllib",
        "aiohttp",
        "go-http-client",
        "okhttp",
        "java/",
        "libwww-perl",
        "httpie",
        "node-fetch",
        "axios/",
    ];
    let text = String::from_utf8_lossy(ua);
    let lower = text.trim().to_ascii_lowercase();
    let r = parser.parse(text.trim());
    let (browser, os, category) = r
        .map(|r| (r.name.to_owned(), r.os.to_owned(), r.category))
        .unwrap_or(("".into(), "".into(), "UNKNOWN"));
    let is_bot =
        lower.is_empty() || MARKERS.iter().any(|m| lower.contains(m)) || category == "crawler";
    let device = if is_bot {
        "bot"
    } else {
        match category {
            "pc" => "desktop",
            "smartphone" if lower.contains("ipad") || lower.contains("tablet") => "tablet",
            "smartphone" if lower.contains("android") && !lower.contains("mobile") => "tablet",
            "smartphone" => "mobile",
            "mobilephone" => "feature_phone",
            "appliance" => "appliance",
            _ => "other",
        }
    };
    // woothee's names, mapped onto the families the table compares.
    let browser = match browser.as_str() {
        "Safari" if lower.contains("mobile") => "Mobile Safari".into(),
        _ => browser,
    };
    let os = match os.as_str() {
        o if o.starts_with("Windows") && !o.contains("Phone") => "Windows".into(),
        "Mac OSX" => "Mac OS X".into(),
        "iPhone" | "iPad" | "iPod" => "iOS".into(),
        _ => os,
    };
    Agent {
        browser,
        os,
        device,
        is_bot,
        is_preview: false,
    }
}
