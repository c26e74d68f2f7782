//! Witness policies in the C2SP tlog-policy format (the Sigsum policy format): which
//! logs are trusted, which witnesses, and the quorum of cosignatures a checkpoint needs.
//!
//! ```text
//! log fundtrail.example/ledger+1a2b3c4d+AQ…              [url]
//! witness street   street.example/w+5e6f7a8b+BA…         [url]
//! witness bureau   bureau.example/w+9c0d1e2f+BA…
//! witness paper    paper.example/w+3a4b5c6d+BA…
//! group local 2 street bureau paper
//! quorum local
//! ```
//!
//! Parsing (C2SP tlog-policy §Policy file syntax and structure) refuses each broken rule
//! with its own [`PolicyError`] and the line it is on. Evaluating
//! ([`Policy::verify_checkpoint`]) checks the log's signature, every cosignature by a
//! listed witness (one that does not verify refuses the note, as C2SP signed-note
//! requires), then the quorum; when it is not met the error names the witnesses that
//! cosigned and those missing.

use std::collections::BTreeSet;
use std::fmt;

use crate::checkpoint::Checkpoint;
use crate::note::{verify_cosigned_checkpoint, Cosignature, KeyError, LogVerifier, NoteError, WitnessVerifier};
use thiserror::Error;

/// Largest policy file accepted, in bytes.
pub const POLICY_SIZE_MAX: usize = 64 * 1024;
/// Most logs in one policy (C2SP tlog-policy recommends supporting at least 32).
pub const POLICY_LOGS_MAX: usize = 32;
/// Most witnesses in one policy.
pub const POLICY_WITNESSES_MAX: usize = 64;
/// Most groups in one policy.
pub const POLICY_GROUPS_MAX: usize = 64;

/// The predefined name of the empty quorum (`quorum none`).
const NONE: &str = "none";

/// Why a policy file was refused. `line` counts from 1.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error("policy: {size} bytes exceeds the maximum of {POLICY_SIZE_MAX}")]
    TooLarge { size: usize },
    #[error("policy: not valid UTF-8")]
    NotUtf8,
    #[error("policy line {line}: control character (only tab and newline are allowed)")]
    ControlCharacter { line: usize },
    #[error("policy line {line}: unknown keyword {word:?} (expected log, witness, group or quorum)")]
    UnknownKeyword { line: usize, word: String },
    #[error("policy line {line}: {keyword} needs {expected}")]
    MissingArgument { line: usize, keyword: &'static str, expected: &'static str },
    #[error("policy line {line}: {keyword} has {found} arguments, expected {expected}")]
    TooManyArguments { line: usize, keyword: &'static str, found: usize, expected: &'static str },
    #[error("policy line {line}: log key: {source}")]
    LogKey {
        line: usize,
        #[source]
        source: KeyError,
    },
    #[error("policy line {line}: witness {name}: {source}")]
    WitnessKey {
        line: usize,
        name: String,
        #[source]
        source: KeyError,
    },
    #[error("policy line {line}: log {name} is listed twice (same public key as line {first_line})")]
    DuplicateLog { line: usize, name: String, first_line: usize },
    #[error("policy line {line}: witness {name} has the same public key as witness {other}")]
    DuplicateWitnessKey { line: usize, name: String, other: String },
    #[error("policy line {line}: the name {name:?} is already defined on line {first_line}")]
    NameTaken { line: usize, name: String, first_line: usize },
    #[error("policy line {line}: \"none\" is predefined and cannot be defined or be a group member")]
    NameReserved { line: usize },
    #[error("policy line {line}: {name:?} is not a witness or group defined on an earlier line")]
    UnknownName { line: usize, name: String },
    #[error("policy line {line}: group {group} lists {name} twice")]
    DuplicateMember { line: usize, group: String, name: String },
    #[error("policy line {line}: group {group}: threshold {text:?} must be all, any or a number 1..={members}")]
    BadThreshold { line: usize, group: String, text: String, members: usize },
    #[error("policy line {line}: a second quorum line (the first is on line {first_line})")]
    SecondQuorum { line: usize, first_line: usize },
    #[error("policy: no quorum line (write `quorum none` to require no cosignature)")]
    NoQuorum,
    #[error("policy line {line}: more than {max} {what}")]
    TooMany { line: usize, what: &'static str, max: usize },
}

/// Why a checkpoint does not satisfy a policy.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyCheckError {
    #[error("checkpoint of log {origin:?}: the policy lists no log of that name")]
    UnknownLog { origin: String },
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(
        "checkpoint {origin} size {size} lacks the witness quorum {quorum}: cosigned by {}; missing {}",
        list_or_none(.signed),
        list_or_none(.missing)
    )]
    QuorumNotMet { origin: String, size: u64, quorum: String, signed: Vec<String>, missing: Vec<String> },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A log the policy trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    pub verifier: LogVerifier,
    pub url: Option<String>,
}

/// A witness the policy knows, by its policy-local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    pub name: String,
    pub verifier: WitnessVerifier,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    /// The threshold as written (`all`, `any` or a number), to print the policy back.
    written: String,
    threshold: usize,
    members: Vec<Member>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quorum {
    None,
    Of(Member),
}

/// A parsed policy. Build one with [`Policy::parse`] or [`Policy::threshold`]; print it
/// back with `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    quorum: Quorum,
}

/// A checkpoint that satisfies the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub checkpoint: Checkpoint,
    /// Policy names of the witnesses whose cosignature verified, with it.
    pub cosigned_by: Vec<(String, Cosignature)>,
    /// Policy names of the listed witnesses that did not cosign.
    pub missing: Vec<String>,
    /// The quorum rule, as in the policy (`none`, a witness or a group name).
    pub quorum: String,
}

/// Where a name was defined, for errors.
struct Names<'a> {
    defined: Vec<(&'a str, usize, Member)>,
}

impl<'a> Names<'a> {
    fn define(&mut self, name: &'a str, line: usize, member: Member) -> Result<(), PolicyError> {
        if name == NONE {
            return Err(PolicyError::NameReserved { line });
        }
        if let Some((_, first_line, _)) = self.defined.iter().find(|(n, _, _)| *n == name) {
            return Err(PolicyError::NameTaken { line, name: name.to_string(), first_line: *first_line });
        }
        self.defined.push((name, line, member));
        Ok(())
    }

    fn lookup(&self, name: &str, line: usize) -> Result<Member, PolicyError> {
        if name == NONE {
            return Err(PolicyError::NameReserved { line });
        }
        let found = self.defined.iter().find(|(n, _, _)| *n == name).map(|(_, _, m)| *m);
        found.ok_or_else(|| PolicyError::UnknownName { line, name: name.to_string() })
    }
}

impl Policy {
    /// Parses a policy file (C2SP tlog-policy).
    pub fn parse(text: &[u8]) -> Result<Policy, PolicyError> {
        if text.len() > POLICY_SIZE_MAX {
            return Err(PolicyError::TooLarge { size: text.len() });
        }
        let text = std::str::from_utf8(text).map_err(|_| PolicyError::NotUtf8)?;
        let mut policy = Policy { logs: Vec::new(), witnesses: Vec::new(), groups: Vec::new(), quorum: Quorum::None };
        let mut names = Names { defined: Vec::new() };
        let mut log_lines = Vec::new();
        let mut quorum_line = None;
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            if raw.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(PolicyError::ControlCharacter { line });
            }
            // Items are separated by ASCII spaces and tabs only (not other Unicode spaces).
            let words: Vec<&str> = raw.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            let Some((&keyword, args)) = words.split_first() else { continue };
            if keyword.starts_with('#') {
                continue;
            }
            match keyword {
                "log" => policy.parse_log(line, args, &mut log_lines)?,
                "witness" => policy.parse_witness(line, args, &mut names)?,
                "group" => policy.parse_group(line, args, &mut names)?,
                "quorum" => {
                    if let Some(first_line) = quorum_line {
                        return Err(PolicyError::SecondQuorum { line, first_line });
                    }
                    let [name] = args else {
                        return Err(arity(line, "quorum", args.len(), "1 (a witness or group name, or none)"));
                    };
                    policy.quorum = if *name == NONE { Quorum::None } else { Quorum::Of(names.lookup(name, line)?) };
                    quorum_line = Some(line);
                }
                other => return Err(PolicyError::UnknownKeyword { line, word: quote(other) }),
            }
        }
        if quorum_line.is_none() {
            return Err(PolicyError::NoQuorum);
        }
        debug_assert_eq!(log_lines.len(), policy.logs.len());
        Ok(policy)
    }

    fn parse_log(&mut self, line: usize, args: &[&str], log_lines: &mut Vec<usize>) -> Result<(), PolicyError> {
        let (vkey, url) = match args {
            [vkey] => (vkey, None),
            [vkey, url] => (vkey, Some(url.to_string())),
            _ => return Err(arity(line, "log", args.len(), "1 or 2 (<vkey> [<url>])")),
        };
        let verifier = LogVerifier::from_vkey(vkey).map_err(|source| PolicyError::LogKey { line, source })?;
        if let Some(i) = self.logs.iter().position(|l| l.verifier.public_key() == verifier.public_key()) {
            return Err(PolicyError::DuplicateLog {
                line,
                name: verifier.name().to_string(),
                first_line: log_lines[i],
            });
        }
        if self.logs.len() == POLICY_LOGS_MAX {
            return Err(PolicyError::TooMany { line, what: "logs", max: POLICY_LOGS_MAX });
        }
        self.logs.push(PolicyLog { verifier, url });
        log_lines.push(line);
        Ok(())
    }

    fn parse_witness<'a>(&mut self, line: usize, args: &[&'a str], names: &mut Names<'a>) -> Result<(), PolicyError> {
        let (name, vkey, url) = match args {
            [] | [_] => return Err(missing(line, "witness", "a name and a vkey (<name> <vkey> [<url>])")),
            [name, vkey] => (name, vkey, None),
            [name, vkey, url] => (name, vkey, Some(url.to_string())),
            _ => return Err(arity(line, "witness", args.len(), "2 or 3 (<name> <vkey> [<url>])")),
        };
        let verifier = WitnessVerifier::from_vkey(vkey).map_err(|source| PolicyError::WitnessKey {
            line,
            name: name.to_string(),
            source,
        })?;
        if let Some(other) = self.witnesses.iter().find(|w| w.verifier.public_key() == verifier.public_key()) {
            return Err(PolicyError::DuplicateWitnessKey { line, name: name.to_string(), other: other.name.clone() });
        }
        if self.witnesses.len() == POLICY_WITNESSES_MAX {
            return Err(PolicyError::TooMany { line, what: "witnesses", max: POLICY_WITNESSES_MAX });
        }
        names.define(name, line, Member::Witness(self.witnesses.len()))?;
        self.witnesses.push(PolicyWitness { name: name.to_string(), verifier, url });
        Ok(())
    }

    fn parse_group<'a>(&mut self, line: usize, args: &[&'a str], names: &mut Names<'a>) -> Result<(), PolicyError> {
        let [name, threshold, member_names @ ..] = args else {
            return Err(missing(line, "group", "a name, a threshold and members (<name> all|any|<k> <name>...)"));
        };
        if member_names.is_empty() {
            return Err(missing(line, "group", "at least one member"));
        }
        let mut members = Vec::with_capacity(member_names.len());
        for member in member_names.iter() {
            let found = names.lookup(member, line)?;
            if members.contains(&found) {
                return Err(PolicyError::DuplicateMember { line, group: name.to_string(), name: member.to_string() });
            }
            members.push(found);
        }
        let n = members.len();
        let bad = || PolicyError::BadThreshold { line, group: name.to_string(), text: quote(threshold), members: n };
        let k = match *threshold {
            "all" => n,
            "any" => 1,
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse::<usize>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if !(1..=n).contains(&k) {
            return Err(bad());
        }
        if self.groups.len() == POLICY_GROUPS_MAX {
            return Err(PolicyError::TooMany { line, what: "groups", max: POLICY_GROUPS_MAX });
        }
        names.define(name, line, Member::Group(self.groups.len()))?;
        self.groups.push(Group { name: name.to_string(), written: threshold.to_string(), threshold: k, members });
        Ok(())
    }

    /// The policy of one log and `k` of the given witnesses (what `fundtrail serve
    /// --witness … --witness-quorum K` means), named `w1`, `w2`, … in order.
    pub fn threshold(
        log: LogVerifier,
        witnesses: Vec<(WitnessVerifier, Option<String>)>,
        k: usize,
    ) -> Result<Policy, PolicyError> {
        let mut text = format!("log {}\n", log.vkey());
        for (i, (verifier, url)) in witnesses.iter().enumerate() {
            let url = url.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
            text.push_str(&format!("witness w{} {}{url}\n", i + 1, verifier.vkey()));
        }
        if k == 0 {
            text.push_str("quorum none\n");
        } else {
            let names: Vec<String> = (1..=witnesses.len()).map(|i| format!("w{i}")).collect();
            text.push_str(&format!("group quorum {k} {}\nquorum quorum\n", names.join(" ")));
        }
        Policy::parse(text.as_bytes())
    }

    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The log of this origin, when the policy lists one.
    pub fn log(&self, origin: &str) -> Option<&LogVerifier> {
        self.logs.iter().map(|l| &l.verifier).find(|v| v.name() == origin)
    }

    /// The quorum rule's name: `none`, a witness or a group.
    pub fn quorum_name(&self) -> &str {
        match self.quorum {
            Quorum::None => NONE,
            Quorum::Of(member) => self.member_name(member),
        }
    }

    fn member_name(&self, member: Member) -> &str {
        match member {
            Member::Witness(i) => &self.witnesses[i].name,
            Member::Group(i) => &self.groups[i].name,
        }
    }

    /// Verifies a signed checkpoint against the policy: a listed log's signature, the
    /// cosignatures of listed witnesses (one that does not verify refuses the note),
    /// then the quorum.
    pub fn verify_checkpoint(&self, note: &[u8]) -> Result<Witnessed, PolicyCheckError> {
        let origin = note.split(|&b| b == b'\n').next().map(String::from_utf8_lossy).unwrap_or_default();
        let logs: Vec<&LogVerifier> = self.logs.iter().map(|l| &l.verifier).filter(|v| v.name() == origin).collect();
        let verifiers: Vec<WitnessVerifier> = self.witnesses.iter().map(|w| w.verifier.clone()).collect();
        let mut outcome = Err(PolicyCheckError::UnknownLog { origin: origin.to_string() });
        // Several keys of one log (a rotation): the first that signed the note.
        for log in logs {
            outcome = verify_cosigned_checkpoint(note, log, &verifiers).map_err(PolicyCheckError::Note);
            if outcome.is_ok() {
                break;
            }
        }
        let (checkpoint, cosignatures) = outcome?;
        let cosigned: Vec<bool> = self
            .witnesses
            .iter()
            .map(|w| cosignatures.iter().any(|c| c.name == w.verifier.name() && c.key_id == w.verifier.key_id()))
            .collect();
        let cosigned_by: Vec<(String, Cosignature)> = self
            .witnesses
            .iter()
            .filter_map(|w| {
                let c = cosignatures.iter().find(|c| c.name == w.verifier.name() && c.key_id == w.verifier.key_id());
                c.map(|c| (w.name.clone(), c.clone()))
            })
            .collect();
        let missing: Vec<String> =
            self.witnesses.iter().zip(&cosigned).filter(|(_, c)| !**c).map(|(w, _)| w.name.clone()).collect();
        let quorum = self.quorum_name().to_string();
        if !self.quorum_met(&cosigned) {
            let relevant = self.quorum_witnesses();
            let signed = cosigned_by.iter().map(|(n, _)| n.clone()).collect();
            let missing = missing.into_iter().filter(|n| relevant.contains(n.as_str())).collect();
            return Err(PolicyCheckError::QuorumNotMet {
                origin: checkpoint.origin,
                size: checkpoint.size,
                quorum,
                signed,
                missing,
            });
        }
        Ok(Witnessed { checkpoint, cosigned_by, missing, quorum })
    }

    /// Whether the witnesses marked in `cosigned` (by index) satisfy the quorum. Groups
    /// only name earlier groups, so one pass in order evaluates them all.
    fn quorum_met(&self, cosigned: &[bool]) -> bool {
        assert_eq!(cosigned.len(), self.witnesses.len());
        let mut groups_met = Vec::with_capacity(self.groups.len());
        for group in &self.groups {
            let met = |m: &Member| match *m {
                Member::Witness(i) => cosigned[i],
                Member::Group(i) => groups_met[i],
            };
            let count = group.members.iter().filter(|m| met(m)).count();
            groups_met.push(count >= group.threshold);
        }
        match self.quorum {
            Quorum::None => true,
            Quorum::Of(Member::Witness(i)) => cosigned[i],
            Quorum::Of(Member::Group(i)) => groups_met[i],
        }
    }

    /// Names of the witnesses that can count towards the quorum.
    fn quorum_witnesses(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<Member> = match self.quorum {
            Quorum::None => Vec::new(),
            Quorum::Of(member) => vec![member],
        };
        while let Some(member) = todo.pop() {
            match member {
                Member::Witness(i) => {
                    out.insert(self.witnesses[i].name.as_str());
                }
                Member::Group(i) => todo.extend(&self.groups[i].members),
            }
        }
        out
    }
}

impl fmt::Display for Policy {
    /// The policy as a file, in C2SP tlog-policy syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for log in &self.logs {
            write!(f, "log {}", log.verifier.vkey())?;
            writeln!(f, "{}", log.url.as_deref().map(|u| format!(" {u}")).unwrap_or_default())?;
        }
        for w in &self.witnesses {
            write!(f, "witness {} {}", w.name, w.verifier.vkey())?;
            writeln!(f, "{}", w.url.as_deref().map(|u| format!(" {u}")).unwrap_or_default())?;
        }
        for g in &self.groups {
            let members: Vec<&str> = g.members.iter().map(|m| self.member_name(*m)).collect();
            writeln!(f, "group {} {} {}", g.name, g.written, members.join(" "))?;
        }
        writeln!(f, "quorum {}", self.quorum_name())
    }
}

fn quote(word: &str) -> String {
    const QUOTE_CHARS_MAX: usize = 40;
    word.chars().take(QUOTE_CHARS_MAX).collect()
}

fn missing(line: usize, keyword: &'static str, expected: &'static str) -> PolicyError {
    PolicyError::MissingArgument { line, keyword, expected }
}

fn arity(line: usize, keyword: &'static str, found: usize, expected: &'static str) -> PolicyError {
    if found == 0 {
        return missing(line, keyword, expected);
    }
    PolicyError::TooManyArguments { line, keyword, found, expected }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::{attach_cosignature, WitnessSigner};
    use crate::hash::leaf_hash;
    use crate::note::LogSigner;
    use PolicyError as E;

    const ORIGIN: &str = "fundtrail.example/ledger";

    struct World {
        log: LogSigner,
        witnesses: Vec<WitnessSigner>,
    }

    fn world() -> World {
        let log = LogSigner::from_seed(ORIGIN, &[1; 32]).unwrap();
        let witnesses = (0..6)
            .map(|i| WitnessSigner::from_seed(&format!("w{i}.example/w"), &[10 + i as u8; 32]).unwrap())
            .collect();
        World { log, witnesses }
    }

    impl World {
        fn vkey(&self, i: usize) -> String {
            self.witnesses[i].vkey()
        }

        /// The C2SP tlog-policy example: X1..X3 2-of-3, Y1..Y3 any, both groups.
        fn spec_example(&self) -> String {
            format!(
                "log {}\n\nwitness X1 {}\nwitness X2 {}\nwitness X3 {}\ngroup X-witnesses 2 X1 X2 X3\n\n\
                 witness Y1 {}\nwitness Y2 {}\nwitness Y3 {}\ngroup Y-witnesses any Y1 Y2 Y3\n\n\
                 group X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n",
                self.log.vkey(),
                self.vkey(0),
                self.vkey(1),
                self.vkey(2),
                self.vkey(3),
                self.vkey(4),
                self.vkey(5)
            )
        }

        fn note(&self, cosigners: &[usize]) -> Vec<u8> {
            let checkpoint = Checkpoint::new(ORIGIN, 5, leaf_hash(b"root")).unwrap();
            let mut note = self.log.sign_checkpoint(&checkpoint).unwrap();
            for &i in cosigners {
                let line = self.witnesses[i].cosign(&checkpoint, 1_700_000_000 + i as u64);
                note = attach_cosignature(&note, &line, self.witnesses[i].verifier()).unwrap();
            }
            note
        }
    }

    #[test]
    fn spec_example_quorum() {
        let w = world();
        let policy = Policy::parse(w.spec_example().as_bytes()).unwrap();
        assert_eq!(policy.witnesses().len(), 6);
        assert_eq!(policy.quorum_name(), "X-and-Y");
        // Two X and one Y: met.
        let ok = policy.verify_checkpoint(&w.note(&[0, 2, 4])).unwrap();
        assert_eq!(ok.cosigned_by.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["X1", "X3", "Y2"]);
        assert_eq!(ok.missing, ["X2", "Y1", "Y3"]);
        // Three X, no Y: not met, and the error says who signed and who is missing.
        let err = policy.verify_checkpoint(&w.note(&[0, 1, 2])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("checkpoint {ORIGIN} size 5 lacks the witness quorum X-and-Y: cosigned by X1, X2, X3; missing Y1, Y2, Y3")
        );
        let err = policy.verify_checkpoint(&w.note(&[])).unwrap_err();
        assert!(err.to_string().ends_with("cosigned by none; missing X1, X2, X3, Y1, Y2, Y3"), "{err}");
        // Printed back, it parses to the same policy.
        assert_eq!(Policy::parse(policy.to_string().as_bytes()).unwrap(), policy);
    }

    #[test]
    fn two_of_three() {
        let w = world();
        let witnesses = (0..3).map(|i| (w.witnesses[i].verifier().clone(), None)).collect();
        let policy = Policy::threshold(w.log.verifier(), witnesses, 2).unwrap();
        assert!(policy.verify_checkpoint(&w.note(&[0, 2])).is_ok());
        assert!(policy.verify_checkpoint(&w.note(&[0, 1, 2])).is_ok());
        assert!(matches!(
            policy.verify_checkpoint(&w.note(&[1])),
            Err(PolicyCheckError::QuorumNotMet { signed, missing, .. }) if signed == ["w2"] && missing == ["w1", "w3"]
        ));
        // A cosignature by a witness outside the policy does not count.
        assert!(policy.verify_checkpoint(&w.note(&[1, 4])).is_err());
        let none = Policy::threshold(w.log.verifier(), Vec::new(), 0).unwrap();
        assert!(none.verify_checkpoint(&w.note(&[])).is_ok());
    }

    #[test]
    fn forged_cosignature_and_foreign_log_are_refused() {
        let w = world();
        let policy = Policy::parse(w.spec_example().as_bytes()).unwrap();
        let note = String::from_utf8(w.note(&[0, 1, 3])).unwrap();
        let last = note.lines().last().unwrap().to_string();
        let (prefix, b64) = last.rsplit_once(' ').unwrap();
        let mut raw = base64::prelude::BASE64_STANDARD.decode(b64).unwrap();
        raw[30] ^= 1;
        use base64::Engine;
        let forged = note.replace(&last, &format!("{prefix} {}", base64::prelude::BASE64_STANDARD.encode(raw)));
        assert!(matches!(
            policy.verify_checkpoint(forged.as_bytes()),
            Err(PolicyCheckError::Note(NoteError::BadSignature { .. }))
        ));
        let other = LogSigner::from_seed("elsewhere.example/log", &[1; 32]).unwrap();
        let cp = Checkpoint::new("elsewhere.example/log", 1, leaf_hash(b"r")).unwrap();
        assert_eq!(
            policy.verify_checkpoint(&other.sign_checkpoint(&cp).unwrap()),
            Err(PolicyCheckError::UnknownLog { origin: "elsewhere.example/log".into() })
        );
        let impostor = LogSigner::from_seed(ORIGIN, &[2; 32]).unwrap();
        let cp = Checkpoint::new(ORIGIN, 1, leaf_hash(b"r")).unwrap();
        assert!(matches!(
            policy.verify_checkpoint(&impostor.sign_checkpoint(&cp).unwrap()),
            Err(PolicyCheckError::Note(NoteError::UnknownKey { .. }))
        ));
    }

    #[test]
    fn each_rule_has_its_error() {
        let w = world();
        let log = format!("log {}\n", w.log.vkey());
        let (a, b) = (w.vkey(0), w.vkey(1));
        let p = |s: String| Policy::parse(s.as_bytes());
        assert_eq!(p(format!("{log}\t# comment\n  \nquorum none\n")).map(|p| p.logs().len()), Ok(1));
        assert_eq!(p(log.clone()), Err(E::NoQuorum));
        assert_eq!(p(format!("{log}quorum none\nquorum none\n")), Err(E::SecondQuorum { line: 3, first_line: 2 }));
        assert_eq!(p("frobnicate x\n".into()), Err(E::UnknownKeyword { line: 1, word: "frobnicate".into() }));
        assert_eq!(p("quorum none\r\n".into()), Err(E::ControlCharacter { line: 1 }));
        assert!(matches!(p("log\nquorum none\n".into()), Err(E::MissingArgument { line: 1, keyword: "log", .. })));
        assert!(matches!(p(format!("log {} u x\n", w.log.vkey())), Err(E::TooManyArguments { found: 3, .. })));
        assert!(matches!(p("log nope\nquorum none\n".into()), Err(E::LogKey { line: 1, .. })));
        // A witness key given as a log key, and the other way round: wrong signature type.
        assert!(matches!(p(format!("log {a}\n")), Err(E::LogKey { source: KeyError::WrongType { .. }, .. })));
        assert!(matches!(
            p(format!("witness A {}\n", w.log.vkey())),
            Err(E::WitnessKey { line: 1, source: KeyError::WrongType { found: 1, expected: 4, .. }, .. })
        ));
        assert!(matches!(p("witness A\n".into()), Err(E::MissingArgument { keyword: "witness", .. })));
        assert_eq!(p(format!("{log}{log}")), Err(E::DuplicateLog { line: 2, name: ORIGIN.into(), first_line: 1 }));
        assert_eq!(
            p(format!("witness A {a}\nwitness B {a}\n")),
            Err(E::DuplicateWitnessKey { line: 2, name: "B".into(), other: "A".into() })
        );
        assert_eq!(
            p(format!("witness A {a}\nwitness A {b}\n")),
            Err(E::NameTaken { line: 2, name: "A".into(), first_line: 1 })
        );
        assert_eq!(p(format!("witness none {a}\n")), Err(E::NameReserved { line: 1 }));
        assert_eq!(p(format!("witness A {a}\ngroup G any A none\n")), Err(E::NameReserved { line: 2 }));
        assert_eq!(p("quorum X\n".into()), Err(E::UnknownName { line: 1, name: "X".into() }));
        // A group may name only what is defined above it.
        assert_eq!(p(format!("group G any A\nwitness A {a}\n")), Err(E::UnknownName { line: 1, name: "A".into() }));
        assert_eq!(
            p(format!("witness A {a}\ngroup G 1 A A\n")),
            Err(E::DuplicateMember { line: 2, group: "G".into(), name: "A".into() })
        );
        for bad in ["0", "3", "-1", "two", "2-of-2"] {
            assert_eq!(
                p(format!("witness A {a}\nwitness B {b}\ngroup G {bad} A B\n")),
                Err(E::BadThreshold { line: 3, group: "G".into(), text: bad.into(), members: 2 }),
                "{bad}"
            );
        }
        assert!(matches!(p(format!("witness A {a}\ngroup G any\n")), Err(E::MissingArgument { line: 2, .. })));
        assert_eq!(
            p(format!("witness A {a}\ngroup A any A\n")),
            Err(E::NameTaken { line: 2, name: "A".into(), first_line: 1 })
        );
        assert_eq!(
            p(vec![b'#'; POLICY_SIZE_MAX + 1].into_iter().map(char::from).collect()),
            Err(E::TooLarge { size: POLICY_SIZE_MAX + 1 })
        );
        assert_eq!(Policy::parse(b"\xff\n"), Err(E::NotUtf8));
        let many: String = (0..=POLICY_WITNESSES_MAX)
            .map(|i| {
                let s = WitnessSigner::from_seed(&format!("m{i}.example"), &[i as u8; 32]).unwrap();
                format!("witness m{i} {}\n", s.vkey())
            })
            .collect();
        assert!(matches!(p(many), Err(E::TooMany { what: "witnesses", .. })));
    }
}
