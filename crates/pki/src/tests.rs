//! Round trips through generation, PKCS#12 and PEM, and the refusals.

use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

const MIN: u32 = DEFAULT_MIN_RSA_BITS;

fn subject(cn: &str) -> Subject {
    Subject {
        country: Some("DE".into()),
        organization: Some("Example Office".into()),
        organizational_unit: Some("Telephony".into()),
        common_name: cn.into(),
    }
}

fn ca_spec(key: KeySpec, hash: SignatureHash) -> CaSpec {
    let now = parse_time("now", "2026-03-01T10:00:00Z").expect("time");
    CaSpec {
        name: CertName::parse("office-root").expect("name"),
        serial: Serial::parse("0x1001").expect("serial"),
        key,
        hash,
        validity: Validity::days_from(now, 3650),
        subject: subject("Office Root CA"),
        alt_names: vec!["DNS:ca.example.test".parse().expect("san")],
        crl_distribution_point: Some("http://ca.example.test/root.crl".into()),
    }
}

fn server_spec(key: KeySpec, hash: SignatureHash) -> ServerCertSpec {
    let now = parse_time("now", "2026-03-01T10:00:00Z").expect("time");
    ServerCertSpec {
        name: CertName::parse("pbx").expect("name"),
        serial: Serial::parse("4242").expect("serial"),
        key,
        hash,
        validity: Validity::days_from(now, 730),
        subject: subject("pbx.example.test"),
        alt_names: vec![
            "DNS:pbx.example.test".parse().expect("san"),
            "IP:192.0.2.10".parse().expect("san"),
        ],
    }
}

fn rsa2048() -> KeySpec {
    KeySpec::Rsa { bits: 2048 }
}

fn verifies(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    let (_, cert) = X509Certificate::from_der(cert_der).expect("cert");
    let (_, issuer) = X509Certificate::from_der(issuer_der).expect("issuer");
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

#[test]
fn rfc5280_4_2_1_9_root_ca_round_trip() {
    let ca = create_ca(&ca_spec(rsa2048(), SignatureHash::Sha512), MIN).expect("ca");
    let info = CertInfo::from_der(&ca.cert_der).expect("info");
    assert!(info.is_ca);
    assert!(info.self_issued);
    assert_eq!(info.serial_hex, "1001");
    assert_eq!(info.rsa_bits, Some(2048));
    assert_eq!(info.key, "RSA 2048 bits");
    assert_eq!(info.signature, "sha512WithRSAEncryption");
    assert_eq!(
        info.subject,
        "C=DE, O=Example Office, OU=Telephony, CN=Office Root CA"
    );
    assert_eq!(info.alt_names, vec!["DNS:ca.example.test"]);
    assert_eq!(
        info.crl_distribution_points,
        vec!["http://ca.example.test/root.crl"]
    );
    assert_eq!(rfc3339(info.not_before), "2026-03-01T10:00:00Z");
    assert_eq!(info.sha256.len(), 32 * 3 - 1);
    assert!(verifies(&ca.cert_der, &ca.cert_der));
}

#[test]
fn server_certificate_chains_to_its_ca() {
    let ca = create_ca(&ca_spec(rsa2048(), SignatureHash::Sha256), MIN).expect("ca");
    let material = CaMaterial {
        cert_der: &ca.cert_der,
        key_pkcs8_der: &ca.key_pkcs8_der,
    };
    for (key, hash, signature) in [
        (rsa2048(), SignatureHash::Sha256, "sha256WithRSAEncryption"),
        (
            KeySpec::EcdsaP256,
            SignatureHash::Sha512,
            "sha512WithRSAEncryption",
        ),
    ] {
        let srv = issue_server(&server_spec(key, hash), MIN, material).expect("server");
        assert!(verifies(&srv.cert_der, &ca.cert_der));
        let info = CertInfo::from_der(&srv.cert_der).expect("info");
        assert!(!info.is_ca);
        assert_eq!(info.signature, signature);
        assert_eq!(
            info.alt_names,
            vec!["DNS:pbx.example.test", "IP:192.0.2.10"]
        );
        assert_eq!(
            info.issuer,
            CertInfo::from_der(&ca.cert_der).expect("ca").subject
        );
    }
}

#[test]
fn ecdsa_ca_signs_with_sha256_only() {
    let ca = create_ca(&ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256), MIN).expect("ca");
    assert_eq!(
        CertInfo::from_der(&ca.cert_der).expect("info").key,
        "ECDSA P-256"
    );
    let material = CaMaterial {
        cert_der: &ca.cert_der,
        key_pkcs8_der: &ca.key_pkcs8_der,
    };
    let srv = issue_server(
        &server_spec(rsa2048(), SignatureHash::Sha256),
        MIN,
        material,
    )
    .expect("server");
    assert!(verifies(&srv.cert_der, &ca.cert_der));
    let err = issue_server(
        &server_spec(rsa2048(), SignatureHash::Sha512),
        MIN,
        material,
    )
    .expect_err("sha512 with ECDSA");
    assert!(
        matches!(err, PkiError::Invalid { field: "hash", .. }),
        "{err}"
    );
    let err = create_ca(&ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha512), MIN)
        .expect_err("sha512 with ECDSA");
    assert!(
        matches!(err, PkiError::Invalid { field: "hash", .. }),
        "{err}"
    );
}

#[test]
fn refusals_name_the_field() {
    let err = create_ca(&ca_spec(rsa2048(), SignatureHash::Sha256), 3072).expect_err("short");
    assert!(matches!(
        err,
        PkiError::KeyTooShort {
            bits: 2048,
            min: 3072
        }
    ));
    assert!(err.to_string().starts_with("key:"), "{err}");
    let mut spec = ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256);
    spec.validity.not_after = spec.validity.not_before;
    let err = create_ca(&spec, MIN).expect_err("end = start");
    assert!(err.to_string().starts_with("not-after:"), "{err}");
    spec = ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256);
    spec.crl_distribution_point = Some("file:///etc/passwd".into());
    assert!(matches!(
        create_ca(&spec, MIN),
        Err(PkiError::Invalid {
            field: "crl-url",
            ..
        })
    ));
    let ca = create_ca(&ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256), MIN).expect("ca");
    let mut srv = server_spec(KeySpec::EcdsaP256, SignatureHash::Sha256);
    srv.alt_names.clear();
    let material = CaMaterial {
        cert_der: &ca.cert_der,
        key_pkcs8_der: &ca.key_pkcs8_der,
    };
    assert!(matches!(
        issue_server(&srv, MIN, material),
        Err(PkiError::Invalid { field: "san", .. })
    ));
    // A server certificate cannot sign.
    let leaf = issue_server(
        &server_spec(KeySpec::EcdsaP256, SignatureHash::Sha256),
        MIN,
        material,
    )
    .expect("server");
    let not_ca = CaMaterial {
        cert_der: &leaf.cert_der,
        key_pkcs8_der: &leaf.key_pkcs8_der,
    };
    assert!(matches!(
        issue_server(
            &server_spec(KeySpec::EcdsaP256, SignatureHash::Sha256),
            MIN,
            not_ca
        ),
        Err(PkiError::NotACa(_))
    ));
}

#[test]
fn pkcs12_round_trip_and_wrong_passphrase() {
    let ca = create_ca(&ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256), MIN).expect("ca");
    let material = CaMaterial {
        cert_der: &ca.cert_der,
        key_pkcs8_der: &ca.key_pkcs8_der,
    };
    let srv = issue_server(
        &server_spec(rsa2048(), SignatureHash::Sha256),
        MIN,
        material,
    )
    .expect("server");
    let chain = vec![ca.cert_der.clone()];
    let p12 = pkcs12(
        "pbx",
        &srv.cert_der,
        &chain,
        &srv.key_pkcs8_der,
        "s3cret-pass",
    )
    .expect("p12");
    let back = import_pkcs12(&p12, "s3cret-pass", MIN).expect("import");
    assert_eq!(back.cert_der, srv.cert_der);
    assert_eq!(back.chain_der, chain);
    assert_eq!(back.key_pkcs8_der, srv.key_pkcs8_der);
    assert!(matches!(
        import_pkcs12(&p12, "wrong", MIN),
        Err(PkiError::WrongPassphrase)
    ));
    assert!(matches!(
        import_pkcs12(&p12[..p12.len() / 2], "s3cret-pass", MIN),
        Err(PkiError::CorruptPkcs12(_))
    ));
    assert!(matches!(
        import_pkcs12(&p12, "s3cret-pass", 3072),
        Err(PkiError::KeyTooShort {
            bits: 2048,
            min: 3072
        })
    ));
    assert!(matches!(
        pkcs12("pbx", &srv.cert_der, &chain, &srv.key_pkcs8_der, "ab"),
        Err(PkiError::Invalid {
            field: "passphrase",
            ..
        })
    ));
}

#[test]
fn pem_round_trip_and_key_mismatch() {
    let a = create_ca(&ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256), MIN).expect("a");
    let b = create_ca(&ca_spec(KeySpec::EcdsaP256, SignatureHash::Sha256), MIN).expect("b");
    let cert = certificates_pem([a.cert_der.as_slice()]);
    let both = format!("{cert}{}", private_key_pem(&a.key_pkcs8_der));
    let back = import_pem(both.as_bytes(), None, MIN).expect("import");
    assert_eq!(back.cert_der, a.cert_der);
    assert_eq!(back.key_pkcs8_der, a.key_pkcs8_der);
    let wrong_key = private_key_pem(&b.key_pkcs8_der);
    assert!(matches!(
        import_pem(cert.as_bytes(), Some(wrong_key.as_bytes()), MIN),
        Err(PkiError::KeyMismatch)
    ));
    assert!(matches!(
        import_pem(cert.as_bytes(), None, MIN),
        Err(PkiError::NoPrivateKey)
    ));
    assert!(matches!(
        import_pem(b"hello", None, MIN),
        Err(PkiError::CorruptPem(_))
    ));
    assert!(looks_like_pem(both.as_bytes()));
    assert!(!looks_like_pem(&a.cert_der));
}

#[test]
fn fingerprints_are_openssl_style() {
    assert_eq!(
        fingerprint_sha1(b"abc"),
        "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
    );
    assert!(fingerprint_sha256(b"abc").starts_with("BA:78:16:BF:8F:01:CF:EA"));
}
