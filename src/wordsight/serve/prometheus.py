"""Counters and histograms in the Prometheus text exposition format (version 0.0.4).

Small on purpose: the server needs four metrics, not a client library. Values are per worker
process (each uvicorn worker answers ``/metrics`` with its own), as with any Prometheus client
outside its multiprocess mode.
"""
from __future__ import annotations

import math
import threading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


def _labels(names: tuple[str, ...], values: tuple, extra: str = "") -> str:
    parts = [f'{n}="{_escape(str(v))}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    if v == math.inf:
        return "+Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Counter:
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()):
        self.name, self.help, self.labelnames = name, help, labels
        self._values: dict[tuple, float] = {}
        self._lock = threading.Lock()

    def inc(self, *labels, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            for key, v in sorted(self._values.items()):
                lines.append(f"{self.name}{_labels(self.labelnames, key)} {_num(v)}")
        return lines


class Histogram:
    def __init__(self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()):
        self.name, self.help, self.labelnames = name, help, labels
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self._series: dict[tuple, list] = {}  # labels -> [bucket counts..., sum, count]
        self._lock = threading.Lock()

    def observe(self, value: float, *labels) -> None:
        with self._lock:
            s = self._series.setdefault(labels, [0] * len(self.buckets) + [0.0, 0])
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    s[i] += 1
            s[-2] += value
            s[-1] += 1

    def count(self, *labels) -> int:
        s = self._series.get(labels)
        return s[-1] if s else 0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for key, s in sorted(self._series.items()):
                for bound, n in zip(self.buckets, s):
                    le = 'le="' + _num(bound) + '"'
                    lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {n}")
                lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_num(s[-2])}")
                lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {s[-1]}")
        return lines


class ServerMetrics:
    """The server's metrics: requests, their latency, errors, and the model's batches."""

    def __init__(self):
        self.requests = Counter("wordsight_requests_total", "HTTP requests answered, by route, method and status.",
                                ("route", "method", "status"))
        self.latency = Histogram("wordsight_request_duration_seconds", "Time to answer an HTTP request.",
                                 LATENCY_BUCKETS, ("route",))
        self.errors = Counter("wordsight_errors_total", "Requests answered with an error, by route and kind.",
                              ("route", "error"))
        self.batch_size = Histogram("wordsight_batch_size", "Images per model call (micro-batches).",
                                    BATCH_BUCKETS, ("model",))
        self.model_seconds = Histogram("wordsight_model_call_seconds", "Time of one batched model call.",
                                       LATENCY_BUCKETS, ("model",))
        self.images = Counter("wordsight_images_total", "Images run through a model.", ("model",))

    def render(self) -> str:
        lines: list[str] = []
        for m in (self.requests, self.latency, self.errors, self.batch_size, self.model_seconds, self.images):
            lines += m.render()
        return "\n".join(lines) + "\n"
