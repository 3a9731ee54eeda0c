//! `homeline cert …`: the built-in CA, server certificates, imports, exports and the active
//! SIP-TLS certificate. Checks happen in crate `pki` before the store is touched; each store
//! write is one transaction, so a refusal changes nothing.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use pki::{
    AltName, CaSpec, CertInfo, CertName, KeySpec, OffsetDateTime, Serial, ServerCertSpec,
    SignatureHash, Subject, Validity,
};
use store::{CertKind, CertificateRow, Store, StoredCertificate};

use crate::cli::{CaCommand, CertCommand, CertRequest, ExportFormat, Passphrase};
use crate::config::ConfigFile;
use crate::tls_identity::{new_certificate, write_private_file};

/// Default validity of a root CA, days.
pub(crate) const CA_DAYS: i64 = 3650;
/// Default validity of a server certificate, days.
pub(crate) const SERVER_DAYS: i64 = 730;

pub(crate) async fn run(command: &CertCommand, file: &ConfigFile, data: &Path) -> Result<()> {
    let min_rsa_bits = file.min_rsa_bits()?;
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    let now = OffsetDateTime::now_utc();
    let result = match command {
        CertCommand::Ca {
            command: CaCommand::Create { request, crl_url },
        } => ca_create(&store, request, crl_url.as_deref(), min_rsa_bits, now).await,
        CertCommand::Ca {
            command: CaCommand::List,
        } => list(&store, true, now).await,
        CertCommand::List => list(&store, false, now).await,
        CertCommand::Issue {
            ca,
            request,
            out,
            passphrase,
            use_it,
        } => {
            let passphrase = match out {
                Some(_) => Some(read_passphrase(passphrase)?),
                None => None,
            };
            issue(
                &store,
                ca,
                request,
                out.as_deref().zip(passphrase.as_deref()),
                *use_it,
                min_rsa_bits,
                now,
            )
            .await
        }
        CertCommand::Import {
            file,
            name,
            key,
            passphrase,
            use_it,
        } => {
            import(
                &store,
                file,
                name.as_deref(),
                key.as_deref(),
                passphrase,
                *use_it,
                min_rsa_bits,
                now,
            )
            .await
        }
        CertCommand::Show { name } => show(&store, name, now).await,
        CertCommand::Export {
            name,
            format,
            out,
            passphrase,
        } => export(&store, name, *format, out.as_deref(), passphrase).await,
        CertCommand::Use { name } => use_cert(&store, name, now).await,
    };
    store.close().await;
    result
}

async fn ca_create(
    store: &Store,
    request: &CertRequest,
    crl_url: Option<&str>,
    min_rsa_bits: u32,
    now: OffsetDateTime,
) -> Result<()> {
    let common = Common::parse(request, CA_DAYS, now)?;
    let spec = CaSpec {
        name: common.name,
        serial: common.serial,
        key: common.key,
        hash: common.hash,
        validity: common.validity,
        subject: common.subject,
        alt_names: common.alt_names,
        crl_distribution_point: crl_url.map(str::to_owned),
    };
    // Cheap refusals before a key is made; the store checks again in its transaction.
    spec.check(min_rsa_bits)?;
    check_free(store, spec.name.as_str(), &spec.serial).await?;
    let made = pki::create_ca(&spec, min_rsa_bits)?;
    let info = CertInfo::from_der(&made.cert_der)?;
    let new = new_certificate(
        spec.name.as_str(),
        CertKind::Ca,
        &info,
        made.cert_der,
        Vec::new(),
        Some(made.key_pkcs8_der),
        None,
        false,
        now,
    );
    let row = store.add_certificate(&new).await?;
    println!("created CA {}: {}", row.name, row.subject);
    print_fingerprints(&info);
    Ok(())
}

async fn issue(
    store: &Store,
    ca_name: &str,
    request: &CertRequest,
    out: Option<(&Path, &str)>,
    use_it: bool,
    min_rsa_bits: u32,
    now: OffsetDateTime,
) -> Result<()> {
    let common = Common::parse(request, SERVER_DAYS, now)?;
    let spec = ServerCertSpec {
        name: common.name,
        serial: common.serial,
        key: common.key,
        hash: common.hash,
        validity: common.validity,
        subject: common.subject,
        alt_names: common.alt_names,
    };
    spec.check(min_rsa_bits)?;
    let ca = ca_material(store, ca_name).await?;
    check_free(store, spec.name.as_str(), &spec.serial).await?;
    let key = ca
        .key_pkcs8
        .as_deref()
        .context("ca: the CA's private key is not stored")?;
    let made = pki::issue_server(
        &spec,
        min_rsa_bits,
        pki::CaMaterial {
            cert_der: &ca.cert_der,
            key_pkcs8_der: key,
        },
    )?;
    let info = CertInfo::from_der(&made.cert_der)?;
    let mut chain = vec![ca.cert_der.clone()];
    chain.extend(ca.chain_der.iter().cloned());
    // Made before storing, so a bad passphrase stores nothing.
    let p12 = match out {
        Some((_, passphrase)) => Some(pki::pkcs12(
            spec.name.as_str(),
            &made.cert_der,
            &chain,
            &made.key_pkcs8_der,
            passphrase,
        )?),
        None => None,
    };
    let new = new_certificate(
        spec.name.as_str(),
        CertKind::Server,
        &info,
        made.cert_der,
        chain,
        Some(made.key_pkcs8_der),
        Some(ca.row.name.clone()),
        use_it,
        now,
    );
    let row = store.add_certificate(&new).await?;
    println!(
        "issued {}: {} (by {}){}",
        row.name,
        row.subject,
        ca.row.name,
        if row.active { ", active" } else { "" }
    );
    print_fingerprints(&info);
    if let (Some((path, _)), Some(p12)) = (out, p12) {
        write_private_file(path, &p12)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one per command-line option
async fn import(
    store: &Store,
    file: &Path,
    name: Option<&str>,
    key: Option<&Path>,
    passphrase: &Passphrase,
    use_it: bool,
    min_rsa_bits: u32,
    now: OffsetDateTime,
) -> Result<()> {
    let name = match name {
        Some(n) => CertName::parse(n)?,
        None => {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().replace(char::is_whitespace, "-"))
                .unwrap_or_default();
            CertName::parse(&stem).context("name: give one with --name")?
        }
    };
    let data =
        std::fs::read(file).with_context(|| format!("file: cannot read {}", file.display()))?;
    let identity = if pki::looks_like_pem(&data) {
        let key_data = match key {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("key: cannot read {}", path.display()))?,
            ),
            None => None,
        };
        pki::import_pem(&data, key_data.as_deref(), min_rsa_bits)?
    } else {
        if key.is_some() {
            bail!("key: --key is for PEM files; a PKCS#12 file carries its key");
        }
        let passphrase = read_passphrase(passphrase)?;
        pki::import_pkcs12(&data, &passphrase, min_rsa_bits)?
    };
    let info = CertInfo::from_der(&identity.cert_der)?;
    let new = new_certificate(
        name.as_str(),
        CertKind::Imported,
        &info,
        identity.cert_der,
        identity.chain_der,
        Some(identity.key_pkcs8_der),
        None,
        use_it,
        now,
    );
    let row = store.add_certificate(&new).await?;
    println!(
        "imported {}: {}{}",
        row.name,
        row.subject,
        if row.active { ", active" } else { "" }
    );
    print_fingerprints(&info);
    if let Some(w) = pki::expiry_warning(&row.name, info.not_before, info.not_after, now) {
        println!("warning: {w}");
    }
    Ok(())
}

async fn list(store: &Store, cas_only: bool, now: OffsetDateTime) -> Result<()> {
    let rows: Vec<CertificateRow> = store
        .certificates()
        .await?
        .into_iter()
        .filter(|r| !cas_only || r.is_ca)
        .collect();
    if rows.is_empty() {
        println!("no certificates");
        return Ok(());
    }
    println!(
        "{:<24} {:<9} {:<6} {:<34} {:<21} SUBJECT",
        "NAME", "KIND", "ACTIVE", "SERIAL", "NOT AFTER"
    );
    for r in rows {
        let not_after = unix(r.not_after);
        let mark = match pki::expiry_state(unix(r.not_before), not_after, now) {
            pki::ExpiryState::Expired => " (expired)",
            pki::ExpiryState::ExpiresSoon { .. } => " (soon)",
            _ => "",
        };
        println!(
            "{:<24} {:<9} {:<6} {:<34} {:<21} {}",
            r.name,
            r.kind,
            if r.active { "yes" } else { "" },
            r.serial,
            format!("{}{mark}", pki::rfc3339(not_after)),
            r.subject
        );
    }
    Ok(())
}

async fn show(store: &Store, name: &str, now: OffsetDateTime) -> Result<()> {
    let cert = stored(store, name).await?;
    let info = CertInfo::from_der(&cert.cert_der)?;
    let r = &cert.row;
    println!("name:         {}", r.name);
    println!(
        "kind:         {}{}",
        r.kind,
        if r.active {
            " (active for SIP-TLS)"
        } else {
            ""
        }
    );
    println!("subject:      {}", info.subject);
    println!("issuer:       {}", info.issuer);
    if let Some(by) = &r.issuer_name {
        println!("issued by:    {by}");
    }
    println!("serial:       {}", info.serial_hex);
    println!("not before:   {}", pki::rfc3339(info.not_before));
    println!("not after:    {}", pki::rfc3339(info.not_after));
    let status = pki::expiry_warning(&r.name, info.not_before, info.not_after, now)
        .unwrap_or_else(|| "valid".to_owned());
    println!("status:       {status}");
    println!("key:          {}", info.key);
    println!("signature:    {}", info.signature);
    println!("CA:           {}", if info.is_ca { "yes" } else { "no" });
    if !info.alt_names.is_empty() {
        println!("alt names:    {}", info.alt_names.join(", "));
    }
    for uri in &info.crl_distribution_points {
        println!("CRL:          {uri}");
    }
    println!(
        "private key:  {}",
        if r.has_key { "stored" } else { "not stored" }
    );
    println!(
        "chain:        {} certificate(s) above it",
        cert.chain_der.len()
    );
    print_fingerprints(&info);
    Ok(())
}

async fn export(
    store: &Store,
    name: &str,
    format: ExportFormat,
    out: Option<&Path>,
    passphrase: &Passphrase,
) -> Result<()> {
    let cert = stored(store, name).await?;
    match format {
        ExportFormat::Pem => {
            let text = pki::certificates_pem([cert.cert_der.as_slice()]);
            match out {
                Some(path) => std::fs::write(path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
        }
        ExportFormat::Der => {
            let path = out.context("out: DER is binary; give a file with --out")?;
            std::fs::write(path, &cert.cert_der)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        ExportFormat::P12 => {
            let path = out.context("out: give the PKCS#12 file with --out")?;
            let key = cert
                .key_pkcs8
                .as_deref()
                .with_context(|| format!("certificate {name} has no stored private key"))?;
            let passphrase = read_passphrase(passphrase)?;
            let p12 = pki::pkcs12(name, &cert.cert_der, &cert.chain_der, key, &passphrase)?;
            write_private_file(path, &p12)?;
        }
    }
    if let Some(path) = out {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn use_cert(store: &Store, name: &str, now: OffsetDateTime) -> Result<()> {
    let row = store.use_certificate(name).await?;
    println!(
        "active SIP-TLS certificate: {} ({}), valid until {}",
        row.name,
        row.subject,
        pki::rfc3339(unix(row.not_after))
    );
    if let Some(w) = pki::expiry_warning(&row.name, unix(row.not_before), unix(row.not_after), now)
    {
        println!("warning: {w}");
    }
    Ok(())
}

/// The fields both `ca create` and `issue` take, parsed.
struct Common {
    name: CertName,
    serial: Serial,
    key: KeySpec,
    hash: SignatureHash,
    validity: Validity,
    subject: Subject,
    alt_names: Vec<AltName>,
}

impl Common {
    fn parse(r: &CertRequest, default_days: i64, now: OffsetDateTime) -> Result<Self> {
        let name = CertName::parse(&r.name)?;
        let serial = match &r.serial {
            Some(s) => Serial::parse(s)?,
            None => Serial::random()?,
        };
        let not_before = match &r.not_before {
            Some(t) => pki::parse_time("not-before", t)?,
            None => now,
        };
        let validity = match &r.not_after {
            Some(t) => Validity {
                not_before: Validity::days_from(not_before, 0).not_before,
                not_after: pki::parse_time("not-after", t)?,
            },
            None => Validity::days_from(not_before, r.days.map_or(default_days, i64::from)),
        };
        Ok(Self {
            name,
            serial,
            key: r.key.parse()?,
            hash: r.hash.parse()?,
            validity,
            subject: Subject {
                country: r.country.clone(),
                organization: r.organization.clone(),
                organizational_unit: r.organizational_unit.clone(),
                common_name: r.common_name.clone(),
            },
            alt_names: r
                .alt_names
                .iter()
                .map(|s| s.parse())
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Refuses a taken name or a serial this installation already used, before any key is made.
async fn check_free(store: &Store, name: &str, serial: &Serial) -> Result<()> {
    if store.certificate(name).await?.is_some() {
        return Err(store::StoreError::DuplicateCertificateName(name.to_owned()).into());
    }
    if let Some(first_name) = store.serial_taken(&serial.to_hex()).await? {
        return Err(store::StoreError::SerialTaken {
            serial: serial.to_hex(),
            first_name,
        }
        .into());
    }
    Ok(())
}

async fn ca_material(store: &Store, name: &str) -> Result<StoredCertificate> {
    let ca = store
        .certificate(name)
        .await?
        .with_context(|| format!("ca: no certificate named {name}"))?;
    if !ca.row.is_ca {
        bail!("ca: {name} is not a CA certificate");
    }
    if ca.key_pkcs8.is_none() {
        bail!("ca: the private key of {name} is not stored");
    }
    Ok(ca)
}

async fn stored(store: &Store, name: &str) -> Result<StoredCertificate> {
    Ok(store
        .certificate(name)
        .await?
        .ok_or_else(|| store::StoreError::NoSuchCertificate(name.to_owned()))?)
}

fn read_passphrase(p: &Passphrase) -> Result<String> {
    if let Some(pass) = &p.passphrase {
        return Ok(pass.clone());
    }
    if p.passphrase_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    bail!("passphrase: give --passphrase or --passphrase-stdin")
}

fn print_fingerprints(info: &CertInfo) {
    println!("SHA-1:        {}", info.sha1);
    println!("SHA-256:      {}", info.sha256);
}

pub(crate) fn unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
