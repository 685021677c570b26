"""The image server's configuration (platform/orthanc/orthanc.json): enough HTTP threads for its clients.

Orthanc's web server keeps a thread on each keep-alive connection for as long as the client goes on using it
(an idle one is let go after about a second). With the 20 threads it had, the load bench's 200 readers
scrolling through their first case kept every thread taken, and each new connection — the proxy's included —
waited up to 16 s while the CPU idled.
"""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit

#: Connections in use at once, as a web tier and its workers hold them (4 gunicorn workers x 4 threads,
#: Celery, a larger site's more): more than the 20 threads of before, far fewer than the 256 of now.
BUSY = 32
EVERY_S = 0.4  # each busy client asks again this often: never idle long enough to be let go


def test_a_newcomer_is_answered_while_many_clients_keep_their_connections_busy(orthanc_url: str) -> None:
    where = urlsplit(orthanc_url)
    stop = threading.Event()

    def busy_client() -> None:
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        try:
            for _ in range(50):  # bounded: at most 50 requests, 20 s
                if stop.is_set():
                    return
                connection.request("GET", "/system")
                connection.getresponse().read()
                stop.wait(EVERY_S)
        except (OSError, http.client.HTTPException):
            return  # a client refused or timed out only makes the newcomer's wait shorter
        finally:
            connection.close()

    clients = [threading.Thread(target=busy_client, daemon=True) for _ in range(BUSY)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.5)  # every client has its connection (or waits for one)
        newcomer = http.client.HTTPConnection(where.hostname, where.port, timeout=2.0)
        try:
            newcomer.request("GET", "/system")
            answer = newcomer.getresponse()
            answer.read()
        except TimeoutError:
            raise AssertionError(
                f"with {BUSY} clients using their connections, a new request waited more than 2 s: the "
                "image server has too few HTTP threads (HttpThreadsCount)"
            ) from None
        finally:
            newcomer.close()
        assert answer.status == 200
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=15)
