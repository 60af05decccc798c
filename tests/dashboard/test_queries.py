"""The explorer's query functions on the seeded ledger (:mod:`tests.dashboard.seed`), once
per backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from dashboard import queries
from dashboard.figures import Gap
from ledger import MessageSummary
from ledger.places import latency_bucket
from ledger.schema import messages
from tests.dashboard.seed import HOUR_BEFORE, NOW, THIS_HOUR, THRESHOLDS, record
from tests.ledger.samples import event

MINUTE = timedelta(minutes=1)


def test_outcomes_count_the_window_s_messages_by_status_with_rates_and_latency(
    seeded: Engine,
) -> None:
    with seeded.connect() as conn:
        found = queries.outcomes(conn, *THIS_HOUR, None)

    assert found.messages == 7
    assert found.by_status == {"delivered": 3, "error": 2, "expired": 1, "sent": 1}
    assert (found.delivered, found.failed, found.expired) == (3, 2, 1)
    assert found.delivery_rate == pytest.approx(0.5)
    assert found.expiry_rate == pytest.approx(1 / 6)
    # delivered in 10 20 30 s (the error and expired ones do not count): nearest rank 2 of 3
    # and 3 of 3
    assert (found.latency_p50, found.latency_p95) == (20.0, 30.0)


def test_over_many_deliveries_the_percentiles_come_from_the_hourly_histogram(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two hours: the hour before (q1, 60 s) whole, from the histogram; this hour's 10, 20
    # and 30 s from the messages at the window's edge (the window ends at 12:00:00, the
    # messages changed at 11:30)
    window = (HOUR_BEFORE[0] + timedelta(minutes=1), NOW)
    with seeded.connect() as conn:
        exact = queries.outcomes(conn, *window, None)
        monkeypatch.setattr(queries, "EXACT_LATENCIES", 1)
        approximate = queries.outcomes(conn, *window, None)

    assert exact.latency_exact
    assert not approximate.latency_exact
    assert (exact.latency_p50, exact.latency_p95) == (20.0, 60.0)
    assert approximate.latency_p50 == pytest.approx(20.0, rel=0.022)
    assert approximate.latency_p95 == pytest.approx(60.0, rel=0.022)
    assert approximate.by_status == exact.by_status


def test_the_histogram_percentile_is_the_nearest_rank_s_bucket() -> None:
    counts = {latency_bucket(s): 1 for s in (1.0, 2.0, 4.0, 8.0)}
    assert queries.bucket_percentile(counts, 0.5) == pytest.approx(2.0, rel=0.022)
    assert queries.bucket_percentile(counts, 0.95) == pytest.approx(8.0, rel=0.022)
    assert queries.bucket_percentile({}, 0.5) is None


def test_outcomes_of_the_previous_window_hold_only_its_messages(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.outcomes(conn, *HOUR_BEFORE, None)

    assert found.by_status == {"delivered": 1, "error": 1}
    assert (found.latency_p50, found.latency_p95) == (60.0, 60.0)


def test_outcomes_narrowed_to_a_channel_count_only_its_messages(seeded: Engine) -> None:
    with seeded.connect() as conn:
        whatsapp = queries.outcomes(conn, *THIS_HOUR, "whatsapp")
        other = queries.outcomes(conn, *THIS_HOUR, "other")

    assert whatsapp.by_status == {"delivered": 1, "expired": 1}
    assert other.messages == 0
    assert other.delivery_rate is None


def test_a_message_without_a_channel_counts_under_other(seeded: Engine) -> None:
    record(seeded, NOW - timedelta(minutes=5), event("n1", "sent", 0, channel=None))

    with seeded.connect() as conn:
        found = queries.outcomes(conn, *THIS_HOUR, "other")

    assert found.by_status == {"sent": 1}


def test_outcomes_count_a_status_qlara_may_add(seeded: Engine) -> None:
    record(seeded, NOW - timedelta(minutes=5), event("u1", "queued_at_carrier", 0))

    with seeded.connect() as conn:
        found = queries.outcomes(conn, NOW - timedelta(minutes=10), NOW, None)

    assert found.by_status == {"queued_at_carrier": 1}


def test_event_rates_count_distinct_events_per_bucket_and_status(seeded: Engine) -> None:
    with seeded.connect() as conn:
        points = queries.event_rates(conn, *THIS_HOUR, None, MINUTE)

    # Everything of this hour was received at 11:30: 7 sent, 3 delivered, 1 read, 2 error,
    # 1 expired.
    assert {(p.at, p.status): p.events for p in points} == {
        (NOW - timedelta(minutes=30), "delivered"): 3,
        (NOW - timedelta(minutes=30), "error"): 2,
        (NOW - timedelta(minutes=30), "expired"): 1,
        (NOW - timedelta(minutes=30), "read"): 1,
        (NOW - timedelta(minutes=30), "sent"): 7,
    }


def test_event_rates_put_each_event_in_the_bucket_of_its_receipt_time(seeded: Engine) -> None:
    with seeded.connect() as conn:
        points = queries.event_rates(conn, NOW - timedelta(hours=8), NOW, "sms", timedelta(hours=1))

    by_hour: dict[int, int] = {}
    for p in points:
        by_hour[p.at.hour] = by_hour.get(p.at.hour, 0) + p.events
    # s1 at 09:00, q1 q2 at 10:30 (4 events), d1 d2 e1 p1 at 11:30 (7 events)
    assert by_hour == {9: 1, 10: 4, 11: 7}


def test_events_seconds_apart_share_their_bucket(seeded: Engine) -> None:
    # Three events of one status within a 5-minute bucket, off whole minutes
    start = NOW - timedelta(minutes=50)
    for n, offset in enumerate(
        (timedelta(seconds=13), timedelta(seconds=47), timedelta(minutes=3))
    ):
        record(seeded, start + offset, event(f"b{n}", "sent", 0))

    with seeded.connect() as conn:
        points = queries.event_rates(conn, start, start + timedelta(minutes=5), None, 5 * MINUTE)

    # One point for the bucket and status, not one per second
    assert [(p.at, p.status, p.events) for p in points] == [(start, "sent", 3)]


def test_gaps_are_the_silences_longer_than_the_threshold(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.gaps(conn, *THIS_HOUR, None, timedelta(minutes=5))

    # To the second: the only events were received at 11:30:00 exactly
    half_past = NOW - timedelta(minutes=30)
    assert found == [Gap(THIS_HOUR[0], half_past), Gap(half_past, NOW)]


def test_a_gap_is_measured_in_seconds_not_whole_minutes(empty_ledger: Engine) -> None:
    # Given events every 20 s, then a silence of 5 min 26 s, then events again
    start = NOW - timedelta(minutes=30)
    quiet_from = start + timedelta(minutes=10, seconds=50)
    quiet_to = quiet_from + timedelta(minutes=5, seconds=26)
    moments = [start + timedelta(seconds=s) for s in range(0, 30 * 60, 20)]
    for n, at in enumerate(m for m in moments if not quiet_from < m < quiet_to):
        record(empty_ledger, at, event(f"g{n}", "sent", 0))
    record(empty_ledger, quiet_from, event("edge-a", "sent", 0))
    record(empty_ledger, quiet_to, event("edge-b", "sent", 0))

    with empty_ledger.connect() as conn:
        at_five = queries.gaps(conn, start, NOW, None, timedelta(minutes=5))
        at_six = queries.gaps(conn, start, NOW, None, timedelta(minutes=6))

    # Then the 326 s silence is flagged at a 5 min threshold, exactly, and not at 6 min
    assert at_five == [Gap(quiet_from, quiet_to)]
    assert at_five[0].seconds == 326
    assert at_six == []


def test_the_time_before_the_first_event_ever_is_no_silence(empty_ledger: Engine) -> None:
    # Given a ledger whose first event arrived 20 min into the window, then one a minute
    start = NOW - timedelta(hours=1)
    first = start + timedelta(minutes=20, seconds=20)
    for n in range(40):
        record(empty_ledger, first + n * MINUTE, event(f"f{n}", "sent", 0))

    with empty_ledger.connect() as conn:
        found = queries.gaps(conn, start, NOW, None, timedelta(minutes=5))

    # Then nothing before it is a silence, and nothing after it was one
    assert found == []


def test_no_gap_is_reported_when_the_silences_are_short() -> None:
    start = NOW - timedelta(minutes=10)
    busy = [start + i * MINUTE for i in range(0, 10, 2)]

    assert queries.find_gaps(busy, start, NOW, timedelta(minutes=2)) == []


def test_last_events_give_each_channel_s_newest_receipt_and_its_age(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.last_events(conn, NOW)

    assert {e.channel: e.age_seconds for e in found} == {
        "sms": 1800.0,
        "rcs": 1800.0,
        "whatsapp": 1800.0,
    }


def test_find_messages_lists_the_window_newest_update_first(seeded: Engine) -> None:
    with seeded.connect() as conn:
        page = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW)

    assert sorted(m.message_id for m in page.items) == ["d1", "d2", "d3", "e1", "e2", "p1", "x1"]
    assert page.next_cursor is None


def test_find_messages_pages_through_every_match_once(seeded: Engine) -> None:
    seen: list[str] = []
    cursor = None
    with seeded.connect() as conn:
        while True:
            page = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW, limit=3, cursor=cursor)
            seen.extend(m.message_id for m in page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    assert sorted(seen) == ["d1", "d2", "d3", "e1", "e2", "p1", "x1"]
    assert len(seen) == 7


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("d2", ["d2"]),
        ("otp-rossi", ["d1"]),
        ("4567", ["d1", "d3"]),
        ("390 123 4567", ["d1"]),
        ("0039 3901234567", ["d1"]),
        ("+39 390 123", []),  # the start of a number is not its trailing digits
        ("567", []),  # fewer than four digits pick too many to be a search
    ],
)
def test_search_matches_an_id_exactly_or_the_trailing_digits_of_a_normalised_phone(
    seeded: Engine, search: str, expected: list[str]
) -> None:
    with seeded.connect() as conn:
        page = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW, search=search)

    assert sorted(m.message_id for m in page.items) == expected


def test_find_messages_filters_by_status_channel_and_error_class(seeded: Engine) -> None:
    with seeded.connect() as conn:
        errors = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW, status="error")
        sms = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW, channel="sms")
        blocked = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW, error_class="blocked")
        expired = queries.find_messages(conn, start=THIS_HOUR[0], end=NOW, error_class="expired")
        contradiction = queries.find_messages(
            conn, start=THIS_HOUR[0], end=NOW, status="delivered", error_class="blocked"
        )

    assert sorted(m.message_id for m in errors.items) == ["e1", "e2"]
    assert sorted(m.message_id for m in sms.items) == ["d1", "d2", "e1", "p1"]
    assert [m.message_id for m in blocked.items] == ["e1"]
    assert [m.message_id for m in expired.items] == ["x1"]
    assert contradiction.items == []


@pytest.mark.parametrize("sort", sorted(queries.SORTS))
@pytest.mark.parametrize("descending", [True, False])
def test_the_list_sorts_the_whole_window_by_any_column_page_after_page(
    seeded: Engine, sort: str, descending: bool
) -> None:
    day = {"start": NOW - timedelta(days=1), "end": NOW}
    seen: list[MessageSummary] = []
    cursor = None
    with seeded.connect() as conn:
        while True:
            page = queries.find_messages(
                conn, **day, limit=5, cursor=cursor, sort=sort, descending=descending
            )
            seen.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        exported = queries.all_messages(conn, **day, limit=100, sort=sort, descending=descending)

    # Every message once, across pages of 5, in the column's order with empty values last
    assert len(seen) == len({m.message_id for m in seen}) == 12
    field = {"updated": "updated_at", "sent": "sent_at", "final": "final_at"}.get(sort, sort)
    if sort == "latency":
        field = "latency_seconds"
    values = [getattr(m, field) for m in seen]
    present = [v for v in values if v is not None]
    assert values == present + [None] * (len(values) - len(present))
    assert present == sorted(present, reverse=descending)
    assert [m.message_id for m in exported] == [m.message_id for m in seen]


def test_a_cursor_of_one_order_is_refused_in_another(seeded: Engine) -> None:
    with seeded.connect() as conn:
        by_time = queries.find_messages(conn, start=NOW - timedelta(days=1), end=NOW, limit=2)
        assert by_time.next_cursor is not None
        with pytest.raises(ValueError, match="invalid cursor"):
            queries.find_messages(
                conn,
                start=NOW - timedelta(days=1),
                end=NOW,
                cursor=by_time.next_cursor,
                sort="latency",
            )
        with pytest.raises(ValueError, match="unknown sort"):
            queries.find_messages(conn, start=NOW - timedelta(days=1), end=NOW, sort="price")


def test_all_messages_returns_every_match_up_to_the_limit(seeded: Engine) -> None:
    with seeded.connect() as conn:
        everything = queries.all_messages(conn, start=NOW - timedelta(days=1), end=NOW, limit=100)
        capped = queries.all_messages(conn, start=NOW - timedelta(days=1), end=NOW, limit=4)

    assert len(everything) == 12
    assert len(capped) == 4


def test_message_detail_holds_the_state_and_every_event(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.message_detail(conn, "d3")
        unknown = queries.message_detail(conn, "nope")

    assert found is not None
    assert (found.status, found.channel, found.phone) == ("delivered", "whatsapp", "+491701234567")
    assert [e.status for e in found.events] == ["sent", "delivered", "read"]
    assert found.read_at is not None
    assert unknown is None


def test_failures_group_by_class_and_channel_and_list_the_raw_texts(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.failures(conn, *THIS_HOUR, None, timedelta(minutes=10))

    assert found.by_class == {
        ("sms", "blocked"): 1,
        ("rcs", "invalid_number"): 1,
        ("whatsapp", "expired"): 1,
    }
    assert sorted(found.top_errors) == [
        ("rcs", "Unknown subscriber", 1),
        ("sms", "Blocked by carrier", 1),
        ("whatsapp", "(expired, no error text)", 1),
    ]
    assert {(at, kind) for at, kind, _ in found.over_time} == {
        (NOW - timedelta(minutes=30), "blocked"),
        (NOW - timedelta(minutes=30), "invalid_number"),
        (NOW - timedelta(minutes=30), "expired"),
    }
    assert found.expired_share == pytest.approx(1 / 6)


def test_failures_narrowed_to_a_channel(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.failures(conn, *HOUR_BEFORE, "sms", timedelta(minutes=10))

    assert found.by_class == {("sms", "absent"): 1}
    assert found.expired_share == 0.0


def test_stuck_messages_are_those_pending_past_their_channel_s_threshold(
    seeded: Engine,
) -> None:
    with seeded.connect() as conn:
        found = queries.stuck_messages(conn, NOW, THRESHOLDS)
        sms_only = queries.stuck_messages(conn, NOW, THRESHOLDS, channel="sms")

    assert found.counts == {"sms": 1, "rcs": 0, "whatsapp": 1, "other": 0}
    assert [m.message_id for m in found.items] == ["s3", "s1"]  # oldest first
    assert [m.message_id for m in sms_only.items] == ["s1"]


def test_stuck_messages_are_capped_at_the_limit_oldest_first(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.stuck_messages(conn, NOW, THRESHOLDS, limit=1)

    assert [m.message_id for m in found.items] == ["s3"]
    assert sum(found.counts.values()) == 2


def test_waiting_dead_letters_are_counted_oldest_listed_first(seeded_url: str) -> None:
    from ledger import Ledger

    ledger = Ledger.connect(seeded_url, migrate=False)
    first = ledger.add_dead_letter(payload="{}", reason="boom", attempts=9, receipt_id="r1")
    ledger.add_dead_letter(payload="{}", reason="boom", attempts=9, receipt_id="r2")
    ledger.mark_redriven(first)
    ledger.add_dead_letter(payload="{}", reason="bang", attempts=9, receipt_id="r3")
    from ledger.engine import build_engine

    engine = build_engine(seeded_url)
    try:
        with engine.connect() as conn:
            found = queries.waiting_dead_letters(conn, limit=1)
    finally:
        engine.dispose()
        ledger.close()

    assert found.waiting == 2
    assert [d.receipt_id for d in found.oldest] == ["r2"]


def test_percentile_is_the_nearest_rank() -> None:
    assert queries.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert queries.percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
    assert queries.percentile([], 0.5) is None


def test_a_phone_search_reads_the_phone_tail_index_not_every_phone(empty_ledger: Engine) -> None:
    query = select(messages.c.message_id).where(queries._search_clause("390 123 4567"))
    with empty_ledger.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: force the choice
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        # Compiled as the query runs, its values bound: a number of the expression bound as
        # a parameter would not match the index's expression, and the planner would read
        # every phone
        compiled = query.compile(conn)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        if conn.dialect.name == "postgresql":
            params = compiled.params  # type: ignore[assignment]
        plan = " ".join(str(row) for row in conn.exec_driver_sql(explain + str(compiled), params))

    assert "ix_messages_phone_tail" in plan


def test_places_group_the_window_by_country_operator_and_channel(seeded: Engine) -> None:
    with seeded.connect() as conn:
        found = queries.places(conn, *THIS_HOUR, None)
        sms = queries.places(conn, *THIS_HOUR, "sms")

    by_key = {(p.country, p.operator, p.channel): p for p in found}
    # d1 to Italy; d2 to the UK (no operator in the plan); d3 to Germany; the rest to France
    assert set(by_key) == {
        ("IT", "3 Italia", "sms"),
        ("GB", None, "sms"),
        ("DE", "T-Mobile", "whatsapp"),
        ("FR", "Free Mobile", "sms"),
        ("FR", "Free Mobile", "rcs"),
        ("FR", "Free Mobile", "whatsapp"),
    }
    france_sms = by_key["FR", "Free Mobile", "sms"]  # e1 (error, 0.05) and p1 (pending)
    assert (france_sms.messages, france_sms.delivered, france_sms.failed) == (2, 0, 1)
    assert (france_sms.spend, france_sms.failed_spend) == (0.05, 0.05)
    italy = by_key["IT", "3 Italia", "sms"]
    assert (italy.delivered, italy.spend, italy.failed_spend) == (1, 0.035, 0.0)
    assert (italy.latency_total, italy.latency_count) == (10.0, 1)
    expired = by_key["FR", "Free Mobile", "whatsapp"]  # x1: expired, no latency to deliver
    assert (expired.expired, expired.latency_count) == (1, 0)
    # the same 7 messages as the overview, most first; a channel narrows it
    assert sum(p.messages for p in found) == 7
    assert found[0] == france_sms
    assert {p.channel for p in sms} == {"sms"}
    assert sum(p.messages for p in sms) == 4
