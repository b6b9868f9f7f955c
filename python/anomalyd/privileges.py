"""Cluster privileges, built-in roles, and the one map from routes to Elasticsearch actions.

Every route the server answers is named here with the Elasticsearch action it performs and the
cluster privileges that grant it, so authorization is a table lookup made before any handler
runs (before even the job-existence check, as in Elasticsearch). A route missing from the map is
refused to everyone but `all`: a new endpoint fails closed until someone decides who may call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

#: The cluster privileges anomalyd knows, least privileged first. Elasticsearch lists the
#: privileges that would grant an action in this order in its 403 messages (it sorts them by how
#: many other privileges each implies, then by name).
PRIVILEGES = ("monitor_ml", "manage_ml", "monitor", "manage", "all")

#: Built-in roles, as in Elasticsearch (restricted to the cluster privileges anomalyd has).
BUILTIN_ROLES: dict[str, tuple[str, ...]] = {
    "superuser": ("all",),
    "machine_learning_admin": ("manage_ml",),
    "machine_learning_user": ("monitor_ml",),
}

# Who may perform an action: the privilege sets of Elasticsearch's ML actions.
MANAGE_ML = ("manage_ml", "manage", "all")
MONITOR_ML = ("monitor_ml", "manage_ml", "monitor", "manage", "all")
#: Cluster monitoring (nodes info): not the ML privileges.
MONITOR = ("monitor", "manage", "all")
# `manage` does not cover security actions in Elasticsearch; of our privileges only `all` does.
SECURITY = ("all",)
#: Any authenticated user (root, health): no privilege is checked.
AUTHENTICATED: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    name: str
    granted_by: tuple[str, ...]


JOBS = "/_ml/anomaly_detectors"
_RESULTS = (("buckets", "buckets"), ("buckets", "buckets/{timestamp}"), ("records", "records"),
            ("influencers", "influencers"), ("categories", "categories"), ("categories", "categories/{category_id}"),
            ("overall_buckets", "overall_buckets"))

#: (method, route pattern as aiohttp canonicalises it) → action. HEAD follows GET.
ACTIONS: dict[tuple[str, str], Action] = {
    ("GET", "/"): Action("cluster:monitor/main", AUTHENTICATED),
    ("GET", "/_cluster/health"): Action("cluster:monitor/health", AUTHENTICATED),
    ("GET", "/_nodes/http"): Action("cluster:monitor/nodes/info", MONITOR),
    ("GET", "/_nodes/{node_id}/http"): Action("cluster:monitor/nodes/info", MONITOR),
    ("GET", "/healthz"): Action("cluster:monitor/anomalyd/healthz", AUTHENTICATED),
    ("GET", "/readyz"): Action("cluster:monitor/anomalyd/readyz", AUTHENTICATED),
    ("GET", "/metrics"): Action("cluster:monitor/anomalyd/metrics", MONITOR_ML),
    ("GET", JOBS): Action("cluster:monitor/xpack/ml/job/get", MONITOR_ML),
    ("GET", JOBS + "/{job_id}"): Action("cluster:monitor/xpack/ml/job/get", MONITOR_ML),
    ("GET", JOBS + "/_stats"): Action("cluster:monitor/xpack/ml/job/stats/get", MONITOR_ML),
    ("GET", JOBS + "/{job_id}/_stats"): Action("cluster:monitor/xpack/ml/job/stats/get", MONITOR_ML),
    ("PUT", JOBS + "/{job_id}"): Action("cluster:admin/xpack/ml/job/put", MANAGE_ML),
    ("DELETE", JOBS + "/{job_id}"): Action("cluster:admin/xpack/ml/job/delete", MANAGE_ML),
    ("POST", JOBS + "/{job_id}/_update"): Action("cluster:admin/xpack/ml/job/update", MANAGE_ML),
    ("POST", JOBS + "/{job_id}/_open"): Action("cluster:admin/xpack/ml/job/open", MANAGE_ML),
    ("POST", JOBS + "/{job_id}/_close"): Action("cluster:admin/xpack/ml/job/close", MANAGE_ML),
    ("POST", JOBS + "/{job_id}/_flush"): Action("cluster:admin/xpack/ml/job/flush", MANAGE_ML),
    ("POST", JOBS + "/{job_id}/_data"): Action("cluster:admin/xpack/ml/job/data/post", MANAGE_ML),
    # Elasticsearch grants the feature reset to `manage`; anomalyd is only ML, so ML admins may too.
    ("POST", "/_features/_reset"): Action("cluster:admin/features/reset", MANAGE_ML),
    ("POST", "/_security/api_key"): Action("cluster:admin/xpack/security/api_key/create", SECURITY),
    ("PUT", "/_security/api_key"): Action("cluster:admin/xpack/security/api_key/create", SECURITY),
    ("DELETE", "/_security/api_key"): Action("cluster:admin/xpack/security/api_key/invalidate", SECURITY),
    ("GET", "/_security/_authenticate"): Action("cluster:admin/xpack/security/user/authenticate", AUTHENTICATED),
    # The data-counts document in the results index (Elasticsearch: `read` on `.ml-anomalies-*`,
    # which the ML roles hold).
    ("GET", "/.ml-anomalies-{name}/_doc/{doc_id}"): Action("indices:data/read/get", MONITOR_ML),
    # Results endpoints, authorized ahead of their handlers (GET and POST, as in Elasticsearch).
    **{
        (method, JOBS + "/{job_id}/results/" + path): Action(f"cluster:monitor/xpack/ml/job/results/{kind}/get", MONITOR_ML)
        for kind, path in _RESULTS
        for method in ("GET", "POST")
    },
}

#: What an unmapped route needs: only `all`, so it fails closed.
UNMAPPED = Action("cluster:admin/anomalyd/unmapped", ("all",))


def action_for(method: str, route: str | None) -> Action:
    """The action a request performs; `route` is None when no route matched (404/405)."""
    if route is None:
        return Action("cluster:monitor/anomalyd/unknown", AUTHENTICATED)
    return ACTIONS.get(("GET" if method == "HEAD" else method, route), UNMAPPED)


def unknown_privileges(privileges: Iterable[str]) -> list[str]:
    return [p for p in privileges if p not in PRIVILEGES]


def unknown_privilege_message(name: str) -> str:
    # Elasticsearch's wording, with the predefined names anomalyd supports.
    return (f"unknown cluster privilege [{name}]. a privilege must be either one of the predefined cluster "
            f"privilege names [{','.join(sorted(PRIVILEGES))}] or a pattern over one of the available cluster actions")
