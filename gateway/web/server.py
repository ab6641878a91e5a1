"""The daemon's status page task: `serve(daemon, stop)`, started by `Daemon.run`.

aiohttp and Jinja2 are imported only when `[web] listen` is set, so a box without the page
does not carry them in memory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.daemon import Daemon


async def serve(daemon: Daemon, stop: asyncio.Event) -> None:
    """Serve the status page until `stop` is set; nothing when it is not configured."""
    if not daemon.config.web.enabled:
        return
    from gateway.web import local_server  # noqa: PLC0415 (heavy imports, only when on)

    await local_server.serve(daemon, stop)
