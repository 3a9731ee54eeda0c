//! `homeline serve`: open the store, derive the media limits, bind the listeners and the
//! control socket, run until a signal.

use std::path::Path;

use anyhow::{bail, Context, Result};
use store::Store;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::config::ConfigFile;
use crate::setup_cmd::InternetLimit;
use crate::status_cmd;

pub(crate) async fn run(file: &ConfigFile, data: &Path) -> Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(file.log.level.as_deref().unwrap_or("info")))
        .context("log.level is not a valid filter")?;
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let mut config = file.net_config(ipv6_available())?;
    if status_cmd::server_answers(data) {
        bail!(
            "another homeline server is already running with data folder {}",
            data.display()
        );
    }
    let tls = file.tls.settings()?;
    let socket = net::control::socket_path(data);
    config.control_socket = Some(socket.clone());
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    info!(data = %data.display(), "store opened");
    let identity = tls_identity_at_start(file, &config, &store).await?;
    if let Some(t) = &tls {
        config.tls = Some(crate::tls_reload::tls_config(t, identity.to_net())?);
    }
    let file_relay = config.media.relay.clone();
    let limit = InternetLimit::resolve(&store, &file_relay).await?;
    config.media.relay.internet_calls = limit.calls;
    info!(
        channels = config.media.relay.channels(),
        internet_calls = %limit.calls.map_or_else(|| "none".to_owned(), |n| n.to_string()),
        derivation = %limit,
        "media limits"
    );
    let (relay_ip, relay_ports, public_sip_port) = (
        config.media.bind_ip,
        config.media.relay.ports.clone(),
        config.public_sip_port,
    );
    let server = net::start(config, store.clone()).await?;
    for (zone, transport, addr) in &server.listeners {
        info!(%zone, %transport, %addr, "listening");
    }
    if let Some(c) = server
        .stats
        .tls_certificate
        .lock()
        .ok()
        .and_then(|c| c.clone())
    {
        crate::tls_reload::log_certificate("TLS certificate", &c);
    }
    if let (Some(t), Some(setter)) = (tls.as_ref(), server.tls_identity_setter()) {
        match t.files.clone() {
            Some((cert, key)) => crate::tls_reload::spawn_watch(cert, key, setter),
            None => {
                crate::tls_reload::spawn_store_watch(store.clone(), identity.sha256.clone(), setter)
            }
        }
    }
    let nat = file.nat_settings()?;
    let external = server
        .listeners
        .iter()
        .filter(|(zone, _, _)| *zone == policy::Zone::External)
        .map(|(_, _, addr)| addr.ip())
        .min_by_key(|ip| !ip.is_ipv4());
    // The UDP listener of that address learns its own mapping (IPv4 first, like the address).
    let listener = server
        .listeners
        .iter()
        .filter(|(zone, transport, _)| {
            *zone == policy::Zone::External && *transport == sip_proto::path::Transport::Udp
        })
        .map(|(_, _, addr)| *addr)
        .min_by_key(|addr| !addr.is_ipv4())
        .and_then(|addr| server.take_listener_stun(addr));
    match external {
        Some(ip) => crate::public_addr::spawn(
            nat,
            ip,
            crate::public_addr::Ports {
                listener,
                relay_ip,
                relay_ports,
                public_sip_port,
            },
            server.public_ip_setter(),
            server.stats.clone(),
        ),
        None if nat.learns() => warn!("no external listener: the public address is not learned"),
        None => {}
    }
    tokio::spawn(follow_upstream(
        store.clone(),
        file_relay,
        server.relay.clone(),
        limit.calls,
    ));
    eprintln!("homeline ready");
    shutdown_signal().await;
    info!("stopping");
    server.shutdown().await;
    store.close().await;
    // The control task also removes it when the runtime drops it; doing it here keeps the
    // folder clean even if that never happens.
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// The SIP-TLS identity: the active certificate, or on first start a new CA and server
/// certificate for this host. Logs its subject, fingerprint and expiry (warned 30 days ahead).
async fn tls_identity_at_start(
    file: &ConfigFile,
    config: &net::NetConfig,
    store: &Store,
) -> Result<crate::tls_identity::ActiveIdentity> {
    let now = pki::OffsetDateTime::now_utc();
    let listeners: Vec<_> = config
        .internal
        .iter()
        .chain(&config.external)
        .copied()
        .collect();
    let public = file.nat_settings()?.fixed;
    let identity = crate::tls_identity::ensure(
        store,
        &crate::tls_identity::host_names(),
        &crate::tls_identity::host_ips(&listeners, public),
        now,
        file.min_rsa_bits()?,
    )
    .await
    .context("cannot set up the SIP-TLS certificate")?;
    identity.check()?;
    info!(
        name = %identity.name,
        subject = %identity.subject,
        sha256 = %identity.sha256,
        chain = identity.cert_chain_der.len(),
        not_after = %pki::rfc3339(identity.not_after),
        "SIP-TLS certificate"
    );
    if let Some(w) = identity.expiry_warning(now) {
        warn!("{w}");
    }
    Ok(identity)
}

/// How often the store is checked for a changed upstream setting.
const SETTINGS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Applies `homeline setup upstream` to the running relay: new calls meet the new limit
/// within a second; calls already up keep their channels even above a lower limit.
async fn follow_upstream(
    store: Store,
    file_relay: relay::Config,
    pool: net::media::SharedPool,
    mut current: Option<u32>,
) {
    let mut generation = store.generation().await.ok();
    loop {
        tokio::time::sleep(SETTINGS_POLL).await;
        let now = store.generation().await.ok();
        if now == generation {
            continue;
        }
        generation = now;
        match InternetLimit::resolve(&store, &file_relay).await {
            Ok(limit) if limit.calls != current => {
                current = limit.calls;
                pool.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_internet_calls(limit.calls);
                info!(
                    internet_calls = %limit.calls.map_or_else(|| "none".to_owned(), |n| n.to_string()),
                    derivation = %limit,
                    "Internet-call limit changed"
                );
            }
            Ok(_) => {}
            Err(e) => warn!(error = %format!("{e:#}"), "stored upstream setting not applied"),
        }
    }
}

/// True when this host can bind an IPv6 socket (some containers have IPv6 disabled).
fn ipv6_available() -> bool {
    let ok = std::net::UdpSocket::bind("[::1]:0").is_ok();
    if !ok {
        warn!("IPv6 is not available: default listeners are IPv4 only");
    }
    ok
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
