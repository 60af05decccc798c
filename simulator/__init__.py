"""Qlara's webhook traffic, made up: what a sidecar is fed by `simulate`, `demo`, the tests
and the benchmarks, and exactly what it must make of it.

Two generators, for two kinds of use:

- :func:`live_traffic` (:mod:`simulator.live`) paces requests in time, endlessly if asked,
  with error bursts, reported sends and dropped finals; :class:`TrafficSummary`
  (:mod:`simulator.summary`) counts what was acknowledged as the sidecar will, so a run can be
  checked without storing it;
- :func:`plan_traffic` (:mod:`simulator.plan`) lays out a finite list of request bodies and,
  per message, the state the ledger must end in, so a test can post them however it likes
  and check the record message by message.

It is not the domain: nothing under it is read by the sidecar's receiving or recording, so it
sits beside them, imported only by the command line (and the tests and benchmarks).
"""

from simulator.live import (
    ErrorBurst,
    EventKey,
    SimEvent,
    Target,
    TimedRequest,
    TrafficOptions,
    live_traffic,
    parse_bursts,
)
from simulator.payloads import SHAPES, SIM_CHANNELS
from simulator.plan import PlannedMessage, TrafficPlan, plan_traffic
from simulator.summary import TrafficSummary

__all__ = [
    "SHAPES",
    "SIM_CHANNELS",
    "ErrorBurst",
    "EventKey",
    "PlannedMessage",
    "SimEvent",
    "Target",
    "TimedRequest",
    "TrafficOptions",
    "TrafficPlan",
    "TrafficSummary",
    "live_traffic",
    "parse_bursts",
    "plan_traffic",
]
