//! SIP over TLS (RFC 3261 §26.3.1, RFC 5630) with real clients: baresip phones registering and
//! calling over TLS on both zones, `openssl s_client` probes as the TLS scan (no protocol
//! below TLS 1.2, no suite but ECDHE with AEAD), a certificate swap in the middle of a call
//! (the call and its connections stay up, a new handshake sees the new certificate), and
//! device certificates (mutual TLS, subject-name check, CRL).
//!
//! Certificates are made with the `openssl` command (Debian package `openssl`).
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::baresip::{
    assert_audio_both_ways, connect_call, start_server, talk_and_hang_up, Phone, PW,
};
use common::tls::{
    assert_signalling_over_tls, openssl, phone_files, phone_files_with, self_signed, status,
    tls_pbx, tls_phone,
};
use common::TempDir;
use common::{cli, free_port};

/// Packets each way after [`common::baresip::TALK`]: PCMU/20 ms sends 50 per second.
const MIN_PACKETS: u64 = 50;

/// `openssl x509 -fingerprint -sha256` of a PEM certificate: "AA:BB:...".
fn fingerprint_of(dir: &Path, crt: &Path) -> String {
    let out = openssl(
        dir,
        &[
            "x509",
            "-in",
            crt.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
    );
    out.trim().rsplit('=').next().unwrap().to_string()
}

/// One `openssl s_client` handshake to `addr` with `args`; returns its output (stdout and
/// stderr) and whether a cipher was agreed.
fn probe(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect", &addr.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A refusal after the client's last flight (a device certificate missing or not valid)
    // comes as an alert once the client has printed its session.
    let agreed = text
        .lines()
        .any(|l| l.contains(", Cipher is ") && !l.contains("(NONE)"))
        && !text.contains("SSL alert number");
    (agreed, text)
}

/// The SHA-256 fingerprint of the certificate a new handshake to `addr` gets.
fn served_fingerprint(dir: &Path, addr: SocketAddr) -> String {
    let (ok, text) = probe(addr, &[]);
    assert!(ok, "no handshake with {addr}:\n{text}");
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = text.find("-----END CERTIFICATE-----").unwrap() + "-----END CERTIFICATE-----".len();
    let pem = dir.join(format!("served-{}.pem", free_port()));
    std::fs::write(&pem, &text[begin..end]).unwrap();
    fingerprint_of(dir, &pem)
}

/// Established TCP connections whose local port is `port` (the server's TLS listener):
/// their peer ports, from /proc/net/tcp.
fn connections_to(port: u16) -> Vec<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut peers: Vec<u16> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let remote = u16::from_str_radix(f.get(2)?.rsplit(':').next()?, 16).ok()?;
            (local == port && f.get(3) == Some(&"01")).then_some(remote)
        })
        .collect();
    peers.sort_unstable();
    peers
}

#[test]
fn rfc5630_tls_registration_and_call_on_the_internal_zone_audio_both_ways() {
    let certs = TempDir::new("tls-int-certs");
    let (crt, key) = self_signed(&certs.0, "server", "127.0.0.1");
    let pbx = tls_pbx(
        "tls-int",
        &[("2001", false), ("2002", false)],
        &crt,
        &key,
        "",
        "",
    );
    let mut a = tls_phone(
        "A-2001",
        pbx.internal,
        "2001",
        &phone_files(&certs.0, "a", &[&crt]),
    );
    let mut b = tls_phone(
        "B-2002",
        pbx.internal,
        "2002",
        &phone_files(&certs.0, "b", &[&crt]),
    );
    let st = status(&pbx.data.0);
    assert_eq!(st["tls"]["connections"], 2, "{st}");
    assert!(st["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["transport"] == "tls"
            && l["zone"] == "internal"
            && l["addr"] == pbx.internal.to_string()));

    connect_call(&mut a, &mut b);
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);

    assert_audio_both_ways((&a, sa), (&b, sb), MIN_PACKETS);
    assert_signalling_over_tls(&b);
    drop(pbx.server);
}

#[test]
fn tls_on_the_external_zone_call_is_anchored_in_the_relay() {
    let certs = TempDir::new("tls-ext-certs");
    let (crt, key) = self_signed(&certs.0, "server", "127.0.0.1");
    let pbx = tls_pbx(
        "tls-ext",
        &[("2101", true), ("2102", true)],
        &crt,
        &key,
        "",
        "[media]\nports = \"32000-32099\"\n",
    );
    let mut a = tls_phone(
        "EXT-2101",
        pbx.external,
        "2101",
        &phone_files(&certs.0, "a", &[&crt]),
    );
    let mut b = tls_phone(
        "EXT-2102",
        pbx.external,
        "2102",
        &phone_files(&certs.0, "b", &[&crt]),
    );
    // Status refreshes the remote-binding list about once a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = status(&pbx.data.0);
        let remote = st["remote_bindings"].as_array().unwrap();
        if remote.len() == 2 {
            assert!(remote.iter().all(|r| r["transport"] == "tls"), "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(200));
    }

    connect_call(&mut a, &mut b);
    let relay_before = status(&pbx.data.0)["relay"]["packets"].as_u64().unwrap();
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);

    assert_audio_both_ways((&a, sa), (&b, sb), MIN_PACKETS);
    for p in [&a, &b] {
        for m in p.received_media() {
            assert!(
                (32000..=32099).contains(&m.port),
                "{}: media at {m:?}, not the relay",
                p.name
            );
        }
        assert_signalling_over_tls(p);
    }
    let relayed = status(&pbx.data.0)["relay"]["packets"].as_u64().unwrap();
    assert!(
        relayed > relay_before + 2 * MIN_PACKETS,
        "relay forwarded {relay_before} -> {relayed}"
    );
}

#[test]
fn certificate_swap_mid_call_keeps_the_call_and_its_connections() {
    let certs = TempDir::new("tls-swap-certs");
    let (crt, key) = self_signed(&certs.0, "old", "127.0.0.1");
    let (new_crt, new_key) = self_signed(&certs.0, "new", "127.0.0.1");
    // The configured files start as the old pair.
    let (live_crt, live_key) = (certs.0.join("live.crt"), certs.0.join("live.key"));
    std::fs::copy(&crt, &live_crt).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let pbx = tls_pbx(
        "tls-swap",
        &[("2001", false), ("2002", false)],
        &live_crt,
        &live_key,
        "",
        "",
    );
    let old_fp = fingerprint_of(&certs.0, &crt);
    let new_fp = fingerprint_of(&certs.0, &new_crt);
    assert_eq!(served_fingerprint(&certs.0, pbx.internal), old_fp);

    let trusted: [&Path; 2] = [&crt, &new_crt];
    let mut a = tls_phone(
        "A-2001",
        pbx.internal,
        "2001",
        &phone_files(&certs.0, "a", &trusted),
    );
    let mut b = tls_phone(
        "B-2002",
        pbx.internal,
        "2002",
        &phone_files(&certs.0, "b", &trusted),
    );
    connect_call(&mut a, &mut b);
    let port = pbx.internal.port();
    let conns = connections_to(port);
    assert_eq!(conns.len(), 2, "two phones, two TLS connections: {conns:?}");
    let before = (a.live_rtp(), b.live_rtp());

    // Replace the files (key first: the pair is complete when the certificate lands).
    std::fs::copy(&new_key, &live_key).unwrap();
    std::fs::copy(&new_crt, &live_crt).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let line = pbx.server.log.recv_timeout(Duration::from_millis(200));
        if line.is_ok_and(|l| l.contains("TLS certificate reloaded") && l.contains(&new_fp)) {
            break;
        }
        assert!(Instant::now() < deadline, "certificate not reloaded");
    }
    let st = status(&pbx.data.0);
    assert_eq!(st["tls"]["certificate"]["sha256"], new_fp.as_str(), "{st}");

    // A new handshake sees the new certificate ...
    assert_eq!(served_fingerprint(&certs.0, pbx.internal), new_fp);
    // ... while the call goes on, over the same connections.
    std::thread::sleep(Duration::from_secs(2));
    let after = (a.live_rtp(), b.live_rtp());
    for (p, x, y) in [(&a, before.0, after.0), (&b, before.1, after.1)] {
        assert!(
            y.tx >= x.tx + MIN_PACKETS && y.rx >= x.rx + MIN_PACKETS,
            "{}: RTP {x:?} -> {y:?}",
            p.name
        );
    }
    assert!(a.closed_reason().is_none() && b.closed_reason().is_none());
    assert_eq!(connections_to(port), conns, "TLS connections replaced");
    assert_eq!(st["tls"]["connections"], 2, "{st}");

    // The BYE travels over the old connections: both sides see the call end normally.
    let (sa, sb) = talk_and_hang_up(&mut a, &mut b, 1);
    assert_audio_both_ways((&a, sa), (&b, sb), 2 * MIN_PACKETS);
    assert_eq!(connections_to(port), conns, "TLS connections replaced");
}

#[test]
fn tls_scan_finds_no_protocol_below_tls12_and_no_weak_suite() {
    let certs = TempDir::new("tls-scan-certs");
    let (crt, key) = self_signed(&certs.0, "server", "127.0.0.1");
    let pbx = tls_pbx("tls-scan", &[], &crt, &key, "", "");
    for addr in [pbx.internal, pbx.external] {
        // Old protocols, even with every cipher the client has.
        for version in ["-tls1", "-tls1_1"] {
            let (ok, text) = probe(addr, &[version, "-cipher", "ALL:@SECLEVEL=0"]);
            assert!(!ok, "{addr} {version} accepted:\n{text}");
        }
        // TLS 1.2 and 1.3 are spoken, with forward-secret AEAD suites.
        for (args, want) in [
            (&["-tls1_2"][..], "ECDHE-RSA-AES256-GCM-SHA384"),
            (
                &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"][..],
                "ECDHE-RSA-AES128-GCM-SHA256",
            ),
            (
                &["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"][..],
                "ECDHE-RSA-CHACHA20-POLY1305",
            ),
            (&["-tls1_3"][..], "TLS_AES_256_GCM_SHA384"),
            (
                &["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"][..],
                "TLS_CHACHA20_POLY1305_SHA256",
            ),
        ] {
            let (ok, text) = probe(addr, args);
            assert!(
                ok && text.contains(want),
                "{addr} {args:?}: want {want}:\n{text}"
            );
        }
        // Every TLS 1.2 suite the client knows that is not ECDHE + AEAD, one at a time: CBC
        // with SHA-1 and SHA-2, NULL, anonymous, static RSA, DHE, CCM, Camellia. (This
        // OpenSSL build has no RC4, 3DES or export suites left to offer; rustls has none.)
        let all = openssl(
            &certs.0,
            &["ciphers", "-tls1_2", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        );
        let weak: Vec<&str> = all
            .trim()
            .split(':')
            .filter(|c| !(c.starts_with("ECDHE-") && (c.contains("GCM") || c.contains("CHACHA20"))))
            .filter(|c| !c.starts_with("TLS_")) // TLS 1.3 suites are listed too
            .collect();
        assert!(weak.len() > 30, "{all}");
        for class in [
            "NULL-SHA",
            "AES128-SHA",
            "ECDHE-RSA-AES128-SHA",
            "DHE-RSA-AES256-GCM-SHA384",
            "ADH-AES128-SHA",
        ] {
            assert!(weak.contains(&class), "{class} not probed: {all}");
        }
        for suite in &weak {
            let (ok, text) = probe(
                addr,
                &["-tls1_2", "-cipher", &format!("{suite}:@SECLEVEL=0")],
            );
            assert!(!ok, "{addr} accepted {suite}:\n{text}");
        }
        let (ok, text) = probe(
            addr,
            &[
                "-tls1_3",
                "-ciphersuites",
                "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256",
            ],
        );
        assert!(!ok, "{addr} accepted a TLS 1.3 CCM suite:\n{text}");
    }
    let st = status(&pbx.data.0);
    assert!(
        st["tls"]["handshakes_failed"].as_u64().unwrap() > 60,
        "{st}"
    );
}

/// A CA in `dir` (`ca.crt`, `ca.key`) and a certificate signed by it with subject CN `cn`:
/// `(name.crt, name.key)`.
fn ca_signed(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    if !dir.join("ca.crt").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=devices CA",
            ],
        );
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ndefault_md = sha256\n\
             crlnumber = crlnumber\ndefault_crl_days = 2\n",
        )
        .unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        // Version 3 with the usage of a device certificate (webpki refuses version 1).
        std::fs::write(
            dir.join("device.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
    }
    let (crt, key, csr) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            "device.ext",
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// Revokes `crt` and writes the CA's CRL to `ca.crl`.
fn revoke(dir: &Path, crt: &Path) -> PathBuf {
    let c = crt.to_str().unwrap();
    openssl(
        dir,
        &[
            "ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-revoke", c,
        ],
    );
    openssl(
        dir,
        &[
            "ca", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-gencrl", "-out",
            "ca.crl",
        ],
    );
    dir.join("ca.crl")
}

#[test]
fn mutual_tls_device_certificates_validated_revoked_and_named() {
    let certs = TempDir::new("tls-mtls-certs");
    let (crt, key) = self_signed(&certs.0, "server", "127.0.0.1");
    let (good, good_key) = ca_signed(&certs.0, "dev2001", "2001");
    let (bad, bad_key) = ca_signed(&certs.0, "revoked", "2002");
    let crl = revoke(&certs.0, &bad);
    let (stranger, stranger_key) = self_signed(&certs.0, "stranger", "2001");
    let pbx = tls_pbx(
        "tls-mtls",
        &[("2001", false), ("2002", false)],
        &crt,
        &key,
        &format!(
            "client_certificates = \"required\"\nclient_ca = \"{}\"\ncrl = \"{}\"\ncheck_subject_name = true\n",
            certs.0.join("ca.crt").display(),
            crl.display()
        ),
        "",
    );
    let with = |c: &Path, k: &Path| {
        probe(
            pbx.internal,
            &[
                "-tls1_2",
                "-cert",
                c.to_str().unwrap(),
                "-key",
                k.to_str().unwrap(),
            ],
        )
    };
    let (ok, text) = with(&good, &good_key);
    assert!(ok, "a device certificate from the CA is accepted:\n{text}");
    let (ok, text) = probe(pbx.internal, &["-tls1_2"]);
    assert!(!ok, "no device certificate, required:\n{text}");
    let (ok, text) = with(&stranger, &stranger_key);
    assert!(!ok, "a certificate from another CA:\n{text}");
    let (ok, text) = with(&bad, &bad_key);
    assert!(!ok, "a revoked certificate:\n{text}");

    // The certificate names 2001: it registers 2001 ...
    let files = phone_files_with(&certs.0, "p2001", &good, &good_key, &[&crt]);
    let a = tls_phone("A-2001", pbx.internal, "2001", &files);
    assert!(a.output().contains("{0/TLS/v4} 200 OK"));
    // ... and not 2002 (the right password is not enough).
    let b = Phone::start_tls("B-2002", pbx.internal, "2002", PW, &files);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.output().contains("403 Forbidden") {
        assert!(
            Instant::now() < deadline,
            "REGISTER of 2002 with 2001's certificate not refused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!b.output().contains("{0/TLS/v4} 200 OK"));
    let warning = b
        .trace()
        .into_iter()
        .find(|m| m.status() == Some(403))
        .map(|m| m.text)
        .unwrap_or_default();
    assert!(
        warning.contains("client certificate does not name this station"),
        "{warning}"
    );
}

/// Without certificate files the listeners use the certificate store: on first start the
/// server's own CA-signed certificate, and after `homeline cert issue … --use` on the running
/// server, the new one for new handshakes (within the store watch's 2 s), no restart.
#[test]
fn cert_use_on_a_running_server_changes_the_certificate_of_new_handshakes() {
    let data = TempDir::new("tls-cert-use");
    let certs = TempDir::new("tls-cert-use-files");
    let (pi, pe) = (free_port(), free_port());
    let _server = start_server(
        &data.0,
        &format!("[tls]\ninternal_port = {pi}\nexternal_port = {pe}\n"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{pi}").parse().unwrap();
    let sha256 = |name: &str| -> String {
        let show = cli(&data.0, &["cert", "show", name]);
        show.lines()
            .find_map(|l| l.strip_prefix("SHA-256:"))
            .unwrap_or_else(|| panic!("no SHA-256 in {show}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        served_fingerprint(&certs.0, addr),
        sha256("homeline-server"),
        "first start: the store's own server certificate"
    );
    cli(
        &data.0,
        &[
            "cert",
            "issue",
            "--ca",
            "homeline-root",
            "pbx-2027",
            "--cn",
            "pbx.example.test",
            "--san",
            "DNS:pbx.example.test",
            "--key",
            "ecdsa-p256",
            "--use",
        ],
    );
    let new = sha256("pbx-2027");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served = served_fingerprint(&certs.0, addr);
        if served == new {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving {served} 10 s after cert use (want {new})"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
