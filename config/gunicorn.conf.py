"""gunicorn settings of Concord's web process: ``gunicorn -c config/gunicorn.conf.py config.wsgi --bind ...``.

Threads, not plain processes: a viewer opening a case asks for dozens of frames at once and the DICOMweb proxy
streams each one from the image server, so most of a request's time is spent waiting on sockets. 4 processes
served 20 concurrent viewers best on 2 cores in tests/bench/bench_proxy.py (2 × 16 spent more time in the GIL).
8 threads each, not 4: with frames answered from the frame cache in a millisecond or two, a frame's p95 under
200 readers was its wait for a thread behind API requests that wait on the database (bench_load, 2-minute
runs: 48-52 ms with 4 threads, 24-60 with 8 (two of three runs 24-28), 19-27 with 16), while saturation
throughput is the same (bench_proxy, 20 clients). 32 threads may each keep a database connection
(``DB_CONN_MAX_AGE``), within PostgreSQL's default of 100 with the workers beside them; 16 would not leave
that margin.
``WEB_WORKERS`` and ``WEB_THREADS`` override them for larger machines.

Each worker is replaced after about ``WEB_MAX_REQUESTS`` requests (± 10 %, so the four are not replaced at once;
in-flight requests finish first): over a 30-minute soak at 100 readers the workers' memory kept climbing,
604 -> 860 MiB for four, without levelling off (tests/bench/RESULTS-load.md), and a bound that holds whatever
the cause is the one a long-running web process needs. 0 turns it off.

The app is loaded once, in the master, before it forks the workers (``preload_app``): each worker used to
import it on its own (1.7-1.9 s on an idle machine: Django, every view, scipy, pydicom), at start and again
each time ``max_requests`` replaced it (bench_load at 200 readers: 4 replacements in its 10 minutes, 3 more in
the 60-second burst after them, each new worker importing before it could answer). A forked worker answers at once and shares the loaded code's memory. Loading opens
no database connection and starts no thread, so the fork is safe. New code needs a restart of the service, not
a HUP: the master keeps the code it loaded.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "4"))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 120
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
preload_app = True
