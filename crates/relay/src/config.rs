//! The relay's typed configuration and the `[media]` file model it is parsed from.

use std::ops::RangeInclusive;
use std::time::Duration;

/// How the relay settings are checked and what they mean. Build it from the file model with
/// `Config::try_from(MediaFile)`, or start from `Config::default()`; [`crate::Relay::new`]
/// checks it again, so an invalid value never reaches the per-packet path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// UDP ports of the relay, inclusive: an even first port and an odd last one, split into
    /// channels of two ports (RTP even, RTCP odd; RFC 3550 §11). Default 30000–30999 (500
    /// channels), the range the brief has the office router forward 1:1.
    pub ports: RangeInclusive<u16>,
    /// A call whose media had started ends after this long with no packet in either direction
    /// on any of its channels. Default 30 s: long enough for a burst of loss on a home DSL
    /// line, short enough that a phone that lost power stops holding a channel quickly.
    pub media_timeout: Duration,
    /// A call whose media never started ends after this long, counted from the moment every
    /// channel of the call knows both of its sides (answer, or early media) or from the last
    /// renegotiation. Default 60 s: a device that sends nothing a minute after the answer is
    /// not going to.
    pub media_start_timeout: Duration,
    /// Instead of the two above while any leg of the call is on hold (`sendonly`, `recvonly`,
    /// `inactive`; RFC 3264), when a phone may legitimately send nothing. Default 1 h; session
    /// timers (RFC 4028) in the call layer end calls whose signalling died.
    pub held_timeout: Duration,
    /// A latched source that has been silent this long may be replaced by a new one (a NAT
    /// rebinding, a phone that changed network). Default 2 s: a hundred 20 ms packets, far
    /// beyond jitter, while a rebinding costs at most two seconds of one-way audio.
    pub relatch_after_silence: Duration,
    /// Which sources may latch. Default [`LatchPolicy::KnownIps`].
    pub latching: LatchPolicy,
    /// Packets from third addresses are reported at most once per channel per interval, as one
    /// aggregated event. Default 10 s.
    pub reject_report_interval: Duration,
    /// Simultaneous Internet calls: channels in use at once (each relayed leg sends one stream
    /// upstream), derived from the upstream bandwidth by `policy::capacity`. `None`: only the
    /// pool limits. Default `None`.
    pub internet_calls: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ports: DEFAULT_PORTS,
            media_timeout: Duration::from_secs(30),
            media_start_timeout: Duration::from_secs(60),
            held_timeout: Duration::from_secs(3600),
            relatch_after_silence: Duration::from_secs(2),
            latching: LatchPolicy::KnownIps,
            reject_report_interval: Duration::from_secs(10),
            internet_calls: None,
        }
    }
}

const DEFAULT_PORTS: RangeInclusive<u16> = 30000..=30999;

impl Config {
    /// Checks every field; the error names the file key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (start, end) = (*self.ports.start(), *self.ports.end());
        if start == 0 {
            return Err(ConfigError::PortZero);
        }
        if end <= start {
            return Err(ConfigError::TooSmall { start, end });
        }
        if start % 2 == 1 {
            return Err(ConfigError::OddBase { start, end });
        }
        if end % 2 == 0 {
            return Err(ConfigError::EvenEnd { start, end });
        }
        for (field, value) in [
            ("media_timeout", self.media_timeout),
            ("media_start_timeout", self.media_start_timeout),
            ("held_timeout", self.held_timeout),
            ("relatch_after_silence_ms", self.relatch_after_silence),
            ("reject_report_interval", self.reject_report_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        if self.internet_calls == Some(0) {
            return Err(ConfigError::Zero {
                field: "internet_calls",
            });
        }
        Ok(())
    }

    /// Number of channels (port pairs) in the range.
    pub fn channels(&self) -> u32 {
        (u32::from(*self.ports.end()) + 1).saturating_sub(u32::from(*self.ports.start())) / 2
    }

    /// Splits the range into `n` disjoint configurations (at least one channel each), one per
    /// worker; everything else is copied. The Internet-call limit is dropped from the shards:
    /// it is global, so whoever picks the shard of a call must enforce it.
    pub fn shard(&self, n: usize) -> Vec<Config> {
        let channels = self.channels() as usize;
        let n = n.clamp(1, channels.max(1));
        let (each, extra) = (channels / n, channels % n);
        let mut start = u32::from(*self.ports.start());
        (0..n)
            .map(|i| {
                let count = (each + usize::from(i < extra)) as u32;
                let end = start + 2 * count - 1;
                // Both bounds lie inside the original u16 range.
                let ports = u16::try_from(start).unwrap_or(u16::MAX)
                    ..=u16::try_from(end).unwrap_or(u16::MAX);
                start = end + 1;
                Config {
                    ports,
                    internet_calls: None,
                    ..self.clone()
                }
            })
            .collect()
    }
}

/// Which sources may latch a leg (become its pinned address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatchPolicy {
    /// Only a source whose IP address is one the signalling knows for that leg: the SDP
    /// connection address or the address the device's SIP came from ([`crate::Peer`]). Behind a
    /// NAT, media leaves from the same public address as signalling (RFC 4787 "paired"
    /// pooling); an ITSP's media server is named in its SDP. This stops a scanner that sprays
    /// relay ports from capturing a stream ("RTP bleed"). A leg with no known address at all
    /// falls back to [`LatchPolicy::AnySource`].
    #[default]
    KnownIps,
    /// The first source to send wins (classic latching).
    AnySource,
}

/// The `[media]` section of the configuration file, as written. Every field is optional;
/// `Config::try_from` applies the defaults and checks every value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct MediaFile {
    /// Relay ports, inclusive, forwarded 1:1 by the office router: "30000-30999" (default).
    /// Even first port, odd last port.
    pub ports: Option<String>,
    /// Seconds without media after it started before the call is ended. Default 30.
    pub media_timeout: Option<u64>,
    /// Seconds without any media after the answer before the call is ended. Default 60.
    pub media_start_timeout: Option<u64>,
    /// Seconds without media while a leg is on hold before the call is ended. Default 3600.
    pub held_timeout: Option<u64>,
    /// Milliseconds of silence from a latched source before another may take its place.
    /// Default 2000.
    pub relatch_after_silence_ms: Option<u64>,
    /// "known-ips" (default) or "any": which sources may latch.
    pub latching: Option<String>,
    /// Seconds between two reports of rejected sources on one channel. Default 10.
    pub reject_report_interval: Option<u64>,
    /// Simultaneous Internet calls. The binary derives it from the upstream bandwidth with
    /// `policy::capacity` (`homeline setup upstream`); the relay only enforces the number.
    pub internet_calls: Option<u32>,
}

impl TryFrom<MediaFile> for Config {
    type Error = ConfigError;

    fn try_from(file: MediaFile) -> Result<Self, Self::Error> {
        let d = Config::default();
        let ports = match &file.ports {
            None => d.ports,
            Some(text) => parse_ports(text)?,
        };
        let secs =
            |v: Option<u64>, default: Duration| v.map(Duration::from_secs).unwrap_or(default);
        let latching = match file.latching.as_deref().map(str::trim) {
            None => d.latching,
            Some("known-ips") => LatchPolicy::KnownIps,
            Some("any") => LatchPolicy::AnySource,
            Some(other) => {
                return Err(ConfigError::UnknownLatching {
                    value: other.to_owned(),
                })
            }
        };
        let internet_calls = file.internet_calls.or(d.internet_calls);
        let config = Config {
            ports,
            media_timeout: secs(file.media_timeout, d.media_timeout),
            media_start_timeout: secs(file.media_start_timeout, d.media_start_timeout),
            held_timeout: secs(file.held_timeout, d.held_timeout),
            relatch_after_silence: file
                .relatch_after_silence_ms
                .map(Duration::from_millis)
                .unwrap_or(d.relatch_after_silence),
            latching,
            reject_report_interval: secs(file.reject_report_interval, d.reject_report_interval),
            internet_calls,
        };
        config.validate()?;
        Ok(config)
    }
}

fn parse_ports(text: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let syntax = || ConfigError::PortsSyntax {
        value: text.to_owned(),
    };
    let (a, b) = text.split_once('-').ok_or_else(syntax)?;
    let start = a.trim().parse::<u16>().map_err(|_| syntax())?;
    let end = b.trim().parse::<u16>().map_err(|_| syntax())?;
    Ok(start..=end)
}

/// A configuration value that cannot work; each variant names the `[media]` key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `ports` is not "first-last".
    #[error("media.ports: {value:?} is not a port range like \"30000-30999\"")]
    PortsSyntax {
        /// The text as written.
        value: String,
    },
    /// `ports` includes port 0.
    #[error("media.ports: port 0 cannot be bound")]
    PortZero,
    /// `ports` holds less than one RTP/RTCP pair.
    #[error("media.ports: {start}-{end} holds no RTP/RTCP port pair (at least two ports, first below last)")]
    TooSmall {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// `ports` starts on an odd port.
    #[error("media.ports: {start}-{end} starts on an odd port; each channel is an even RTP port and the odd RTCP port above it (RFC 3550 §11)")]
    OddBase {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// `ports` ends on an even port, leaving half a channel.
    #[error("media.ports: {start}-{end} ends on an even port, which would have no RTCP port; end on an odd port")]
    EvenEnd {
        /// First port.
        start: u16,
        /// Last port.
        end: u16,
    },
    /// A duration or limit is zero.
    #[error("media.{field}: must be greater than zero")]
    Zero {
        /// The key.
        field: &'static str,
    },
    /// `latching` names no policy.
    #[error("media.latching: {value:?} is neither \"known-ips\" nor \"any\"")]
    UnknownLatching {
        /// The text as written.
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(text: &str) -> Result<Config, ConfigError> {
        Config::try_from(MediaFile {
            ports: Some(text.into()),
            ..MediaFile::default()
        })
    }

    #[test]
    fn defaults_follow_the_brief() {
        let c = Config::try_from(MediaFile::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.ports, 30000..=30999);
        assert_eq!(c.channels(), 500);
        assert_eq!(c.media_timeout, Duration::from_secs(30));
        assert_eq!(c.relatch_after_silence, Duration::from_secs(2));
    }

    #[test]
    fn port_errors_name_the_key_and_the_reason() {
        let e = ports("30001-30999").unwrap_err();
        assert!(matches!(e, ConfigError::OddBase { start: 30001, .. }));
        assert!(e
            .to_string()
            .starts_with("media.ports: 30001-30999 starts on an odd port"));
        assert!(matches!(
            ports("30000-30998"),
            Err(ConfigError::EvenEnd { .. })
        ));
        assert!(matches!(
            ports("30000-30000"),
            Err(ConfigError::TooSmall { .. })
        ));
        assert!(matches!(
            ports("30999-30000"),
            Err(ConfigError::TooSmall { .. })
        ));
        assert!(matches!(ports("0-99"), Err(ConfigError::PortZero)));
        let e = ports("30000").unwrap_err();
        assert_eq!(
            e.to_string(),
            "media.ports: \"30000\" is not a port range like \"30000-30999\""
        );
        assert!(matches!(
            ports("30000-70000"),
            Err(ConfigError::PortsSyntax { .. })
        ));
        assert_eq!(ports(" 40000 - 40001 ").unwrap().channels(), 1);
    }

    #[test]
    fn zero_durations_and_unknown_policy_are_refused() {
        let e = Config::try_from(MediaFile {
            media_timeout: Some(0),
            ..MediaFile::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "media.media_timeout: must be greater than zero"
        );
        let e = Config::try_from(MediaFile {
            latching: Some("first".into()),
            ..MediaFile::default()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("media.latching: \"first\""));
    }

    #[test]
    fn shards_split_the_range_into_disjoint_even_pairs() {
        let c = Config::default();
        let shards = c.shard(3);
        assert_eq!(shards.len(), 3);
        assert_eq!(shards[0].ports, 30000..=30333);
        assert_eq!(shards[1].ports, 30334..=30667);
        assert_eq!(shards[2].ports, 30668..=30999);
        assert_eq!(shards.iter().map(Config::channels).sum::<u32>(), 500);
        for s in &shards {
            s.validate().unwrap();
        }
        let tiny = Config {
            ports: 40000..=40003,
            ..Config::default()
        };
        assert_eq!(tiny.shard(8).len(), 2);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn file_model_rejects_unknown_keys() {
        let ok: MediaFile = toml::from_str("ports = \"40000-40099\"\ninternet_calls = 9").unwrap();
        assert_eq!(Config::try_from(ok).unwrap().channels(), 50);
        let err = toml::from_str::<MediaFile>("port = \"40000-40099\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `port`"));
    }
}
