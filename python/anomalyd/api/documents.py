"""`GET /.ml-anomalies-<job>/_doc/<job>_data_counts`: the one results-index document clients read.

Elasticsearch keeps a job's persisted DataCounts as a document in its results index, and its REST
tests (clients-tests `post_data.yml`) read it back with the document `get` API after closing the
job. anomalyd has no document store; this answers that read from the persisted counts (what the
group commit last wrote for an open job), in `get`'s shape; HEAD answers whether it exists. Nothing else in `.ml-anomalies-*` is
served: any other id is `found: false`, and an index that names no job is Elasticsearch's 404.
"""

from __future__ import annotations

import re

from aiohttp import web

from ..errors import EsError, json_response
from ..keys import REGISTRY
from .params import reject_unknown_query
from .routes import Routes

PREFIX = ".ml-anomalies-"
SUFFIX = "_data_counts"


def _no_such_index(index: str) -> EsError:
    return EsError(404, "index_not_found_exception", f"no such index [{index}]")


async def get_document(request: web.Request) -> web.Response:
    reject_unknown_query(request, frozenset({"routing", "preference", "realtime", "refresh", "stored_fields",
                                             "_source", "_source_includes", "_source_excludes", "version",
                                             "version_type"}))
    name, doc_id = request.match_info["name"], request.match_info["doc_id"]
    index = PREFIX + name
    registry = request.app[REGISTRY]
    # `.ml-anomalies-<job>` is the job's alias; the shared index (and custom ones) hold every job's.
    if name not in registry.jobs and name != "shared" and not name.startswith("custom-"):
        raise _no_such_index(index)
    job = registry.jobs.get(doc_id[: -len(SUFFIX)]) if doc_id.endswith(SUFFIX) else None
    if job is None or (name in registry.jobs and job.job_id != name):
        return json_response({"_index": index, "_id": doc_id, "found": False}, 404)
    source = registry.saved_counts(job)
    if not source:
        return json_response({"_index": index, "_id": doc_id, "found": False}, 404)
    concrete = PREFIX + str(job.config.get("results_index_name", "shared"))
    doc: dict[str, object] = {"_index": concrete, "_id": doc_id, "_version": 1, "_seq_no": 0, "_primary_term": 1,
                              "found": True}
    if (filtered := _source_filtered(request, source)) is not None:
        doc["_source"] = filtered
    return json_response(doc)


def _source_filtered(request: web.Request, source: dict[str, object]) -> dict[str, object] | None:
    """`_source` (`true`, `false` or fields), `_source_includes` and `_source_excludes` (comma
    lists, `*` the only wildcard; an exclusion wins; `_source_includes`, when given, replaces
    the `_source` fields) as the document `get` applies them; None: no source. The counts
    document is flat, so its field names are the whole paths."""
    q = request.query
    wanted = q.get("_source")
    if wanted == "false":
        return None

    def patterns(text: str) -> list[re.Pattern[str]]:
        return [re.compile(".*".join(map(re.escape, name.split("*")))) for name in text.split(",") if name]

    if "_source_includes" in q:
        includes = patterns(q["_source_includes"])
    else:
        includes = [] if wanted in (None, "", "true") else patterns(wanted)
    excludes = patterns(q.get("_source_excludes", ""))
    return {k: v for k, v in source.items()
            if (not includes or any(p.fullmatch(k) for p in includes)) and not any(p.fullmatch(k) for p in excludes)}


def setup(routes: Routes) -> None:
    path = "/" + PREFIX + "{name}/_doc/{doc_id}"
    routes.add_route("GET", path, get_document, body=False)
    routes.add_route("HEAD", path, get_document, body=False)  # exists or not: the status alone (aiohttp sends no body)
