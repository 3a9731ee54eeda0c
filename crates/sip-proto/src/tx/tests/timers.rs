//! RFC 3261 Table 4: the timer values.

use std::time::Duration;

use super::super::timers::Timer;
use super::*;

#[test]
fn rfc3261_table4_timer_values_udp_and_reliable() {
    let c = TxConfig::default();
    let cases = [
        (Timer::A, 500, 500),
        (Timer::B, 32_000, 32_000),
        (Timer::D, 32_000, 0),
        (Timer::E, 500, 500),
        (Timer::F, 32_000, 32_000),
        (Timer::G, 500, 500),
        (Timer::H, 32_000, 32_000),
        (Timer::I, 5_000, 0),
        (Timer::J, 32_000, 0),
        (Timer::K, 5_000, 0),
        (Timer::L, 32_000, 32_000),
        (Timer::M, 32_000, 32_000),
        (Timer::Trying, 200, 200),
        (Timer::Retransmit2xx, 500, 500),
    ];
    for (timer, udp, reliable) in cases {
        assert_eq!(
            timer.initial(Transport::Udp, &c),
            ms(udp),
            "{timer:?} over UDP"
        );
        for tp in [
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ] {
            assert_eq!(timer.initial(tp, &c), ms(reliable), "{timer:?} over {tp}");
        }
    }
    let retransmitting: Vec<Timer> = cases
        .iter()
        .map(|c| c.0)
        .filter(|t| t.retransmits())
        .collect();
    assert_eq!(
        retransmitting,
        [Timer::A, Timer::E, Timer::G, Timer::Retransmit2xx]
    );
}

#[test]
fn rfc3261_17_1_1_2_timer_a_doubles_without_cap_e_and_g_stop_at_t2() {
    let c = TxConfig::default();
    assert_eq!(Timer::A.backoff(secs(4), &c), secs(8));
    assert_eq!(Timer::A.backoff(secs(16), &c), secs(32));
    for t in [Timer::E, Timer::G, Timer::Retransmit2xx] {
        assert_eq!(t.backoff(ms(500), &c), secs(1));
        assert_eq!(t.backoff(secs(2), &c), secs(4));
        assert_eq!(t.backoff(secs(4), &c), secs(4));
    }
}

#[test]
fn tx_config_is_brought_into_range() {
    let c = TxConfig {
        t1: Duration::ZERO,
        t2: Duration::ZERO,
        t4: Duration::MAX,
    }
    .sanitized();
    assert_eq!(c.t1, ms(1));
    assert_eq!(c.t2, ms(1));
    assert_eq!(c.t4, secs(3600));
    // A layer with such a configuration still terminates its retransmission loops.
    let mut sim = Sim {
        layer: TxLayer::new(
            TxConfig {
                t1: Duration::ZERO,
                t2: Duration::ZERO,
                t4: Duration::ZERO,
            },
            1,
        ),
        ..Sim::new()
    };
    sim.send(&outgoing("OPTIONS", "z9hG4bKzero"), udp());
    sim.run_until(secs(1));
    assert!(sim.layer.is_empty());
    assert_eq!(
        sim.take_sent().len(),
        64,
        "T1 of 1 ms: sends at 0, 1, 2, ..., 63 ms"
    );
}
