//! The demo's player: signs events with real keys, posts them through the public
//! HTTP API (independent ones concurrently), moves the simulated clock, and folds
//! everything it posted with the domain's own `evolve` — so it knows, to the fen,
//! what the server must show, and states disclosure totals and accounts from that fold.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use fundtrail_domain::disclosure::expected_citation;
use fundtrail_domain::event::{DisclosureAccounts, DisclosureTotals};
use fundtrail_domain::rules::totals_of;
use fundtrail_domain::state::Fund;
use fundtrail_domain::{donor_commitment, evolve, Event, EventBody, EventId, FundId, Sha256Hex, State};
use fundtrail_envelope::actor::sign_new;
use fundtrail_envelope::ActorKey;

use crate::actions::{post_signed, sha256_hex};
use crate::http::{Client, Posted};
use crate::wallet::{new_salt, write_donor_file, DonorRecord, SALT_SIZE};

/// Most submissions in flight at once (the writer commits them as a group).
pub const POST_CONCURRENCY_MAX: usize = 8;
/// Most events in one batch.
pub const BATCH_EVENTS_MAX: usize = 512;

/// Sets the embedded server's clock (a `fundtrail_service::ManualClock`): the demo
/// moves it day by day through the year. The client knows no server types.
pub type SetClock = Box<dyn Fn(DateTime<Utc>) + Send + Sync>;

/// A document the demo refers to by hash (the file itself lives elsewhere).
pub fn doc(title: &str) -> Sha256Hex {
    sha256_hex(title.as_bytes())
}

/// One event to post: who signs it, where, and (for gifts) the donor behind it.
pub struct Job<'k> {
    pub key: &'k ActorKey,
    pub fund: FundId,
    pub body: EventBody,
    /// The donor's reference and salt: written to a private donor file.
    pub donor: Option<(String, [u8; SALT_SIZE])>,
}

pub struct Player {
    pub client: Client,
    /// The embedded server's clock; `None` against a live server (times are now).
    clock: Option<SetClock>,
    now: DateTime<Utc>,
    pub fund: FundId,
    /// The fold of every event this player posted.
    pub state: State,
    pub donors_dir: PathBuf,
    pub posted: u64,
    /// Whether to print one line per step.
    pub verbose: bool,
}

impl Player {
    pub fn new(
        client: Client,
        clock: Option<SetClock>,
        start: DateTime<Utc>,
        fund: FundId,
        donors_dir: PathBuf,
    ) -> Player {
        if let Some(set) = &clock {
            set(start);
        }
        Player { client, clock, now: start, fund, state: State::default(), donors_dir, posted: 0, verbose: true }
    }

    pub fn is_live(&self) -> bool {
        self.clock.is_none()
    }

    /// Moves the simulated clock forward to `t` (Beijing wall time is the caller's business).
    pub fn day(&mut self, t: DateTime<Utc>, what: &str) {
        assert!(t >= self.now, "the demo's clock only moves forward: {t} < {}", self.now);
        self.now = t;
        if let Some(set) = &self.clock {
            set(t);
        }
        if self.verbose {
            let local = t + chrono::Duration::hours(8);
            println!("  {}  {what}", local.format("%Y-%m-%d"));
        }
    }

    /// The time of the next event: the simulated day, or now against a live server.
    pub fn at(&self) -> DateTime<Utc> {
        if self.is_live() {
            Utc::now()
        } else {
            self.now
        }
    }

    /// A salted commitment to a (generated) donor reference.
    pub fn donor(&self, reference: &str) -> Result<(Sha256Hex, (String, [u8; SALT_SIZE]))> {
        let salt = new_salt()?;
        Ok((donor_commitment(&salt, reference), (reference.to_owned(), salt)))
    }

    pub fn fund_state(&self) -> &Fund {
        self.state.funds.get(&self.fund).expect("the fund is open")
    }

    pub fn totals(&self) -> DisclosureTotals {
        totals_of(self.fund_state()).expect("the fold's totals are in range")
    }

    /// The accounts a disclosure whose period ends at `period_end` cites, from the fold.
    pub fn accounts_citation(&self, period_end: &DateTime<Utc>) -> DisclosureAccounts {
        expected_citation(&self.fund, self.fund_state(), period_end).expect("the fold's accounts are in range")
    }

    /// Posts one event in the fund.
    pub fn post(&mut self, key: &ActorKey, body: EventBody) -> Result<EventId> {
        let fund = self.fund.clone();
        self.post_in(key, fund, body)
    }

    /// Posts one event in `fund` (e.g. the host scope).
    pub fn post_in(&mut self, key: &ActorKey, fund: FundId, body: EventBody) -> Result<EventId> {
        let ids = self.batch(vec![Job { key, fund, body, donor: None }])?;
        Ok(ids.into_iter().next().expect("one job, one id"))
    }

    /// Posts one event the rules must refuse; answers the server's refusal, which the
    /// demo's own fold must give too. An accepted event is an error.
    pub fn refused(&mut self, key: &ActorKey, body: EventBody) -> Result<String> {
        let (event, envelope) = sign_new(key, &self.fund, self.at(), body);
        let ours = fundtrail_domain::decide(&self.state, &event).err().ok_or_else(|| {
            anyhow!("the demo's fold accepts {} {}, which should be refused", event.type_name(), event.id)
        })?;
        match self.client.post_envelope(&envelope) {
            Ok(_) => bail!("the server accepted {} {}, which the rules refuse: {ours}", event.type_name(), event.id),
            Err(e) => {
                let answer = e.to_string();
                if !answer.contains(&ours.to_string()) {
                    bail!("the server refused {} with {answer:?}, the demo's fold with {ours:?}", event.id);
                }
                Ok(ours.to_string())
            }
        }
    }

    /// Posts events whose order does not matter, concurrently; folds them in order.
    pub fn batch(&mut self, jobs: Vec<Job<'_>>) -> Result<Vec<EventId>> {
        assert!(jobs.len() <= BATCH_EVENTS_MAX, "batch of {} events exceeds {BATCH_EVENTS_MAX}", jobs.len());
        let mut signed: Vec<(Event, Vec<u8>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (event, envelope) = sign_new(job.key, &job.fund, self.at(), job.body);
            if let Some((reference, salt)) = &job.donor {
                // Written before posting: an accepted gift never lacks its salt.
                let record = DonorRecord::of(&event, reference, *salt, self.client.base());
                write_donor_file(&self.donors_dir, &record, false)?;
            }
            signed.push((event, envelope));
        }
        post_concurrently(&self.client, &signed)?;
        for (event, _) in &signed {
            evolve(&mut self.state, event).map_err(|r| {
                anyhow!(
                    "the server accepted {} {} but the demo's own fold refuses it: {r}",
                    event.type_name(),
                    event.id
                )
            })?;
        }
        self.posted += signed.len() as u64;
        Ok(signed.into_iter().map(|(e, _)| e.id).collect())
    }
}

fn post_concurrently(client: &Client, signed: &[(Event, Vec<u8>)]) -> Result<()> {
    let next = AtomicUsize::new(0);
    let answers: Vec<Mutex<Option<Result<Posted>>>> = signed.iter().map(|_| Mutex::new(None)).collect();
    let workers = signed.len().clamp(1, POST_CONCURRENCY_MAX);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((event, envelope)) = signed.get(i) else { break };
                let answer = post_signed(client, event, envelope);
                *answers[i].lock().expect("answer lock") = Some(answer);
            });
        }
    });
    for (answer, (event, _)) in answers.into_iter().zip(signed) {
        let answer = answer.into_inner().expect("answer lock").context("a submission got no answer")?;
        let posted = answer?;
        if posted.duplicate {
            bail!("{} {} was already recorded: the demo needs a fresh server", event.type_name(), event.id);
        }
    }
    Ok(())
}
