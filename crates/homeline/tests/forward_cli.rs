//! The command line for classes of service and call forwarding: names resolved against the
//! configuration, targets checked against the station's classes, errors naming the option.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{TempDir, BIN};

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn run_with_config(data: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn failed(o: Output) -> String {
    assert!(
        !o.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn station(data: &Path, number: &str) {
    ok(run(data, &["station", "add", number, "--name", "Test"]));
}

#[test]
fn forwarding_is_set_shown_listed_and_cleared() {
    let data = TempDir::new("fwd-set");
    station(&data.0, "2001");
    let out = ok(run(
        &data.0,
        &[
            "station",
            "set",
            "2001",
            "--forward-busy",
            "2002",
            "--forward-no-answer",
            "0 089 123-45",
            "--no-answer-secs",
            "15",
            "--class-internal",
            "national",
        ],
    ));
    assert!(out.contains("updated station 2001"), "{out}");
    let show = ok(run(&data.0, &["station", "show", "2001"]));
    for line in [
        "class (internal):  national",
        "class (external):  remote (default)",
        "forward always:    off",
        "forward busy:      2002",
        "forward no answer: 008912345",
        "no answer after:   15 s",
    ] {
        assert!(show.contains(line), "{line:?} in\n{show}");
    }
    let list = ok(run(&data.0, &["station", "list"]));
    assert!(
        list.contains("national") && list.contains("busy 2002, no-answer 008912345 after 15 s"),
        "{list}"
    );
    ok(run(
        &data.0,
        &[
            "station",
            "set",
            "2001",
            "--forward-busy",
            "off",
            "--class-internal",
            "default",
        ],
    ));
    let show = ok(run(&data.0, &["station", "show", "2001"]));
    assert!(
        show.contains("forward busy:      off")
            && show.contains("class (internal):  office (default)")
            && show.contains("forward no answer: 008912345"),
        "{show}"
    );
}

#[test]
fn unknown_class_names_the_option_and_the_known_classes() {
    let data = TempDir::new("fwd-class");
    station(&data.0, "2001");
    let e = failed(run(
        &data.0,
        &["station", "set", "2001", "--class-external", "vip"],
    ));
    assert!(
        e.contains("--class-external") && e.contains("\"vip\"") && e.contains("internal-only"),
        "{e}"
    );
    let e = failed(run(
        &data.0,
        &["station", "add", "2002", "--class-internal", "vip"],
    ));
    assert!(e.contains("--class-internal"), "{e}");
    // A class from the configuration file is known.
    let config = data.0.join("cos.toml");
    std::fs::write(
        &config,
        "[cos.vip]\nallow = [\"internal\", \"international\"]\n",
    )
    .unwrap();
    ok(run_with_config(
        &data.0,
        &config,
        &["station", "set", "2001", "--class-external", "vip"],
    ));
    let show = ok(run_with_config(
        &data.0,
        &config,
        &["station", "show", "2001"],
    ));
    assert!(show.contains("class (external):  vip"), "{show}");
}

#[test]
fn target_refused_by_the_internal_class_is_an_error_naming_option_and_rule() {
    let data = TempDir::new("fwd-refused");
    station(&data.0, "2001");
    let e = failed(run(
        &data.0,
        &[
            "station",
            "set",
            "2001",
            "--forward-always",
            "0 0900 123456",
        ],
    ));
    assert!(
        e.contains("--forward-always") && e.contains("blocked prefix 0900"),
        "{e}"
    );
    let e = failed(run(
        &data.0,
        &[
            "station",
            "set",
            "2001",
            "--class-internal",
            "internal-only",
            "--forward-no-answer",
            "0 089 1234567",
        ],
    ));
    assert!(
        e.contains("--forward-no-answer") && e.contains("national calls not allowed"),
        "{e}"
    );
    let e = failed(run(
        &data.0,
        &["station", "set", "2001", "--forward-busy", "0112"],
    ));
    assert!(e.contains("emergency"), "{e}");
    let e = failed(run(
        &data.0,
        &["station", "set", "2001", "--forward-busy", "2001"],
    ));
    assert!(e.contains("own number"), "{e}");
    // Nothing was stored.
    let show = ok(run(&data.0, &["station", "show", "2001"]));
    assert!(
        show.contains("forward always:    off") && show.contains("class (internal):  office"),
        "{show}"
    );
}

#[test]
fn target_only_the_external_class_refuses_is_accepted_with_a_note() {
    let data = TempDir::new("fwd-note");
    station(&data.0, "2001");
    // International: the office class allows it, the remote default does not.
    let out = ok(run(
        &data.0,
        &[
            "station",
            "set",
            "2001",
            "--forward-busy",
            "+44 20 7946 0000",
        ],
    ));
    assert!(
        out.contains("note: --forward-busy")
            && out.contains("international calls not allowed")
            && out.contains("internal zone"),
        "{out}"
    );
    let show = ok(run(&data.0, &["station", "show", "2001"]));
    assert!(show.contains("forward busy:      +442079460000"), "{show}");
    // A class change that the standing forwarding would break is refused.
    let e = failed(run(
        &data.0,
        &["station", "set", "2001", "--class-internal", "national"],
    ));
    assert!(
        e.contains("--forward-busy") && e.contains("international"),
        "{e}"
    );
}

#[test]
fn no_answer_delay_out_of_range_is_refused() {
    let data = TempDir::new("fwd-secs");
    station(&data.0, "2001");
    let e = failed(run(
        &data.0,
        &["station", "set", "2001", "--no-answer-secs", "0"],
    ));
    assert!(e.contains("no-answer seconds") && e.contains("600"), "{e}");
}
