#!/usr/bin/env python3
"""Given/when/then cases for scripts/allocation_check.py, each worked by hand from
docs/design.md §1.6 (no server needed): python3 scripts/allocation_check_test.py"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import allocation_check as ac  # noqa: E402

FUND = "xihu-jiedao"


class World:
    """Events of one fund, numbered as stream messages from 1."""

    def __init__(self):
        self.replay = ac.Replay()
        self.seq = 0
        self.ids = 0
        self.event("fund.opened", {})

    def event(self, kind, body, v=1, event_id=None, at="2026-01-01T00:00:00Z"):
        self.seq += 1
        self.ids += 1
        event_id = event_id or f"00000000-0000-7000-8000-{self.ids:012d}"
        self.replay.apply(self.seq, {"id": event_id, "fund": FUND, "type": kind, "occurred_at": at, "author": "k", "body": body, "v": v})
        return event_id

    def purpose(self, name):
        self.event("purpose.declared", {"purpose": name, "description": "d"})

    def gift(self, fen, purpose=None, v=2):
        return self.event("donation.received", {"amount_fen": fen, "restricted_purpose": purpose}, v=v)

    def approved(self, pid, fen, purpose=None):
        self.event("proposal.submitted", {"proposal": pid, "title": f"title {pid}", "amount_fen": fen, "purpose": purpose}, v=2)
        self.event("proposal.endorsed", {"proposal": pid})
        self.event("application.submitted", {"proposal": pid})
        self.event("proposal.approved", {"proposal": pid, "amount_fen": fen})

    def payout(self, pid, fen, at="2026-05-20T08:00:00Z"):
        return self.event("payout.made", {"proposal": pid, "amount_fen": fen}, at=at)

    def trace(self, gift_id):
        return self.replay.trace(self.replay.gifts[gift_id])

    def parts(self, gift_id):
        t = self.trace(gift_id)
        return [(a["proposal"], a["state"], a["amount_fen"]) for a in t["allocations"]] + [("refunded", t["refunded_fen"]), ("unspent", t["unspent_fen"])]


class Allocation(unittest.TestCase):
    def test_the_lowest_ordinal_is_reserved_first_and_payouts_take_the_front(self):
        w = World()
        a, b = w.gift(30000), w.gift(22000)
        w.approved("P-2026-04", 40000)
        payout = w.payout("P-2026-04", 35000)
        self.assertEqual(w.parts(a), [("P-2026-04", "paid", 30000), ("refunded", 0), ("unspent", 0)])
        self.assertEqual(w.parts(b), [("P-2026-04", "paid", 5000), ("P-2026-04", "reserved", 5000), ("refunded", 0), ("unspent", 12000)])
        paid = w.trace(b)["allocations"][0]["payout"]
        self.assertEqual(paid, {"event": payout, "sequence": w.seq, "ledger_entry": w.seq - 1, "paid_at": "2026-05-20T08:00:00Z"})

    def test_a_purpose_is_served_from_its_own_pool_first_then_unrestricted(self):
        w = World()
        w.purpose("助老")
        free, kept = w.gift(10000), w.gift(5000, "助老")
        w.approved("P-7", 8000, "助老")
        self.assertEqual(w.parts(kept), [("P-7", "reserved", 5000), ("refunded", 0), ("unspent", 0)])
        self.assertEqual(w.parts(free), [("P-7", "reserved", 3000), ("refunded", 0), ("unspent", 7000)])

    def test_restricted_money_never_pays_for_another_purpose(self):
        w = World()
        w.purpose("助老")
        w.purpose("助学")
        w.gift(5000, "助老")
        w.gift(1000)
        with self.assertRaisesRegex(ac.Refused, "RestrictedShortfall P-1 needs ¥20.00, ¥10.00 usable"):
            w.approved("P-1", 2000)
        w2 = World()
        w2.purpose("助老")
        w2.purpose("助学")
        w2.gift(5000, "助老")
        with self.assertRaisesRegex(ac.Refused, "RestrictedShortfall"):
            w2.approved("P-2", 10, "助学")

    def test_a_closure_returns_money_to_its_place_in_the_queue(self):
        w = World()
        a, b = w.gift(1000), w.gift(1000)
        w.approved("P-1", 1500)
        w.payout("P-1", 200)
        w.event("proposal.closed", {"proposal": "P-1", "report": "r", "evidence": []})
        self.assertEqual(w.parts(a), [("P-1", "paid", 200), ("refunded", 0), ("unspent", 800)])
        self.assertEqual(w.parts(b), [("refunded", 0), ("unspent", 1000)])
        # a's returned 800 comes first again, before b
        w.approved("P-2", 900)
        self.assertEqual(w.parts(a), [("P-1", "paid", 200), ("P-2", "reserved", 800), ("refunded", 0), ("unspent", 0)])
        self.assertEqual(w.parts(b), [("P-2", "reserved", 100), ("refunded", 0), ("unspent", 900)])

    def test_a_refund_takes_only_unspent_money(self):
        w = World()
        a = w.gift(1000)
        w.approved("P-1", 600)
        with self.assertRaisesRegex(ac.Refused, "RefundExceedsUnspent ¥5.00 > ¥4.00"):
            w.event("donation.reversed", {"donation": a, "amount_fen": 500, "reason": "r"})
        w2 = World()
        a = w2.gift(1000)
        w2.event("donation.reversed", {"donation": a, "amount_fen": 400, "reason": "r"})
        self.assertEqual(w2.parts(a), [("refunded", 400), ("unspent", 600)])
        w2.replay.check_pools()

    def test_a_version_1_gift_is_unrestricted_and_a_repeated_id_has_no_effect(self):
        w = World()
        a = w.event("donation.received", {"amount_fen": 700, "restricted_purpose": "老年食堂"}, v=1)
        w.event("donation.received", {"amount_fen": 700, "restricted_purpose": None}, v=2, event_id=a)
        t = w.trace(a)
        self.assertIsNone(t["restricted_purpose"])
        self.assertEqual(w.replay.funds[FUND].pools[None].received, 700)

    def test_reserved_parts_come_after_paid_parts_by_proposal_id(self):
        w = World()
        a = w.gift(900)
        w.approved("P-9", 100)
        w.approved("P-10", 100)
        w.approved("P-8", 100)
        w.payout("P-8", 100)
        self.assertEqual([x[0] for x in w.parts(a)[:3]], ["P-8", "P-10", "P-9"])


class Goods(unittest.TestCase):
    """§1.6 "Goods": lots, first in, first out per (name, unit) and pool."""

    def goods(self, w, lines, purpose=None, v=2):
        items = [{"name": n, "quantity": q, "unit": u, "unit_value_fen": 5000} for n, q, u in lines]
        body = {"items": items, "restricted_purpose": purpose} if v >= 2 else {"items": items}
        return w.event("goods.received", body, v=v)

    def hand_out(self, w, lines, proposal=None, text="慰问"):
        items = [{"name": n, "quantity": q, "unit": u} for n, q, u in lines]
        return w.event("goods.distributed", {"items": items, "purpose": text, "proposal": proposal}, at="2026-10-20T01:00:00Z")

    def parts(self, w, gift_id):
        t = w.replay.goods_trace(w.replay.goods_gifts[gift_id])
        return [([(d["distribution"]["event"], d["quantity"]) for d in line["distributions"]], line["in_stock"]) for line in t["lines"]]

    def test_the_purposes_lots_first_then_unrestricted_lowest_ordinal_first(self):
        w = World()
        w.purpose("助老")
        a = self.goods(w, [("大米", 50, "袋"), ("牛奶", 10, "箱")], "助老")
        b = self.goods(w, [("大米", 20, "袋")])
        w.event("proposal.submitted", {"proposal": "P-2026-08", "title": "t", "amount_fen": 1, "purpose": "助老"}, v=2)
        first = self.hand_out(w, [("大米", 30, "袋")], "P-2026-08")
        second = self.hand_out(w, [("大米", 15, "袋"), ("大米", 10, "袋")], "P-2026-08")
        third = self.hand_out(w, [("大米", 5, "袋")])
        self.assertEqual(self.parts(w, a), [([(first, 30), (second, 20)], 0), ([], 10)])
        self.assertEqual(self.parts(w, b), [([(second, 5), (third, 5)], 10)])

    def test_restricted_goods_never_go_without_a_proposal_of_their_purpose(self):
        w = World()
        w.purpose("助老")
        self.goods(w, [("大米", 10, "袋")], "助老")
        self.goods(w, [("大米", 3, "袋")], v=1)  # v1: unrestricted
        with self.assertRaises(ac.Refused):
            self.hand_out(w, [("大米", 4, "袋")])


class Comparing(unittest.TestCase):
    def test_the_first_difference_is_named(self):
        w = World()
        a = w.gift(1000)
        w.approved("P-1", 600)
        ours = w.trace(a)
        theirs = dict(ours, allocations=[dict(ours["allocations"][0], amount_fen=599)], summary="…")
        with self.assertRaisesRegex(ac.Difference, r"allocations\[0\]\.amount_fen: replay 600, server 599"):
            ac.compare("trace", ours, theirs)
        ac.compare("trace", ours, dict(ours, received_at="2026-01-01T00:00:00.000Z", summary="…"))

    def test_an_answer_says_which_ledger_size_it_reflects(self):
        self.assertEqual(ac.as_of_sequence({"as_of_sequence": 312}, "g"), 312)
        for bad in [{}, {"as_of_sequence": None}, {"as_of_sequence": "312"}, {"as_of_sequence": True}, {"as_of_sequence": -1}]:
            with self.assertRaisesRegex(ac.Difference, "does not say which ledger it reflects"):
                ac.as_of_sequence(bad, "g")

    def test_the_replay_never_moves_back_to_compare(self):
        follower = ac.Follower("http://127.0.0.1:9", 0.0)
        follower.position = 40
        follower.advance_to(40)  # already there: nothing to read
        with self.assertRaisesRegex(ac.Difference, "as of 39 ledger entries, before the 40 replayed here"):
            follower.advance_to(39)

    def test_tile_paths_follow_tlog_tiles(self):
        self.assertEqual(ac.tile_path(0), "000")
        self.assertEqual(ac.tile_path(1234067), "x001/x234/067")


if __name__ == "__main__":
    unittest.main()
