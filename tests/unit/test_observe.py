"""The pieces of casty.observe that need no socket: counters, rates, labels, logs, the defaults file."""

from __future__ import annotations

import json
import logging
import tomllib

from casty import CastyConfig
from casty.cli import defaults_toml
from casty.observe.counters import ASK_BUCKETS, AskLatency, dead_letter_kind
from casty.observe.logs import JsonFormatter
from casty.observe.metrics import Labeller
from casty.observe.stats import RateMeter, StreamStats


def test_dead_letter_reasons_fall_into_a_fixed_set_of_kinds() -> None:
    assert dead_letter_kind("mailbox full (reject)") == "mailbox_full"
    assert dead_letter_kind("no actor at /user/x") == "no_actor"
    assert dead_letter_kind("outbound queue to casty://a@h:1 is full") == "outbound_queue_full"
    assert dead_letter_kind("casty://a@h:1 is gone: member down") == "peer_gone"
    assert dead_letter_kind("something nobody foresaw 12345") == "other"


def test_ask_latency_is_a_cumulative_histogram() -> None:
    h = AskLatency()
    for seconds in (0.0001, 0.003, 0.003, 20.0):
        h.observe(seconds)
    cumulative = dict(h.cumulative())
    assert cumulative["0.0005"] == 1 and cumulative["0.005"] == 3 and cumulative["+Inf"] == 4
    assert len(cumulative) == len(ASK_BUCKETS) + 1 and h.count == 4 and abs(h.sum - 20.0061) < 1e-9


def test_rate_meter_measures_over_its_window_with_bounded_samples() -> None:
    meter = RateMeter(5.0)
    total = 0
    for step in range(1, 1001):  # 100 s of 1000 elements per 0.1 s
        total += 1000
        meter.sample(total, step * 0.1)
    assert abs(meter.rate(total, 100.0) - 10_000) < 300
    assert len(meter._samples) <= 20
    assert meter.rate(total, 200.0) == 0.0  # nothing for a whole window


def test_labeller_bounds_values_and_keeps_a_label_while_it_lives() -> None:
    labels = Labeller(2)
    assert labels.relabel(["a", "b", "c"]) == {"a": "a", "b": "b", "c": "other"}
    assert labels.relabel(["b", "c", "d"]) == {"b": "b", "c": "c", "d": "other"}


def test_json_log_lines_carry_actor_and_stream() -> None:
    record = logging.LogRecord("casty.actor", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    record.actor = "/user/a"
    record.stream = "/user/numbers"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x" and line["level"] == "WARNING"
    assert line["actor"] == "/user/a" and line["stream"] == "/user/numbers" and line["time"].endswith("+00:00")


def test_defaults_file_documents_every_section_and_parses_back_to_the_defaults() -> None:
    text = defaults_toml()
    assert CastyConfig.from_dict(tomllib.loads(text)) == CastyConfig()
    for section in ("[system]", "[remote]", "[cluster]", "[cluster.gossip]", "[metrics]", "[logging]"):
        assert section in text
    assert "# TCP port serving `/metrics`" in text


def test_stream_stats_is_plain_data() -> None:
    s = StreamStats("/user/p", "producer", accepted=3, delivered=2)
    assert s.to_dict()["accepted"] == 3 and s.to_dict()["role"] == "producer"
