"""Locust load and strategy verification for meshlab.

Pure (no I/O, no Locust, no gevent; unit-tested in tests/loadtests):
``attribution`` (x-served-by -> versions, fault outcomes, response flags), ``window``
(rolling per-second tally, SVG charts), ``stats`` (binomial tolerance, Σweight-window
exactness), ``verdict`` (check tables), ``strategies`` (what each scenario promises),
``plan`` (load-shape arithmetic).

Locust (imports gevent, which monkey-patches the process; never imported by pytest):
``locustfile`` (entry point), ``users`` (Bookinfo visitors), ``live`` (web UI version view),
``shapes`` (LoadTestShape), ``verify`` (``python -m loadtests.verify STRATEGY``).
"""
