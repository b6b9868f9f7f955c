"""The Elasticsearch version anomalyd answers as (`GET /`, `job_version`, `Warning` headers)."""

ES_VERSION = "8.19.3"
#: What `GET /` and `Warning` headers name as the build: what Elasticsearch built without its git
#: hash says, and one of the forms clients accept in a `Warning` header (7 or 40 hex digits, or
#: `unknown`: the Java low-level client reads any other agent as an unparseable warning).
BUILD_HASH = "unknown"
