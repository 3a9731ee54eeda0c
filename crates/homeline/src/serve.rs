//! `homeline serve`: open the store, bind the listeners, run until a signal.

use std::path::Path;

use anyhow::{Context, Result};
use store::Store;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::config::ConfigFile;

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

    let config = file.net_config(ipv6_available())?;
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    info!(data = %data.display(), "store opened");
    let server = net::start(config, store.clone()).await?;
    for (zone, transport, addr) in &server.listeners {
        info!(%zone, %transport, %addr, "listening");
    }
    eprintln!("homeline ready");
    shutdown_signal().await;
    info!("stopping");
    server.shutdown().await;
    store.close().await;
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
