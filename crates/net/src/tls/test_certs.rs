//! Fixed certificates for the unit tests, made once with `openssl req -x509` (keys of no
//! value: they protect nothing).

use super::TlsIdentity;

const EC: [(&str, &str); 2] = [
    (
        include_str!("testdata/ec1.crt"),
        include_str!("testdata/ec1.key"),
    ),
    (
        include_str!("testdata/ec2.crt"),
        include_str!("testdata/ec2.key"),
    ),
];

/// One of two ECDSA P-256 self-signed identities (`seed` 1 or 2).
pub(super) fn identity(seed: u8) -> TlsIdentity {
    let (cert, key) = EC[usize::from(seed.saturating_sub(1)) % EC.len()];
    TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes()).expect("test identity")
}

/// A self-signed identity with a 1024-bit RSA key.
pub(super) fn rsa_1024() -> TlsIdentity {
    TlsIdentity::from_pem(
        include_str!("testdata/rsa1024.crt").as_bytes(),
        include_str!("testdata/rsa1024.key").as_bytes(),
    )
    .expect("test identity")
}

/// A self-signed identity with a 2048-bit RSA key.
pub(super) fn rsa_2048() -> TlsIdentity {
    TlsIdentity::from_pem(
        include_str!("testdata/rsa2048.crt").as_bytes(),
        include_str!("testdata/rsa2048.key").as_bytes(),
    )
    .expect("test identity")
}

/// `der` as a PEM block labelled `label`.
pub(super) fn pem(label: &str, der: &[u8]) -> String {
    use std::fmt::Write;
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            b64.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        for _ in chunk.len()..3 {
            b64.push('=');
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        let _ = writeln!(out, "{}", String::from_utf8_lossy(line));
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}
