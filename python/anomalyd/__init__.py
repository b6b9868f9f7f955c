"""anomalyd: a standalone server for Elasticsearch machine-learning anomaly-detection jobs.

The Python package is the HTTP front (routing, validation, job registry, one actor per open
job, persistence); all per-record work happens in the native core, :mod:`anomalyd._native`.
"""

__version__ = "0.1.0"
