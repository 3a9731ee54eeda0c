//! `homeline station ...`: station management against the store.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use policy::cos::{OFFICE, REMOTE};
use policy::{CosClasses, NumberingPlan};
use store::{DeviceType, NewStation, PasswordChange, Secret, Station, StationChanges, Store};

use crate::cli::{StationCommand, StationFields};
use crate::config::ConfigFile;
use crate::station_cos::{check_forwarding, Requested};

pub(crate) async fn run(command: &StationCommand, file: &ConfigFile, data: &Path) -> Result<()> {
    if let StationCommand::Rules = command {
        println!("A password must meet every rule below before a station may register from the Internet (SBC flag):");
        for rule in policy::all_rules() {
            println!("  - {}", rule.description());
        }
        return Ok(());
    }
    let config = file.net_config(true)?;
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    let result = run_with(command, &store, &config.registrar.realm, &config.classes).await;
    store.close().await;
    result
}

async fn run_with(
    command: &StationCommand,
    store: &Store,
    realm: &str,
    classes: &CosClasses,
) -> Result<()> {
    let plan = NumberingPlan::default();
    match command {
        StationCommand::Add { number, fields } => {
            let requested = Requested::parse(fields, classes)?;
            let (password, generated) = match read_password(fields)? {
                Some(p) => (p, false),
                None => (
                    policy::generate_password(number, &mut rand::thread_rng()),
                    true,
                ),
            };
            let mut new = NewStation::new(number.clone(), fields.name.clone().unwrap_or_default());
            if let Some(d) = &fields.device {
                new.device_type = d.parse::<DeviceType>()?;
            }
            new.auth_enabled = fields.auth.unwrap_or(true);
            new.sbc_allowed = fields.sbc.unwrap_or(false);
            new.cos_internal = requested.class_internal.clone().flatten();
            new.cos_external = requested.class_external.clone().flatten();
            new.forwarding = requested.apply(new.forwarding);
            let resolved =
                classes.for_station(new.cos_internal.as_deref(), new.cos_external.as_deref())?;
            let notes = check_forwarding(&resolved, &new.forwarding, &plan)?;
            new.payload_security = fields.payload_security.unwrap_or(false);
            new.password = Some(Secret::new(password.clone()));
            let station = store.add_station(new, realm).await?;
            println!("added station {}", station.number);
            notes.iter().for_each(|n| println!("{n}"));
            if generated {
                println!("password: {password}");
                println!("(shown once: homeline stores only digest hashes of it)");
            }
            Ok(())
        }
        StationCommand::List => {
            let stations = store.list_stations().await?;
            println!(
                "{:<12} {:<24} {:<10} {:<5} {:<5} {:<14} {:<14} {:<8} forwarding",
                "number", "name", "device", "auth", "sbc", "class-int", "class-ext", "payload"
            );
            for s in &stations {
                println!(
                    "{:<12} {:<24} {:<10} {:<5} {:<5} {:<14} {:<14} {:<8} {}",
                    s.number,
                    s.display_name,
                    s.device_type,
                    on(s.auth_enabled),
                    on(s.sbc_allowed),
                    s.cos_internal.as_deref().unwrap_or(OFFICE),
                    s.cos_external.as_deref().unwrap_or(REMOTE),
                    on(s.payload_security),
                    forwarding_summary(&s.forwarding)
                );
            }
            println!("{} station(s)", stations.len());
            Ok(())
        }
        StationCommand::Show { number } => {
            let Some(s) = store.station(number).await? else {
                bail!("no station with number {number}")
            };
            show(&s, realm);
            Ok(())
        }
        StationCommand::Set {
            number,
            fields,
            new_password,
        } => {
            let requested = Requested::parse(fields, classes)?;
            let Some(current) = store.station(number).await? else {
                bail!("no station {number}")
            };
            // The resulting station's forwarding is checked against its resulting classes, so
            // a class change that a standing forwarding would break is refused too.
            let class_internal = requested
                .class_internal
                .clone()
                .unwrap_or(current.cos_internal.clone());
            let class_external = requested
                .class_external
                .clone()
                .unwrap_or(current.cos_external.clone());
            let notes = if requested.any() {
                let resolved =
                    classes.for_station(class_internal.as_deref(), class_external.as_deref())?;
                let forwarding = requested.apply(current.forwarding.clone());
                check_forwarding(&resolved, &forwarding, &plan)?
            } else {
                Vec::new()
            };
            let mut generated = None;
            let password = match read_password(fields)? {
                Some(p) => PasswordChange::Set(Secret::new(p)),
                None if *new_password => {
                    let p = policy::generate_password(number, &mut rand::thread_rng());
                    generated = Some(p.clone());
                    PasswordChange::Set(Secret::new(p))
                }
                None => PasswordChange::Keep,
            };
            let changes = StationChanges {
                display_name: fields.name.clone(),
                device_type: fields.device.as_deref().map(str::parse).transpose()?,
                auth_enabled: fields.auth,
                sbc_allowed: fields.sbc,
                cos_internal: requested.class_internal,
                cos_external: requested.class_external,
                forward_always: requested.forward_always,
                forward_busy: requested.forward_busy,
                forward_no_answer: requested.forward_no_answer,
                no_answer_secs: requested.no_answer_secs,
                payload_security: fields.payload_security,
                password,
            };
            let s = store.update_station(number, changes, realm).await?;
            println!("updated station {}", s.number);
            notes.iter().for_each(|n| println!("{n}"));
            if let Some(p) = generated {
                println!("password: {p}");
                println!("(shown once: homeline stores only digest hashes of it)");
            }
            Ok(())
        }
        StationCommand::Remove { number } => {
            store.remove_station(number).await?;
            println!("removed station {number}");
            Ok(())
        }
        StationCommand::Import { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let stations = parse_csv(&text).with_context(|| format!("in {}", file.display()))?;
            let n = store.bulk_add(stations, realm).await?;
            println!("imported {n} station(s)");
            Ok(())
        }
        StationCommand::Rules => Ok(()),
    }
}

fn show(s: &Station, realm: &str) {
    println!("number:            {}", s.number);
    println!("name:              {}", s.display_name);
    println!("device:            {}", s.device_type);
    println!("authentication:    {}", on(s.auth_enabled));
    println!("internet via SBC:  {}", on(s.sbc_allowed));
    let class = |named: &Option<String>, default: &str| match named {
        Some(name) => name.clone(),
        None => format!("{default} (default)"),
    };
    println!("class (internal):  {}", class(&s.cos_internal, OFFICE));
    println!("class (external):  {}", class(&s.cos_external, REMOTE));
    let f = &s.forwarding;
    let target = |t: &Option<String>| t.clone().unwrap_or_else(|| "off".into());
    println!("forward always:    {}", target(&f.always));
    println!("forward busy:      {}", target(&f.busy));
    println!("forward no answer: {}", target(&f.no_answer));
    println!("no answer after:   {} s", f.no_answer_secs);
    println!("payload security:  {}", on(s.payload_security));
    println!(
        "password:          {}",
        if !s.has_password() {
            "none"
        } else if s.password_strong {
            "set (strong)"
        } else {
            "set (weak: not allowed via SBC)"
        }
    );
    let algs: Vec<&str> = s
        .ha1
        .iter()
        .filter(|h| h.realm == realm)
        .map(|h| h.algorithm.as_str())
        .collect();
    println!(
        "digest hashes:     {} for realm {realm}",
        if algs.is_empty() {
            "none".to_string()
        } else {
            algs.join(", ")
        }
    );
}

/// `always 2003, busy 2004, no-answer 2005 after 20 s`, or `-` when nothing is set.
fn forwarding_summary(f: &store::Forwarding) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &f.always {
        parts.push(format!("always {t}"));
    }
    if let Some(t) = &f.busy {
        parts.push(format!("busy {t}"));
    }
    if let Some(t) = &f.no_answer {
        parts.push(format!("no-answer {t} after {} s", f.no_answer_secs));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn read_password(fields: &StationFields) -> Result<Option<String>> {
    if fields.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the password from standard input")?;
        let p = s.trim_end_matches(['\r', '\n']).to_string();
        if p.is_empty() {
            bail!("--password-stdin: empty password");
        }
        return Ok(Some(p));
    }
    Ok(fields.password.clone())
}

/// `number,password[,sbc][,name]` with a header line naming the columns.
fn parse_csv(text: &str) -> Result<Vec<NewStation>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        bail!("empty file")
    };
    let cols: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(num_i), Some(pw_i)) = (col("number"), col("password")) else {
        bail!("header line must name the columns number and password (and optionally sbc, name)")
    };
    for c in &cols {
        if !["number", "password", "sbc", "name"].contains(&c.as_str()) {
            bail!("unknown column {c:?} (expected number, password, sbc, name)");
        }
    }
    let (sbc_i, name_i) = (col("sbc"), col("name"));
    let mut out = Vec::new();
    for (i, line) in lines {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let get = |idx: Option<usize>| idx.and_then(|k| f.get(k)).copied().unwrap_or("");
        let number = get(Some(num_i));
        let mut s = NewStation::new(number, get(name_i));
        let pw = get(Some(pw_i));
        if pw.is_empty() {
            bail!("line {}: station {number}: empty password", i + 1);
        }
        s.password = Some(Secret::new(pw));
        s.sbc_allowed = match get(sbc_i).to_ascii_lowercase().as_str() {
            "" | "no" | "off" | "false" | "0" => false,
            "yes" | "on" | "true" | "1" => true,
            other => bail!("line {}: sbc: {other:?} is not yes or no", i + 1),
        };
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_and_errors() {
        let v = parse_csv("number,password,sbc\n100,pw100,no\n101,Xy7#kq92Lm!z,yes\n").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[1].sbc_allowed);
        assert!(parse_csv("number,secret\n1,2\n").is_err());
        assert!(format!(
            "{:#}",
            parse_csv("number,password,sbc\n1,x,maybe\n").unwrap_err()
        )
        .contains("line 2"));
    }
}
