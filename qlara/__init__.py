"""Qlara's world: the events it sends, how to read every documented payload shape, and the
rule that turns a set of status events into one message state. Beside it, what the layers
above share: the receipts' wire format (:mod:`qlara.wire`) and the duration spelling
(:mod:`qlara.durations`).

Nothing here imports another package of the sidecar.
"""

from qlara.destination import (
    MOST_LABELLED_COUNTRIES,
    CountryChoice,
    Destination,
    destination,
    parse_country_labels,
)
from qlara.events import (
    CHANNEL_BUCKETS,
    CHANNELS,
    OTHER_CHANNEL,
    PLACEHOLDER_PREFIX,
    STATUSES,
    DeliveryEvent,
    InboundMessage,
    Receipt,
    Shape,
    Source,
    channel_bucket,
    placeholder_id,
)
from qlara.parse import (
    PLAUSIBLE_SPAN,
    InvalidPayload,
    ItemNote,
    ItemRejection,
    ParsedBody,
    parse_body,
    parse_item,
    parse_send_item,
    parse_sends,
)
from qlara.phone import mask_phone, mask_phones, normalise_phone
from qlara.status import (
    FINAL_STATUSES,
    MessageState,
    PartEvent,
    PartState,
    StatusEvent,
    part_states,
    reduce_state,
)

__all__ = [
    "CHANNELS",
    "CHANNEL_BUCKETS",
    "FINAL_STATUSES",
    "MOST_LABELLED_COUNTRIES",
    "OTHER_CHANNEL",
    "PLACEHOLDER_PREFIX",
    "PLAUSIBLE_SPAN",
    "STATUSES",
    "CountryChoice",
    "DeliveryEvent",
    "Destination",
    "InboundMessage",
    "InvalidPayload",
    "ItemNote",
    "ItemRejection",
    "MessageState",
    "ParsedBody",
    "PartEvent",
    "PartState",
    "Receipt",
    "Shape",
    "Source",
    "StatusEvent",
    "channel_bucket",
    "destination",
    "mask_phone",
    "mask_phones",
    "normalise_phone",
    "parse_body",
    "parse_country_labels",
    "parse_item",
    "parse_send_item",
    "parse_sends",
    "part_states",
    "placeholder_id",
    "reduce_state",
]
