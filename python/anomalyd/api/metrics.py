"""`/metrics` in Prometheus format.

Nothing is counted per record or per chunk here: job counters are read from the engines'
lifetime totals when Prometheus scrapes, so the hot path pays nothing for them.
"""

from __future__ import annotations

from typing import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..keys import REGISTRY, REQUEST_STATS
from .routes import Routes

OUTCOMES = {
    "processed": "processed_record_count",
    "invalid_date": "invalid_date_count",
    "out_of_order": "out_of_order_timestamp_count",
}


class AnomalydCollector(Collector):
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        registry = self.app[REGISTRY]
        bytes_in = CounterMetricFamily("anomalyd_input_bytes", "Body bytes posted to jobs (after gzip/deflate decoding)",
                                       labels=["job_id"])
        records = CounterMetricFamily("anomalyd_records", "Records by outcome", labels=["job_id", "outcome"])
        missing = CounterMetricFamily("anomalyd_missing_fields", "Analysis fields missing from records (a record may miss several)",
                                      labels=["job_id"])
        depth = GaugeMetricFamily("anomalyd_job_queue_depth", "Requests waiting for the job", labels=["job_id"])
        open_jobs = 0
        for job in registry.jobs.values():
            counts = registry.data_counts(job)
            bytes_in.add_metric([job.job_id], counts.get("input_bytes", 0))
            for outcome, key in OUTCOMES.items():
                records.add_metric([job.job_id, outcome], counts.get(key, 0))
            missing.add_metric([job.job_id], counts.get("missing_field_count", 0))
            if job.actor is not None:
                open_jobs += 1
                depth.add_metric([job.job_id], job.actor.queue_depth)
        yield from (bytes_in, records, missing, depth)
        yield GaugeMetricFamily("anomalyd_open_jobs", "Jobs with a running engine (opened or closing)", value=open_jobs)
        requests = CounterMetricFamily("anomalyd_http_requests", "HTTP answers by route and status",
                                       labels=["method", "route", "status"])
        for ((method, route), status), n in sorted(self.app[REQUEST_STATS].by_route.items()):
            requests.add_metric([method, route, str(status)], n)
        yield requests


async def metrics(request: web.Request) -> web.Response:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AnomalydCollector(request.app))
    return web.Response(body=generate_latest(reg), content_type="text/plain", charset="utf-8")


def setup(routes: Routes) -> None:
    routes.add_route("GET", "/metrics", metrics, body=False)
