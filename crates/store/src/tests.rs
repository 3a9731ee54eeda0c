use std::net::SocketAddr;
use std::time::Instant;

use policy::{PasswordRule, SbcRefusal, Zone};
use sip::digest::Algorithm;
use tempfile::TempDir;

use super::*;

const REALM: &str = "homeline";
const STRONG: &str = "Tr4m-Gelb-Ofen";

async fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("open");
    (dir, store)
}

fn with_password(number: &str, password: &str) -> NewStation {
    NewStation {
        password: Some(Secret::new(password)),
        ..NewStation::new(number, "Anna")
    }
}

fn binding(aor: &str, contact: &str, cseq: u32, expires_at_unix: i64) -> BindingRow {
    BindingRow {
        aor: aor.into(),
        contact: contact.into(),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into()),
        reg_id: Some(1),
        call_id: format!("call-{aor}"),
        cseq,
        expires_at_unix,
        zone: Zone::External,
        transport: "udp".into(),
        source: "198.51.100.20:40123".parse().expect("addr"),
        local: "192.168.1.10:5062".parse().expect("addr"),
        flow: Some(u64::MAX - 3),
        q: Some(0.5),
        user_agent: Some("Yealink T46U".into()),
        contact_mismatch: true,
    }
}

#[tokio::test]
async fn station_crud() {
    let (_dir, store) = open().await;
    let added = store
        .add_station(with_password("2001", STRONG), REALM)
        .await
        .expect("add");
    assert_eq!(added.number, "2001");
    assert_eq!(added.display_name, "Anna");
    assert!(added.password_strong);
    assert_eq!(
        store.station("2001").await.expect("get"),
        Some(added.clone())
    );
    assert_eq!(store.station("2002").await.expect("get"), None);

    store
        .add_station(NewStation::new("30", "Desk"), REALM)
        .await
        .expect("add 30");
    store
        .add_station(NewStation::new("100", "Lobby"), REALM)
        .await
        .expect("add 100");
    let numbers: Vec<String> = store
        .list_stations()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.number)
        .collect();
    assert_eq!(numbers, ["30", "100", "2001"], "numeric order");

    let changed = store
        .update_station(
            "2001",
            StationChanges {
                display_name: Some("Anna Müller".into()),
                device_type: Some(DeviceType::Softphone),
                cos_internal: Some(Some("international".into())),
                cos_external: Some(Some("internal-only".into())),
                forward_busy: Some(Some("2002".into())),
                no_answer_secs: Some(30),
                payload_security: Some(true),
                ..StationChanges::default()
            },
            REALM,
        )
        .await
        .expect("update");
    assert_eq!(changed.display_name, "Anna Müller");
    assert_eq!(changed.device_type, DeviceType::Softphone);
    assert_eq!(changed.cos_internal.as_deref(), Some("international"));
    assert_eq!(changed.cos_external.as_deref(), Some("internal-only"));
    assert_eq!(
        changed.forwarding,
        Forwarding {
            busy: Some("2002".into()),
            no_answer_secs: 30,
            ..Forwarding::default()
        }
    );
    assert!(changed.payload_security);
    assert_eq!(changed.ha1, added.ha1, "password kept");

    let cleared = store
        .update_station(
            "2001",
            StationChanges {
                password: PasswordChange::Clear,
                ..StationChanges::default()
            },
            REALM,
        )
        .await
        .expect("clear password");
    assert!(!cleared.has_password());
    assert!(!cleared.password_strong);
    assert_eq!(cleared.forwarding.busy.as_deref(), Some("2002"), "kept");

    let defaults = store
        .update_station(
            "2001",
            StationChanges {
                cos_external: Some(None),
                forward_busy: Some(None),
                ..StationChanges::default()
            },
            REALM,
        )
        .await
        .expect("back to defaults");
    assert_eq!(defaults.cos_external, None);
    assert_eq!(defaults.cos_internal.as_deref(), Some("international"));
    assert_eq!(defaults.forwarding.busy, None);

    store.remove_station("2001").await.expect("remove");
    assert_eq!(store.station("2001").await.expect("get"), None);
    assert!(matches!(
        store.remove_station("2001").await,
        Err(StoreError::NoSuchStation(n)) if n == "2001"
    ));
    assert!(matches!(
        store
            .update_station("2001", StationChanges::default(), REALM)
            .await,
        Err(StoreError::NoSuchStation(_))
    ));
}

#[tokio::test]
async fn duplicate_and_invalid_numbers_are_typed_errors() {
    let (_dir, store) = open().await;
    store
        .add_station(NewStation::new("2001", "A"), REALM)
        .await
        .expect("add");
    assert!(matches!(
        store.add_station(NewStation::new("2001", "B"), REALM).await,
        Err(StoreError::DuplicateStation(n)) if n == "2001"
    ));
    for bad in ["", "20a1", "123456789012345678901"] {
        assert!(matches!(
            store.add_station(NewStation::new(bad, "B"), REALM).await,
            Err(StoreError::Invalid(FieldError::NotACallNumber {
                field: "number",
                ..
            }))
        ));
    }
    assert!(matches!(
        store.add_station(with_password("2002", ""), REALM).await,
        Err(StoreError::Invalid(FieldError::Empty { field: "password" }))
    ));
    assert!(matches!(
        store
            .add_station(NewStation::new("2003", "x\u{7}"), REALM)
            .await,
        Err(StoreError::Invalid(FieldError::ControlCharacter {
            field: "display name"
        }))
    ));
    assert_eq!(store.list_stations().await.expect("list").len(), 1);
}

#[tokio::test]
async fn ha1_values_for_md5_and_sha256() {
    let (_dir, store) = open().await;
    let s = store
        .add_station(with_password("2001", STRONG), REALM)
        .await
        .expect("add");
    // Expected values computed independently (Python hashlib) of H("2001:homeline:Tr4m-Gelb-Ofen").
    assert_eq!(
        s.ha1_for(REALM, Algorithm::Md5),
        Some("687622dd1792561babe65e4f9ead19ff")
    );
    assert_eq!(
        s.ha1_for(REALM, Algorithm::Sha256),
        Some("4edfbf4b4e9709252a87b0c1214ecd8b975005a99e17813e6f2bee11f977421a")
    );
    assert_eq!(s.ha1_for("other", Algorithm::Md5), None);
    assert_eq!(s.ha1.len(), 2);

    // A new password for a new realm replaces every old HA1.
    let s = store
        .update_station(
            "2001",
            StationChanges {
                password: PasswordChange::Set(Secret::new("Kx9#mQ2!zLpw")),
                ..StationChanges::default()
            },
            "pbx.example.org",
        )
        .await
        .expect("update");
    assert_eq!(s.ha1.len(), 2);
    assert_eq!(s.ha1_for(REALM, Algorithm::Md5), None);
    assert_eq!(
        s.ha1_for("pbx.example.org", Algorithm::Md5)
            .map(str::to_owned),
        Some(sip::digest::ha1(
            Algorithm::Md5,
            "2001",
            "pbx.example.org",
            "Kx9#mQ2!zLpw"
        ))
    );
}

#[tokio::test]
async fn plain_password_is_nowhere_in_the_database_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("open");
    let first = "Zebra-Quartz-Fjord-71";
    let second = "Ocelot-Nimbus-Delta-38";
    store
        .add_station(with_password("2001", first), REALM)
        .await
        .expect("add");
    store
        .update_station(
            "2001",
            StationChanges {
                password: PasswordChange::Set(Secret::new(second)),
                ..StationChanges::default()
            },
            REALM,
        )
        .await
        .expect("update");
    store
        .bulk_add(vec![with_password("2002", first)], REALM)
        .await
        .expect("bulk");
    // Look before closing (WAL still holds the writes) and after (checkpointed into the file).
    for phase in ["open", "closed"] {
        if phase == "closed" {
            store.close().await;
        }
        let mut seen_db = false;
        for entry in std::fs::read_dir(dir.path()).expect("read dir") {
            let path = entry.expect("entry").path();
            // The -wal and -shm files may vanish while the last connection closes.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            seen_db |= path.ends_with(DB_FILE);
            for pw in [first, second] {
                assert!(
                    !bytes.windows(pw.len()).any(|w| w == pw.as_bytes()),
                    "{phase}: password found in {}",
                    path.display()
                );
            }
        }
        assert!(seen_db);
    }
}

#[tokio::test]
async fn sbc_flag_refused_with_weak_password_lists_every_rule() {
    let (_dir, store) = open().await;
    let weak = NewStation {
        sbc_allowed: true,
        ..with_password("2001", "anna2001")
    };
    let Err(StoreError::SbcRefused { number, source }) = store.add_station(weak, REALM).await
    else {
        panic!("weak password must refuse the SBC flag");
    };
    assert_eq!(number, "2001");
    assert_eq!(
        source.broken_rules(),
        &[
            PasswordRule::MinLength,
            PasswordRule::CharacterClasses,
            PasswordRule::NoCallNumber
        ]
    );
    assert!(
        source.to_string().contains("at least 10 characters"),
        "{source}"
    );
    assert_eq!(
        store.station("2001").await.expect("get"),
        None,
        "nothing stored"
    );

    // No password at all, and authentication off.
    let bare = NewStation {
        sbc_allowed: true,
        auth_enabled: false,
        ..NewStation::new("2002", "B")
    };
    let Err(StoreError::SbcRefused { source, .. }) = store.add_station(bare, REALM).await else {
        panic!("refused");
    };
    assert_eq!(
        source.reasons,
        vec![SbcRefusal::AuthDisabled, SbcRefusal::NoPassword]
    );

    // A station with a weak stored password cannot get the flag later without a new password.
    store
        .add_station(with_password("2003", "anna2003"), REALM)
        .await
        .expect("add weak");
    let flag = StationChanges {
        sbc_allowed: Some(true),
        ..StationChanges::default()
    };
    let Err(StoreError::SbcRefused { source, .. }) =
        store.update_station("2003", flag.clone(), REALM).await
    else {
        panic!("refused");
    };
    assert_eq!(source.reasons, vec![SbcRefusal::StoredPasswordWeak]);
    let with_new = StationChanges {
        password: PasswordChange::Set(Secret::new(STRONG)),
        ..flag.clone()
    };
    let s = store
        .update_station("2003", with_new, REALM)
        .await
        .expect("strong password + flag");
    assert!(s.sbc_allowed && s.password_strong);

    // Turning authentication off or clearing the password keeps the rule.
    let off = StationChanges {
        auth_enabled: Some(false),
        ..StationChanges::default()
    };
    assert!(matches!(
        store.update_station("2003", off, REALM).await,
        Err(StoreError::SbcRefused { .. })
    ));
    let clear = StationChanges {
        password: PasswordChange::Clear,
        ..StationChanges::default()
    };
    assert!(matches!(
        store.update_station("2003", clear, REALM).await,
        Err(StoreError::SbcRefused { .. })
    ));
    let s = store.station("2003").await.expect("get").expect("exists");
    assert!(s.sbc_allowed && s.auth_enabled && s.has_password());
}

#[tokio::test]
async fn bulk_add_5000_in_one_go_and_all_or_nothing() {
    let (_dir, store) = open().await;
    let many: Vec<NewStation> = (0..5000)
        .map(|i| with_password(&format!("{}", 10_000 + i), &format!("Pw-{i}-xQ#zr")))
        .collect();
    assert_eq!(store.bulk_add(many, REALM).await.expect("bulk"), 5000);
    let all = store.load_station_cache().await.expect("cache");
    assert_eq!(all.len(), 5000);
    assert!(all.iter().all(|s| s.ha1.len() == 2));
    assert_eq!(all[0].number, "10000");

    let mut bad: Vec<NewStation> = (0..10)
        .map(|i| NewStation::new(format!("{}", 20_000 + i), "x"))
        .collect();
    bad[7].number = "20x07".into();
    let Err(StoreError::BulkEntry {
        index,
        number,
        source,
    }) = store.bulk_add(bad, REALM).await
    else {
        panic!("bad entry must fail the import");
    };
    assert_eq!((index, number.as_str()), (7, "20x07"));
    assert!(matches!(
        *source,
        StoreError::Invalid(FieldError::NotACallNumber { .. })
    ));
    let dup = vec![NewStation::new("30000", "a"), NewStation::new("30000", "b")];
    assert!(matches!(
        store.bulk_add(dup, REALM).await,
        Err(StoreError::BulkEntry { index: 1, source, .. }) if matches!(*source, StoreError::DuplicateStation(_))
    ));
    assert_eq!(
        store.list_stations().await.expect("list").len(),
        5000,
        "nothing of the failed imports"
    );
}

#[tokio::test]
async fn generation_bumps_on_every_change() {
    let (dir, store) = open().await;
    let g0 = store.generation().await.expect("gen");
    store
        .add_station(with_password("2001", STRONG), REALM)
        .await
        .expect("add");
    let g1 = store.generation().await.expect("gen");
    assert!(g1 > g0);
    assert_eq!(
        store.generation().await.expect("gen"),
        g1,
        "reads do not bump"
    );
    store
        .update_station(
            "2001",
            StationChanges {
                cos_external: Some(Some("national".into())),
                ..Default::default()
            },
            REALM,
        )
        .await
        .expect("update");
    let g2 = store.generation().await.expect("gen");
    assert!(g2 > g1);
    store.remove_station("2001").await.expect("remove");
    let g3 = store.generation().await.expect("gen");
    assert!(g3 > g2);
    // Another process (here: another handle on the same file) sees the change.
    store.close().await;
    let other = Store::open(dir.path()).await.expect("reopen");
    assert_eq!(other.generation().await.expect("gen"), g3);
    // Bindings are not stations: they do not bump it.
    other
        .upsert_bindings(&[binding("2001", "sip:a@x", 1, i64::MAX)])
        .await
        .expect("upsert");
    assert_eq!(other.generation().await.expect("gen"), g3);
}

#[tokio::test]
async fn bindings_round_trip_and_expired_ones_are_purged_on_load() {
    let (_dir, store) = open().await;
    store
        .add_station(NewStation::new("2001", "A"), REALM)
        .await
        .expect("add");
    store
        .add_station(NewStation::new("2002", "B"), REALM)
        .await
        .expect("add");
    let live = binding("2001", "sip:2001@10.0.0.20:5060", 7, 1_000);
    let v6 = BindingRow {
        source: "[2001:db8::1]:5060".parse::<SocketAddr>().expect("v6"),
        flow: None,
        q: None,
        instance: None,
        reg_id: None,
        user_agent: None,
        zone: Zone::Internal,
        ..binding("2002", "sip:2002@[2001:db8::1]", 1, 2_000)
    };
    let expired = binding("2001", "sip:2001@10.0.0.21:5060", 3, 500);
    let orphan = binding("9999", "sip:9999@10.0.0.22", 1, 5_000);
    store
        .upsert_bindings(&[live.clone(), v6.clone(), expired.clone(), orphan])
        .await
        .expect("upsert");
    assert_eq!(
        store.load_bindings(500).await.expect("load"),
        vec![live.clone(), v6.clone()]
    );
    // The expired and orphaned rows are gone for good.
    assert_eq!(
        store.load_bindings(0).await.expect("load"),
        vec![live.clone(), v6.clone()]
    );
    store
        .delete_bindings(&[("2001".into(), live.contact.clone())])
        .await
        .expect("delete");
    assert_eq!(
        store.load_bindings(0).await.expect("load"),
        vec![v6.clone()]
    );
    store.remove_station("2002").await.expect("remove");
    assert_eq!(store.load_bindings(0).await.expect("load"), vec![]);
}

#[tokio::test]
async fn writer_coalesces_flushes_and_rows_survive_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).await.expect("open");
    for n in ["2001", "2002", "2003"] {
        store
            .add_station(NewStation::new(n, "x"), REALM)
            .await
            .expect("add");
    }
    let writer = store.binding_writer();
    for cseq in 1..=100 {
        writer
            .upsert(binding("2001", "sip:a", cseq, 10_000))
            .expect("queue");
    }
    writer.remove("2002", "sip:b").expect("queue");
    writer
        .upsert(binding("2002", "sip:b", 1, 10_000))
        .expect("queue");
    writer
        .upsert(binding("2003", "sip:c", 1, 10_000))
        .expect("queue");
    writer.remove("2003", "sip:c").expect("queue");
    writer.flush().await.expect("flush");
    let rows = store.load_bindings(0).await.expect("load");
    let keys: Vec<(&str, &str, u32)> = rows
        .iter()
        .map(|r| (r.aor.as_str(), r.contact.as_str(), r.cseq))
        .collect();
    assert_eq!(keys, [("2001", "sip:a", 100), ("2002", "sip:b", 1)]);

    writer
        .upsert(binding("2003", "sip:c2", 9, 10_000))
        .expect("queue");
    let clone = writer.clone();
    clone.flush().await.expect("flush from a clone");
    drop((writer, clone));
    store.close().await;

    let again = Store::open(dir.path()).await.expect("reopen");
    let rows = again.load_bindings(0).await.expect("load");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], binding("2003", "sip:c2", 9, 10_000));
}

#[tokio::test]
async fn writer_commits_without_flush_within_a_short_time() {
    let (_dir, store) = open().await;
    store
        .add_station(NewStation::new("2001", "x"), REALM)
        .await
        .expect("add");
    let writer = store.binding_writer();
    writer
        .upsert(binding("2001", "sip:a", 1, 10_000))
        .expect("queue");
    let start = Instant::now();
    loop {
        if store.load_bindings(0).await.expect("load").len() == 1 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "write-behind never committed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// Set in the child process of [`bindings_survive_kill_9`]: the data folder to write into.
const KILL9_CHILD_DIR: &str = "HOMELINE_STORE_KILL9_CHILD_DIR";

/// Not a test of its own: the child process of [`bindings_survive_kill_9`] (does nothing
/// unless started by it). Queues bindings without flushing, waits, says READY, then hangs.
#[tokio::test]
async fn kill9_helper_child() {
    let Some(dir) = std::env::var_os(KILL9_CHILD_DIR) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).await.expect("open");
    store
        .add_station(NewStation::new("2001", "x"), REALM)
        .await
        .expect("add");
    let writer = store.binding_writer();
    for i in 0..100 {
        writer
            .upsert(binding("2001", &format!("sip:2001@10.0.0.{i}"), i, 10_000))
            .expect("queue");
    }
    // No flush: the write-behind task must commit by itself (it does so within milliseconds).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    println!("READY");
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    panic!("should have been killed");
}

#[tokio::test]
async fn bindings_survive_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "tests::kill9_helper_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL9_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let ready = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.ends_with("READY")); // libtest prints the test name on the same line
    child.kill().expect("SIGKILL"); // std sends SIGKILL on Unix
    child.wait().expect("reap");
    assert!(ready, "child never got ready");
    let store = Store::open(dir.path()).await.expect("reopen after kill -9");
    assert_eq!(store.load_bindings(0).await.expect("load").len(), 100);
}

/// Rough figures, printed (run with `--nocapture`); no timing asserts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_bulk_add_and_writer_throughput() {
    let (_dir, store) = open().await;
    let stations: Vec<NewStation> = (0..1000)
        .map(|i| NewStation {
            sbc_allowed: true,
            ..with_password(&format!("{}", 40_000 + i), &format!("Pw-{i}-xQ#zr"))
        })
        .collect();
    let t = Instant::now();
    store.bulk_add(stations, REALM).await.expect("bulk");
    let bulk = t.elapsed();
    let t = Instant::now();
    let cache = store.load_station_cache().await.expect("cache");
    let load = t.elapsed();
    assert_eq!(cache.len(), 1000);

    let writer = store.binding_writer();
    let n: u32 = 20_000;
    let t = Instant::now();
    for i in 0..n {
        let aor = format!("{}", 40_000 + i % 1000);
        writer
            .upsert(binding(
                &aor,
                &format!("sip:{aor}@10.0.{}.{}", i / 250, i % 250),
                i,
                10_000,
            ))
            .expect("queue");
    }
    let queued = t.elapsed();
    writer.flush().await.expect("flush");
    let total = t.elapsed();
    println!(
        "FIGURES bulk_add 1000 stations (with SBC check + 2 HA1 each): {bulk:?}; \
         load_station_cache 1000: {load:?}; writer {n} distinct upserts: queued in {queued:?}, \
         committed in {total:?} = {:.0} upserts/s",
        f64::from(n) / total.as_secs_f64()
    );
}

#[tokio::test]
async fn writer_reports_commit_failures_to_flush() {
    let (_dir, store) = open().await;
    let writer = store.binding_writer();
    store.close().await; // every commit now fails
    writer
        .upsert(binding("2001", "sip:a", 1, 10_000))
        .expect("queue");
    assert!(matches!(
        writer.flush().await,
        Err(StoreError::WriterCommit(_))
    ));
}

#[tokio::test]
async fn forwarding_and_class_names_checked() {
    let (_dir, store) = open().await;
    let mut new = with_password("2001", STRONG);
    new.forwarding.always = Some("2001".into());
    assert!(matches!(
        store.add_station(new, REALM).await,
        Err(StoreError::Invalid(FieldError::ForwardToSelf { .. }))
    ));
    let mut new = with_password("2001", STRONG);
    new.cos_external = Some("Not A Name".into());
    assert!(matches!(
        store.add_station(new, REALM).await,
        Err(StoreError::Invalid(FieldError::NotAClassName { .. }))
    ));
    store
        .add_station(with_password("2001", STRONG), REALM)
        .await
        .expect("add");
    for changes in [
        StationChanges {
            forward_no_answer: Some(Some("0 89 1".into())),
            ..StationChanges::default()
        },
        StationChanges {
            no_answer_secs: Some(601),
            ..StationChanges::default()
        },
    ] {
        assert!(matches!(
            store.update_station("2001", changes, REALM).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let s = store.station("2001").await.expect("get").expect("exists");
    assert_eq!(s.forwarding, Forwarding::default(), "nothing stored");
    assert_eq!(s.forwarding.no_answer_secs, DEFAULT_NO_ANSWER_SECS);
}

/// A database written before classes had names: the old number selected nothing (every call
/// was judged by its zone's default class), so every station gets the defaults.
#[tokio::test]
async fn migration_from_numbered_class_of_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join(DB_FILE))
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("pool");
    let mut first = sqlx::migrate!();
    first.migrations = std::borrow::Cow::Owned(first.migrations[..1].to_vec());
    first.run(&pool).await.expect("first migration");
    sqlx::query(
        "INSERT INTO stations (number, display_name, device_type, auth_enabled, sbc_allowed, \
         cos, payload_security, password_strong) VALUES ('2001', 'Anna', 'sip-phone', 1, 0, 3, 0, 0)",
    )
    .execute(&pool)
    .await
    .expect("old station");
    pool.close().await;

    let store = Store::open(dir.path()).await.expect("open migrates");
    let s = store.station("2001").await.expect("get").expect("kept");
    assert_eq!((s.cos_internal, s.cos_external), (None, None));
    assert_eq!(s.forwarding, Forwarding::default());
    assert_eq!(s.display_name, "Anna");
}

#[tokio::test]
async fn settings_round_trip_and_survive_reopen() {
    let (dir, store) = open().await;
    assert_eq!(store.setting("greeting").await.expect("get"), None);
    store.set_setting("greeting", "hello").await.expect("set");
    assert_eq!(
        store.setting("greeting").await.expect("get").as_deref(),
        Some("hello")
    );
    store
        .set_setting("greeting", "bye")
        .await
        .expect("overwrite");
    store
        .set_settings(&[("a", Some("1")), ("greeting", None)])
        .await
        .expect("batch");
    assert_eq!(store.setting("greeting").await.expect("get"), None);
    store
        .remove_setting("never-set")
        .await
        .expect("no-op remove");
    store.close().await;
    let other = Store::open(dir.path()).await.expect("reopen");
    assert_eq!(other.setting("a").await.expect("get").as_deref(), Some("1"));
}

#[tokio::test]
async fn setting_changes_bump_the_generation_and_no_ops_do_not() {
    let (_dir, store) = open().await;
    let g0 = store.generation().await.expect("gen");
    store.set_upstream_kbps(Some(256)).await.expect("set");
    let g1 = store.generation().await.expect("gen");
    assert!(g1 > g0, "insert bumps");
    store
        .set_upstream_kbps(Some(256))
        .await
        .expect("same again");
    assert_eq!(store.generation().await.expect("gen"), g1, "same value");
    store.set_upstream_kbps(Some(512)).await.expect("change");
    let g2 = store.generation().await.expect("gen");
    assert!(g2 > g1, "update bumps");
    store.set_upstream_kbps(None).await.expect("remove");
    assert!(store.generation().await.expect("gen") > g2, "delete bumps");
}

#[tokio::test]
async fn upstream_kbps_is_typed_and_checked() {
    let (_dir, store) = open().await;
    assert_eq!(store.upstream_kbps().await.expect("get"), None);
    store.set_upstream_kbps(Some(256)).await.expect("set");
    assert_eq!(store.upstream_kbps().await.expect("get"), Some(256));
    let e = store.set_upstream_kbps(Some(0)).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Invalid(FieldError::TooSmall {
                field: UPSTREAM_KBPS,
                value: 0,
                ..
            })
        ),
        "{e}"
    );
    assert_eq!(e.to_string(), "upstream_kbps must be at least 1, got 0");
    assert_eq!(store.upstream_kbps().await.expect("get"), Some(256), "kept");
    // A value written by hand that does not parse is reported, not taken as "unset".
    store.set_setting(UPSTREAM_KBPS, "fast").await.expect("set");
    let e = store.upstream_kbps().await.unwrap_err();
    assert!(e.to_string().contains("\"fast\""), "{e}");
}

#[tokio::test]
async fn setting_keys_are_checked() {
    let (_dir, store) = open().await;
    for bad in ["", "a\nb", &"k".repeat(MAX_SETTING_KEY + 1)] {
        let e = store.set_setting(bad, "v").await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{bad:?}: {e}");
    }
    let long = "v".repeat(MAX_SETTING_VALUE + 1);
    assert!(store.set_setting("k", &long).await.is_err());
}

fn new_cert(name: &str, kind: CertKind, serial: &str, tag: u8) -> NewCertificate {
    NewCertificate {
        name: name.into(),
        kind,
        serial: serial.into(),
        subject: format!("CN={name}"),
        issuer: "CN=homeline-root".into(),
        not_before: 1_767_225_600,
        not_after: 1_830_297_600,
        sha256: format!("{tag:02X}:00"),
        is_ca: kind == CertKind::Ca,
        // Stand-ins: the store keeps DER without reading it (crate pki checks it).
        cert_der: vec![0x30, 0x01, tag],
        chain_der: Vec::new(),
        key_pkcs8: Some(vec![0x30, 0x01, 0xAA]),
        issuer_name: (kind == CertKind::Server).then(|| "root".to_owned()),
        active: false,
        created_at: 1_767_225_600,
    }
}

/// Everything a refused write must leave as it was.
async fn certificate_snapshot(store: &Store) -> (Vec<CertificateRow>, u64, Option<String>) {
    let active = store
        .active_certificate()
        .await
        .expect("active")
        .map(|c| c.row.name);
    (
        store.certificates().await.expect("list"),
        store.generation().await.expect("generation"),
        active,
    )
}

#[tokio::test]
async fn certificates_add_use_and_chain() {
    let (_dir, store) = open().await;
    let root = store
        .add_certificate(&new_cert("root", CertKind::Ca, "1001", 1))
        .await
        .expect("ca");
    assert!(root.is_ca && root.has_key && !root.active);
    let mut srv = new_cert("pbx", CertKind::Server, "1002", 2);
    srv.chain_der = vec![vec![0x30, 0x01, 1], vec![0x30, 0x81, 0x02, 7, 8]];
    let srv = store.add_certificate(&srv).await.expect("server");
    assert_eq!(srv.issuer_name.as_deref(), Some("root"));
    let before = store.generation().await.expect("generation");
    store.use_certificate("pbx").await.expect("use");
    assert!(store.generation().await.expect("generation") > before);
    let active = store
        .active_certificate()
        .await
        .expect("active")
        .expect("some");
    assert_eq!(active.row.name, "pbx");
    assert_eq!(
        active.chain_der,
        vec![vec![0x30, 0x01, 1], vec![0x30, 0x81, 0x02, 7, 8]]
    );
    assert_eq!(active.key_pkcs8, Some(vec![0x30, 0x01, 0xAA]));
    // Using the active one again is no change.
    let gen = store.generation().await.expect("generation");
    store.use_certificate("pbx").await.expect("again");
    assert_eq!(store.generation().await.expect("generation"), gen);
    // A second active certificate replaces the first.
    let mut other = new_cert("pbx2", CertKind::Imported, "1002", 3);
    other.active = true;
    other.issuer_name = None;
    store
        .add_certificate(&other)
        .await
        .expect("imported, same serial as ours is fine");
    let names: Vec<_> = store
        .certificates()
        .await
        .expect("list")
        .into_iter()
        .filter(|c| c.active)
        .map(|c| c.name)
        .collect();
    assert_eq!(names, vec!["pbx2"]);
}

#[tokio::test]
async fn rfc5280_4_1_2_2_reused_serial_refused_even_after_removal() {
    let (_dir, store) = open().await;
    store
        .add_certificate(&new_cert("root", CertKind::Ca, "1001", 1))
        .await
        .expect("ca");
    store
        .add_certificate(&new_cert("pbx", CertKind::Server, "1002", 2))
        .await
        .expect("server");
    let before = certificate_snapshot(&store).await;
    let err = store
        .add_certificate(&new_cert("pbx-again", CertKind::Server, "1002", 3))
        .await
        .expect_err("reused");
    assert!(
        matches!(&err, StoreError::SerialTaken { serial, first_name } if serial == "1002" && first_name == "pbx"),
        "{err}"
    );
    assert!(err.to_string().starts_with("serial:"), "{err}");
    assert_eq!(certificate_snapshot(&store).await, before);

    store.remove_certificate("pbx").await.expect("remove");
    assert_eq!(
        store.serial_taken("1002").await.expect("taken").as_deref(),
        Some("pbx")
    );
    assert!(matches!(
        store
            .add_certificate(&new_cert("pbx", CertKind::Server, "1002", 2))
            .await,
        Err(StoreError::SerialTaken { .. })
    ));
    // The record of serials cannot be edited away either.
    assert!(sqlx::query("DELETE FROM issued_serials")
        .execute(&store.pool)
        .await
        .is_err());
}

#[tokio::test]
async fn refused_certificate_writes_change_nothing() {
    let (_dir, store) = open().await;
    store
        .add_certificate(&new_cert("root", CertKind::Ca, "1001", 1))
        .await
        .expect("ca");
    let mut srv = new_cert("pbx", CertKind::Server, "1002", 2);
    srv.active = true;
    store.add_certificate(&srv).await.expect("server");
    let before = certificate_snapshot(&store).await;

    let dup_name = new_cert("pbx", CertKind::Imported, "77", 9);
    assert!(matches!(
        store.add_certificate(&dup_name).await,
        Err(StoreError::DuplicateCertificateName(_))
    ));
    let mut same_cert = new_cert("copy", CertKind::Imported, "77", 2);
    same_cert.active = true;
    assert!(matches!(
        store.add_certificate(&same_cert).await,
        Err(StoreError::DuplicateCertificate { .. })
    ));
    let mut active_ca = new_cert("ca2", CertKind::Ca, "1003", 4);
    active_ca.active = true;
    assert!(matches!(
        store.add_certificate(&active_ca).await,
        Err(StoreError::CertificateNotUsable { .. })
    ));
    let mut unknown_issuer = new_cert("srv2", CertKind::Server, "1004", 5);
    unknown_issuer.issuer_name = Some("nope".into());
    unknown_issuer.active = true;
    assert!(matches!(
        store.add_certificate(&unknown_issuer).await,
        Err(StoreError::NoSuchCertificate(_))
    ));
    assert!(matches!(
        store.use_certificate("root").await,
        Err(StoreError::CertificateNotUsable { .. })
    ));
    assert!(matches!(
        store.remove_certificate("pbx").await,
        Err(StoreError::CertificateInUse { .. })
    ));
    assert!(matches!(
        store.remove_certificate("root").await,
        Err(StoreError::CertificateInUse { .. })
    ));
    assert_eq!(certificate_snapshot(&store).await, before);
    // Serials of refused writes were not recorded.
    assert_eq!(store.serial_taken("1003").await.expect("taken"), None);
    assert_eq!(store.serial_taken("1004").await.expect("taken"), None);
    // The schema holds one active certificate at most, whoever writes.
    let mut second = new_cert("pbx-b", CertKind::Server, "1005", 6);
    second.active = false;
    store.add_certificate(&second).await.expect("second");
    assert!(
        sqlx::query("UPDATE certificates SET active = 1 WHERE name = 'pbx-b'")
            .execute(&store.pool)
            .await
            .is_err()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn database_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = open().await;
    store
        .add_certificate(&new_cert("root", CertKind::Ca, "1001", 1))
        .await
        .expect("ca");
    for suffix in ["", "-wal"] {
        let path = dir.path().join(format!("{DB_FILE}{suffix}"));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
}
