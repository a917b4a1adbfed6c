//! The examples run to the end as a new user would run them (each starts its own SurrealDB test
//! server), and print what they demonstrate: the multi-tenant example's self-demo checks its
//! own answers, `/metrics` included, and fails with a non-zero exit if one is wrong.
//!
//! `cargo test` builds the examples next to the test binaries (`target/<profile>/examples/`).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The built example `name`, next to this test binary's directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/examples_run-… → target/<profile>/examples/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>");
    let path = dir.join("examples").join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is not built (cargo test builds the examples)", path.display());
    path
}

/// Runs an example to its end (at most 120 s); its exit status and standard output.
fn run(name: &str, args: &[&str]) -> (bool, String) {
    let mut child = Command::new(example(name)).args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn the example");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the example") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), reader.join().expect("the reader thread"))
}

#[test]
fn the_multi_tenant_example_serves_each_user_and_its_metrics() {
    let (ok, out) = run("multi_tenant", &["--demo"]);
    assert!(ok, "the self-demo failed:\n{out}");
    assert!(out.contains("ok: each user sees only their own notes"), "{out}");
    let metrics = out.lines().find(|l| l.starts_with("GET /metrics -> 200:")).unwrap_or_else(|| panic!("no scrape in:\n{out}"));
    assert!(metrics.contains("surreal_pool_checkouts_total{outcome=\"ok\"}"), "{metrics}");
}

#[test]
fn the_plain_hyper_example_runs_through_the_tower_layer() {
    let (ok, out) = run("hyper_tenant", &[]);
    assert!(ok, "the example failed:\n{out}");
    assert!(out.contains("503"), "{out}");
}

#[test]
fn the_quickstart_runs_the_authentication_tour() {
    let (ok, out) = run("quickstart", &[]);
    assert!(ok, "the example failed:\n{out}");
    assert!(!out.is_empty());
}
