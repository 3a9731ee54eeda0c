//! The `homeline` binary: command line, configuration, wiring, signals.

mod cert_cmd;
mod check;
mod cli;
mod config;
mod port_map;
mod public_addr;
mod router_rules;
mod serve;
mod setup_cmd;
mod station_cmd;
mod station_cos;
mod status_cmd;
mod stun_cmd;
mod tls_identity;
mod tls_reload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, SipCommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sip {
            command: SipCommand::Check { files },
        } => return check::run(&files),
        // One thread for all signalling: the listeners and the core hand messages to each other
        // without cross-thread wake-ups, which cost more than parsing a REGISTER. (SQLite runs
        // on sqlx's own worker thread.)
        ref other => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(dispatch(&cli, other))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: &Cli, command: &Command) -> anyhow::Result<()> {
    let file = match &cli.config {
        Some(path) => config::ConfigFile::load(path)?,
        None => config::ConfigFile::default(),
    };
    let data = data_dir(cli, &file);
    match command {
        Command::Serve => serve::run(&file, &data).await,
        Command::Station { command } => station_cmd::run(command, &file, &data).await,
        Command::Setup { command } => setup_cmd::run(command, &file, &data).await,
        Command::Cert { command } => cert_cmd::run(command, &file, &data).await,
        Command::Status { json } => status_cmd::run(*json, &file, &data).await,
        Command::RouterRules {
            lan_ip,
            wan_interface,
            public_sip_port,
            format,
        } => {
            let config = file.net_config(true)?;
            let opts = router_rules::Options {
                lan_ip: *lan_ip,
                wan_interface: wan_interface.clone(),
                public_sip_port: *public_sip_port,
                tls_port: file.tls.settings()?.map(|t| t.external_port),
                format: *format,
            };
            print!("{}", router_rules::render(&config, &opts)?);
            Ok(())
        }
        Command::Sip { .. } => unreachable!("handled before the runtime starts"),
        Command::StunServer { listen, alternate } => stun_cmd::server(*listen, *alternate).await,
        Command::Nat { command } => stun_cmd::nat(command).await,
    }
}

/// `--data`, else `data_dir` from the file, else `$HOMELINE_DATA` (via clap), else `./homeline-data`.
fn data_dir(cli: &Cli, file: &config::ConfigFile) -> PathBuf {
    if let Some(d) = &cli.data {
        return d.clone();
    }
    if let Some(d) = &file.data_dir {
        return PathBuf::from(d);
    }
    PathBuf::from("homeline-data")
}

/// The error and its causes on one line, leaving out a cause its effect already quotes.
fn describe(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
