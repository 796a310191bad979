//! The command line refuses bad configuration before connecting anywhere.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(args)
        .output()
        .expect("run analytics");
    assert!(out.stdout.is_empty(), "no readiness line on bad config");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_config_fields_and_bad_flags_exit_2_with_the_reason() {
    let dir = tempfile_dir();
    let file = dir.join("analytics.toml");
    std::fs::write(&file, "databse = \"typo\"\n").unwrap();
    let (code, err) = run(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown field `databse`"), "{err}");

    // A flag overrides the file, and is validated too.
    std::fs::write(&file, "database = \"fine\"\n").unwrap();
    let (code, err) = run(&[
        "run",
        "--config",
        file.to_str().unwrap(),
        "--database",
        "no good",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("database: must be a plain identifier"),
        "{err}"
    );

    let (code, err) = run(&["run", "--geoip", "/nonexistent/GeoIP2-City.mmdb"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("geoip: /nonexistent/GeoIP2-City.mmdb is not a readable file"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_flag_names_its_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(["run", "--help"])
        .output()
        .expect("run analytics");
    let help = String::from_utf8_lossy(&out.stdout);
    // One block per option: its line and the indented description after it.
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        if line.trim_start().starts_with('-') {
            blocks.push(line.to_owned());
        } else if let Some(block) = blocks.last_mut() {
            block.push_str(line);
        }
    }
    let flags: Vec<&String> = blocks
        .iter()
        .filter(|b| !b.trim_start().starts_with("-h, --help"))
        .collect();
    assert!(flags.len() >= 15, "{help}");
    for block in flags {
        assert!(block.contains("[default: "), "no default named: {block}");
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("analytics-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
