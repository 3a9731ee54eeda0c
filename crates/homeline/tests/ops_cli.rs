//! Operator commands: `setup upstream` derives the Internet-call limit and says how; `status`
//! reads the running server's live state; `[media]` config errors name the key.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{cli, free_port, Server, TempDir, BIN};

fn run(data: &Path, args: &[&str]) -> Output {
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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn setup_upstream_256_gives_2_calls_and_shows_the_derivation() {
    let data = TempDir::new("ops-upstream");
    let before = cli(&data.0, &["setup", "upstream"]);
    assert!(before.contains("Upstream bandwidth: not set"), "{before}");

    let out = cli(&data.0, &["setup", "upstream", "256"]);
    for line in [
        "Upstream bandwidth set to 256 kbit/s.",
        "G.711 (64 kbit/s)       160 B      76 B        236 B      94.4 kbit/s      2",
        "Opus (32 kbit/s)",
        "Simultaneous Internet calls: 2, sized for G.711",
        "on the wire         236 B = 1888 bit per packet = 94.4 kbit/s per call",
        "simultaneous calls  2 (204.8 / 94.4, rounded down)",
        "takes effect when the server starts",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }

    // Without a value: the stored setting and the same derivation.
    let shown = cli(&data.0, &["setup", "upstream"]);
    assert!(shown.contains("Upstream 256 kbit/s"), "{shown}");
    assert!(shown.contains("simultaneous calls  2"), "{shown}");

    // Another codec re-sizes the stored bandwidth.
    let opus = cli(&data.0, &["setup", "upstream", "--codec", "opus"]);
    assert!(
        opus.contains("Simultaneous Internet calls: 3, sized for Opus"),
        "{opus}"
    );
    assert!(
        opus.contains("with G.711 the line carries only 2"),
        "{opus}"
    );

    let cleared = cli(&data.0, &["setup", "upstream", "--clear"]);
    assert!(cleared.contains("removed"), "{cleared}");
    assert!(cli(&data.0, &["setup", "upstream"]).contains("not set"));
}

#[test]
fn setup_upstream_bad_values_name_the_value_and_store_nothing() {
    let data = TempDir::new("ops-upstream-bad");
    for (value, why) in [
        ("0", "at least 1 kbit/s"),
        ("abc", "whole number of kbit/s"),
        ("-5", "whole number of kbit/s"),
    ] {
        let out = run(&data.0, &["setup", "upstream", "--", value]);
        assert!(!out.status.success(), "{value}");
        let e = stderr(&out);
        assert!(e.contains(&format!("'{value}'")), "{value}: {e}");
        assert!(e.contains(why), "{value}: {e}");
    }
    // A line too slow for one call is explained, with the minimum, and not stored.
    let out = run(&data.0, &["setup", "upstream", "64"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(e.contains("64 kbit/s") && e.contains("118 kbit/s"), "{e}");
    assert!(cli(&data.0, &["setup", "upstream"]).contains("not set"));
    let out = run(&data.0, &["setup", "upstream", "256", "--codec", "g729"]);
    assert!(stderr(&out).contains("g729"), "{}", stderr(&out));
}

#[test]
fn status_of_a_running_server_shows_listeners_and_zero_calls() {
    let data = TempDir::new("ops-status");
    cli(&data.0, &["setup", "upstream", "256"]);
    let server = Server::start(&data.0);
    let text = cli(&data.0, &["status"]);
    assert!(
        text.contains(&format!("internal  udp  {}", server.internal)),
        "{text}"
    );
    assert!(
        text.contains(&format!("external  tcp  {}", server.external)),
        "{text}"
    );
    assert!(text.contains("Calls in progress     0"), "{text}");
    assert!(text.contains("Registered bindings   0"), "{text}");
    assert!(
        text.contains("0 in use of 2 (upstream 256 kbit/s, sized for G.711"),
        "{text}"
    );
    assert!(text.contains("0 (Internet-call limit)"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&cli(&data.0, &["status", "--json"])).unwrap();
    assert_eq!(json["calls_active"], 0);
    assert_eq!(json["internet_calls"]["limit"], 2);
    // UDP, TCP and TLS per zone.
    assert_eq!(json["listeners"].as_array().unwrap().len(), 6);
    assert!(text.contains("TLS certificate"), "{text}");
    assert_eq!(json["tls"]["connections"], 0);

    // The socket is private to the server's user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.0.join("control.sock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A changed setting reaches the running server: status shows the new limit in force.
    let changed = cli(&data.0, &["setup", "upstream", "512"]);
    assert!(changed.contains("applies it to new calls"), "{changed}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let json = cli(&data.0, &["status", "--json"]);
        if json.replace(": ", ":").contains("\"limit\":4") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "limit not applied: {json}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // A second server on the same data folder is refused before it binds anything.
    let config = data.0.join("second.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\ninternal = [\"127.0.0.1:{}\"]\nexternal = [\"127.0.0.1:{}\"]\n[tls]\nenabled = false\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--data")
        .arg(&data.0)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    drop(server);
}

#[test]
fn status_without_a_server_says_so() {
    let data = TempDir::new("ops-status-none");
    let out = run(&data.0, &["status"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains(&format!(
            "no server running with data folder {}",
            data.0.display()
        )),
        "{e}"
    );
    // A socket file left by a server that died is not a running server either.
    #[cfg(unix)]
    {
        let stale = std::os::unix::net::UnixListener::bind(data.0.join("control.sock")).unwrap();
        drop(stale);
        assert!(stderr(&run(&data.0, &["status"])).contains("no server running"));
    }
    assert!(stdout(&out).is_empty());
}

#[test]
fn media_config_errors_name_the_key() {
    let data = TempDir::new("ops-media");
    for (section, key) in [
        ("[media]\nport = \"30000-30999\"\n", "port"),
        (
            "[media]\npublic_address = \"203.0.113.10\"\n",
            "public_address",
        ),
        (
            "[media]\npublic_ip = \"office.example.org\"\n",
            "media.public_ip",
        ),
        ("[media]\nports = \"30001-30999\"\n", "media.ports"),
        ("[media]\nworkers = -1\n", "workers"),
    ] {
        let path = data.0.join("media.toml");
        std::fs::write(&path, section).unwrap();
        let out = Command::new(BIN)
            .arg("--data")
            .arg(&data.0)
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{section}");
        let e = stderr(&out);
        assert!(e.contains(key), "{section}: {e}");
    }
}
