//! Which way a chain ([`crate::EventLog::append_chain`]) goes out on JetStream: plain
//! publishes, or one atomic batch expecting the chain's start. Both keep the contract;
//! what each costs depends on the server. With its default sync a single-replica file
//! stream stores publishes at once and stages an atomic batch in a file store of its own
//! first (publishes cost less); with `sync_interval: always` it syncs every publish and
//! a batch once (a batch costs far less). So each chain goes the way that has cost less
//! per message lately (smoothed), and the other way is tried again once the chosen one
//! has spent [`PROBE_COST_SHARE`] times what one chain the other way is expected to
//! cost: trying costs at most about one part in that many, and a try's cost replaces
//! that way's old one, so a server whose costs changed is followed at the next try.

use std::sync::Mutex;
use std::time::Duration;

/// The chosen way spends this many times a chain the other way before that one is
/// tried again.
pub const PROBE_COST_SHARE: f64 = 20.0;
/// Each way is tried this many times, in turn, before either is chosen; what a way
/// cost is its last try until then (the first chains of a process run on a cold
/// server and cost more than they will).
pub const WARM_UP_SAMPLES: u32 = 3;
/// Chains shorter than this are sent the chosen way and not counted: a few messages
/// cost mostly the round trip, either way.
pub const RECORDED_MESSAGES_MIN: usize = 32;
/// Weight of the newest chain in the cost per message of the way in use.
pub const SMOOTHING: f64 = 0.25;

/// A way to send a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Publishes,
    Batch,
}

impl Way {
    fn index(self) -> usize {
        match self {
            Way::Publishes => 0,
            Way::Batch => 1,
        }
    }

    fn other(self) -> Way {
        match self {
            Way::Publishes => Way::Batch,
            Way::Batch => Way::Publishes,
        }
    }
}

/// What each way has cost lately.
#[derive(Debug, Default)]
pub struct ChainWays {
    costs: Mutex<Costs>,
}

#[derive(Debug, Default)]
struct Costs {
    /// Smoothed seconds per message of each way, once tried.
    per_message: [Option<f64>; 2],
    /// Chains counted of each way.
    samples: [u32; 2],
    /// Time spent since the way not chosen was last tried.
    spent: Duration,
}

impl ChainWays {
    /// The way to send a chain of `messages` (one message is a plain publish either way).
    pub fn pick(&self, messages: usize) -> Way {
        if messages < 2 {
            return Way::Publishes;
        }
        let mut costs = self.costs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(best) = costs.in_use() else {
            // Warming up: each way in turn.
            let [p, b] = costs.samples;
            return if b < p { Way::Batch } else { Way::Publishes };
        };
        let other = costs.per_message[best.other().index()].expect("both tried");
        let other_chain = Duration::from_secs_f64(other * messages as f64);
        if costs.spent >= other_chain.mul_f64(PROBE_COST_SHARE) {
            costs.spent = Duration::ZERO;
            return best.other();
        }
        best
    }

    /// A chain of `messages` sent `way` was answered in full after `took`.
    pub fn record(&self, way: Way, messages: usize, took: Duration) {
        if messages < RECORDED_MESSAGES_MIN {
            return;
        }
        let mut costs = self.costs.lock().unwrap_or_else(|e| e.into_inner());
        let sample = took.as_secs_f64() / messages as f64;
        // The way in use is smoothed; a try of the other replaces what it cost before,
        // which may be long out of date (the first chains of a process are small and
        // slow, and the server's costs change).
        let in_use = costs.in_use();
        costs.samples[way.index()] = costs.samples[way.index()].saturating_add(1);
        let slot = &mut costs.per_message[way.index()];
        *slot = Some(match *slot {
            Some(old) if in_use == Some(way) => old + SMOOTHING * (sample - old),
            _ => sample,
        });
        costs.spent = costs.spent.saturating_add(took);
    }
}

impl Costs {
    /// The way that has cost less per message, once each was tried
    /// [`WARM_UP_SAMPLES`] times (`None` while warming up).
    fn in_use(&self) -> Option<Way> {
        match self.per_message {
            [Some(p), Some(b)] if self.samples.iter().all(|n| *n >= WARM_UP_SAMPLES) => {
                Some(if p <= b { Way::Publishes } else { Way::Batch })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `chains` chains of 300 messages at the given costs per message (µs);
    /// answers how many went each way after the first two.
    fn run(ways: &ChainWays, chains: usize, publishes_us: u64, batch_us: u64) -> [usize; 2] {
        let mut count = [0; 2];
        for _ in 0..chains {
            let way = ways.pick(300);
            count[way.index()] += 1;
            let us = if way == Way::Publishes { publishes_us } else { batch_us };
            ways.record(way, 300, Duration::from_micros(us * 300));
        }
        count
    }

    #[test]
    fn both_ways_are_tried_first_then_the_cheaper_one_is_taken() {
        let ways = ChainWays::default();
        ways.record(Way::Publishes, 8, Duration::from_millis(9));
        assert_eq!(ways.pick(300), Way::Publishes, "a short chain is not counted");
        for _ in 0..WARM_UP_SAMPLES {
            ways.record(Way::Publishes, 300, Duration::from_millis(9));
            assert_eq!(ways.pick(300), Way::Batch, "tried in turn");
            ways.record(Way::Batch, 300, Duration::from_millis(15));
        }
        assert_eq!(ways.pick(300), Way::Publishes);
        assert_eq!(ways.pick(1), Way::Publishes, "one message is a publish either way");
    }

    /// After the warm-up, 1,000 chains at these costs per message (µs): the cheaper
    /// way takes over 900 of them, the other is tried at least once, and trying it
    /// takes at most about a twentieth of the time.
    fn assert_tries_cost_little(publishes_us: u64, batch_us: u64) {
        let ways = ChainWays::default();
        run(&ways, 2 * WARM_UP_SAMPLES as usize, publishes_us, batch_us);
        let count = run(&ways, 1_000, publishes_us, batch_us);
        let costs = [publishes_us as f64, batch_us as f64];
        let (best, other) = if publishes_us <= batch_us { (0, 1) } else { (1, 0) };
        assert!(count[other] >= 1 && count[best] > 900, "{count:?}");
        let probing = count[other] as f64 * costs[other] / (count[best] as f64 * costs[best]);
        assert!(probing <= 1.5 / PROBE_COST_SHARE, "probing took {probing:.3} of the time");
    }

    #[test]
    fn the_other_way_is_tried_for_at_most_about_a_twentieth_of_the_time() {
        // Default sync: publishes 30 µs a message, a batch 45 µs.
        assert_tries_cost_little(30, 45);
        // sync_interval always: a publish 300 µs a message (a sync each), a batch 15 µs.
        assert_tries_cost_little(300, 15);
    }

    #[test]
    fn a_slow_first_try_is_not_held_against_a_way_for_long() {
        let ways = ChainWays::default();
        // The first chain of a process, small and slow, sent as publishes.
        ways.record(ways.pick(300), 300, Duration::from_micros(300 * 400));
        // Publishes really cost 30 µs a message, a batch 45: after one more try of
        // publishes (within a twentieth of the time), they win again.
        let [publishes, batch] = run(&ways, 200, 30, 45);
        assert!(batch < 40 && publishes > 160, "{publishes} / {batch}");
        assert_eq!(ways.pick(300), Way::Publishes);
    }

    #[test]
    fn a_server_whose_costs_change_is_followed() {
        let ways = ChainWays::default();
        run(&ways, 200, 30, 45);
        assert_eq!(ways.pick(300), Way::Publishes);
        // The server now syncs every publish: within a few tries the batch wins.
        let [_, batch] = run(&ways, 400, 300, 45);
        assert!(batch > 300, "{batch}");
        assert_eq!(run(&ways, 1, 300, 45), [0, 1]);
    }
}
