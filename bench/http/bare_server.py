"""Bare aiohttp + uvloop baseline: any method, any path; reads the body with ``readany()`` and
discards it; answers ``{"bytes":N}``.  Same aiohttp / uvloop as anomalyd, same ``run_app`` options.
``--tuned-malloc`` also applies the glibc malloc settings `anomalyd serve` applies (anomalyd/malloc.py),
to tell what anomalyd gains from them apart from its own work.

    python bare_server.py --port P [--tuned-malloc]
"""

import argparse
import asyncio

import uvloop
from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    content = request.content
    n = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            break
        n += len(chunk)
    return web.Response(body=b'{"bytes":%d}' % n, content_type="application/json")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tuned-malloc", action="store_true")
    args = ap.parse_args()
    if args.tuned_malloc:
        from anomalyd import malloc

        malloc.tune()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop,
                shutdown_timeout=1.0, handle_signals=True)


if __name__ == "__main__":
    main()
