"""Every page of the explorer in Streamlit's AppTest, on the seeded ledger: the right
numbers appear, filters and query parameters work, nothing raises."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from dashboard.charts import ERROR_CLASS_COLOURS, STATUS_COLOURS, UNKNOWN_COLOUR
from qlara import parse_body
from tests.dashboard.pages import (
    PAGES,
    charts,
    configure_for,
    frame,
    metrics,
    open_page,
    texts,
)
from tests.dashboard.seed import NOW, record
from tests.ledger.samples import event

THIS_HOUR = {"from": "2025-03-01T11:00:00Z", "to": "2025-03-01T12:00:00Z"}


@pytest.fixture
def explorer(seeded_url: str) -> str:
    """The explorer configured on the seeded ledger (SQLite, then PostgreSQL)."""
    configure_for(seeded_url)
    return seeded_url


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_opens_without_an_exception(explorer: str, page: str) -> None:
    app = open_page(page, THIS_HOUR)

    assert not app.exception
    assert [t.value for t in app.title] == [page.replace("_", " ").capitalize()]


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize(
    "query",
    [
        {"window": "99999999999d"},
        {"from": "0001-01-01T00:00:00+01:00", "to": "9999-12-31T23:59:59-01:00"},
        {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z"},
    ],
)
def test_every_page_opens_on_a_range_past_the_calendar_and_names_it(
    explorer: str, page: str, query: dict[str, str]
) -> None:
    app = open_page(page, query)

    assert not app.exception
    if page == "overview":  # the page the URL opened on names what it dropped
        assert "from" in texts(app) or "window" in texts(app)


def test_the_overview_shows_the_window_beside_the_previous_one(explorer: str) -> None:
    app = open_page("overview", THIS_HOUR)

    shown = metrics(app)
    assert shown["Messages"] == "7"
    assert shown["Delivery rate (messages)"] == "50.0%"
    assert shown["Expiry rate (messages)"] == "16.7%"
    assert shown["Sent → delivered p50"] == "20.0 s"
    assert shown["Sent → delivered p95"] == "30.0 s"
    deltas = {m.label: m.delta for m in app.metric}
    assert deltas["Messages"] == "+5 vs previous window"  # 7 against q1 and q2
    by_status = app.dataframe[0].value.set_index("status")
    assert by_status.loc["delivered"].tolist() == [3, 1]


def test_the_window_parameter_counts_back_from_now(explorer: str) -> None:
    app = open_page("overview", {"window": "30m"})

    # 11:30 to 12:00: the 11:30 recordings are in, nothing before
    assert metrics(app)["Messages"] == "7"
    assert app.query_params.get("window") == "30m"


def test_the_channel_parameter_narrows_the_overview(explorer: str) -> None:
    app = open_page("overview", {**THIS_HOUR, "channel": "whatsapp"})

    assert metrics(app)["Messages"] == "2"
    assert app.selectbox(key="f_channel").value == "whatsapp"


def test_choosing_a_channel_in_the_sidebar_writes_it_to_the_url(explorer: str) -> None:
    app = open_page("overview", THIS_HOUR)

    app.selectbox(key="f_channel").set_value("rcs").run()

    assert metrics(app)["Messages"] == "1"
    assert app.query_params.get("channel") == "rcs"
    assert app.query_params.get("from") == "2025-03-01T11:00:00Z"


def test_a_bad_parameter_is_ignored_and_named(explorer: str) -> None:
    app = open_page("overview", {**THIS_HOUR, "channel": "pigeon"})

    assert not app.exception
    assert metrics(app)["Messages"] == "7"
    assert "channel: 'pigeon' is not one of" in texts(app)


def test_the_messages_page_masks_phones_and_searches_by_phone(explorer: str) -> None:
    app = open_page("messages", {**THIS_HOUR, "search": "4567"})

    table = app.dataframe[0].value
    assert sorted(table["message id"]) == ["d1", "d3"]
    assert "+39******4567" in list(table["phone"])
    assert "+393901234567" not in texts(app)


def test_revealing_one_row_shows_its_phone_only(explorer: str) -> None:
    app = open_page("messages", {**THIS_HOUR, "search": "otp-rossi"})

    app.selectbox(key="f_reveal").set_value("d1").run()

    assert "+393901234567" in texts(app)
    assert list(app.dataframe[0].value["phone"]) == ["+39******4567"]


def test_the_messages_page_filters_by_status_and_error_class(explorer: str) -> None:
    app = open_page("messages", {**THIS_HOUR, "status": "error"})
    assert sorted(app.dataframe[0].value["message id"]) == ["e1", "e2"]

    app.selectbox(key="f_error_class").set_value("invalid_number").run()

    assert list(app.dataframe[0].value["message id"]) == ["e2"]


def test_the_messages_page_says_so_when_nothing_matches(explorer: str) -> None:
    app = open_page("messages", {**THIS_HOUR, "search": "no-such-message"})

    assert not app.dataframe
    assert "No message matches" in texts(app)


def test_the_detail_page_tells_the_message_s_story(explorer: str) -> None:
    app = open_page("message_detail", {"message": "d3"})

    assert metrics(app)["Status"] == "delivered"
    timeline = app.dataframe[0].value
    assert list(timeline["status"]) == ["sent", "delivered", "read"]
    assert "Read at 2025-03-01 11:25:00 UTC." in texts(app)
    assert len(app.expander) == 3  # one raw payload each


def test_the_detail_page_of_a_multi_part_sms_lists_its_parts(explorer: str, seeded: Engine) -> None:
    record(seeded, NOW, event("mp", "error", 44, part=1, total_parts=2, error="Not delivered"))
    record(seeded, NOW, event("mp", "delivered", 45, part=2, total_parts=2))

    app = open_page("message_detail", {"message": "mp"})

    assert metrics(app)["Status"] == "error"
    assert metrics(app)["Final"] == "yes"
    parts = app.dataframe[0].value
    assert list(parts["part"]) == ["1/2", "2/2"]
    assert list(parts["status"]) == ["error", "delivered"]
    assert list(parts["error"]) == ["Not delivered", ""]


def test_the_detail_page_marks_an_event_timed_at_its_receipt(explorer: str, seeded: Engine) -> None:
    import msgspec

    record(
        seeded, NOW, msgspec.structs.replace(event("rt", "delivered", 3), time_from_receipt=True)
    )

    app = open_page("message_detail", {"message": "rt"})

    [time_text] = list(app.dataframe[0].value["event time"])
    assert time_text.endswith(" (receipt)")
    assert "timestamp was missing or implausible" in texts(app)


def test_the_detail_page_says_where_each_status_came_from(explorer: str, seeded: Engine) -> None:
    import msgspec

    from qlara import Shape, Source

    sent = msgspec.structs.replace(event("src", "sent", 0), source=Source.APP, shape=Shape.APP)
    polled = msgspec.structs.replace(
        event("src", "delivered", 60), source=Source.POLL, shape=Shape.POLL
    )
    record(seeded, NOW, sent, event("src", "received", 5), polled)

    app = open_page("message_detail", {"message": "src"})

    timeline = app.dataframe[0].value.set_index("status")
    assert timeline.loc["sent", "from"] == "your application"
    assert timeline.loc["received", "from"] == "Qlara's webhook"
    assert timeline.loc["delivered", "from"] == "polled from Qlara"
    assert "the webhook never delivered this status" in texts(app)


def test_the_detail_page_of_an_unknown_message_says_so(explorer: str) -> None:
    app = open_page("message_detail", {"message": "nope"})

    assert "The ledger has no message 'nope'." in texts(app)


def test_typing_a_message_id_opens_it_and_writes_it_to_the_url(explorer: str) -> None:
    app = open_page("message_detail")

    app.text_input(key="f_message").input("e1").run()

    assert metrics(app)["Status"] == "error"
    assert app.query_params.get("message") == "e1"


def test_webhook_health_shows_last_events_gaps_and_dead_letters(explorer: str) -> None:
    from ledger import Ledger

    ledger = Ledger.connect(explorer, migrate=False)
    ledger.add_dead_letter(payload="{}", reason="Refused: boom", attempts=9, receipt_id="r1")
    ledger.close()

    app = open_page("webhook_health", THIS_HOUR)

    shown = metrics(app)
    assert shown["sms"] == "30.0 min ago"
    assert shown["Waiting"] == "1"
    assert "2 silence(s) longer than 5m" in texts(app)
    assert list(app.dataframe[-1].value["reason"]) == ["Refused: boom"]
    assert "metrics address is not configured" in texts(app)


def test_webhook_health_counts_the_statuses_filled_by_polling(
    explorer: str, seeded: Engine
) -> None:
    from datetime import timedelta

    import msgspec

    from qlara import Shape, Source

    polled = [
        msgspec.structs.replace(
            event(f"gap-{n}", "delivered", 0), source=Source.POLL, shape=Shape.POLL
        )
        for n in range(3)
    ]
    record(seeded, NOW - timedelta(minutes=10), *polled)

    app = open_page("webhook_health", THIS_HOUR)

    assert metrics(app)["Filled by polling"] == "3"
    assert "never came by the webhook" in texts(app)
    # the last event per channel is still the webhook's (30 minutes ago), not the poll's
    assert metrics(app)["sms"] == "30.0 min ago"


def test_an_operator_redrives_the_dead_letters_once_confirmed(seeded_url: str) -> None:
    from ledger import Ledger

    asked: list[int] = []

    def redrive(limit: int) -> tuple[int, int]:
        asked.append(limit)
        return limit, 0

    configure_for(seeded_url, redrive=redrive)
    ledger = Ledger.connect(seeded_url, migrate=False)
    ledger.add_dead_letter(payload="{}", reason="boom", attempts=9, receipt_id="r1")
    ledger.add_dead_letter(payload="{}", reason="boom", attempts=9, receipt_id="r2")
    ledger.close()
    app = open_page("webhook_health", THIS_HOUR)
    redrive_button = next(b for b in app.button if b.label == "Redrive")
    assert redrive_button.disabled

    app.checkbox[0].check().run()
    next(b for b in app.button if b.label == "Redrive").click().run()

    assert asked == [2]
    assert "Redriven: 2. Still waiting: 0." in [s.value for s in app.success]


def test_the_failures_page_groups_by_error_class(explorer: str) -> None:
    app = open_page("failures", THIS_HOUR)

    shown = metrics(app)
    assert shown["Failed or expired messages"] == "3"
    assert shown["Expired share (messages)"] == "16.7%"
    top = frame(app, "error text")
    assert sorted(top["error text"]) == [
        "(expired, no error text)",
        "Blocked by carrier",
        "Unknown subscriber",
    ]


def test_the_stuck_page_lists_messages_past_their_channel_s_threshold(explorer: str) -> None:
    app = open_page("stuck_messages")

    shown = metrics(app)
    assert (shown["Stuck sms"], shown["Stuck rcs"], shown["Stuck whatsapp"]) == ("1", "0", "1")
    assert list(app.dataframe[0].value["message id"]) == ["s3", "s1"]


def test_the_stuck_page_honours_the_channel_parameter(explorer: str) -> None:
    app = open_page("stuck_messages", {"channel": "whatsapp"})

    assert list(app.dataframe[0].value["message id"]) == ["s3"]


def test_with_a_password_nothing_shows_before_signing_in(seeded_url: str) -> None:
    configure_for(seeded_url, password="correct horse", users=("ana",))
    app = open_page("overview", THIS_HOUR)
    assert not app.metric

    app.text_input[0].input("bob")
    app.text_input[1].input("correct horse")
    app.button[0].click().run()
    assert not app.metric
    assert "Wrong user name or password." in texts(app)

    app.text_input[0].input("ana")
    app.text_input[1].input("correct horse")
    app.button[0].click().run()
    assert metrics(app)["Messages"] == "7"


def _colours(spec: dict[str, Any]) -> dict[str, str]:
    scale = spec["encoding"]["color"]["scale"]
    return dict(zip(scale["domain"], scale["range"], strict=True))


def _x_axis(spec: dict[str, Any]) -> tuple[str, list[str], str]:
    x = spec["encoding"]["x"]
    return x["scale"]["type"], x["scale"]["domain"], x["axis"]["format"]


def test_every_status_has_its_fixed_colour_and_an_unknown_one_a_neutral_one(
    explorer: str, seeded: Engine
) -> None:
    # Given a status nobody documented beside the usual ones
    record(seeded, NOW - timedelta(minutes=20), event("u1", "queued_at_carrier", 0))

    [chart] = charts(open_page("overview", THIS_HOUR))

    colours = _colours(chart)
    assert colours["delivered"] == STATUS_COLOURS["delivered"] == "#2ca02c"
    assert colours["error"] == STATUS_COLOURS["error"]
    assert colours["expired"] == STATUS_COLOURS["expired"]
    assert colours["sent"] == STATUS_COLOURS["sent"]
    assert colours["queued_at_carrier"] == UNKNOWN_COLOUR
    assert UNKNOWN_COLOUR not in STATUS_COLOURS.values()


def test_error_classes_keep_their_colour_whatever_the_window_holds(explorer: str) -> None:
    [chart] = charts(open_page("failures", THIS_HOUR))

    colours = _colours(chart)
    assert set(colours) == {"blocked", "invalid_number", "expired"}
    assert all(ERROR_CLASS_COLOURS[kind] == colour for kind, colour in colours.items())
    assert len(set(ERROR_CLASS_COLOURS.values())) == len(ERROR_CLASS_COLOURS)


@pytest.mark.parametrize("page", ["overview", "failures", "webhook_health"])
def test_time_axes_span_the_window_in_24_hour_utc(explorer: str, page: str) -> None:
    shown = charts(open_page(page, THIS_HOUR))

    assert shown
    for spec in shown:
        kind, domain, label = _x_axis(spec)
        assert kind == "utc"
        assert label == "%H:%M"  # 24-hour, never "10 PM"
        assert domain == ["2025-03-01T11:00:00+00:00", "2025-03-01T12:00:00+00:00"]


def test_a_window_of_days_labels_its_axis_with_the_day(explorer: str) -> None:
    window = {"from": "2025-02-25T12:00:00Z", "to": "2025-03-01T12:00:00Z"}

    [chart] = charts(open_page("overview", window))

    assert _x_axis(chart)[2] == "%d %b %H:%M"


def test_the_expired_share_is_one_number_on_both_pages_and_the_per_event_one_is_labelled(
    explorer: str, seeded: Engine
) -> None:
    # Given an expiry the platform shape reports as a failure (code 6) with its text
    record(
        seeded,
        NOW - timedelta(minutes=10),
        event("b-exp", "sent", 0),
        event("b-exp", "error", 5, error="Validity period expired"),
    )

    overview = open_page("overview", THIS_HOUR)
    failures = open_page("failures", THIS_HOUR)

    # Then both pages give the same expired share of final messages, by status
    expiry = metrics(overview)["Expiry rate (messages)"]
    assert expiry == metrics(failures)["Expired share (messages)"] == "14.3%"  # 1 of 7
    # And the per-event figures, as the alerts count them, are shown beside, named so
    assert "Per event, as the alerts count" in texts(overview)
    assert "Per event, as the alerts count" in texts(failures)


def test_the_detail_page_masks_phone_numbers_inside_the_raw_payloads(
    explorer: str, seeded: Engine
) -> None:
    # Given an event as Qlara sent it, the number in its field and quoted in its error
    body = {
        "messageId": "raw-1",
        "phoneNumber": "+393901234567",
        "status": "ERROR",
        "timestamp": "2025-03-01T11:40:00Z",
        "channel": "sms",
        "error": "Number +393901234567 barred",
    }
    [parsed] = parse_body(json.dumps(body).encode()).events
    record(seeded, NOW - timedelta(minutes=15), parsed)

    app = open_page("message_detail", {"message": "raw-1"})

    shown = [json.loads(element.value) for element in app.json]
    assert shown == [
        {**body, "phoneNumber": "+39******4567", "error": "Number +39******4567 barred"}
    ]
    assert "3901234567" not in texts(app)
    assert "3901234567" not in app.dataframe[0].value.to_csv()
    # And the error text is masked wherever else it is shown
    for page in ("messages", "failures"):
        shown_page = open_page(page, THIS_HOUR)
        tables = "".join(frame.value.to_csv() for frame in shown_page.dataframe)
        assert "Number +39******4567 barred" in tables, page
        assert "3901234567" not in tables + texts(shown_page), page


def test_the_messages_list_counts_the_matches_and_writes_nothing_as_an_empty_cell(
    explorer: str,
) -> None:
    app = open_page("messages", THIS_HOUR)

    # 7 messages changed this hour (the overview's count): all on one page
    assert "**7** messages match · showing 1-7" in texts(app)
    table = app.dataframe[0].value
    assert len(table) == 7
    shown = table.to_csv()
    assert "None" not in shown
    assert ",-," not in shown  # p1 has no final status, no latency, no error: empty cells
    pending = table.set_index("message id").loc["p1"]
    assert (pending["sent → final"], pending["error"]) == ("", "")
    # the columns a support person reads, all of them fitting the page
    assert list(table.columns) == [
        "message id",
        "customer message id",
        "channel",
        "phone",
        "status",
        "sent (UTC)",
        "sent → final",
        "error",
    ]


def test_a_search_looks_at_the_whole_ledger_and_says_so(explorer: str) -> None:
    # q1 changed in the hour before the window asked for
    app = open_page("messages", {**THIS_HOUR, "search": "q1"})

    assert "Searching the whole ledger" in texts(app)
    assert list(app.dataframe[0].value["message id"]) == ["q1"]
    assert "**1** message match" in texts(app)


def test_the_messages_list_sorts_by_any_column_it_shows(explorer: str) -> None:
    app = open_page("messages", THIS_HOUR)

    app.selectbox(key="f_sort").set_value("latency").run()
    app.radio(key="f_order").set_value("ascending").run()

    table = app.dataframe[0].value
    timed = [v for v in table["sent → final"] if v]
    unit = {"ms": 0.001, "s": 1, "min": 60, "h": 3600}
    shown = [float(v.split()[0]) * unit[v.split()[1]] for v in timed]
    assert len(shown) > 1
    assert shown == sorted(shown)
    # the empty values come last, and the page says how it is sorted
    assert list(table["sent → final"])[len(timed) :] == [""] * (len(table) - len(timed))
    assert "by sent → final, ascending" in texts(app)


def test_the_failures_page_shows_where_failures_happen_by_country_and_operator(
    explorer: str,
) -> None:
    app = open_page("failures", THIS_HOUR)

    countries = frame(app, "country", "failure share").set_index("country")
    # e1, e2 and x1 went to France: three failures of the four French final messages
    assert countries.loc["FR", ["failed", "expired"]].tolist() == [2, 1]
    assert countries.loc["FR", "failure share"] == 1.0
    assert countries.loc["IT", "failure share"] == 0.0
    operators = frame(app, "operator").set_index(["country", "operator"])
    assert operators.loc[("FR", "Free Mobile"), "failed"] == 2
    assert operators.loc[("GB", "(not in the plan)"), "delivered"] == 1
    assert "first assigned to" in texts(app)
    assert "3901234567" not in texts(app)


def test_the_overview_shows_spend_by_country_and_channel_and_what_failures_cost(
    explorer: str,
) -> None:
    app = open_page("overview", THIS_HOUR)

    shown = metrics(app)
    # d1 0.035 and d2 0.04 bought deliveries, e1's 0.05 a failure
    assert shown["Spend"] == "0.1250"
    assert shown["Spent on failed or expired messages"] == "0.0500"
    assert shown["Of the spend"] == "40.0%"
    by_channel = frame(app, "channel", "spend").set_index("channel")
    assert round(by_channel.loc["sms", "spend"], 6) == 0.125
    assert by_channel.loc["whatsapp", "spend"] == 0.0
    by_country = frame(app, "country", "spend").set_index("country")
    assert by_country.loc["IT", "mean sent → delivered (s)"] == 10.0
    assert by_country.loc["FR", "spent on failures"] == 0.05


def test_the_overview_marks_percentiles_read_from_the_histogram(
    explorer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard import queries

    monkeypatch.setattr(queries, "EXACT_LATENCIES", 1)
    app = open_page("overview", THIS_HOUR)

    assert metrics(app)["Sent → delivered p50"].startswith("≈ ")
    assert "from an hourly histogram, within 2.2 %" in texts(app)


def test_the_detail_page_says_in_one_sentence_what_happened(explorer: str) -> None:
    app = open_page("message_detail", {"message": "d3"})

    assert (
        "Delivered to +49******4567 at 11:22:20 UTC, 20.0 s after it was sent; read at "
        "11:25:00 UTC." in texts(app)
    )
