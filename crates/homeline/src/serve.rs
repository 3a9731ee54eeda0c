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
    let socket = net::control::socket_path(data);
    config.control_socket = Some(socket.clone());
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    info!(data = %data.display(), "store opened");
    // Read once: a changed upstream takes effect at the next start (`setup upstream` says so).
    let limit = InternetLimit::resolve(&store, &config.media.relay).await?;
    config.media.relay.internet_calls = limit.calls;
    info!(
        channels = config.media.relay.channels(),
        internet_calls = %limit.calls.map_or_else(|| "none".to_owned(), |n| n.to_string()),
        derivation = %limit,
        "media limits"
    );
    let server = net::start(config, store.clone()).await?;
    for (zone, transport, addr) in &server.listeners {
        info!(%zone, %transport, %addr, "listening");
    }
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
