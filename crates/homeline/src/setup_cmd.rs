//! `homeline setup ...`: the setup wizard's steps. Today the upstream bandwidth, from which the
//! simultaneous-Internet-calls limit is derived (`policy::capacity`), and [`InternetLimit`],
//! the one place that decides which limit the server uses (serve and status share it).

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use policy::capacity::{DEFAULT_HEADROOM_PERCENT, DEFAULT_PACKETIZATION_MS};
use policy::{Derivation, Kbit, Overhead, UpstreamReport};
use store::{Store, UPSTREAM_CODEC, UPSTREAM_KBPS};

use crate::cli::{CodecChoice, SetupCommand};
use crate::config::ConfigFile;

pub(crate) async fn run(command: &SetupCommand, file: &ConfigFile, data: &Path) -> Result<()> {
    let SetupCommand::Upstream { kbit, codec, clear } = command;
    // The channel pool caps the figure; a bad [media] section fails here as it would at start.
    let relay = file.media.media_config()?.relay;
    let store = Store::open(data)
        .await
        .with_context(|| format!("cannot open the store in {}", data.display()))?;
    let result = upstream(&store, &relay, *kbit, *codec, *clear, data).await;
    store.close().await;
    result
}

async fn upstream(
    store: &Store,
    relay: &relay::Config,
    kbit: Option<u32>,
    codec: Option<CodecChoice>,
    clear: bool,
    data: &Path,
) -> Result<()> {
    if clear {
        store
            .set_settings(&[(UPSTREAM_KBPS, None), (UPSTREAM_CODEC, None)])
            .await?;
        println!(
            "Upstream bandwidth removed: only the {} relay channels limit Internet calls.",
            relay.channels()
        );
        print_when_applied(data);
        return Ok(());
    }
    let stored = stored_upstream(store).await?;
    let (kbit, codec) = match (kbit, codec, stored) {
        (None, None, None) => {
            println!(
                "Upstream bandwidth: not set. Only the {} relay channels limit Internet calls.\n\
                 Set it with `homeline setup upstream <kbit/s>` (e.g. 256 for a 256 kbit/s upstream).",
                relay.channels()
            );
            return Ok(());
        }
        (None, None, Some((kbit, codec))) => {
            print_report(kbit, codec, relay)?;
            return Ok(());
        }
        (None, Some(_), None) => {
            bail!("no upstream bandwidth is set yet: give it, e.g. `homeline setup upstream 256 --codec ...`")
        }
        (None, Some(codec), Some((kbit, _))) => (kbit, codec),
        (Some(kbit), codec, stored) => (
            kbit,
            codec
                .or(stored.map(|(_, c)| c))
                .unwrap_or(CodecChoice::G711),
        ),
    };
    let d = derive(kbit, codec)?;
    if d.calls == 0 {
        bail!(
            "an upstream of {kbit} kbit/s carries no {} call: one needs {} kbit/s with {} % kept free \
             (nothing was stored)",
            codec.codec(),
            minimum_kbit(&d),
            d.headroom_percent
        );
    }
    store
        .set_settings(&[
            (UPSTREAM_KBPS, Some(&kbit.to_string())),
            (UPSTREAM_CODEC, Some(codec.key())),
        ])
        .await?;
    println!("Upstream bandwidth set to {kbit} kbit/s.\n");
    print_report(kbit, codec, relay)?;
    print_when_applied(data);
    Ok(())
}

/// The stored upstream and codec, `None` when no upstream is set.
async fn stored_upstream(store: &Store) -> Result<Option<(u32, CodecChoice)>> {
    let Some(kbit) = store.upstream_kbps().await? else {
        return Ok(None);
    };
    let codec = match store.setting(UPSTREAM_CODEC).await? {
        None => CodecChoice::G711,
        Some(key) => CodecChoice::from_key(&key).with_context(|| {
            format!("setting {UPSTREAM_CODEC} holds {key:?}, not g711, g722 or opus")
        })?,
    };
    Ok(Some((kbit, codec)))
}

/// The figure for one codec with the line settings `setup upstream` explains.
fn derive(kbit: u32, codec: CodecChoice) -> Result<Derivation> {
    Ok(Derivation::new(
        kbit,
        codec.codec(),
        DEFAULT_PACKETIZATION_MS,
        Overhead::default(),
        DEFAULT_HEADROOM_PERCENT,
    )?)
}

/// The smallest upstream, kbit/s, that carries one call: usable = kbit × 10 × (100 − headroom)
/// bit/s must reach the per-call rate.
fn minimum_kbit(d: &Derivation) -> u64 {
    d.per_call_bps
        .div_ceil(10 * u64::from(100 - d.headroom_percent))
}

fn print_report(kbit: u32, codec: CodecChoice, relay: &relay::Config) -> Result<()> {
    let report = UpstreamReport::standard(kbit)?;
    let d = derive(kbit, codec)?;
    // The table ends with a newline: one more leaves a blank line.
    println!("{}", report.table());
    match codec {
        CodecChoice::G711 => println!(
            "Simultaneous Internet calls: {}, sized for G.711 (the most demanding codec: homeline \
             does not transcode, and every device falls back to G.711).",
            d.calls
        ),
        _ => {
            let g711 = derive(kbit, CodecChoice::G711)?;
            println!(
                "Simultaneous Internet calls: {}, sized for {}. A call that ends up with G.711 \
                 takes {} kbit/s instead of {}: with G.711 the line carries only {}.",
                d.calls,
                codec.codec(),
                Kbit(g711.per_call_bps),
                Kbit(d.per_call_bps),
                g711.calls
            )
        }
    }
    println!("\nHow the figure is derived:\n{d}\n");
    let channels = relay.channels();
    if d.calls > channels {
        println!(
            "The relay has {channels} channels (media.ports): the limit is lowered to {channels}, \
             since each Internet call takes a channel."
        );
    } else {
        println!(
            "The relay has {channels} channels (media.ports): the limit stays {}.",
            d.calls
        );
    }
    if let Some(n) = relay.internet_calls {
        println!(
            "Note: media.internet_calls = {n} in the configuration file overrides this figure."
        );
    }
    Ok(())
}

/// Say when the change applies: a running server picks it up within a second.
fn print_when_applied(data: &Path) {
    if crate::status_cmd::server_answers(data) {
        println!(
            "\nThe running server applies it to new calls within a second; calls up now keep their channels."
        );
    } else {
        println!("\nThe change takes effect when the server starts (`homeline serve`).");
    }
}

/// The simultaneous-Internet-calls limit a server uses, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InternetLimit {
    /// The limit for `relay::Config::internet_calls`, already lowered to the channel pool.
    pub(crate) calls: Option<u32>,
    /// Where the figure comes from.
    pub(crate) source: LimitSource,
    /// Channels of the relay pool.
    pub(crate) channels: u32,
}

/// Where the Internet-call limit comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitSource {
    /// Nothing set: only the channel pool limits.
    Unset,
    /// `media.internet_calls` in the configuration file (wins over the stored upstream: an
    /// explicit number is the operator's last word).
    ConfigFile(u32),
    /// Derived from the stored upstream bandwidth for a codec.
    Upstream(Box<Derivation>),
}

impl InternetLimit {
    /// Decides the limit from the configured relay (its `internet_calls` is the file's value)
    /// and the stored upstream. A stored upstream that carries no call is an error: the relay
    /// cannot express "no Internet calls", and `setup upstream` never stores one.
    pub(crate) async fn resolve(store: &Store, relay: &relay::Config) -> Result<InternetLimit> {
        let channels = relay.channels();
        let (asked, source) = match relay.internet_calls {
            Some(n) => (Some(n), LimitSource::ConfigFile(n)),
            None => match stored_upstream(store).await? {
                None => (None, LimitSource::Unset),
                Some((kbit, codec)) => {
                    let d = derive(kbit, codec)?;
                    if d.calls == 0 {
                        bail!(
                            "setting {UPSTREAM_KBPS}: {kbit} kbit/s carries no {} call (one needs \
                             {} kbit/s); set it again with `homeline setup upstream <kbit/s>`",
                            codec.codec(),
                            minimum_kbit(&d)
                        );
                    }
                    (Some(d.calls), LimitSource::Upstream(Box::new(d)))
                }
            },
        };
        Ok(InternetLimit {
            calls: asked.map(|n| n.min(channels)),
            source,
            channels,
        })
    }

    /// The figure before lowering it to the channel pool.
    fn asked(&self) -> Option<u32> {
        match &self.source {
            LimitSource::Unset => None,
            LimitSource::ConfigFile(n) => Some(*n),
            LimitSource::Upstream(d) => Some(d.calls),
        }
    }
}

impl fmt::Display for InternetLimit {
    /// One line: how the limit is derived.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            LimitSource::Unset => {
                return write!(
                    f,
                    "upstream not set: only the {} relay channels limit (`homeline setup upstream <kbit/s>`)",
                    self.channels
                )
            }
            LimitSource::ConfigFile(n) => write!(f, "media.internet_calls = {n} in the configuration file")?,
            LimitSource::Upstream(d) => write!(
                f,
                "upstream {} kbit/s, sized for {}: {} kbit/s for media / {} kbit/s per call",
                d.upstream_kbit,
                d.codec.name(),
                Kbit(d.usable_bps),
                Kbit(d.per_call_bps)
            )?,
        }
        if let (Some(asked), Some(calls)) = (self.asked(), self.calls) {
            if asked > calls {
                write!(f, ", lowered from {asked} to the {calls} relay channels")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_needs_118_kbit_with_g711() {
        let d = derive(117, CodecChoice::G711).unwrap();
        assert_eq!(d.calls, 0);
        assert_eq!(minimum_kbit(&d), 118);
        assert_eq!(derive(118, CodecChoice::G711).unwrap().calls, 1);
        let opus = derive(1, CodecChoice::Opus).unwrap();
        assert_eq!(
            derive(minimum_kbit(&opus) as u32, CodecChoice::Opus)
                .unwrap()
                .calls,
            1
        );
        assert_eq!(
            derive(minimum_kbit(&opus) as u32 - 1, CodecChoice::Opus)
                .unwrap()
                .calls,
            0
        );
    }

    #[tokio::test]
    async fn limit_comes_from_file_then_store_and_is_lowered_to_the_pool() {
        let dir = std::env::temp_dir().join(format!("homeline-limit-{}", std::process::id()));
        let store = Store::open(&dir).await.unwrap();
        let relay = relay::Config::default();
        let l = InternetLimit::resolve(&store, &relay).await.unwrap();
        assert_eq!((l.calls, &l.source), (None, &LimitSource::Unset));
        store.set_upstream_kbps(Some(256)).await.unwrap();
        let l = InternetLimit::resolve(&store, &relay).await.unwrap();
        assert_eq!(l.calls, Some(2));
        assert_eq!(
            l.to_string(),
            "upstream 256 kbit/s, sized for G.711: 204.8 kbit/s for media / 94.4 kbit/s per call"
        );
        store.set_setting(UPSTREAM_CODEC, "opus").await.unwrap();
        assert_eq!(
            InternetLimit::resolve(&store, &relay).await.unwrap().calls,
            Some(3)
        );
        let small = relay::Config {
            ports: 40000..=40001,
            ..relay::Config::default()
        };
        let l = InternetLimit::resolve(&store, &small).await.unwrap();
        assert_eq!(l.calls, Some(1));
        assert!(
            l.to_string()
                .ends_with("lowered from 3 to the 1 relay channels"),
            "{l}"
        );
        let file = relay::Config {
            internet_calls: Some(9),
            ..relay::Config::default()
        };
        let l = InternetLimit::resolve(&store, &file).await.unwrap();
        assert_eq!((l.calls, l.source), (Some(9), LimitSource::ConfigFile(9)));
        store.set_upstream_kbps(Some(64)).await.unwrap();
        store.remove_setting(UPSTREAM_CODEC).await.unwrap();
        let e = InternetLimit::resolve(&store, &relay).await.unwrap_err();
        assert!(e.to_string().contains("118 kbit/s"), "{e}");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
