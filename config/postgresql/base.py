"""Django's PostgreSQL backend, with a health check of a kept connection that costs no round trip.

Django checks a persistent connection before each request reuses it (``CONN_HEALTH_CHECKS``) with a
``SELECT 1``: one round trip on every request, which under load waits for a CPU like any query (issue 16: the
health check and the token lookup were a quarter of the web workers' database waits while 200 readers
arrived). An idle connection has nothing to read unless the server wrote to it, and a server that restarts or
ends the session (``pg_terminate_backend``, an administrator's shutdown, a failover) does write: its FATAL
message, then the end of the stream. So the socket is polled first, and ``SELECT 1`` is run only when there
is something to read: a dead connection is still found and replaced before the request (a reconnect, not a
503), and a live one costs a ``poll`` instead of a query.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            quiet = not poller.poll(0)
        except (OSError, ValueError):
            return False
        return quiet or bool(super().is_usable())
