//! SIP over TLS helpers shared by the TLS test files: certificates made with the `openssl`
//! command (Debian package `openssl`), a PBX with TLS listeners on free ports, and baresip
//! phones registered over TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::baresip::{start_server, Phone, TlsFiles, PW};
use super::{cli, free_port, TempDir};

/// Runs `openssl args` in `dir`; its standard output.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed RSA-2048 certificate for 127.0.0.1: `(name.crt, name.key)` in `dir`.
pub fn self_signed(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// The running server's status document.
pub fn status(data: &Path) -> serde_json::Value {
    serde_json::from_str(&cli(data, &["status", "--json"])).unwrap()
}

/// A PBX with TLS on free ports, certificate files `crt`/`key`, `stations` (number, SBC flag)
/// and `extra` configuration (a `[media]` section, `[tls]` keys after the ports).
pub struct TlsPbx {
    pub data: TempDir,
    pub server: super::Server,
    pub internal: SocketAddr,
    pub external: SocketAddr,
}

pub fn tls_pbx(
    tag: &str,
    stations: &[(&str, bool)],
    crt: &Path,
    key: &Path,
    tls_extra: &str,
    extra: &str,
) -> TlsPbx {
    tls_pbx_secure(tag, stations, &[], crt, key, tls_extra, extra)
}

/// Like [`tls_pbx`], with the payload-security flag on for the stations in `secure`.
pub fn tls_pbx_secure(
    tag: &str,
    stations: &[(&str, bool)],
    secure: &[&str],
    crt: &Path,
    key: &Path,
    tls_extra: &str,
    extra: &str,
) -> TlsPbx {
    let data = TempDir::new(tag);
    for (n, sbc) in stations {
        let sbc = if *sbc { "on" } else { "off" };
        cli(
            &data.0,
            &["station", "add", n, "--password", PW, "--sbc", sbc],
        );
    }
    for n in secure {
        cli(&data.0, &["station", "set", n, "--payload-security", "on"]);
    }
    let (pi, pe) = (free_port(), free_port());
    let server = start_server(
        &data.0,
        &format!(
            "[tls]\ninternal_port = {pi}\nexternal_port = {pe}\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{tls_extra}{extra}",
            crt.display(),
            key.display()
        ),
    );
    TlsPbx {
        data,
        server,
        internal: format!("127.0.0.1:{pi}").parse().unwrap(),
        external: format!("127.0.0.1:{pe}").parse().unwrap(),
    }
}

/// Phone TLS files: its own self-signed certificate (with key) and `trusted` as CA file.
pub fn phone_files(dir: &Path, name: &str, trusted: &[&Path]) -> TlsFiles {
    let (crt, key) = self_signed(dir, name, name);
    phone_files_with(dir, name, &crt, &key, trusted)
}

pub fn phone_files_with(
    dir: &Path,
    name: &str,
    crt: &Path,
    key: &Path,
    trusted: &[&Path],
) -> TlsFiles {
    let certkey = dir.join(format!("{name}-certkey.pem"));
    let mut pem = std::fs::read_to_string(crt).unwrap();
    pem.push_str(&std::fs::read_to_string(key).unwrap());
    std::fs::write(&certkey, pem).unwrap();
    let cafile = dir.join(format!("{name}-ca.pem"));
    let ca: String = trusted
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    std::fs::write(&cafile, ca).unwrap();
    TlsFiles { certkey, cafile }
}

pub fn tls_phone(name: &str, listener: SocketAddr, user: &str, files: &TlsFiles) -> Phone {
    let mut p = Phone::start_tls(name, listener, user, PW, files);
    p.wait_registered();
    p
}

/// Every SIP message the phone exchanged went over TLS, and the server's Via said so.
pub fn assert_signalling_over_tls(p: &Phone) {
    let out = p.output();
    assert!(
        out.contains("{0/TLS/v4} 200 OK"),
        "{}: not registered over TLS",
        p.name
    );
    let invites: Vec<_> = p
        .trace()
        .into_iter()
        .filter(|m| !m.sent && m.start.starts_with("INVITE "))
        .collect();
    for m in &invites {
        assert!(
            m.text.lines().any(|l| l.starts_with("Via: SIP/2.0/TLS ")),
            "{}: INVITE without a TLS Via:\n{}",
            p.name,
            m.text
        );
        assert!(
            m.text
                .lines()
                .any(|l| l.starts_with("Contact:") && l.contains("transport=tls")),
            "{}: INVITE Contact not on TLS:\n{}",
            p.name,
            m.text
        );
    }
}
