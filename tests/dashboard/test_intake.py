"""Reading the sidecar's exposition: rejections by reason, acknowledgement time, backlog."""

from __future__ import annotations

import pytest

from dashboard.scrape import histogram_quantile, read_intake

EXPOSITION = """\
# TYPE qlara_webhook_requests_total counter
qlara_webhook_requests_total{outcome="accepted"} 90.0
qlara_webhook_requests_total{outcome="spooled"} 4.0
qlara_webhook_requests_total{outcome="invalid"} 5.0
qlara_webhook_requests_total{outcome="unauthorized"} 1.0
qlara_webhook_requests_total{outcome="too_large"} 0.0
# TYPE qlara_webhook_ack_seconds histogram
qlara_webhook_ack_seconds_bucket{le="0.005"} 50.0
qlara_webhook_ack_seconds_bucket{le="0.01"} 90.0
qlara_webhook_ack_seconds_bucket{le="0.05"} 100.0
qlara_webhook_ack_seconds_bucket{le="+Inf"} 100.0
qlara_webhook_ack_seconds_count 100.0
qlara_webhook_ack_seconds_sum 0.6
# TYPE qlara_spool_events gauge
qlara_spool_events 3.0
# TYPE qlara_queue_messages gauge
qlara_queue_messages{queue="work"} 12.0
qlara_queue_messages{queue="dead_letter"} 2.0
"""


def test_an_exposition_gives_rejections_ack_time_and_backlog() -> None:
    intake = read_intake(EXPOSITION)

    assert intake.rejected == {"invalid": 5.0, "unauthorized": 1.0}
    assert intake.ack_p50 == pytest.approx(0.005)
    assert intake.ack_p99 == pytest.approx(0.01 + 0.04 * 9 / 10)
    assert intake.spool_events == 3.0
    assert intake.queues == {"work": 12.0, "dead_letter": 2.0}


def test_an_exposition_without_requests_has_no_ack_time() -> None:
    intake = read_intake("# TYPE qlara_spool_events gauge\nqlara_spool_events 0.0\n")

    assert (intake.ack_p50, intake.ack_p99, intake.rejected) == (None, None, {})


def test_a_quantile_in_the_infinite_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, [(0.1, 1.0), (float("inf"), 10.0)]) == 0.1
