//! `homeline station ...`: station management against the store.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use store::{DeviceType, NewStation, PasswordChange, Secret, Station, StationChanges, Store};

use crate::cli::{StationCommand, StationFields};
use crate::config::ConfigFile;

pub(crate) async fn run(command: &StationCommand, file: &ConfigFile, data: &Path) -> Result<()> {
    if let StationCommand::Rules = command {
        println!("A password must meet every rule below before a station may register from the Internet (SBC flag):");
        for rule in policy::all_rules() {
            println!("  - {}", rule.description());
        }
        return Ok(());
    }
    let realm = file.net_config(true)?.registrar.realm;
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    let result = run_with(command, &store, &realm).await;
    store.close().await;
    result
}

async fn run_with(command: &StationCommand, store: &Store, realm: &str) -> Result<()> {
    match command {
        StationCommand::Add { number, fields } => {
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
            new.cos = fields.cos.unwrap_or(0);
            new.payload_security = fields.payload_security.unwrap_or(false);
            new.password = Some(Secret::new(password.clone()));
            let station = store.add_station(new, realm).await?;
            println!("added station {}", station.number);
            if generated {
                println!("password: {password}");
                println!("(shown once: homeline stores only digest hashes of it)");
            }
            Ok(())
        }
        StationCommand::List => {
            let stations = store.list_stations().await?;
            println!(
                "{:<12} {:<24} {:<10} {:<5} {:<5} {:<4} {:<8}",
                "number", "name", "device", "auth", "sbc", "cos", "payload"
            );
            for s in &stations {
                println!(
                    "{:<12} {:<24} {:<10} {:<5} {:<5} {:<4} {:<8}",
                    s.number,
                    s.display_name,
                    s.device_type,
                    on(s.auth_enabled),
                    on(s.sbc_allowed),
                    s.cos,
                    on(s.payload_security)
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
                cos: fields.cos,
                payload_security: fields.payload_security,
                password,
            };
            let s = store.update_station(number, changes, realm).await?;
            println!("updated station {}", s.number);
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
    println!("class of service:  {}", s.cos);
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
