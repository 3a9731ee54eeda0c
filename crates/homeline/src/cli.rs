//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// homeline: an IP PBX whose phones work from home as internal extensions (Device@Home).
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Cli {
    /// Data folder (SQLite store). Default ./homeline-data.
    #[arg(long, global = true, env = "HOMELINE_DATA")]
    pub(crate) data: Option<PathBuf>,
    /// Configuration file (TOML); without one, the brief's defaults apply.
    #[arg(long, global = true, env = "HOMELINE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server: SIP registrar on the internal and external zones.
    Serve,
    /// Manage stations (extensions).
    Station {
        // Boxed: the station options are many times the size of every other command.
        #[command(subcommand)]
        command: Box<StationCommand>,
    },
    /// SIP tools.
    Sip {
        #[command(subcommand)]
        command: SipCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SipCommand {
    /// Check SIP message files as the server would before any policy (RFC 3261 §8.2, §8.1.3).
    /// Exit 0 when every file would be processed, 1 when one would be answered 400/505 or dropped.
    Check {
        /// Files holding one message each (as captured from the wire).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StationCommand {
    /// Add a station. Without --password a strong one is generated and shown once.
    Add {
        /// Call number (digits).
        number: String,
        #[command(flatten)]
        fields: StationFields,
    },
    /// List stations.
    List,
    /// Show one station.
    Show {
        /// Call number.
        number: String,
    },
    /// Change a station.
    Set {
        /// Call number.
        number: String,
        #[command(flatten)]
        fields: StationFields,
        /// Generate a new strong password (shown once).
        #[arg(long, conflicts_with_all = ["password", "password_stdin"])]
        new_password: bool,
    },
    /// Remove a station and its registrations.
    Remove {
        /// Call number.
        number: String,
    },
    /// Add many stations from a CSV file with a header line: number,password[,sbc][,name].
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Print the strong-password rules required for the SBC flag.
    Rules,
}

/// Station fields settable on add and set.
#[derive(Debug, Args, Default)]
pub(crate) struct StationFields {
    /// Display name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Device type: sip-phone, softphone or browser.
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// SIP password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub(crate) password: Option<String>,
    /// Read the SIP password from standard input.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Digest authentication: on or off.
    #[arg(long, value_parser = on_off)]
    pub(crate) auth: Option<bool>,
    /// "Internet registration via SBC" (Device@Home): on or off. Needs auth and a strong password.
    #[arg(long, value_parser = on_off)]
    pub(crate) sbc: Option<bool>,
    /// Class of service while registered on the internal zone, by name (built-in:
    /// internal-only, local, national, international, office, remote; or a [cos.NAME] of the
    /// configuration file); "default" for the zone's default (office).
    #[arg(long, value_name = "NAME")]
    pub(crate) class_internal: Option<String>,
    /// Class of service while registered on the external zone (Device@Home), by name;
    /// "default" for the zone's default (remote: stations and national numbers).
    #[arg(long, value_name = "NAME")]
    pub(crate) class_external: Option<String>,
    /// Forward every call to this number; "off" to stop.
    #[arg(long, value_name = "NUMBER|off")]
    pub(crate) forward_always: Option<String>,
    /// Forward calls every device of the station answers busy; "off" to stop.
    #[arg(long, value_name = "NUMBER|off")]
    pub(crate) forward_busy: Option<String>,
    /// Forward calls nobody answers in time (--no-answer-secs); "off" to stop.
    #[arg(long, value_name = "NUMBER|off")]
    pub(crate) forward_no_answer: Option<String>,
    /// Seconds of ringing before forwarding on no answer, 1 to 600. Default 20.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) no_answer_secs: Option<u32>,
    /// Payload security (TLS + SRTP required): on or off.
    #[arg(long, value_parser = on_off)]
    pub(crate) payload_security: Option<bool>,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(format!("{s:?}: expected on or off")),
    }
}
