//! The year 2026 of 西湖街道社区发展基金, as an agenda of dated steps.
//!
//! Income through all four channels: 11 partners running community services
//! (space_for_service) paying monthly or quarterly against their pledges; a
//! monthly neighbourhood market whose merchants give cash and goods; the
//! 巧手妈妈工坊 workshop; and residents. Spending follows the fixed path —
//! proposal, residents' opinions, committee vote, application, host approval,
//! payout, close — with a rejection, a recusal, a two-part payout closed under
//! budget, and a declined application. Quarterly disclosures state the fold's
//! totals; an auditor gives the year an opinion.
//!
//! Amounts come from a fixed-seed generator, so every run tells the same story
//! with the same figures (only the keys and the donors' salts are fresh).

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use fundtrail_domain::event::*;
use fundtrail_domain::{EventId, Fen, PledgeId, ProposalId, Sha256Hex};

use super::cast::Cast;
use super::play::{doc, Job, Player};

/// The year the demo plays.
pub const YEAR: i32 = 2026;
/// Merchants who trade at the monthly market.
const MERCHANTS: usize = 300;
/// Cash donations below this get no official receipt unless asked for.
const RECEIPT_THRESHOLD_YUAN: i64 = 2_000;

/// Beijing wall time (UTC+8) in the demo's year.
pub fn bj(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    bj_in(YEAR, month, day, hour)
}

pub fn bj_in(year: i32, month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    let local = NaiveDate::from_ymd_opt(year, month, day).and_then(|d| d.and_hms_opt(hour, 0, 0)).expect("a real date");
    Utc.from_utc_datetime(&(local - chrono::Duration::hours(8)))
}

/// The second Saturday of a month: market day.
fn market_day(month: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(YEAR, month, 1).expect("a real month");
    let to_saturday = (7 + Weekday::Sat.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    1 + to_saturday + 7
}

fn yuan(y: i64) -> Fen {
    Fen::yuan(y)
}

fn pid(id: &str) -> ProposalId {
    ProposalId::new(id).expect("the demo's proposal ids are valid")
}

fn plid(id: &str) -> PledgeId {
    PledgeId::new(id).expect("the demo's pledge ids are valid")
}

/// SplitMix64: a tiny fixed-seed generator for the story's amounts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        lo + self.next() % (hi - lo + 1)
    }
}

/// A partner running a community service, and how it pays.
struct Partner {
    name: &'static str,
    terms: &'static str,
    pledge_yuan: i64,
    /// 1: monthly, 3: quarterly.
    every_months: u32,
    payment_yuan: i64,
    /// Months it did not pay.
    missed: &'static [u32],
    /// A last payment smaller than usual (month, yuan).
    short: Option<(u32, i64)>,
}

/// The purpose the elderly-care partner's gifts are restricted to (the elderly canteen and
/// visits to elders living alone): docs/design.md §1.6.
pub const ELDERLY: &str = "助老";

/// The partner whose pledge and payments are restricted to [`ELDERLY`].
const ELDERLY_PARTNER: usize = 0;

const PARTNERS: [Partner; 11] = [
    Partner {
        name: "颐康养老服务中心",
        terms: "2026年度 日间照料、老年助餐服务利润的5%",
        pledge_yuan: 36_000,
        every_months: 1,
        payment_yuan: 3_000,
        missed: &[],
        short: None,
    },
    Partner {
        name: "阳光托育中心",
        terms: "2026年度 普惠托育服务利润的5%",
        pledge_yuan: 24_000,
        every_months: 1,
        payment_yuan: 2_000,
        missed: &[],
        short: None,
    },
    Partner {
        name: "邻里家政服务公司",
        terms: "2026年度 家政保洁、月嫂服务利润的6%",
        pledge_yuan: 18_000,
        every_months: 1,
        payment_yuan: 1_500,
        missed: &[7, 8],
        short: None,
    },
    Partner {
        name: "康乐社区食堂",
        terms: "2026年度 社区食堂营业利润的5%",
        pledge_yuan: 24_000,
        every_months: 1,
        payment_yuan: 2_000,
        missed: &[],
        short: None,
    },
    Partner {
        name: "启明课后托管",
        terms: "2026年度 课后托管、周末兴趣班利润的5%",
        pledge_yuan: 14_400,
        every_months: 1,
        payment_yuan: 1_200,
        missed: &[],
        short: None,
    },
    Partner {
        name: "仁心健康驿站",
        terms: "2026年度 健康检测、中医理疗服务利润的5%",
        pledge_yuan: 12_000,
        every_months: 3,
        payment_yuan: 3_000,
        missed: &[],
        short: None,
    },
    Partner {
        name: "便民维修服务站",
        terms: "2026年度 家电维修、开锁换锁服务利润的8%",
        pledge_yuan: 9_600,
        every_months: 1,
        payment_yuan: 800,
        missed: &[],
        short: None,
    },
    Partner {
        name: "悦读书屋",
        terms: "2026年度 书吧、自习室服务利润的5%",
        pledge_yuan: 6_000,
        every_months: 3,
        payment_yuan: 1_500,
        missed: &[],
        short: None,
    },
    Partner {
        name: "乐龄助浴服务社",
        terms: "2026年度 上门助浴服务利润的5%",
        pledge_yuan: 12_000,
        every_months: 3,
        payment_yuan: 3_000,
        missed: &[],
        short: None,
    },
    Partner {
        name: "邻里理发室",
        terms: "2026年度 理发、助老上门理发利润的10%",
        pledge_yuan: 7_200,
        every_months: 1,
        payment_yuan: 600,
        missed: &[],
        short: None,
    },
    Partner {
        name: "安康康复理疗中心",
        terms: "2026年度 康复理疗、护理培训利润的5%",
        pledge_yuan: 30_000,
        every_months: 3,
        payment_yuan: 7_500,
        missed: &[],
        short: Some((12, 5_250)),
    },
];

/// 巧手妈妈工坊's monthly gift: 10% of its revenue, ¥50,000 over the year.
const WORKSHOP_YUAN: [i64; 12] = [3_200, 3_500, 3_800, 4_000, 4_200, 4_100, 3_900, 4_300, 4_600, 4_800, 4_700, 4_900];

/// Goods merchants give: name, unit, estimated value of one unit in fen.
const GOODS: [(&str, &str, i64); 10] = [
    ("大米", "袋（10kg）", 6_000),
    ("食用油", "桶（5L）", 7_500),
    ("面粉", "袋（5kg）", 4_500),
    ("鸡蛋", "箱", 3_800),
    ("牛奶", "箱", 5_500),
    ("挂面", "箱", 3_000),
    ("毛巾", "条", 1_200),
    ("洗衣液", "瓶", 2_500),
    ("香皂", "块", 500),
    ("保温杯", "个", 4_500),
];

/// What the year produced, for the closing summary.
#[derive(Default)]
pub struct Outcome {
    pub example_donation: Option<EventId>,
    /// The elderly-care partner's goods restricted to [`ELDERLY`], traced to the 重阳节 visits.
    pub example_goods: Option<EventId>,
    pub example_donor: String,
    pub merchants: BTreeSet<String>,
    pub market_gifts: u32,
    pub goods_gifts: u32,
    pub goods_lines: u32,
    pub resident_gifts: u32,
    pub partner_payments: u32,
    pub receipts_issued: u32,
    pub receipts_voided: u32,
    pub opinions: u32,
    pub distributions: u32,
    pub disclosures: u32,
}

struct Story {
    rng: Rng,
    out: Outcome,
    /// Cash donations (id, amount) without an official receipt yet.
    unreceipted: Vec<(EventId, Fen)>,
    receipt_serial: u32,
    company_gift: Option<EventId>,
    company_receipt: Option<String>,
    duplicate_gift: Option<EventId>,
    /// Against a live server disclosures cover the run so far.
    live_start: DateTime<Utc>,
}

type Step = Box<dyn FnOnce(&mut Story, &Cast, &mut Player) -> Result<()>>;

struct Agenda(Vec<(DateTime<Utc>, String, Step)>);

impl Agenda {
    fn at(
        &mut self,
        t: DateTime<Utc>,
        what: impl Into<String>,
        step: impl FnOnce(&mut Story, &Cast, &mut Player) -> Result<()> + 'static,
    ) {
        self.0.push((t, what.into(), Box::new(step)));
    }
}

/// Plays the year after [`Cast::setup`]. Returns what happened.
pub fn play(cast: &Cast, p: &mut Player) -> Result<Outcome> {
    let mut story = Story {
        rng: Rng(YEAR as u64),
        out: Outcome::default(),
        unreceipted: Vec::new(),
        receipt_serial: 100,
        company_gift: None,
        company_receipt: None,
        duplicate_gift: None,
        live_start: Utc::now() - chrono::Duration::seconds(1),
    };
    let mut agenda = Agenda(Vec::new());
    income(&mut agenda, &mut story.rng);
    spending(&mut agenda);
    reporting(&mut agenda);
    // Stable: steps on the same day keep the order they were added in.
    agenda.0.sort_by_key(|(t, _, _)| *t);
    for (t, what, step) in agenda.0 {
        p.day(t, &what);
        step(&mut story, cast, p).with_context(|| format!("demo step {what:?}"))?;
    }
    Ok(story.out)
}

// ---------------------------------------------------------------------------
// income

fn income(a: &mut Agenda, rng: &mut Rng) {
    a.at(bj(1, 9, 10), "合作方、集市商户、巧手妈妈工坊认捐（13项）", pledges);
    for month in 1..=12u32 {
        a.at(bj(month, 10, 10), format!("{month}月 合作方月度捐赠"), move |s, c, p| {
            partner_payments(s, c, p, month)
        });
        if month % 3 == 0 {
            a.at(bj(month, 25, 10), format!("{month}月 合作方季度捐赠"), move |s, c, p| {
                quarterly_payments(s, c, p, month)
            });
        }
        let day = market_day(month);
        a.at(bj(month, day, 15), format!("第{month}场 邻里集市：商户捐款与物资"), move |s, c, p| {
            market(s, c, p, month)
        });
        a.at(bj(month, 28, 16), format!("{month}月 巧手妈妈工坊捐赠"), move |s, c, p| {
            workshop(s, c, p, month)
        });
        // Residents: two or three gifts a month, on scattered days.
        for _ in 0..rng.range(2, 3) {
            let day = rng.range(2, 27) as u32;
            let amount =
                [50, 66, 88, 100, 100, 200, 200, 300, 500, 520, 666, 800, 1_000, 2_000][rng.range(0, 13) as usize];
            a.at(bj(month, day, 20), format!("居民捐款 {}", yuan(amount)), move |s, c, p| {
                resident(s, c, p, yuan(amount), None)
            });
        }
    }
    // 99公益日: a burst of resident gifts, one of them the demo's example donor.
    a.at(bj(9, 7, 12), "99公益日 居民集中捐款", |s, c, p| {
        for amount in [99, 199, 520, 1_000, 300, 99, 2_000, 666] {
            resident(s, c, p, yuan(amount), None)?;
        }
        let (commitment, donor) = p.donor("DEMO-R-0099")?;
        let ids = p.batch(vec![Job {
            key: &c.intake,
            fund: p.fund.clone(),
            body: cash(yuan(520), Channel::Direct, commitment, "99GY-20260907-0099", None, Some(ELDERLY)),
            donor: Some(donor),
        }])?;
        s.out.example_donation = Some(ids[0].clone());
        s.out.example_donor = "DEMO-R-0099".into();
        s.out.resident_gifts += 1;
        Ok(())
    });
    // A duplicate payment, refunded two days later.
    a.at(bj(5, 20, 19), "居民捐款（支付回调重复，误收两笔）", |s, c, p| {
        resident(s, c, p, yuan(200), None)?;
        let (commitment, donor) = p.donor("DEMO-R-0520")?;
        let body = cash(yuan(200), Channel::Direct, commitment, "WX20260520-7731", None, None);
        let ids = p.batch(vec![Job { key: &c.intake, fund: p.fund.clone(), body, donor: Some(donor) }])?;
        s.duplicate_gift = Some(ids[0].clone());
        s.out.resident_gifts += 1;
        Ok(())
    });
    a.at(bj(5, 22, 10), "重复支付原路退回 ¥200.00", |s, c, p| {
        let donation = s.duplicate_gift.clone().expect("the duplicate came first");
        p.post(
            &c.intake,
            EventBody::DonationReversed(DonationReversed {
                donation,
                amount_fen: yuan(200),
                reason: "支付平台重复回调，同一笔捐款记录两次，原路退回".into(),
            }),
        )?;
        Ok(())
    });
    // A company gives for the 重阳节 visits and asks for a receipt.
    a.at(bj(10, 10, 11), "企业定向捐赠（重阳节慰问）", |s, c, p| {
        let (commitment, donor) = p.donor("DEMO-C-0001")?;
        let body = cash(yuan(5_000), Channel::Direct, commitment, "BANK-20261010-0001", None, None);
        let ids = p.batch(vec![Job { key: &c.intake, fund: p.fund.clone(), body, donor: Some(donor) }])?;
        s.company_gift = Some(ids[0].clone());
        Ok(())
    });
    a.at(bj(10, 12, 10), "为企业捐赠开具公益事业捐赠票据", |s, c, p| {
        let donation = s.company_gift.clone().expect("the gift came first");
        let number = s.next_receipt_no();
        p.post(&c.treasurer, EventBody::ReceiptIssued(ReceiptIssued { donation, receipt_no: number.clone() }))?;
        s.company_receipt = Some(number);
        s.out.receipts_issued += 1;
        Ok(())
    });
    a.at(bj(10, 15, 10), "票据抬头有误：作废并重开", |s, c, p| {
        let donation = s.company_gift.clone().expect("the gift came first");
        let voided = s.company_receipt.clone().expect("the receipt was issued first");
        p.post(
            &c.treasurer,
            EventBody::ReceiptVoided(ReceiptVoided {
                donation: donation.clone(),
                receipt_no: voided,
                reason: "单位名称开具有误，收回作废".into(),
            }),
        )?;
        let number = s.next_receipt_no();
        p.post(&c.treasurer, EventBody::ReceiptIssued(ReceiptIssued { donation, receipt_no: number }))?;
        s.out.receipts_voided += 1;
        s.out.receipts_issued += 1;
        Ok(())
    });
    // The elderly-care partner gives goods for the 重阳节 visits, restricted to 助老
    // against its pledge: they go to P-2026-07 first and never to anything else.
    a.at(bj(10, 6, 10), "颐康养老服务中心 定向捐赠助老物资（重阳节）", |s, c, p| {
        let (commitment, donor) = p.donor(&partner_ref(ELDERLY_PARTNER))?;
        let line = |name: &str, unit: &str, quantity: u64, value: i64| GoodsLine {
            name: name.into(),
            quantity,
            unit: unit.into(),
            unit_value_fen: Fen::new(value).expect("small"),
        };
        let body = EventBody::GoodsReceived(GoodsReceived {
            channel: Channel::SpaceForService,
            donor: commitment,
            items: vec![line("大米", "袋（10kg）", 20, 6_000), line("牛奶", "箱", 40, 5_500)],
            pledge: Some(plid(&format!("PL-2026-{:02}", ELDERLY_PARTNER + 1))),
            restricted_purpose: Some(ELDERLY.to_owned()),
        });
        let ids = p.batch(vec![Job { key: &c.intake, fund: p.fund.clone(), body, donor: Some(donor) }])?;
        s.out.example_goods = Some(ids[0].clone());
        s.out.goods_gifts += 1;
        s.out.goods_lines += 2;
        Ok(())
    });
    for (month, day) in [(4, 3), (7, 3), (10, 9), (12, 30)] {
        a.at(bj(month, day, 14), "季度开具公益事业捐赠票据", receipts);
    }
}

fn cash(
    amount: Fen,
    channel: Channel,
    donor: Sha256Hex,
    payment_ref: &str,
    pledge: Option<&str>,
    purpose: Option<&str>,
) -> EventBody {
    EventBody::DonationReceived(DonationReceived {
        amount_fen: amount,
        channel,
        donor,
        payment_ref: payment_ref.into(),
        pledge: pledge.map(plid),
        restricted_purpose: purpose.map(str::to_owned),
    })
}

fn partner_ref(i: usize) -> String {
    format!("DEMO-P-{:02}", i + 1)
}

fn pledges(_: &mut Story, c: &Cast, p: &mut Player) -> Result<()> {
    let mut jobs = Vec::new();
    let mut add = |pledge: String, channel, reference: String, amount: Fen, terms: String| -> Result<()> {
        let (commitment, donor) = p.donor(&reference)?;
        jobs.push(Job {
            key: &c.intake,
            fund: p.fund.clone(),
            body: EventBody::PledgeRecorded(PledgeRecorded {
                pledge: plid(&pledge),
                channel,
                donor: commitment,
                amount_fen: amount,
                terms,
                restricted_purpose: (reference == partner_ref(ELDERLY_PARTNER)).then(|| ELDERLY.to_owned()),
            }),
            donor: Some(donor),
        });
        Ok(())
    };
    for (i, partner) in PARTNERS.iter().enumerate() {
        let terms = format!("{}：{}", partner.name, partner.terms);
        add(
            format!("PL-2026-{:02}", i + 1),
            Channel::SpaceForService,
            partner_ref(i),
            yuan(partner.pledge_yuan),
            terms,
        )?;
    }
    add(
        "PL-2026-JS".into(),
        Channel::NeighbourhoodMarket,
        "DEMO-M-UNION".into(),
        yuan(10_000),
        "邻里集市全体商户：每场集市摊位收入的3%".into(),
    )?;
    add(
        "PL-2026-QS".into(),
        Channel::MicroWorkshop,
        "DEMO-W-0001".into(),
        yuan(50_000),
        "巧手妈妈工坊：手工编织、缝纫订单营收的10%".into(),
    )?;
    p.batch(jobs)?;
    Ok(())
}

fn partner_payments(s: &mut Story, c: &Cast, p: &mut Player, month: u32) -> Result<()> {
    let due = PARTNERS.iter().enumerate().filter(|(_, x)| x.every_months == 1 && !x.missed.contains(&month));
    pay_partners(s, c, p, month, due.collect())
}

fn quarterly_payments(s: &mut Story, c: &Cast, p: &mut Player, month: u32) -> Result<()> {
    let due = PARTNERS.iter().enumerate().filter(|(_, x)| x.every_months == 3);
    pay_partners(s, c, p, month, due.collect())
}

fn pay_partners(s: &mut Story, c: &Cast, p: &mut Player, month: u32, due: Vec<(usize, &Partner)>) -> Result<()> {
    let mut jobs = Vec::new();
    let mut amounts = Vec::new();
    for (i, partner) in due {
        let amount = match partner.short {
            Some((m, y)) if m == month => yuan(y),
            _ => yuan(partner.payment_yuan),
        };
        let (commitment, donor) = p.donor(&partner_ref(i))?;
        let payment_ref = format!("BANK-2026{month:02}-P{:02}", i + 1);
        let pledge = format!("PL-2026-{:02}", i + 1);
        jobs.push(Job {
            key: &c.intake,
            fund: p.fund.clone(),
            body: cash(
                amount,
                Channel::SpaceForService,
                commitment,
                &payment_ref,
                Some(&pledge),
                (i == ELDERLY_PARTNER).then_some(ELDERLY),
            ),
            donor: Some(donor),
        });
        amounts.push(amount);
    }
    let ids = p.batch(jobs)?;
    s.out.partner_payments += ids.len() as u32;
    s.unreceipted.extend(ids.into_iter().zip(amounts));
    Ok(())
}

fn market(s: &mut Story, c: &Cast, p: &mut Player, month: u32) -> Result<()> {
    let traders = s.rng.range(22, 30) as usize;
    // The market's merchants take turns, so over the year nearly all 300 give.
    let first = (month as usize - 1) * 25;
    let mut jobs = Vec::new();
    for k in 0..traders {
        let merchant = format!("DEMO-M-{:03}", (first + k) % MERCHANTS + 1);
        let fen = s.rng.range(10, 55) as i64 * 100 + if s.rng.range(0, 1) == 1 { 50 } else { 0 };
        let (commitment, donor) = p.donor(&merchant)?;
        let payment_ref = format!("JS2026{month:02}-{:03}", k + 1);
        let amount = Fen::new(fen).expect("small amount");
        jobs.push(Job {
            key: &c.intake,
            fund: p.fund.clone(),
            body: cash(amount, Channel::NeighbourhoodMarket, commitment, &payment_ref, Some("PL-2026-JS"), None),
            donor: Some(donor),
        });
        s.out.merchants.insert(merchant);
    }
    // Three merchants give goods, two to four kinds each.
    for k in 0..3 {
        let merchant = format!("DEMO-M-{:03}", (first + traders + k) % MERCHANTS + 1);
        let kinds = s.rng.range(2, 4) as usize;
        let start = s.rng.range(0, GOODS.len() as u64 - 1) as usize;
        let items: Vec<GoodsLine> = (0..kinds)
            .map(|j| {
                let (name, unit, value) = GOODS[(start + j * 3) % GOODS.len()];
                GoodsLine {
                    name: name.into(),
                    quantity: s.rng.range(4, 12),
                    unit: unit.into(),
                    unit_value_fen: Fen::new(value).expect("small"),
                }
            })
            .collect();
        s.out.goods_lines += items.len() as u32;
        let (commitment, donor) = p.donor(&merchant)?;
        jobs.push(Job {
            key: &c.intake,
            fund: p.fund.clone(),
            body: EventBody::GoodsReceived(GoodsReceived {
                channel: Channel::NeighbourhoodMarket,
                donor: commitment,
                items,
                pledge: None,
                restricted_purpose: None,
            }),
            donor: Some(donor),
        });
        s.out.merchants.insert(merchant);
    }
    p.batch(jobs)?;
    s.out.market_gifts += traders as u32;
    s.out.goods_gifts += 3;
    Ok(())
}

fn workshop(s: &mut Story, c: &Cast, p: &mut Player, month: u32) -> Result<()> {
    let amount = yuan(WORKSHOP_YUAN[month as usize - 1]);
    let (commitment, donor) = p.donor("DEMO-W-0001")?;
    let payment_ref = format!("BANK-2026{month:02}-QS");
    let body = cash(amount, Channel::MicroWorkshop, commitment, &payment_ref, Some("PL-2026-QS"), None);
    let ids = p.batch(vec![Job { key: &c.intake, fund: p.fund.clone(), body, donor: Some(donor) }])?;
    s.unreceipted.push((ids[0].clone(), amount));
    Ok(())
}

fn resident(s: &mut Story, c: &Cast, p: &mut Player, amount: Fen, purpose: Option<&str>) -> Result<()> {
    s.out.resident_gifts += 1;
    let reference = format!("DEMO-R-{:04}", s.out.resident_gifts);
    let (commitment, donor) = p.donor(&reference)?;
    let payment_ref = format!("WX2026-{:05}", s.rng.range(10_000, 99_999));
    let body = cash(amount, Channel::Direct, commitment, &payment_ref, None, purpose);
    let ids = p.batch(vec![Job { key: &c.intake, fund: p.fund.clone(), body, donor: Some(donor) }])?;
    s.unreceipted.push((ids[0].clone(), amount));
    Ok(())
}

impl Story {
    fn next_receipt_no(&mut self) -> String {
        self.receipt_serial += 1;
        format!("3301022600{}", self.receipt_serial)
    }
}

/// The treasurer issues official receipts for the quarter's larger gifts.
fn receipts(s: &mut Story, c: &Cast, p: &mut Player) -> Result<()> {
    let due: Vec<EventId> = s
        .unreceipted
        .drain(..)
        .filter(|(_, amount)| *amount >= yuan(RECEIPT_THRESHOLD_YUAN))
        .map(|(id, _)| id)
        .collect();
    let jobs: Vec<Job> = due
        .into_iter()
        .map(|donation| Job {
            key: &c.treasurer,
            fund: p.fund.clone(),
            body: EventBody::ReceiptIssued(ReceiptIssued { donation, receipt_no: s.next_receipt_no() }),
            donor: None,
        })
        .collect();
    s.out.receipts_issued += jobs.len() as u32;
    p.batch(jobs)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// spending

/// A proposal as the community's party organisation writes it.
struct Plan {
    id: &'static str,
    title: &'static str,
    category: ProposalCategory,
    amount_yuan: i64,
    payee: &'static str,
    description: &'static str,
}

/// The proposals that serve [`ELDERLY`]: their approvals use its restricted money first.
const ELDERLY_PROPOSALS: [&str; 3] = ["P-2026-02", "P-2026-07", "P-2026-08"];

fn submit(c: &Cast, p: &mut Player, plan: Plan) -> Result<()> {
    let Plan { id, title, category, amount_yuan, payee, description } = plan;
    p.post(
        &c.proposer,
        EventBody::ProposalSubmitted(ProposalSubmitted {
            proposal: pid(id),
            title: title.into(),
            category,
            amount_fen: yuan(amount_yuan),
            payee: payee.into(),
            description: description.into(),
            evidence: vec![doc(&format!("{id} {title} 预算明细与报价单"))],
            purpose: ELDERLY_PROPOSALS.contains(&id).then(|| ELDERLY.to_owned()),
        }),
    )?;
    Ok(())
}

fn opinion(s: &mut Story, c: &Cast, p: &mut Player, id: &str, summary: &str, support: u32, oppose: u32) -> Result<()> {
    let evidence = vec![doc(&format!("{id} 居民意见征询表汇总"))];
    p.post(
        &c.proposer,
        EventBody::OpinionRecorded(OpinionRecorded {
            proposal: pid(id),
            summary: summary.into(),
            support,
            oppose,
            evidence,
        }),
    )?;
    s.out.opinions += 1;
    Ok(())
}

/// The five members vote at one meeting (concurrently: order does not matter).
fn votes(c: &Cast, p: &mut Player, id: &str, choices: [(VoteChoice, &str); 5]) -> Result<()> {
    let jobs = c
        .committee
        .iter()
        .zip(choices)
        .map(|(key, (choice, reason))| Job {
            key,
            fund: p.fund.clone(),
            body: EventBody::VoteCast(VoteCast { proposal: pid(id), choice, reason: reason.into() }),
            donor: None,
        })
        .collect();
    p.batch(jobs)?;
    Ok(())
}

fn endorse_and_apply(c: &Cast, p: &mut Player, id: &str) -> Result<()> {
    let minutes = doc(&format!("{id} 管理委员会会议纪要"));
    p.post(&c.committee[0], EventBody::ProposalEndorsed(ProposalEndorsed { proposal: pid(id), minutes }))?;
    p.post(&c.proposer, EventBody::ApplicationSubmitted(ApplicationSubmitted { proposal: pid(id) }))?;
    Ok(())
}

fn approve(c: &Cast, p: &mut Player, id: &str, amount: i64) -> Result<()> {
    p.post(&c.approver, EventBody::ProposalApproved(ProposalApproved { proposal: pid(id), amount_fen: yuan(amount) }))?;
    Ok(())
}

fn pay(c: &Cast, p: &mut Player, id: &str, amount: i64, payment_ref: &str, invoice: &str) -> Result<()> {
    let body = EventBody::PayoutMade(PayoutMade {
        proposal: pid(id),
        amount_fen: yuan(amount),
        payment_ref: payment_ref.into(),
        evidence: vec![doc(invoice)],
    });
    p.post(&c.treasurer, body)?;
    Ok(())
}

fn close(c: &Cast, p: &mut Player, id: &str, report: &str) -> Result<()> {
    let evidence = vec![doc(&format!("{id} 结项报告及照片"))];
    p.post(
        &c.proposer,
        EventBody::ProposalClosed(ProposalClosed { proposal: pid(id), report: report.into(), evidence }),
    )?;
    Ok(())
}

const YES: (VoteChoice, &str) = (VoteChoice::Approve, "同意：符合基金章程用途，预算合理");
const NO: (VoteChoice, &str) = (VoteChoice::Reject, "反对：居民意见分歧大，时机不成熟");

fn spending(a: &mut Agenda) {
    use ProposalCategory::*;
    // P-2026-01: 春节 visits, the whole path.
    a.at(bj(1, 12, 9), "提案 P-2026-01 春节困难家庭慰问", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-01",
                title: "春节困难家庭慰问",
                category: Visit,
                amount_yuan: 8_000,
                payee: "西湖街道社区居委会",
                description: "春节前走访慰问辖区低保、低边及困难家庭40户，每户慰问金200元",
            },
        )
    });
    a.at(bj(1, 14, 19), "P-2026-01 居民议事会征询意见", |s, c, p| {
        opinion(s, c, p, "P-2026-01", "居民议事会讨论，普遍支持", 46, 2)
    });
    a.at(bj(1, 15, 19), "P-2026-01 管理委员会表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-01", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-01")
    });
    a.at(bj(1, 19, 10), "P-2026-01 慈善总会审批 ¥8,000", |_, c, p| approve(c, p, "P-2026-01", 8_000));
    a.at(bj(1, 23, 10), "P-2026-01 拨付 ¥8,000", |_, c, p| {
        pay(c, p, "P-2026-01", 8_000, "BANK-20260123-001", "P-2026-01 慰问金发放签收表")
    });
    a.at(bj(2, 20, 10), "P-2026-01 结项", |_, c, p| {
        close(c, p, "P-2026-01", "已慰问困难家庭40户，慰问金全部发放，签收表已归档")
    });

    // P-2026-02: 助餐补贴 — the payee's manager sits on the committee and recuses.
    a.at(bj(2, 24, 9), "提案 P-2026-02 老年食堂助餐补贴（上半年）", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-02",
                title: "老年食堂助餐补贴（上半年）",
                category: Activity,
                amount_yuan: 30_000,
                payee: "康乐社区食堂",
                description: "为80岁以上及独居老人每餐补贴3元，预计上半年10,000人次",
            },
        )
    });
    a.at(bj(3, 3, 19), "P-2026-02 居民意见征询", |s, c, p| {
        opinion(s, c, p, "P-2026-02", "老年居民问卷调查，多数支持延续助餐补贴", 138, 5)
    });
    a.at(bj(3, 5, 19), "P-2026-02 表决：刘志强委员回避（利益相关），4票同意", |_, c, p| {
        let recuse = (VoteChoice::Recuse, "本人为康乐社区食堂负责人，与收款方存在利益关系，申请回避");
        votes(c, p, "P-2026-02", [YES, YES, YES, recuse, YES])?;
        endorse_and_apply(c, p, "P-2026-02")
    });
    a.at(bj(3, 10, 10), "P-2026-02 审批 ¥30,000", |_, c, p| approve(c, p, "P-2026-02", 30_000));
    a.at(bj(4, 1, 10), "P-2026-02 拨付 ¥30,000", |_, c, p| {
        pay(c, p, "P-2026-02", 30_000, "BANK-20260401-002", "康乐社区食堂 助餐刷卡记录及发票")
    });
    a.at(bj(7, 5, 10), "P-2026-02 结项", |_, c, p| {
        close(c, p, "P-2026-02", "上半年助餐补贴10,020人次，刷卡明细已公示")
    });

    // P-2026-03: rejected by a majority.
    a.at(bj(4, 8, 9), "提案 P-2026-03 3号楼加装电梯前期勘测", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-03",
                title: "3号楼加装电梯前期勘测设计",
                category: Renovation,
                amount_yuan: 60_000,
                payee: "某建筑设计研究院",
                description: "委托设计院进行结构勘测和方案设计",
            },
        )
    });
    a.at(bj(4, 15, 19), "P-2026-03 楼栋居民意见征询（多数反对）", |s, c, p| {
        opinion(s, c, p, "P-2026-03", "3号楼住户征询：低层住户多数反对，高层住户支持", 61, 74)
    });
    a.at(bj(4, 16, 19), "P-2026-03 表决：3票反对，提案否决", |_, c, p| {
        votes(c, p, "P-2026-03", [NO, YES, NO, YES, NO])?;
        let reason = "3名委员反对，无法形成过半数同意：建议先由楼栋业主协商分摊方案后再议";
        p.post(
            &c.committee[0],
            EventBody::ProposalRejected(ProposalRejected { proposal: pid("P-2026-03"), reason: reason.into() }),
        )?;
        Ok(())
    });

    // P-2026-04: paid in two parts, closed under budget.
    a.at(bj(4, 20, 9), "提案 P-2026-04 楼道照明与适老化改造", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-04",
                title: "楼道照明与适老化改造",
                category: Renovation,
                amount_yuan: 45_000,
                payee: "西湖物业服务有限公司",
                description: "12个楼道更换声控LED灯，加装扶手和防滑条",
            },
        )
    });
    a.at(bj(4, 25, 19), "P-2026-04 居民意见征询", |s, c, p| {
        opinion(s, c, p, "P-2026-04", "楼道长会议及问卷：绝大多数支持", 152, 3)
    });
    a.at(bj(4, 28, 19), "P-2026-04 表决：4票同意1票反对", |_, c, p| {
        let no = (VoteChoice::Reject, "反对：应由物业维修基金承担");
        votes(c, p, "P-2026-04", [YES, YES, no, YES, YES])?;
        endorse_and_apply(c, p, "P-2026-04")
    });
    a.at(bj(5, 15, 10), "P-2026-04 审批 ¥45,000", |_, c, p| approve(c, p, "P-2026-04", 45_000));
    a.at(bj(5, 20, 10), "P-2026-04 首付款 ¥20,000", |_, c, p| {
        pay(c, p, "P-2026-04", 20_000, "BANK-20260520-004", "P-2026-04 施工合同及首付款发票")
    });
    a.at(bj(7, 15, 10), "P-2026-04 验收后付尾款 ¥22,800", |_, c, p| {
        pay(c, p, "P-2026-04", 22_800, "BANK-20260715-004", "P-2026-04 验收单及尾款发票")
    });
    a.at(bj(7, 20, 10), "P-2026-04 结项：结余 ¥2,200 释放", |_, c, p| {
        close(c, p, "P-2026-04", "工程验收合格，实际结算42,800元，比预算节约2,200元，结余释放回基金")
    });

    // P-2026-05: endorsed, but the host declines the application.
    a.at(bj(6, 2, 9), "提案 P-2026-05 社区文化节暨邻里节", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-05",
                title: "社区文化节暨邻里节",
                category: Activity,
                amount_yuan: 25_000,
                payee: "西湖街道社区居委会",
                description: "文艺汇演、邻里美食节和亲子游园，含礼品采购10,500元",
            },
        )
    });
    a.at(bj(6, 6, 19), "P-2026-05 居民意见征询", |s, c, p| {
        opinion(s, c, p, "P-2026-05", "线上问卷：支持举办，部分居民认为礼品开支偏高", 97, 12)
    });
    a.at(bj(6, 9, 19), "P-2026-05 表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-05", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-05")
    });
    a.at(bj(6, 17, 10), "P-2026-05 慈善总会不予批准", |_, c, p| {
        let reason = "预算中礼品采购占比超过40%，不符合慈善活动支出要求，请压缩后重新申报";
        p.post(
            &c.approver,
            EventBody::ProposalDeclined(ProposalDeclined { proposal: pid("P-2026-05"), reason: reason.into() }),
        )?;
        Ok(())
    });

    // P-2026-10: a garden asked of money that is restricted to the elderly: the host's
    // approval is refused by the rules (docs/design.md §1.6), then declined.
    a.at(bj(8, 25, 9), "提案 P-2026-10 社区花园与健身步道改造", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-10",
                title: "社区花园与健身步道改造",
                category: Renovation,
                amount_yuan: 300_000,
                payee: "西湖物业公司",
                description: "改造中心花园，铺设500米健身步道，增设休息座椅与照明",
            },
        )
    });
    a.at(bj(8, 28, 19), "P-2026-10 表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-10", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-10")
    });
    a.at(bj(9, 1, 10), "P-2026-10 审批被规则拒绝：助老定向捐款不得挪作他用", |_, c, p| {
        let f = p.fund_state();
        let unrestricted = f.unrestricted.cash.available()?;
        let restricted = f.pool(Some(ELDERLY)).cash.available()?;
        if !restricted.is_positive() {
            anyhow::bail!("the demo expects money restricted to {ELDERLY} on hand by September");
        }
        // More than the unrestricted money, less than all the fund holds.
        let ask = unrestricted.checked_add(Fen::new((restricted.fen() + 1) / 2)?)?;
        let body = EventBody::ProposalApproved(ProposalApproved { proposal: pid("P-2026-10"), amount_fen: ask });
        let refusal = p.refused(&c.approver, body)?;
        println!("    refused, as the rules require: {refusal}");
        let reason = format!("可用非限定资金不足，助老定向捐款不得挪作他用（{refusal}）");
        p.post(&c.approver, EventBody::ProposalDeclined(ProposalDeclined { proposal: pid("P-2026-10"), reason }))?;
        Ok(())
    });

    // P-2026-06: summer childcare.
    a.at(bj(6, 20, 9), "提案 P-2026-06 暑期儿童公益托管班", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-06",
                title: "暑期儿童公益托管班",
                category: Activity,
                amount_yuan: 18_000,
                payee: "启明课后托管",
                description: "为双职工家庭儿童开设6周公益托管班，含午餐和课程",
            },
        )
    });
    a.at(bj(6, 24, 19), "P-2026-06 家长意见征询", |s, c, p| {
        opinion(s, c, p, "P-2026-06", "家长问卷：报名意愿强烈", 88, 1)
    });
    a.at(bj(6, 26, 19), "P-2026-06 表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-06", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-06")
    });
    a.at(bj(7, 1, 10), "P-2026-06 审批 ¥18,000", |_, c, p| approve(c, p, "P-2026-06", 18_000));
    a.at(bj(7, 10, 10), "P-2026-06 拨付 ¥18,000", |_, c, p| {
        pay(c, p, "P-2026-06", 18_000, "BANK-20260710-006", "P-2026-06 托管班服务协议及发票")
    });
    a.at(bj(8, 31, 10), "P-2026-06 结项", |_, c, p| {
        close(c, p, "P-2026-06", "开班6周，服务双职工家庭儿童56名，家长满意度98%")
    });

    // Goods handed out before the festivals.
    a.at(bj(2, 12, 10), "春节前 物资慰问困难家庭", |s, c, p| {
        distribute(s, c, p, &[("大米", 20), ("食用油", 20), ("面粉", 20)], "春节慰问 困难家庭20户", None)
    });
    a.at(bj(9, 24, 10), "中秋节 物资慰问困难家庭", |s, c, p| {
        distribute(s, c, p, &[("食用油", 24), ("牛奶", 24), ("鸡蛋", 24)], "中秋节慰问 困难家庭24户", None)
    });

    // P-2026-07: 重阳节 visits, with goods.
    a.at(bj(9, 28, 9), "提案 P-2026-07 重阳节慰问独居老人", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-07",
                title: "重阳节慰问独居老人",
                category: Visit,
                amount_yuan: 12_000,
                payee: "西湖街道社区居委会",
                description: "重阳节走访独居、空巢老人32户，慰问金及体检券",
            },
        )
    });
    a.at(bj(10, 8, 19), "P-2026-07 表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-07", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-07")
    });
    a.at(bj(10, 12, 10), "P-2026-07 审批 ¥12,000", |_, c, p| approve(c, p, "P-2026-07", 12_000));
    a.at(bj(10, 16, 10), "P-2026-07 拨付 ¥12,000", |_, c, p| {
        pay(c, p, "P-2026-07", 12_000, "BANK-20261016-007", "P-2026-07 慰问金签收表")
    });
    a.at(bj(10, 18, 9), "重阳节 慰问独居老人 32户（物资）", |s, c, p| {
        distribute(s, c, p, &[("大米", 32), ("食用油", 32), ("牛奶", 32)], "重阳节慰问独居老人32户", Some("P-2026-07"))
    });
    a.at(bj(10, 30, 10), "P-2026-07 结项", |_, c, p| {
        close(c, p, "P-2026-07", "已走访独居老人32户，慰问金和物资全部发放")
    });

    // P-2026-08: winter heaters, first batch paid; still open at year end.
    a.at(bj(11, 16, 9), "提案 P-2026-08 冬季独居老人取暖设备", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-08",
                title: "冬季独居老人取暖设备",
                category: Visit,
                amount_yuan: 15_000,
                payee: "西湖街道社区居委会",
                description: "为独居老人配发电暖器和电热毯，分两批采购",
            },
        )
    });
    a.at(bj(11, 20, 19), "P-2026-08 居民意见征询", |s, c, p| {
        opinion(s, c, p, "P-2026-08", "入户走访：独居老人取暖需求迫切", 64, 0)
    });
    a.at(bj(11, 24, 19), "P-2026-08 表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-08", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-08")
    });
    a.at(bj(12, 1, 10), "P-2026-08 审批 ¥15,000", |_, c, p| approve(c, p, "P-2026-08", 15_000));
    a.at(bj(12, 8, 10), "P-2026-08 第一批采购 ¥9,000", |_, c, p| {
        pay(c, p, "P-2026-08", 9_000, "BANK-20261208-008", "P-2026-08 第一批电暖器采购发票")
    });
    a.at(bj(12, 20, 10), "冬至 物资发放被规则拒绝：助老定向物资须用于助老提案", |_, c, p| {
        // All the milk on hand, for no proposal: more than the unrestricted milk.
        let f = p.fund_state();
        let on_hand = f.goods.get("牛奶").and_then(|u| u.get("箱")).map_or(0, |s| s.quantity);
        if f.goods_usable("牛奶", "箱", None).other == 0 {
            anyhow::bail!("the demo expects milk restricted to {ELDERLY} in stock by December");
        }
        let body = EventBody::GoodsDistributed(GoodsDistributed {
            items: vec![GoodsOut { name: "牛奶".into(), quantity: on_hand, unit: "箱".into() }],
            purpose: "冬至送温暖 独居老人40户".into(),
            proposal: None,
            evidence: vec![doc("冬至送温暖 物资签收表")],
        });
        let refusal = p.refused(&c.proposer, body)?;
        println!("    refused, as the rules require: {refusal}");
        Ok(())
    });
    a.at(bj(12, 21, 10), "冬至 送温暖", |s, c, p| {
        distribute(s, c, p, &[("毛巾", 40), ("保温杯", 40), ("挂面", 20)], "冬至送温暖 独居老人40户", None)
    });

    // P-2026-09: management cost (counts toward the 13% cap).
    a.at(bj(12, 10, 9), "提案 P-2026-09 年度公示材料印制", |_, c, p| {
        submit(
            c,
            p,
            Plan {
                id: "P-2026-09",
                title: "年度信息公示材料印制",
                category: Management,
                amount_yuan: 2_400,
                payee: "西湖街道社区居委会",
                description: "季度公示栏海报及年度报告印制",
            },
        )
    });
    a.at(bj(12, 14, 19), "P-2026-09 表决（5票同意）并申报", |_, c, p| {
        votes(c, p, "P-2026-09", [YES; 5])?;
        endorse_and_apply(c, p, "P-2026-09")
    });
    a.at(bj(12, 18, 10), "P-2026-09 审批 ¥2,400", |_, c, p| approve(c, p, "P-2026-09", 2_400));
    a.at(bj(12, 22, 10), "P-2026-09 拨付 ¥2,400", |_, c, p| {
        pay(c, p, "P-2026-09", 2_400, "BANK-20261222-009", "P-2026-09 印刷发票")
    });
    a.at(bj(12, 28, 10), "P-2026-09 结项", |_, c, p| close(c, p, "P-2026-09", "公示材料已印制张贴"));
}

/// Hands out what is on hand of each good (up to the wanted number) that the distribution
/// may take — goods restricted to its proposal's purpose and unrestricted goods — in
/// whatever units it came in.
fn distribute(
    s: &mut Story,
    c: &Cast,
    p: &mut Player,
    wanted: &[(&str, u64)],
    purpose: &str,
    proposal: Option<&str>,
) -> Result<()> {
    let mut items = Vec::new();
    let f = p.fund_state();
    let serves = proposal.and_then(|id| f.proposals.get(&pid(id))).and_then(|x| x.purpose.as_deref());
    for (name, quantity) in wanted {
        let Some(units) = f.goods.get(*name) else { continue };
        for unit in units.keys() {
            // Only what the rules let this distribution take (docs/design.md §1.6, "Goods").
            let usable = f.goods_usable(name, unit, serves);
            let give = (*quantity).min(usable.restricted + usable.unrestricted);
            if give > 0 {
                items.push(GoodsOut { name: (*name).into(), quantity: give, unit: unit.clone() });
            }
        }
    }
    if items.is_empty() {
        return Ok(());
    }
    let evidence = vec![doc(&format!("{purpose} 物资签收表"))];
    let body = EventBody::GoodsDistributed(GoodsDistributed {
        items,
        purpose: purpose.into(),
        proposal: proposal.map(pid),
        evidence,
    });
    p.post(&c.proposer, body)?;
    s.out.distributions += 1;
    Ok(())
}

// ---------------------------------------------------------------------------
// disclosure and audit

fn reporting(a: &mut Agenda) {
    let quarters = [
        (bj(1, 1, 0), bj(4, 1, 0), bj(4, 10, 9), "2026年第一季度"),
        (bj(4, 1, 0), bj(7, 1, 0), bj(7, 10, 9), "2026年第二季度"),
        (bj(7, 1, 0), bj(10, 1, 0), bj(10, 10, 9), "2026年第三季度"),
        (bj(10, 1, 0), bj_in(YEAR + 1, 1, 1, 0), bj_in(YEAR + 1, 1, 10, 9), "2026年第四季度"),
    ];
    for (start, end, on, name) in quarters {
        a.at(on, format!("{name} 信息公示（收支总额与年度账目均与账面一致）"), move |s, c, p| {
            disclose(s, c, p, start, end, name)
        });
    }
    a.at(bj_in(YEAR + 1, 1, 20, 10), "2026年度审计意见：无保留意见", |_, c, p| {
        let body = EventBody::AuditOpinionRecorded(AuditOpinionRecorded {
            year: YEAR,
            opinion: AuditOpinionKind::Unqualified,
            summary: "基金2026年度收支真实、完整，捐赠票据和拨付凭证齐全，账实相符".into(),
            report: doc("西湖街道社区发展基金 2026年度专项审计报告"),
        });
        p.post(&c.auditor, body)?;
        Ok(())
    });
}

fn disclose(
    s: &mut Story,
    c: &Cast,
    p: &mut Player,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    name: &str,
) -> Result<()> {
    // Against a live server the whole year happens now: the period is the run so far.
    let (start, end) = if p.is_live() { (s.live_start, p.at()) } else { (start, end) };
    let body = EventBody::DisclosurePublished(DisclosurePublished {
        period_start: start,
        period_end: end,
        totals: p.totals(),
        report: doc(&format!("西湖街道社区发展基金 {name} 收支公示")),
        accounts: Some(Box::new(p.accounts_citation(&end))),
    });
    let member = &c.committee[4];
    p.post(member, body)?;
    s.out.disclosures += 1;
    Ok(())
}
