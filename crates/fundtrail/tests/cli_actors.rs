//! Each actor's command, run as the binary against a real `fundtrail serve` child
//! process: a fund set up from nothing with real keys, money in and out, the
//! refusals a user meets (with the server's own reason on stderr and a non-zero
//! exit), and a donor's receipt that `verify-receipt` accepts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fundtrail_testkit::serve::ServeProcess;
use fundtrail_testkit::web::{self, agent, get_json};
use serde_json::Value;

/// A `fundtrail serve` child with its private donor vault listener, and a
/// directory for the test's keys and files.
struct Server {
    _process: ServeProcess,
    url: String,
    /// The private donor vault's listener.
    vault: String,
    /// Its bearer token file, and the token.
    vault_token: (std::path::PathBuf, String),
    dir: tempfile::TempDir,
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_fundtrail"));
    let process = ServeProcess::start_with_private(binary, &dir.path().join("server"), &[]);
    let (url, vault) = (process.url.clone(), process.private_url.clone().expect("a private listener"));
    let vault_token = process.private_token.clone().expect("a private token");
    Server { _process: process, url, vault, vault_token, dir }
}

fn get_text(url: &str) -> String {
    web::get_text(url).unwrap_or_else(|| panic!("GET {url} did not answer 200"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A test's world: the server, a directory of keys, and the fund id.
struct World {
    server: Server,
    keys: PathBuf,
    receipts: PathBuf,
}

const FUND: &str = "xihu-test";

impl World {
    fn new() -> World {
        let server = start_server();
        let keys = server.dir.path().join("keys");
        let receipts = server.dir.path().join("receipts");
        std::fs::create_dir_all(&keys).unwrap();
        World { server, keys, receipts }
    }

    fn key(&self, name: &str) -> PathBuf {
        self.keys.join(format!("{name}.key"))
    }

    /// Runs `fundtrail ARGS` against the server (FUNDTRAIL_SERVER is how scripts set it).
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_fundtrail"))
            .args(args)
            .env("FUNDTRAIL_SERVER", &self.server.url)
            .env_remove("FUNDTRAIL_KEY")
            .env_remove("FUNDTRAIL_FUND")
            .env("FUNDTRAIL_RECEIPT_DIR", &self.receipts)
            .output()
            .expect("run fundtrail")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "fundtrail {args:?} failed:\n{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// The command must fail, and say why on stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "fundtrail {args:?} should have been refused:\n{}", stdout(&out));
        assert!(stdout(&out).is_empty(), "a refusal prints nothing on stdout: {}", stdout(&out));
        stderr(&out)
    }

    /// `as_key` signs an event in the fund.
    fn act(&self, as_key: &str, args: &[&str]) -> String {
        let key = self.key(as_key);
        let mut all = args.to_vec();
        all.extend(["--key", s(&key), "--fund", FUND]);
        self.ok(&all)
    }

    fn act_json(&self, as_key: &str, args: &[&str]) -> Value {
        let key = self.key(as_key);
        let mut all = args.to_vec();
        all.extend(["--key", s(&key), "--fund", FUND]);
        self.ok_json(&all)
    }

    fn act_refused(&self, as_key: &str, args: &[&str]) -> String {
        let key = self.key(as_key);
        let mut all = args.to_vec();
        all.extend(["--key", s(&key), "--fund", FUND]);
        self.refused(&all)
    }

    fn fund(&self) -> Value {
        get_json(&format!("{}/v1/funds/{FUND}", self.server.url))
    }

    /// Keys, genesis, the fund, roles and a committee of three — all through the CLI.
    fn set_up(&self) {
        let people = ["host", "intake", "proposer", "m1", "m2", "m3", "approver", "treasurer"];
        for name in people {
            self.ok(&["keys", "new", "--out", s(&self.key(name))]);
        }
        let host = self.key("host");
        let out = self.ok(&["host-init", "--name", "某市慈善总会", "--key", s(&host)]);
        assert!(out.contains("host.established"), "{out}");
        let labels = [
            ("intake", "收款服务"),
            ("proposer", "西湖社区党委"),
            ("m1", "委员 甲"),
            ("m2", "委员 乙"),
            ("m3", "委员 丙"),
            ("approver", "慈善总会审批"),
            ("treasurer", "慈善总会财务"),
        ];
        for (name, label) in labels {
            let out = self.ok(&["key-enrol", "--key-file", s(&self.key(name)), "--label", label, "--key", s(&host)]);
            assert!(out.contains("key.enrolled") && out.contains(label), "{out}");
        }
        let agreement = self.server.dir.path().join("agreement.pdf");
        std::fs::write(&agreement, "合作协议").unwrap();
        let out = self.act(
            "host",
            &["fund-open", "--name", "西湖街道社区发展基金", "--community", "西湖街道", "--agreement", s(&agreement)],
        );
        assert!(out.contains("fund.opened"), "{out}");
        let roles = [
            ("intake", "intake"),
            ("proposer", "proposer"),
            ("m1", "committee_member"),
            ("m2", "committee_member"),
            ("m3", "committee_member"),
            ("approver", "host_approver"),
            ("treasurer", "host_treasurer"),
        ];
        for (name, role) in roles {
            self.act("host", &["role-grant", "--to", s(&self.key(name)), "--role", role]);
        }
        let minutes = "ab".repeat(32);
        self.act(
            "host",
            &[
                "committee-seat",
                "--member",
                s(&self.key("m1")),
                "--member",
                s(&self.key("m2")),
                "--member",
                s(&self.key("m3")),
                "--minutes",
                &minutes,
            ],
        );
        // The host declares what gifts may be restricted to (docs/design.md §1.6).
        self.act("host", &["purpose-declare", "--purpose", "重阳节慰问", "--description", "重阳节慰问独居老人"]);
    }
}

#[test]
fn a_fund_from_nothing_money_in_and_out_with_refusals() {
    let w = World::new();
    w.set_up();

    // A second genesis is refused with the server's reason, and a non-zero exit.
    let err = w.refused(&["host-init", "--name", "另一个慈善会", "--key", s(&w.key("host"))]);
    assert!(err.contains("already established"), "{err}");
    assert!(err.contains("(HTTP 409"), "the status is shown: {err}");

    // A pledge and a cash donation against it; the donor's reference stays local.
    let pledge = w.act_json(
        "intake",
        &[
            "pledge",
            "--pledge",
            "PL-2026-01",
            "--channel",
            "space_for_service",
            "--amount",
            "36000",
            "--terms",
            "2026年度 营业利润的5%",
            "--donor-ref",
            "DEMO-P-01",
        ],
    );
    assert_eq!(pledge["type"], "pledge.recorded");
    let out = w.act(
        "intake",
        &[
            "donate",
            "--amount",
            "1234.56",
            "--channel",
            "space_for_service",
            "--pledge",
            "PL-2026-01",
            "--payment-ref",
            "BANK-202601-P01",
            "--donor-ref",
            "DEMO-P-01",
        ],
    );
    assert!(out.contains("¥1,234.56"), "amounts are shown in yuan: {out}");
    let gift = w.act_json(
        "intake",
        &[
            "donate",
            "--amount",
            "520",
            "--payment-ref",
            "WX-0001",
            "--donor-ref",
            "DEMO-R-0001",
            "--purpose",
            "重阳节慰问",
            "--qr",
            s(&w.server.dir.path().join("gift.png")),
        ],
    );
    assert_eq!(gift["type"], "donation.received");
    assert_eq!(gift["duplicate"], false);
    let gift_id = gift["id"].as_str().unwrap().to_owned();
    // The QR code on the donor's slip opens the portal's "My donation" page, with no
    // personal data unless asked for.
    let link = gift["receipt_link"].as_str().unwrap().to_owned();
    let prefix = format!("{}/#/my/{}/", w.server.url, gift["ledger_index"]);
    assert!(link.starts_with(&prefix) && link.len() == prefix.len() + 43, "{link}");
    assert_eq!(scan_png(&w.server.dir.path().join("gift.png")), (link.clone(), gift["qr_modules"].as_u64().unwrap()));
    let donor_file = PathBuf::from(gift["donor_file"].as_str().unwrap());
    let donor_text = std::fs::read_to_string(&donor_file).unwrap();
    assert!(donor_text.contains("DEMO-R-0001") && donor_text.contains("\"salt\""), "{donor_text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&donor_file).unwrap().permissions().mode() & 0o777, 0o600);
    let event = get_text(&format!("{}/v1/events/{gift_id}", w.server.url));
    assert!(!event.contains("DEMO-R-0001"), "the donor reference never reaches the server");

    // With --vault, name and contact go to the private donor vault, never the stream; and can be erased.
    let vault = w.server.vault.clone();
    let named = w.act_json(
        "intake",
        &[
            "donate",
            "--amount",
            "88",
            "--payment-ref",
            "WX-0002",
            "--donor-ref",
            "13800000002",
            "--vault",
            &vault,
            "--vault-token-file",
            s(&w.server.vault_token.0),
            "--donor-name",
            "王小明",
            "--donor-contact",
            "13800000002",
        ],
    );
    let commitment = named["donor_commitment"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {}", w.server.vault_token.1);
    let private_get = |url: String| -> (u16, String) {
        let mut answer = agent().get(&url).header("Authorization", &bearer).call().unwrap();
        (answer.status().as_u16(), answer.body_mut().read_to_string().unwrap())
    };
    let record_url = format!("{vault}/private/v1/donors/{commitment}");
    assert_eq!(agent().get(&record_url).call().unwrap().status(), 401, "no token, no donor");
    let (status, record) = private_get(record_url.clone());
    assert_eq!(status, 200);
    assert!(record.contains("王小明"), "{record}");
    let public = get_text(&format!("{}/v1/events/{}", w.server.url, named["id"].as_str().unwrap()));
    assert!(!public.contains("王小明") && !public.contains("13800000002"), "{public}");
    let erased = agent().delete(&record_url).header("Authorization", &bearer).call().unwrap();
    assert_eq!(erased.status(), 200);
    let (_, record) = private_get(record_url.clone());
    assert!(!record.contains("王小明"), "{record}");
    assert!(get_text(&format!("{}/ledger/vkey", w.server.url)).contains("+"), "the public side still serves");
    assert!(agent().get(format!("{}/private/v1/donors/{commitment}", w.server.url)).call().unwrap().status() == 404);

    // Amounts are parsed exactly or refused before anything is signed.
    for (bad, why) in [("1.234", "at most 2 decimals"), ("-5", "never negative"), ("1e3", "not an amount")] {
        let amount = format!("--amount={bad}");
        let err = w.act_refused("intake", &["donate", &amount, "--payment-ref", "X", "--donor-ref", "D"]);
        assert!(err.contains(why), "{bad}: {err}");
    }

    // Goods in kind.
    let out = w.act(
        "intake",
        &[
            "donate-goods",
            "--item",
            "大米:20:袋:60.00",
            "--item",
            "食用油:10:桶:75",
            "--channel",
            "neighbourhood_market",
            "--donor-ref",
            "DEMO-M-001",
        ],
    );
    assert!(out.contains("goods.received") && out.contains("¥1,950.00"), "{out}");

    // Only an intake key records donations.
    let err = w.act_refused("proposer", &["donate", "--amount", "1", "--payment-ref", "X", "--donor-ref", "D"]);
    assert!(err.contains("not authorised") || err.contains("may not") || err.contains("403"), "{err}");

    // A proposal: opinions, votes with a recusal, endorsement, application, approval.
    w.act(
        "proposer",
        &[
            "propose",
            "--proposal",
            "P-2026-01",
            "--title",
            "楼道照明改造",
            "--category",
            "renovation",
            "--amount",
            "1000",
            "--payee",
            "西湖物业公司",
            "--description",
            "更换老旧楼道灯",
        ],
    );
    w.act(
        "proposer",
        &["opinion", "--proposal", "P-2026-01", "--summary", "居民普遍支持", "--support", "40", "--oppose", "2"],
    );
    // Approval before any vote: the host may approve only what the committee endorsed.
    let err = w.act_refused("approver", &["approve", "--proposal", "P-2026-01", "--amount", "1000"]);
    assert!(err.contains("P-2026-01"), "{err}");
    w.act("m1", &["vote", "--proposal", "P-2026-01", "approve", "--reason", "同意"]);
    w.act("m2", &["vote", "--proposal", "P-2026-01", "approve", "--reason", "同意"]);
    w.act("m3", &["vote", "--proposal", "P-2026-01", "recuse", "--reason", "本人与物业公司有利益关系"]);
    let err = w.act_refused("m1", &["vote", "--proposal", "P-2026-01", "reject", "--reason", "改主意"]);
    assert!(err.contains("P-2026-01"), "a member votes once: {err}");
    w.act("m1", &["endorse", "--proposal", "P-2026-01", "--minutes", &"cd".repeat(32)]);
    w.act("proposer", &["apply", "--proposal", "P-2026-01"]);
    let out = w.act("approver", &["approve", "--proposal", "P-2026-01", "--amount", "1000"]);
    assert!(out.contains("¥1,000.00"), "{out}");
    assert_eq!(w.fund()["cash"]["reserved_fen"], 100_000);

    // Paying more than approved is refused with the rule's own words.
    let err =
        w.act_refused("treasurer", &["pay", "--proposal", "P-2026-01", "--amount", "1200", "--payment-ref", "BANK-1"]);
    assert!(err.contains("exceeds approved remainder"), "{err}");
    assert!(err.contains("¥1,200.00") && err.contains("¥1,000.00"), "{err}");
    w.act("treasurer", &["pay", "--proposal", "P-2026-01", "--amount", "600", "--payment-ref", "BANK-1"]);
    w.act("treasurer", &["pay", "--proposal", "P-2026-01", "--amount", "350.50", "--payment-ref", "BANK-2"]);
    w.act("proposer", &["close", "--proposal", "P-2026-01", "--report", "验收合格，结余释放"]);
    let cash = &w.fund()["cash"];
    assert_eq!(cash["paid_fen"], 95_050);
    assert_eq!(cash["reserved_fen"], 0, "closing released the rest");

    // Official receipt issued, voided, reissued.
    w.act("treasurer", &["issue-receipt", "--donation", &gift_id, "--number", "3301022600101"]);
    let err = w.act_refused("treasurer", &["issue-receipt", "--donation", &gift_id, "--number", "3301022600102"]);
    assert!(err.contains("3301022600101"), "{err}");
    w.act("treasurer", &["void-receipt", "--donation", &gift_id, "--number", "3301022600101", "--reason", "抬头有误"]);
    w.act("treasurer", &["issue-receipt", "--donation", &gift_id, "--number", "3301022600102"]);

    // Goods out; more than on hand is refused.
    w.act("proposer", &["distribute", "--item", "大米:5:袋", "--purpose", "重阳节 慰问独居老人 5户"]);
    let err = w.act_refused("proposer", &["distribute", "--item", "大米:50:袋", "--purpose", "太多"]);
    assert!(err.contains("大米"), "{err}");

    // A disclosure states the fund's current figures, read from the server.
    let out = w.act("m1", &["disclose", "--from", "2026-01-01T00:00:00+08:00", "--report", &"ef".repeat(32)]);
    assert!(out.contains("disclosure.published"), "{out}");
    assert!(out.contains("(year to date at publication)") && out.contains("net assets"), "cites the accounts: {out}");
    let received = w.fund()["cash"]["received_fen"].as_i64().unwrap();
    assert_eq!(received, 123_456 + 52_000 + 8_800);

    // The donor's receipt, with the salt, verifies offline and against the ledger.
    let png = w.server.dir.path().join("receipt.png");
    let receipt =
        w.ok_json(&["receipt", &gift_id, "--qr", s(&png), "--qr-include-ref", "--portal", "https://p.example/"]);
    assert_eq!(receipt["salt_included"], true);
    assert_eq!(receipt["receipt_link"], format!("https://p.example{}/DEMO-R-0001", &link[w.server.url.len()..]));
    let (scanned, modules) = scan_png(&png);
    assert_eq!(scanned, receipt["receipt_link"].as_str().unwrap());
    assert!(modules <= 41, "at most version 6: {modules} modules");
    let terminal = w.ok(&["receipt", &gift_id, "--qr-terminal"]);
    assert!(terminal.contains(&link) && terminal.contains('▀'), "{terminal}");
    let proof = receipt["receipt"].as_str().unwrap().to_owned();
    let entry = receipt["entry"].as_str().unwrap().to_owned();
    assert!(std::fs::read_to_string(&proof).unwrap().lines().nth(1).unwrap().starts_with("extra "));
    let vkey = get_text(&format!("{}/ledger/vkey", w.server.url)).trim().to_owned();
    let ledger = format!("{}/ledger", w.server.url);
    let out = w.ok(&[
        "verify-receipt",
        &proof,
        "--entry",
        &entry,
        "--donor",
        "DEMO-R-0001",
        "--vkey",
        &vkey,
        "--ledger",
        &ledger,
    ]);
    assert!(out.contains("this donation is yours"), "{out}");
    let out = w.run(&["verify-receipt", &proof, "--entry", &entry, "--donor", "DEMO-R-9999", "--vkey", &vkey]);
    assert!(!out.status.success(), "someone else's reference does not open the commitment");
}

/// Reads a QR code back from a PNG with an independent decoder: (text, modules a side).
fn scan_png(path: &Path) -> (String, u64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {}", path.display());
    let (meta, text) = grids[0].decode().expect("the QR code decodes");
    assert_eq!(meta.ecc_level, 0, "error correction M");
    (text, 17 + 4 * meta.version.0 as u64)
}

#[test]
fn errors_name_the_cause() {
    let w = World::new();
    // Nothing listens on a freshly freed port.
    let dead = format!("http://127.0.0.1:{}", fundtrail_testkit::free_port().unwrap());
    std::fs::create_dir_all(&w.keys).unwrap();
    w.ok(&["keys", "new", "--out", s(&w.key("host"))]);
    let out = w.run(&["host-init", "--name", "某市慈善总会", "--key", s(&w.key("host")), "--server", &dead]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no answer") || stderr(&out).contains("cannot reach"), "{}", stderr(&out));

    // No such key file.
    let err = w.refused(&["host-init", "--name", "x", "--key", "/no/such.key"]);
    assert!(err.contains("/no/such.key"), "{err}");

    // A fund event before there is a host: the rule's words, not a stack trace.
    w.ok(&["keys", "new", "--out", s(&w.key("intake"))]);
    let err = w.act_refused("intake", &["donate", "--amount", "10", "--payment-ref", "X", "--donor-ref", "D"]);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("donation.received"), "the refused event is named: {err}");
    assert!(
        !w.receipts.exists() || std::fs::read_dir(&w.receipts).unwrap().next().is_none(),
        "no donor file is kept for a refused gift"
    );
}
