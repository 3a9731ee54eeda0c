//! `homeline cert …` against OpenSSL: what we make OpenSSL verifies and opens, what OpenSSL
//! makes we import, and bad input is refused with the field named and the store unchanged.
//! Also the first start of `homeline serve`, which makes its own CA and server certificate.
#![allow(clippy::unwrap_used)] // test helpers: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{cli, Server, TempDir, BIN};

const PASS: &str = "Gr4u-Nebel-Tisch";

/// Runs `homeline` expecting failure; returns stderr.
fn cli_fails(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "homeline {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Runs `openssl` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed (.ci/run installs it)")
}

/// Runs `openssl` in `dir`, expecting success; returns stdout.
fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value after `label` in `cert show` output.
fn field(show: &str, label: &str) -> String {
    show.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{show}"))
        .trim()
        .to_owned()
}

/// `openssl x509 -fingerprint` output's value.
fn openssl_fingerprint(dir: &Path, file: &str, digest: &str, inform: &str) -> String {
    let out = openssl_ok(
        dir,
        &[
            "x509",
            "-inform",
            inform,
            "-in",
            file,
            "-noout",
            "-fingerprint",
            digest,
        ],
    );
    out.trim().split_once('=').unwrap().1.to_owned()
}

fn files(tag: &str) -> (TempDir, TempDir) {
    (
        TempDir::new(&format!("{tag}-data")),
        TempDir::new(&format!("{tag}-files")),
    )
}

fn path(dir: &TempDir, name: &str) -> PathBuf {
    dir.0.join(name)
}

#[test]
fn issued_certificate_verifies_with_openssl_and_pkcs12_opens() {
    let (data, work) = files("cert-issue");
    let d = &data.0;
    let w = &work.0;
    let out = cli(
        d,
        &[
            "cert",
            "ca",
            "create",
            "office-root",
            "--cn",
            "Office Root CA",
            "--c",
            "DE",
            "--o",
            "Example Office",
            "--ou",
            "Telephony",
            "--serial",
            "0x1001",
            "--key",
            "rsa:3072",
            "--hash",
            "sha512",
            "--not-before",
            "2026-01-01",
            "--not-after",
            "2036-01-01T00:00:00Z",
            "--san",
            "DNS:ca.example.test",
            "--crl-url",
            "http://ca.example.test/root.crl",
        ],
    );
    assert!(out.contains("created CA office-root"), "{out}");
    let p12 = path(&work, "pbx.p12");
    cli(
        d,
        &[
            "cert",
            "issue",
            "--ca",
            "office-root",
            "pbx",
            "--cn",
            "pbx.example.test",
            "--key",
            "ecdsa-p256",
            "--san",
            "DNS:pbx.example.test",
            "--san",
            "IP:127.0.0.1",
            "--out",
            p12.to_str().unwrap(),
            "--passphrase",
            PASS,
        ],
    );
    // Our PKCS#12 file opens in OpenSSL with the passphrase, and only with it.
    let pass_in = format!("pass:{PASS}");
    let leaf = openssl_ok(
        w,
        &[
            "pkcs12", "-in", "pbx.p12", "-passin", &pass_in, "-nokeys", "-clcerts",
        ],
    );
    std::fs::write(path(&work, "leaf.pem"), &leaf).unwrap();
    let key = openssl_ok(
        w,
        &[
            "pkcs12", "-in", "pbx.p12", "-passin", &pass_in, "-nocerts", "-nodes",
        ],
    );
    assert!(key.contains("PRIVATE KEY"), "{key}");
    assert!(!openssl(
        w,
        &[
            "pkcs12",
            "-in",
            "pbx.p12",
            "-passin",
            "pass:wrong",
            "-nokeys"
        ]
    )
    .status
    .success());

    // The CA certificate for phones, PEM and DER; the issued certificate verifies against it.
    cli(
        d,
        &[
            "cert",
            "export",
            "office-root",
            "--out",
            path(&work, "ca.pem").to_str().unwrap(),
        ],
    );
    cli(
        d,
        &[
            "cert",
            "export",
            "office-root",
            "--format",
            "der",
            "--out",
            path(&work, "ca.der").to_str().unwrap(),
        ],
    );
    let verify = openssl_ok(w, &["verify", "-CAfile", "ca.pem", "leaf.pem"]);
    assert!(verify.trim().ends_with("leaf.pem: OK"), "{verify}");
    let text = openssl_ok(
        w,
        &["x509", "-inform", "DER", "-in", "ca.der", "-noout", "-text"],
    );
    for expected in [
        "Signature Algorithm: sha512WithRSAEncryption",
        "CN = Office Root CA",
        "C = DE, O = Example Office, OU = Telephony",
        "Public-Key: (3072 bit)",
        "CA:TRUE",
        "DNS:ca.example.test",
        "URI:http://ca.example.test/root.crl",
        "Serial Number: 4097 (0x1001)",
        "Not Before: Jan  1 00:00:00 2026 GMT",
        "Not After : Jan  1 00:00:00 2036 GMT",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
    let leaf_text = openssl_ok(w, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(
        leaf_text.contains("DNS:pbx.example.test, IP Address:127.0.0.1"),
        "{leaf_text}"
    );
    assert!(
        leaf_text.contains("TLS Web Server Authentication"),
        "{leaf_text}"
    );

    // `cert show` prints the fingerprints OpenSSL computes.
    let show = cli(d, &["cert", "show", "office-root"]);
    assert_eq!(
        field(&show, "SHA-1:"),
        openssl_fingerprint(w, "ca.der", "-sha1", "DER")
    );
    assert_eq!(
        field(&show, "SHA-256:"),
        openssl_fingerprint(w, "ca.der", "-sha256", "DER")
    );
    let show = cli(d, &["cert", "show", "pbx"]);
    assert_eq!(
        field(&show, "SHA-256:"),
        openssl_fingerprint(w, "leaf.pem", "-sha256", "PEM")
    );
    assert_eq!(field(&show, "issued by:"), "office-root");
    // The stored one exports to PKCS#12 again.
    cli(
        d,
        &[
            "cert",
            "export",
            "pbx",
            "--format",
            "p12",
            "--out",
            path(&work, "again.p12").to_str().unwrap(),
            "--passphrase",
            PASS,
        ],
    );
    openssl_ok(
        w,
        &["pkcs12", "-in", "again.p12", "-passin", &pass_in, "-nokeys"],
    );
    let list = cli(d, &["cert", "ca", "list"]);
    assert!(
        list.contains("office-root") && !list.contains("pbx "),
        "{list}"
    );
}

/// An OpenSSL CA and a server certificate it signed (CA:FALSE), key in PKCS#8.
fn openssl_server_cert(w: &Path, bits: &str) {
    openssl_ok(
        w,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ossl-ca.key",
            "-out",
            "ossl-ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=OpenSSL Test CA",
        ],
    );
    openssl_ok(
        w,
        &[
            "req",
            "-new",
            "-newkey",
            bits,
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=pbx.openssl.test",
        ],
    );
    std::fs::write(
        w.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:pbx.openssl.test\n",
    )
    .unwrap();
    openssl_ok(
        w,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ossl-ca.pem",
            "-CAkey",
            "ossl-ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn imports_openssl_pkcs12_default_and_legacy_and_pem() {
    let (data, work) = files("cert-import");
    let d = &data.0;
    let w = &work.0;
    openssl_server_cert(w, "rsa:2048");
    let pass_out = format!("pass:{PASS}");
    // OpenSSL 3's default (PBES2: PBKDF2 + AES-256-CBC, MAC HMAC-SHA256) and -legacy
    // (RC2-40 for certificates, 3DES for the key, MAC HMAC-SHA1).
    for (file, legacy) in [("default.p12", false), ("legacy.p12", true)] {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-in",
            "srv.pem",
            "-inkey",
            "srv.key",
            "-certfile",
            "ossl-ca.pem",
            "-out",
            file,
            "-passout",
            &pass_out,
        ];
        if legacy {
            args.push("-legacy");
        }
        openssl_ok(w, &args);
    }
    let legacy_info = String::from_utf8(
        openssl(
            w,
            &[
                "pkcs12",
                "-in",
                "legacy.p12",
                "-passin",
                &pass_out,
                "-info",
                "-noout",
                "-legacy",
            ],
        )
        .stderr,
    )
    .unwrap();
    assert!(
        legacy_info.contains("RC2") || legacy_info.contains("3DES"),
        "{legacy_info}"
    );

    let f = |name: &str| w.join(name).to_str().unwrap().to_owned();
    let out = cli(
        d,
        &["cert", "import", &f("default.p12"), "--passphrase", PASS],
    );
    assert!(
        out.contains("imported default: CN=pbx.openssl.test"),
        "{out}"
    );
    // The same certificate, so into a second store; the import of either gives the same.
    let data2 = TempDir::new("cert-import-legacy");
    let out = cli(
        &data2.0,
        &[
            "cert",
            "import",
            &f("legacy.p12"),
            "--name",
            "legacy",
            "--passphrase",
            PASS,
        ],
    );
    assert!(
        out.contains("imported legacy: CN=pbx.openssl.test"),
        "{out}"
    );
    let sha = |dir: &Path, name: &str| field(&cli(dir, &["cert", "show", name]), "SHA-256:");
    assert_eq!(sha(&data2.0, "legacy"), sha(d, "default"));
    assert_eq!(
        sha(d, "default"),
        openssl_fingerprint(w, "srv.pem", "-sha256", "PEM")
    );
    assert_eq!(
        field(&cli(&data2.0, &["cert", "show", "legacy"]), "chain:"),
        "1 certificate(s) above it"
    );
    // The same certificate twice is refused (it is already stored).
    let err = cli_fails(
        d,
        &[
            "cert",
            "import",
            &f("default.p12"),
            "--name",
            "again",
            "--passphrase",
            PASS,
        ],
    );
    assert!(err.contains("already stored as default"), "{err}");

    // PEM: certificate + chain in one file, key in another, in PKCS#1 ("BEGIN RSA PRIVATE KEY").
    openssl_ok(
        w,
        &[
            "rsa",
            "-in",
            "srv.key",
            "-traditional",
            "-out",
            "srv-pkcs1.key",
        ],
    );
    let pkcs1 = std::fs::read_to_string(w.join("srv-pkcs1.key")).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
    // A second certificate for the same key, so it is not a duplicate of the PKCS#12 one.
    openssl_ok(
        w,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ossl-ca.pem",
            "-CAkey",
            "ossl-ca.key",
            "-CAcreateserial",
            "-out",
            "srv2.pem",
            "-days",
            "60",
            "-extfile",
            "ext.cnf",
        ],
    );
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(w.join("srv2.pem")).unwrap(),
        std::fs::read_to_string(w.join("ossl-ca.pem")).unwrap()
    );
    std::fs::write(w.join("bundle.pem"), bundle).unwrap();
    cli(
        d,
        &[
            "cert",
            "import",
            &f("bundle.pem"),
            "--key",
            &f("srv-pkcs1.key"),
            "--name",
            "pem-rsa",
            "--use",
        ],
    );
    let show = cli(d, &["cert", "show", "pem-rsa"]);
    assert_eq!(field(&show, "kind:"), "imported (active for SIP-TLS)");
    assert_eq!(field(&show, "chain:"), "1 certificate(s) above it");
    assert_eq!(
        field(&show, "SHA-1:"),
        openssl_fingerprint(w, "srv2.pem", "-sha1", "PEM")
    );
    assert_eq!(
        field(&show, "SHA-256:"),
        openssl_fingerprint(w, "srv2.pem", "-sha256", "PEM")
    );

    // PEM with an EC key in SEC1 form ("BEGIN EC PRIVATE KEY") in the same file.
    openssl_ok(
        w,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.key",
        ],
    );
    openssl_ok(
        w,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ec.key",
            "-out",
            "ec.pem",
            "-days",
            "30",
            "-subj",
            "/CN=ec.openssl.test",
            "-addext",
            "basicConstraints=CA:FALSE",
        ],
    );
    let combined = format!(
        "{}{}",
        std::fs::read_to_string(w.join("ec.pem")).unwrap(),
        std::fs::read_to_string(w.join("ec.key")).unwrap()
    );
    assert!(combined.contains("BEGIN EC PRIVATE KEY"));
    std::fs::write(w.join("ec-combined.pem"), combined).unwrap();
    cli(
        d,
        &["cert", "import", &f("ec-combined.pem"), "--name", "pem-ec"],
    );
    assert_eq!(
        field(&cli(d, &["cert", "show", "pem-ec"]), "key:"),
        "ECDSA P-256"
    );

    // `cert use` moves the active mark.
    let out = cli(d, &["cert", "use", "default"]);
    assert!(out.contains("active SIP-TLS certificate: default"), "{out}");
    let list = cli(d, &["cert", "list"]);
    let active: Vec<&str> = list
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("yes"))
        .collect();
    assert_eq!(active.len(), 1, "{list}");
    assert!(active[0].starts_with("default "), "{list}");
}

#[test]
fn bad_input_names_the_field_and_changes_nothing() {
    let (data, work) = files("cert-bad");
    let d = &data.0;
    let w = &work.0;
    let f = |name: &str| w.join(name).to_str().unwrap().to_owned();
    cli(
        d,
        &[
            "cert",
            "ca",
            "create",
            "root",
            "--cn",
            "Root",
            "--serial",
            "100",
            "--key",
            "ecdsa-p256",
        ],
    );
    cli(
        d,
        &[
            "cert",
            "issue",
            "--ca",
            "root",
            "srv",
            "--cn",
            "srv",
            "--san",
            "DNS:srv.test",
            "--key",
            "ecdsa-p256",
            "--use",
        ],
    );
    let p12 = f("srv.p12");
    cli(
        d,
        &[
            "cert",
            "export",
            "srv",
            "--format",
            "p12",
            "--out",
            &p12,
            "--passphrase",
            PASS,
        ],
    );
    openssl_server_cert(w, "rsa:1024");
    openssl_ok(
        w,
        &[
            "pkcs12",
            "-export",
            "-in",
            "srv.pem",
            "-inkey",
            "srv.key",
            "-out",
            "short.p12",
            "-passout",
            &format!("pass:{PASS}"),
        ],
    );
    let mut corrupt = std::fs::read(&p12).unwrap();
    corrupt.truncate(corrupt.len() / 2);
    std::fs::write(w.join("truncated.p12"), corrupt).unwrap();
    std::fs::write(
        w.join("noise.p12"),
        b"\x30\x82\x01\x00 this is not a PKCS#12 file",
    )
    .unwrap();
    std::fs::write(
        w.join("garbled.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let min_3072 = f("min3072.toml");
    std::fs::write(&min_3072, "[tls]\nmin_rsa_bits = 3072\n").unwrap();

    let before = cli(d, &["cert", "list"]);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["cert".into(), "import".into(), p12.clone(), "--name".into(), "x".into(), "--passphrase".into(), "wrong-pass".into()], "passphrase: wrong passphrase"),
        (vec!["cert".into(), "import".into(), f("truncated.p12"), "--passphrase".into(), PASS.into()], "file: not a readable PKCS#12 file"),
        (vec!["cert".into(), "import".into(), f("noise.p12"), "--passphrase".into(), PASS.into()], "file: not a readable PKCS#12 file"),
        (vec!["cert".into(), "import".into(), f("garbled.pem")], "file: bad PEM certificate"),
        (vec!["cert".into(), "import".into(), f("short.p12"), "--passphrase".into(), PASS.into()], "key: RSA 1024 bits is below the minimum of 2048 bits"),
        (vec!["cert".into(), "ca".into(), "create".into(), "weak".into(), "--cn".into(), "W".into(), "--key".into(), "rsa:1024".into()], "key: RSA 1024 bits is below the minimum of 2048 bits"),
        (vec!["--config".into(), min_3072.clone(), "cert".into(), "ca".into(), "create".into(), "weak".into(), "--cn".into(), "W".into(), "--key".into(), "rsa:2048".into()], "key: RSA 2048 bits is below the minimum of 3072 bits"),
        (vec!["cert".into(), "ca".into(), "create".into(), "again".into(), "--cn".into(), "A".into(), "--serial".into(), "0x64".into(), "--key".into(), "ecdsa-p256".into()], "serial: 64 was already used (certificate root)"),
        (vec!["cert".into(), "issue".into(), "--ca".into(), "root".into(), "srv2".into(), "--cn".into(), "s".into(), "--san".into(), "DNS:s.test".into(), "--serial".into(), "100".into()], "serial: 64 was already used"),
        (vec!["cert".into(), "ca".into(), "create".into(), "late".into(), "--cn".into(), "L".into(), "--key".into(), "ecdsa-p256".into(), "--not-before".into(), "2027-01-01".into(), "--not-after".into(), "2026-12-31".into()], "not-after: the end of validity (2026-12-31T00:00:00Z) must be after its start (2027-01-01T00:00:00Z)"),
        (vec!["cert".into(), "ca".into(), "create".into(), "my root".into(), "--cn".into(), "L".into()], "name:"),
        (vec!["cert".into(), "ca".into(), "create".into(), "root".into(), "--cn".into(), "L".into(), "--key".into(), "ecdsa-p256".into()], "name: a certificate named root already exists"),
        (vec!["cert".into(), "ca".into(), "create".into(), "c2".into(), "--cn".into(), "L".into(), "--not-before".into(), "soon".into()], "not-before:"),
        (vec!["cert".into(), "issue".into(), "--ca".into(), "srv".into(), "srv3".into(), "--cn".into(), "s".into(), "--san".into(), "DNS:s.test".into()], "ca: srv is not a CA certificate"),
        (vec!["cert".into(), "use".into(), "root".into()], "it is a CA certificate"),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = cli_fails(d, &args);
        assert!(
            err.contains(expected),
            "homeline {args:?}: expected {expected:?} in {err:?}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            cli(d, &["cert", "list"]),
            before,
            "homeline {args:?} changed the store"
        );
    }
    assert_eq!(
        field(&cli(d, &["cert", "show", "srv"]), "kind:"),
        "server (active for SIP-TLS)"
    );
}

#[test]
fn first_start_makes_its_own_ca_and_active_server_certificate() {
    let data = TempDir::new("cert-first-start");
    let work = TempDir::new("cert-first-start-files");
    let d = &data.0;
    let server = Server::start(d);
    drop(server);
    let list = cli(d, &["cert", "list"]);
    assert!(list.contains("homeline-root"), "{list}");
    let show = cli(d, &["cert", "show", "homeline-server"]);
    assert_eq!(field(&show, "kind:"), "server (active for SIP-TLS)");
    assert_eq!(field(&show, "issued by:"), "homeline-root");
    let alt = field(&show, "alt names:");
    assert!(
        alt.contains("DNS:localhost") && alt.contains("IP:127.0.0.1"),
        "{alt}"
    );
    assert_eq!(field(&show, "status:"), "valid");

    // Phones trust the CA; the server certificate verifies against it.
    let f = |name: &str| work.0.join(name).to_str().unwrap().to_owned();
    cli(
        d,
        &["cert", "export", "homeline-root", "--out", &f("ca.pem")],
    );
    cli(
        d,
        &["cert", "export", "homeline-server", "--out", &f("srv.pem")],
    );
    let verify = openssl_ok(&work.0, &["verify", "-CAfile", "ca.pem", "srv.pem"]);
    assert!(verify.contains("srv.pem: OK"), "{verify}");

    // A second start keeps what is there.
    drop(Server::start(d));
    assert_eq!(cli(d, &["cert", "list"]), list);
}
