"""City-scale paging of a batch: keyset pages (after / before an item id), pages by number
from either end, counts from the totals kept with the batch — all the same items as a plain
walk through the batch in id order."""

from __future__ import annotations

import re

from conftest import Seeded


def _all(client, batch_id: int, query: str = "") -> list[dict]:  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/batches/{batch_id}/items?per_page=500{query}").json()["items"]


def _walk_forward(client, base: str) -> tuple[list[int], dict, int]:
    """Every item id of a listing, page by page through the keyset's `next_after`: the ids,
    the last page's body and its number."""
    seen, page, after = [], 1, None
    while True:
        body = client.get(base + (f"&page={page}&after={after}" if after else "")).json()
        seen += [i["id"] for i in body["items"]]
        if body["next_after"] is None:
            return seen, body, page
        page, after = page + 1, body["next_after"]


def _walk_back(client, base: str, pages: int) -> tuple[list[int], dict]:
    """Every item id of a listing, from its last page back through `prev_before`: the ids in
    order and the first page's body."""
    back, before, page = [], None, pages
    while True:
        q = f"&page={page}" + (f"&before={before}" if before else "")
        body = client.get(base + q).json()
        back = [i["id"] for i in body["items"]] + back
        if body["prev_before"] is None:
            return back, body
        page, before = page - 1, body["prev_before"]


def test_keyset_pages_walk_the_batch_both_ways(seeded: Seeded) -> None:
    batch = seeded.ctx.ledger.batches()[0]
    client = seeded.client("auditor")
    everything = [i["id"] for i in _all(client, batch.id)]
    assert len(everything) > 12
    base = f"/api/v1/batches/{batch.id}/items?per_page=5"
    seen, body, page = _walk_forward(client, base)
    assert seen == everything and page == body["pages"]
    back, body = _walk_back(client, base, body["pages"])
    assert back == everything
    for n in range(1, body["pages"] + 1):  # by number: from the start, the end, or the ids
        got = [i["id"] for i in client.get(f"{base}&page={n}").json()["items"]]
        assert got == everything[(n - 1) * 5 : n * 5], n


def test_filtered_counts_come_from_the_kept_totals(seeded: Seeded) -> None:
    batch = seeded.ctx.ledger.batches()[0]
    client = seeded.client("auditor")
    items = _all(client, batch.id)
    for query, keep in [
        ("&held=yes", lambda i: i["status"] == "held"),
        ("&held=no", lambda i: i["status"] != "held"),
        ("&policy=dibao_allowance", lambda i: i["policy_id"] == "dibao_allowance"),
        ("&kind=adjustment", lambda i: i["kind"] != "payment"),
    ]:
        body = client.get(f"/api/v1/batches/{batch.id}/items?per_page=500{query}").json()
        expected = [i["id"] for i in items if keep(i)]
        assert body["count"] == len(expected) and [i["id"] for i in body["items"]] == expected
    page = client.get(f"/batches/{batch.id}?held=yes").text
    held = sum(1 for i in items if i["status"] == "held")
    assert re.search(rf"{held} rows · page 1 of 1", page)


def test_held_pages_walk_the_held_items_of_one_batch(seeded: Seeded) -> None:
    """The held filter's own index order (batch_id DESC, id) gives the held items of this
    batch in id order, by keyset both ways and by number; a released item (its hold reason
    kept) and a second batch's items never show."""
    ledger = seeded.ctx.ledger
    batch = ledger.batches()[0]
    client = seeded.client("auditor")
    held = [i["id"] for i in _all(client, batch.id, "&held=yes")]
    assert len(held) >= 4, held
    ledger.release(held[1], by="officer", reason="account checked", account="6222020000001234")
    held.pop(1)
    assert [i["id"] for i in _all(client, batch.id) if i["status"] == "held"] == held
    base = f"/api/v1/batches/{batch.id}/items?held=yes&per_page=2"
    seen, body, page = _walk_forward(client, base)
    assert seen == held and body["count"] == len(held) and page == body["pages"]
    back, body = _walk_back(client, base, body["pages"])
    assert back == held
    for n in range(1, body["pages"] + 1):  # by number, from the nearer end
        assert [i["id"] for i in client.get(f"{base}&page={n}").json()["items"]] == held[
            (n - 1) * 2 : n * 2
        ], n
