//! The command line: station management errors name the field or rule; config typos name the key.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::process::{Command, Output};

use common::{TempDir, BIN};

fn run(data: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn weak_password_with_sbc_flag_lists_every_broken_rule() {
    let data = TempDir::new("cli-weak");
    let out = run(
        &data.0,
        &[
            "station",
            "add",
            "2001",
            "--password",
            "12345abc",
            "--sbc",
            "on",
        ],
    );
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("at least 10 characters"), "{e}");
    assert!(e.contains("three of"), "{e}");
    assert!(e.contains("4 ascending"), "{e}");
    // Nothing was stored.
    let list = run(&data.0, &["station", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("0 station(s)"));
}

#[test]
fn generated_password_is_shown_once_and_is_strong() {
    let data = TempDir::new("cli-gen");
    let out = run(&data.0, &["station", "add", "2001", "--name", "Alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let pw = text
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap();
    assert!(policy::check_password("2001", pw).is_ok());
    // The generated password is strong, so the SBC flag can be set without giving it again.
    let set = run(&data.0, &["station", "set", "2001", "--sbc", "on"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let show = run(&data.0, &["station", "show", "2001"]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("internet via SBC:  on") && !shown.contains(pw),
        "{shown}"
    );
    // The plain password is nowhere in the data folder.
    for entry in std::fs::read_dir(&data.0).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(pw.len()).any(|w| w == pw.as_bytes()));
    }
}

#[test]
fn bad_input_names_the_field() {
    let data = TempDir::new("cli-bad");
    assert!(stderr(&run(
        &data.0,
        &["station", "add", "20a1", "--password", "x"]
    ))
    .contains("number"));
    assert!(
        stderr(&run(&data.0, &["station", "set", "9999", "--name", "x"]))
            .contains("no station 9999")
    );
    assert!(stderr(&run(
        &data.0,
        &[
            "station",
            "add",
            "2001",
            "--device",
            "fax",
            "--password",
            "x"
        ]
    ))
    .contains("fax"));
    std::fs::write(data.0.join("bad.toml"), "[sip]\nexternal_udp_expire = 60\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(data.0.join("bad.toml"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("external_udp_expire"),
        "{}",
        stderr(&out)
    );
}
