#!/usr/bin/env python3
"""An outside check of FundTrail's allocation (docs/design.md §1.6), written from the
documentation alone: docs/design.md §1.6 "Purposes and the allocation", schemas/README.md
(event bodies and versions), schemas/ledger-entry.md (where to get entries) and
schemas/openapi.json (the Trace answer). Nothing here is derived from the Rust code.

It reads a server's public ledger the way an outside auditor would:

1. `GET /ledger/checkpoint` gives the tree size N (line 2 of the signed note), and the
   entry bundles `GET /ledger/tile/entries/<N>` (C2SP tlog-tiles) give entries 0..N-1;
   each entry is `index (u64 BE) ‖ prev (32 bytes) ‖ DSSE envelope`, and ledger entry i
   is stream message i + 1 (schemas/ledger-entry.md). Signatures are not verified here
   (`fundtrail verify` and the portal do that).
2. It replays purposes, gifts, approvals, payouts, closures and refunds with integer fen
   arithmetic (every amount checked to stay within ±(2^53−1)), following the five steps
   of "the allocation", and computes every cash gift's trace; and goods in kind lot by
   lot (§1.6 "Goods": goods received, goods distributed), computing every goods gift's
   trace.
3. It asks `GET /v1/donations/{id}/trace` for each gift, cash and goods. Each answer
   names the ledger size it reflects (`as_of_sequence`, schemas/openapi.json): the
   replay moves forward to exactly that size (waiting, if need be, for a checkpoint that
   covers it) and compares its own trace then, field by field, exiting 1 with the first
   difference. So a busy server needs no quiet moment: every comparison is at one position.

    python3 scripts/allocation_check.py http://127.0.0.1:8080
    python3 scripts/allocation_check.py --print-traces http://127.0.0.1:8080   # no comparing

Standard library only. Exit codes: 0 agree, 1 a difference, 2 the ledger could not be
read or holds an event these rules would refuse (see "Limits" below).

Limits: only the rules that move money are checked (amounts, proposal status, the §1.6
limits). Roles, signatures, the committee count and text rules are not: an event the
server's fold refused for one of those reasons but that still reached the stream (design
§3.5, "Known differences") would be replayed here and make the traces differ.
"""
import argparse
import base64
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

FEN_MAX = (1 << 53) - 1  # schemas/README.md: amounts never exceed ±(2^53−1)
ENTRIES_PER_TILE = 256  # C2SP tlog-tiles
ENTRY_HEADER_BYTES = 8 + 32  # index ‖ prev (schemas/ledger-entry.md)
PAYLOAD_TYPE = "application/vnd.fundtrail.event+json"
HTTP_TIMEOUT_S = 30
CHECKPOINT_WAIT_S_DEFAULT = 30.0  # for a checkpoint to cover the position an answer reflects
CHECKPOINT_POLL_S = 0.2
UNRESTRICTED = None  # the key of a fund's unrestricted pool
QUANTITY_MAX = 1_000_000_000  # schemas/README.md: the rules accept quantities 1 … 1,000,000,000


class Refused(Exception):
    """The ledger holds an event the §1.6 rules refuse: the replay cannot go on."""


class Difference(Exception):
    """The server's trace differs from the replay's."""


def fen(value, what):
    """An amount in fen, checked: an integer within ±(2^53−1)."""
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > FEN_MAX:
        raise Refused(f"{what}: {value!r} is not an amount in fen within ±(2^53−1)")
    return value


def yuan(amount_fen):
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


# ---------------------------------------------------------------------------
# reading the ledger (schemas/ledger-entry.md, C2SP tlog-tiles)


def http_get(url):
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as answer:
        return answer.read()


def tree_size(base):
    lines = http_get(f"{base}/ledger/checkpoint").decode("utf-8").split("\n")
    return int(lines[1])


def covering_tree_size(base, target, wait_s):
    """The checkpoint's size once it covers `target` entries: the service signs a new
    checkpoint within seconds of the stream growing, so this waits at most `wait_s`."""
    deadline = time.monotonic() + wait_s
    while True:
        size = tree_size(base)
        if size >= target:
            return size
        if time.monotonic() > deadline:
            raise Refused(f"no checkpoint covers {target} entries after {wait_s} s (the latest has {size})")
        time.sleep(CHECKPOINT_POLL_S)


def tile_path(n):
    """`1234067` → `x001/x234/067`."""
    digits = f"{n:d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def ledger_entries(base, size, start=0):
    """(index, envelope bytes) of entries start..size-1, from the entry bundles of the tree
    of `size` entries."""
    for tile in range(start // ENTRIES_PER_TILE, (size + ENTRIES_PER_TILE - 1) // ENTRIES_PER_TILE):
        width = min(ENTRIES_PER_TILE, size - tile * ENTRIES_PER_TILE)
        suffix = "" if width == ENTRIES_PER_TILE else f".p/{width}"
        bundle = http_get(f"{base}/ledger/tile/entries/{tile_path(tile)}{suffix}")
        at = 0
        for k in range(width):
            length = int.from_bytes(bundle[at : at + 2], "big")
            entry = bundle[at + 2 : at + 2 + length]
            at += 2 + length
            index = int.from_bytes(entry[:8], "big")
            if index != tile * ENTRIES_PER_TILE + k or length <= ENTRY_HEADER_BYTES:
                raise Refused(f"entry bundle {tile}: entry {k} has index {index}, length {length}")
            if index >= start:
                yield index, entry[ENTRY_HEADER_BYTES:]
        if at != len(bundle):
            raise Refused(f"entry bundle {tile}: {len(bundle) - at} bytes after {width} entries")


def event_of(envelope_bytes):
    """The event inside a DSSE envelope (docs/subscribers.md "Verifying", step 1)."""
    envelope = json.loads(envelope_bytes)
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise Refused(f"payloadType {envelope.get('payloadType')!r}")
    return json.loads(base64.b64decode(envelope["payload"], validate=True))


# ---------------------------------------------------------------------------
# the replay (docs/design.md §1.6)


class Pool:
    def __init__(self):
        self.received = self.refunded = self.reserved = self.paid = 0
        self.queue = {}  # ordinal -> unspent fen, taken lowest ordinal first

    def available(self):
        return self.received - self.refunded - self.reserved - self.paid


class Gift:
    def __init__(self, event, ordinal, amount, purpose):
        self.id = event["id"]
        self.fund = event["fund"]
        self.received_at = event["occurred_at"]
        self.ordinal, self.amount, self.purpose = ordinal, amount, purpose
        self.refunded = 0
        self.reserved = {}  # proposal id -> fen
        self.spent = []  # (proposal id, payout event id, fen), in stream order


class Proposal:
    def __init__(self, body):
        self.id, self.title = body["proposal"], body["title"]
        self.requested = body["amount_fen"]
        self.purpose = body.get("purpose")  # v1 has none: read as null (§3.2)
        self.status = "submitted"
        self.approved = self.paid = 0
        self.slices = []  # [ordinal, gift id, pool key, fen], in the order taken
        self.payouts = {}  # payout event id -> (sequence, paid_at)


class GoodsGift:
    """A goods.received: each line a lot (§1.6 "Goods", step 1)."""

    def __init__(self, event, purpose):
        self.id = event["id"]
        self.fund = event["fund"]
        self.received_at = event["occurred_at"]
        self.purpose = purpose
        self.lines = []  # dicts: name, unit, quantity, unit_value_fen, ordinal, handed [(distribution id, units)]


class Fund:
    def __init__(self, fund_id):
        self.id = fund_id
        self.purposes = {}  # name -> retired?
        self.pools = {UNRESTRICTED: Pool()}
        self.gifts = {}
        self.ordinals = {}  # ordinal -> gift
        self.proposals = {}
        self.lots = 0  # the next lot ordinal
        self.stock = {}  # (name, unit) -> pool key -> {lot ordinal: [goods gift, line index, units left]}
        self.distributions = {}  # distribution event id -> (sequence, occurred_at, proposal id or None, free text)

    def purpose_in_use(self, name, what):
        """A purpose a new gift, pledge or proposal may name (§1.6)."""
        if name is None:
            return
        if name not in self.purposes:
            raise Refused(f"{what}: UnknownPurpose {name!r}")
        if self.purposes[name]:
            raise Refused(f"{what}: PurposeRetired {name!r}")

    def proposal(self, pid, what):
        if pid not in self.proposals:
            raise Refused(f"{what}: UnknownProposal {pid}")
        return self.proposals[pid]


class Replay:
    def __init__(self):
        self.funds = {}
        self.seen = set()
        self.gifts = {}  # donation id -> Gift, in stream order
        self.goods_gifts = {}  # goods gift id -> GoodsGift, in stream order

    def apply(self, sequence, event):
        if event["id"] in self.seen:  # the same id twice is one effect (invariant 5)
            return
        self.seen.add(event["id"])
        if event["type"] not in HANDLERS:
            return
        handler = HANDLERS[event["type"]]
        what = f"stream message {sequence} ({event['type']} {event['id']})"
        fund = self.funds.get(event["fund"])
        if event["type"] == "fund.opened":
            if fund is not None:
                raise Refused(f"{what}: fund {event['fund']} opened twice")
            self.funds[event["fund"]] = Fund(event["fund"])
            return
        if fund is None:
            raise Refused(f"{what}: UnknownFund {event['fund']}")
        handler(self, fund, sequence, event, what)

    # --- purposes
    def purpose_declared(self, fund, _seq, event, what):
        name = event["body"]["purpose"]
        if name in fund.purposes:
            raise Refused(f"{what}: PurposeExists {name!r}")
        fund.purposes[name] = False
        fund.pools[name] = Pool()

    def purpose_retired(self, fund, _seq, event, what):
        name = event["body"]["purpose"]
        fund.purpose_in_use(name, what)
        fund.purposes[name] = True

    # --- 1. receive
    def donation_received(self, fund, _seq, event, what):
        body = event["body"]
        amount = fen(body["amount_fen"], what)
        if amount <= 0:
            raise Refused(f"{what}: AmountNotPositive {amount}")
        # §3.2: a v1 gift's free-text restricted_purpose bound nothing: unrestricted.
        purpose = body.get("restricted_purpose") if event["v"] >= 2 else None
        fund.purpose_in_use(purpose, what)
        gift = Gift(event, len(fund.ordinals), amount, purpose)
        pool = fund.pools[purpose]
        pool.received = fen(pool.received + amount, what)
        pool.queue[gift.ordinal] = amount
        fund.gifts[gift.id] = gift
        fund.ordinals[gift.ordinal] = gift
        self.gifts[gift.id] = gift

    # --- 5. refund
    def donation_reversed(self, fund, _seq, event, what):
        body = event["body"]
        gift = fund.gifts.get(body["donation"])
        if gift is None:
            raise Refused(f"{what}: UnknownDonation {body['donation']}")
        amount = fen(body["amount_fen"], what)
        if amount <= 0:
            raise Refused(f"{what}: AmountNotPositive {amount}")
        if amount > gift.amount - gift.refunded:
            raise Refused(f"{what}: RefundExceeds {yuan(amount)} > {yuan(gift.amount - gift.refunded)}")
        pool = fund.pools[gift.purpose]
        unspent = pool.queue.get(gift.ordinal, 0)
        if amount > unspent:
            raise Refused(f"{what}: RefundExceedsUnspent {yuan(amount)} > {yuan(unspent)}")
        take(pool.queue, gift.ordinal, amount)
        pool.refunded += amount
        gift.refunded += amount

    # --- the proposal's path (design §1.2): only the statuses money depends on
    def proposal_submitted(self, fund, _seq, event, what):
        body = event["body"]
        if body["proposal"] in fund.proposals:
            raise Refused(f"{what}: ProposalExists {body['proposal']}")
        if event["v"] < 2:
            body = dict(body, purpose=None)
        fund.purpose_in_use(body.get("purpose"), what)
        fund.proposals[body["proposal"]] = Proposal(body)

    # --- 2. reserve
    def proposal_approved(self, fund, _seq, event, what):
        proposal = fund.proposal(event["body"]["proposal"], what)
        amount = fen(event["body"]["amount_fen"], what)
        if proposal.status != "applied":
            raise Refused(f"{what}: ProposalStatus {proposal.id} is {proposal.status}")
        if amount <= 0 or amount > proposal.requested:
            raise Refused(f"{what}: {yuan(amount)} for {proposal.id} (requested {yuan(proposal.requested)})")
        keys = [proposal.purpose, UNRESTRICTED] if proposal.purpose is not None else [UNRESTRICTED]
        usable = sum(fund.pools[k].available() for k in keys)
        if amount > usable:
            raise Refused(f"{what}: RestrictedShortfall {proposal.id} needs {yuan(amount)}, {yuan(usable)} usable")
        left = amount
        for key in keys:
            pool = fund.pools[key]
            for ordinal in sorted(pool.queue):
                if left == 0:
                    break
                part = min(left, pool.queue[ordinal])
                take(pool.queue, ordinal, part)
                pool.reserved += part
                gift = fund.ordinals[ordinal]
                gift.reserved[proposal.id] = gift.reserved.get(proposal.id, 0) + part
                proposal.slices.append([ordinal, gift.id, key, part])
                left -= part
        if left != 0:
            raise Refused(f"{what}: the queues hold {yuan(left)} less than the pools' available cash")
        proposal.approved = amount
        proposal.status = "approved"

    # --- 3. spend
    def payout_made(self, fund, sequence, event, what):
        proposal = fund.proposal(event["body"]["proposal"], what)
        amount = fen(event["body"]["amount_fen"], what)
        if proposal.status != "approved":
            raise Refused(f"{what}: ProposalStatus {proposal.id} is {proposal.status}")
        if amount <= 0 or amount > proposal.approved - proposal.paid:
            raise Refused(f"{what}: PayoutExceedsRemainder {yuan(amount)} > {yuan(proposal.approved - proposal.paid)}")
        left = amount
        while left > 0:
            ordinal, gift_id, key, slice_fen = proposal.slices[0]
            part = min(left, slice_fen)
            if part == slice_fen:
                proposal.slices.pop(0)
            else:
                proposal.slices[0][3] -= part
            pool = fund.pools[key]
            pool.reserved -= part
            pool.paid += part
            gift = fund.gifts[gift_id]
            take(gift.reserved, proposal.id, part)
            gift.spent.append((proposal.id, event["id"], part))
            left -= part
        proposal.paid += amount
        proposal.payouts[event["id"]] = (sequence, event["occurred_at"])

    # --- 4. release
    def proposal_closed(self, fund, _seq, event, what):
        proposal = fund.proposal(event["body"]["proposal"], what)
        if proposal.status not in ("submitted", "endorsed", "applied", "approved"):
            raise Refused(f"{what}: ProposalStatus {proposal.id} is {proposal.status}")
        for ordinal, gift_id, key, part in proposal.slices:
            pool = fund.pools[key]
            pool.reserved -= part
            pool.queue[ordinal] = pool.queue.get(ordinal, 0) + part
            take(fund.gifts[gift_id].reserved, proposal.id, part)
        proposal.slices = []
        proposal.status = "closed"

    # --- goods (§1.6 "Goods")
    def goods_received(self, fund, _seq, event, what):
        body = event["body"]
        purpose = body.get("restricted_purpose") if event["v"] >= 2 else None  # v1: unrestricted
        fund.purpose_in_use(purpose, what)
        gift = GoodsGift(event, purpose)
        for i, item in enumerate(body["items"]):
            quantity = units(item["quantity"], what)
            line = {
                "name": item["name"],
                "unit": item["unit"],
                "quantity": quantity,
                "unit_value_fen": fen(item["unit_value_fen"], what),
                "ordinal": fund.lots,
                "handed": [],
            }
            pools = fund.stock.setdefault((item["name"], item["unit"]), {})
            pools.setdefault(purpose, {})[fund.lots] = [gift, i, quantity]
            fund.lots += 1
            gift.lines.append(line)
        self.goods_gifts[gift.id] = gift

    def goods_distributed(self, fund, sequence, event, what):
        body = event["body"]
        pid = body.get("proposal")
        serves = fund.proposal(pid, what).purpose if pid is not None else None
        requests = {}
        for item in body["items"]:
            key = (item["name"], item["unit"])
            requests[key] = requests.get(key, 0) + units(item["quantity"], what)
        keys = [serves, UNRESTRICTED] if serves is not None else [UNRESTRICTED]
        # Byte order of (name, unit): Python compares str by code point, which is UTF-8 byte order.
        for key in sorted(requests):
            pools = fund.stock.get(key, {})
            usable = sum(lot[2] for k in keys for lot in pools.get(k, {}).values())
            if requests[key] > usable:
                raise Refused(f"{what}: {requests[key]} {key[1]} {key[0]} requested, {usable} usable for purpose {serves!r}")
        for key in sorted(requests):
            left = requests[key]
            for k in keys:
                queue = fund.stock.get(key, {}).get(k, {})
                for ordinal in sorted(queue):
                    if left == 0:
                        break
                    gift, line, lot_left = queue[ordinal]
                    part = min(left, lot_left)
                    queue[ordinal][2] -= part
                    if queue[ordinal][2] == 0:
                        del queue[ordinal]
                    gift.lines[line]["handed"].append((event["id"], part))
                    left -= part
            assert left == 0
        fund.distributions[event["id"]] = (sequence, event["occurred_at"], pid, body["purpose"])

    def goods_trace(self, gift):
        fund = self.funds[gift.fund]
        lines = []
        for i, line in enumerate(gift.lines):
            queue = fund.stock[(line["name"], line["unit"])].get(gift.purpose, {})
            in_stock = queue[line["ordinal"]][2] if line["ordinal"] in queue else 0
            parts = []
            for distribution, part in line["handed"]:
                sequence, at, pid, text = fund.distributions[distribution]
                parts.append(
                    {
                        "distribution": {"event": distribution, "sequence": sequence, "ledger_entry": sequence - 1, "distributed_at": at},
                        "proposal": pid,
                        "title": fund.proposals[pid].title if pid is not None else None,
                        "purpose": text,
                        "quantity": part,
                    }
                )
            whole = in_stock + sum(p["quantity"] for p in parts)
            assert whole == line["quantity"], f"the parts of {gift.id} line {i} sum to {whole}, not {line['quantity']}"
            lines.append(
                {
                    "line": i,
                    "name": line["name"],
                    "unit": line["unit"],
                    "quantity": line["quantity"],
                    "unit_value_fen": line["unit_value_fen"],
                    "distributions": parts,
                    "in_stock": in_stock,
                }
            )
        return {
            "kind": "goods",
            "fund": gift.fund,
            "donation": gift.id,
            "restricted_purpose": gift.purpose,
            "received_at": gift.received_at,
            "lines": lines,
        }

    # --- the trace (§1.6 "The trace"; the answer's shape is openapi.json's Trace)
    def trace(self, gift):
        fund = self.funds[gift.fund]
        allocations = []
        for pid, payout, part in gift.spent:
            sequence, paid_at = fund.proposals[pid].payouts[payout]
            allocations.append(
                {
                    "proposal": pid,
                    "title": fund.proposals[pid].title,
                    "amount_fen": part,
                    "state": "paid",
                    "payout": {"event": payout, "sequence": sequence, "ledger_entry": sequence - 1, "paid_at": paid_at},
                }
            )
        for pid in sorted(gift.reserved, key=lambda p: p.encode("utf-8")):
            allocations.append(
                {"proposal": pid, "title": fund.proposals[pid].title, "amount_fen": gift.reserved[pid], "state": "reserved", "payout": None}
            )
        unspent = fund.pools[gift.purpose].queue.get(gift.ordinal, 0)
        trace = {
            "kind": "cash",
            "fund": gift.fund,
            "donation": gift.id,
            "amount_fen": gift.amount,
            "restricted_purpose": gift.purpose,
            "received_at": gift.received_at,
            "allocations": allocations,
            "refunded_fen": gift.refunded,
            "unspent_fen": unspent,
        }
        whole = gift.refunded + unspent + sum(a["amount_fen"] for a in allocations)
        assert whole == gift.amount, f"the parts of {gift.id} sum to {whole}, not {gift.amount}"
        return trace

    def check_pools(self):
        """Every pool's queue holds exactly its available cash, never negative (§1.6)."""
        for fund in self.funds.values():
            for key, pool in fund.pools.items():
                queued = sum(pool.queue.values())
                if pool.available() < 0 or queued != pool.available():
                    raise Refused(f"fund {fund.id} pool {key!r}: available {pool.available()}, queued {queued}")


def step(before, after):
    """A proposal step that only moves its status (design §1.2)."""

    def handler(_replay, fund, _seq, event, what):
        proposal = fund.proposal(event["body"]["proposal"], what)
        if proposal.status not in before:
            raise Refused(f"{what}: ProposalStatus {proposal.id} is {proposal.status}")
        proposal.status = after

    return handler


def units(value, what):
    """A goods quantity, checked: an integer within 1 … QUANTITY_MAX."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= QUANTITY_MAX:
        raise Refused(f"{what}: {value!r} is not a quantity within 1 … {QUANTITY_MAX}")
    return value


def take(amounts, key, part):
    """Lower `amounts[key]` by `part`, removing the entry at zero."""
    amounts[key] -= part
    assert amounts[key] >= 0
    if amounts[key] == 0:
        del amounts[key]


HANDLERS = {
    "fund.opened": None,  # handled in Replay.apply
    "purpose.declared": Replay.purpose_declared,
    "purpose.retired": Replay.purpose_retired,
    "donation.received": Replay.donation_received,
    "donation.reversed": Replay.donation_reversed,
    "proposal.submitted": Replay.proposal_submitted,
    "proposal.endorsed": step(("submitted",), "endorsed"),
    "proposal.rejected": step(("submitted",), "rejected"),
    "application.submitted": step(("endorsed",), "applied"),
    "proposal.declined": step(("applied",), "declined"),
    "proposal.approved": Replay.proposal_approved,
    "payout.made": Replay.payout_made,
    "proposal.closed": Replay.proposal_closed,
    "goods.received": Replay.goods_received,
    "goods.distributed": Replay.goods_distributed,
}


# ---------------------------------------------------------------------------
# comparing


def instant(text):
    """An RFC 3339 UTC time, so that `…:00Z` and `…:00.000Z` compare equal."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def compare(path, ours, theirs):
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            raise Difference(f"{path}: replay has an object, server has {theirs!r}")
        for key, value in ours.items():
            if key not in theirs:
                raise Difference(f"{path}.{key}: missing from the server's answer")
            compare(f"{path}.{key}", value, theirs[key])
    elif isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            raise Difference(f"{path}: replay has {len(ours)} parts, server has {theirs!r}")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(f"{path}[{i}]", a, b)
    elif path.endswith("_at"):
        if not isinstance(theirs, str) or instant(ours) != instant(theirs):
            raise Difference(f"{path}: replay {ours!r}, server {theirs!r}")
    elif ours != theirs or type(ours) is not type(theirs):
        raise Difference(f"{path}: replay {ours!r}, server {theirs!r}")


def server_trace(base, donation):
    try:
        return json.loads(http_get(f"{base}/v1/donations/{donation}/trace"))
    except urllib.error.HTTPError as e:
        raise Difference(f"{donation}: the server answers {e.code} to its trace") from e


class Follower:
    """A replay of the public ledger that moves forward to exactly the size a server's
    answer reflects, so the two are compared at one position."""

    def __init__(self, base, wait_s):
        self.base = base
        self.wait_s = wait_s
        self.replay = Replay()
        self.position = 0  # entries replayed

    def advance_to(self, target):
        if target < self.position:
            raise Difference(f"the server answers as of {target} ledger entries, before the {self.position} replayed here")
        if target == self.position:
            return
        size = covering_tree_size(self.base, target, self.wait_s)
        for index, envelope in ledger_entries(self.base, size, self.position):
            if index >= target:
                break
            self.replay.apply(index + 1, event_of(envelope))
        self.position = target
        self.replay.check_pools()


def as_of_sequence(answer, donation):
    """The ledger size a trace answer reflects (openapi.json `Trace.as_of_sequence`)."""
    value = answer.get("as_of_sequence") if isinstance(answer, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Difference(f"{donation}: the server's trace does not say which ledger it reflects: as_of_sequence {value!r}")
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("server", help="the server's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--print-traces", action="store_true", help="print the replay's traces as JSON lines; compare nothing")
    parser.add_argument(
        "--wait",
        type=float,
        default=CHECKPOINT_WAIT_S_DEFAULT,
        help=f"seconds to wait for a checkpoint covering the ledger size an answer reflects (default {CHECKPOINT_WAIT_S_DEFAULT:g})",
    )
    args = parser.parse_args()
    base = args.server.rstrip("/")
    follower = Follower(base, args.wait)
    try:
        size = tree_size(base)
        follower.advance_to(size)
    except (Refused, urllib.error.URLError, ValueError, KeyError) as e:
        print(f"allocation_check: cannot replay the ledger: {e}", file=sys.stderr)
        return 2
    replay = follower.replay
    gifts = [("cash", g) for g in replay.gifts] + [("goods", g) for g in replay.goods_gifts]

    def ours(kind, g):
        return replay.trace(replay.gifts[g]) if kind == "cash" else replay.goods_trace(replay.goods_gifts[g])

    if args.print_traces:
        for kind, g in gifts:
            print(json.dumps(ours(kind, g), ensure_ascii=False))
        return 0
    traces = []
    try:
        for kind, g in gifts:
            theirs = server_trace(base, g)
            follower.advance_to(as_of_sequence(theirs, g))
            traces.append(ours(kind, g))
            compare(f"trace {g} (at ledger size {follower.position})", traces[-1], theirs)
    except Difference as e:
        print(f"allocation_check: DIFFERENT: {e}", file=sys.stderr)
        return 1
    except (Refused, urllib.error.URLError, ValueError, KeyError) as e:
        print(f"allocation_check: cannot replay the ledger: {e}", file=sys.stderr)
        return 2
    cash = [t for t in traces if t["kind"] == "cash"]
    goods = [t for t in traces if t["kind"] == "goods"]
    parts = sum(len(t["allocations"]) for t in cash)
    paid = sum(a["amount_fen"] for t in cash for a in t["allocations"] if a["state"] == "paid")
    handed = sum(d["quantity"] for t in goods for line in t["lines"] for d in line["distributions"])
    print(
        f"allocation_check: {len(cash)} cash gifts and {len(goods)} goods gifts in {size} ledger entries agree with the "
        f"server, each at the ledger size its answer reflects ({size}..{follower.position}; {parts} parts, "
        f"{yuan(paid)} paid; {handed} units of goods handed out)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
