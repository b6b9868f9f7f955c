"""The Elasticsearch version anomalyd answers as (`GET /`, `job_version`, `Warning` headers)."""

ES_VERSION = "8.19.3"
#: What `GET /` and `Warning` headers name as the build.
BUILD_HASH = "anomalyd"
