"""Rules defined once, low in the layers, and read by every layer above: a test per rule
that another layer's copy has not drifted."""

from __future__ import annotations

import dashboard
import metrics
from alerts.thresholds import PerChannel
from qlara import CHANNEL_BUCKETS, CHANNELS, OTHER_CHANNEL, channel_bucket
from sidecar.settings import DEFAULT_EXPIRY_HORIZON, DEFAULT_RECONCILE_AFTER


def test_every_layer_shows_the_one_list_of_channels() -> None:
    assert (*sorted(CHANNELS, key=CHANNEL_BUCKETS.index), OTHER_CHANNEL) == CHANNEL_BUCKETS
    assert metrics.CHANNELS == CHANNEL_BUCKETS  # the label's values
    assert dashboard.CHANNELS == CHANNEL_BUCKETS  # the explorer's filter
    assert tuple(PerChannel.model_fields) == CHANNEL_BUCKETS  # alert thresholds
    assert tuple(DEFAULT_RECONCILE_AFTER) == CHANNEL_BUCKETS  # per-channel settings
    assert tuple(DEFAULT_EXPIRY_HORIZON) == CHANNEL_BUCKETS


def test_a_channel_falls_in_one_bucket_whatever_its_case() -> None:
    assert [channel_bucket(c) for c in ("SMS", "WhatsApp", "rcs", "telegram", None, "")] == [
        "sms",
        "whatsapp",
        "rcs",
        "other",
        "other",
        "other",
    ]
    assert metrics.channel_label("WHATSAPP") == "whatsapp"
