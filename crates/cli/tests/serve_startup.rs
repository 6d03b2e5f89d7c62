//! `slipway serve`'s start-up: a problem stops it with a message that says what to fix, and
//! `--print-config` prints a configuration that works as is.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "startup-test-secret-0123456789";

fn serve(config: Option<&Path>, data_dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_slipway"));
    c.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(p) = config {
        c.arg("--config").arg(p);
    }
    let mut child = c
        .env_remove("SLIPWAY_CONFIG")
        .env_remove("SLIPWAY_WEBHOOK_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every start here must be refused; one that starts serving is stopped and fails the test.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "slipway serve started instead of refusing:\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn print_config_is_a_valid_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["serve", "--print-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("serve.toml");
    std::fs::write(&p, &text).unwrap();
    // The printed file parses: the start goes on to the next check (the secret).
    let o = serve(Some(&p), &tmp.path().join("data"), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("[no_webhook_secret]"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("SLIPWAY_WEBHOOK_SECRET"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bad_config_names_the_file_and_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("serve.toml");
    std::fs::write(&p, "listen = \"127.0.0.1:8080\"\nconcurency = 3\n").unwrap();
    let o = serve(Some(&p), tmp.path(), &[("SLIPWAY_WEBHOOK_SECRET", SECRET)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("[config_invalid]") && e.contains("concurency") && e.contains("serve.toml"),
        "{e}"
    );

    std::fs::write(&p, "namespace = \"Not/Valid\"\n").unwrap();
    let e = stderr(&serve(
        Some(&p),
        tmp.path(),
        &[("SLIPWAY_WEBHOOK_SECRET", SECRET)],
    ));
    assert!(
        e.contains("[config_invalid]") && e.contains("namespace"),
        "{e}"
    );

    let e = stderr(&serve(
        Some(&tmp.path().join("missing.toml")),
        tmp.path(),
        &[],
    ));
    assert!(
        e.contains("[config_unreadable]") && e.contains("missing.toml"),
        "{e}"
    );
}

#[test]
fn a_short_secret_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = stderr(&serve(
        None,
        tmp.path(),
        &[("SLIPWAY_WEBHOOK_SECRET", "short")],
    ));
    assert!(
        e.contains("[no_webhook_secret]") && e.contains("shorter than"),
        "{e}"
    );
}

#[test]
fn an_unwritable_data_dir_says_which_and_how_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the directory should be: unusable for root too.
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let e = stderr(&serve(
        None,
        &blocker.join("data"),
        &[("SLIPWAY_WEBHOOK_SECRET", SECRET)],
    ));
    assert!(
        e.contains("[data_dir_unusable]") && e.contains("--data-dir") && e.contains("not-a-dir"),
        "{e}"
    );
}

#[test]
fn no_docker_engine_says_how_to_start_it() {
    let tmp = tempfile::tempdir().unwrap();
    let e = stderr(&serve(
        None,
        tmp.path(),
        &[
            ("SLIPWAY_WEBHOOK_SECRET", SECRET),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    ));
    assert!(
        e.contains("[docker_unavailable]") && e.contains("start it"),
        "{e}"
    );
}

#[test]
fn a_schedule_on_this_machine_is_refused_when_file_clone_urls_are_off() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("serve.toml");
    std::fs::write(
        &p,
        "allow_file_clone_urls = false\n\n[[schedule]]\nname = \"nightly\"\nexpression = \"rate(1 day)\"\nrepository = \"/srv/git/images\"\n",
    )
    .unwrap();
    let o = serve(Some(&p), tmp.path(), &[("SLIPWAY_WEBHOOK_SECRET", SECRET)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("[config_invalid]"), "{e}");
    assert!(
        e.contains("\"nightly\"") && e.contains("allow_file_clone_urls"),
        "{e}"
    );
}
