"""Builders shared by the tests: YAML for resources, loading and compiling in one call, a
sidecar downstream connection driven by hand."""

from __future__ import annotations

import asyncio
import random
import re
import textwrap
from datetime import UTC, datetime

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.loader import load_text, normal_documents
from mesh.config.resource import LoadResult
from mesh.config.validate import analyze
from mesh.lab.workloads import lab_entries, lab_workloads
from mesh.routing import ProxyIdentity, RequestView, compile_config, compile_snapshot, decide
from mesh.routing.routes import RouteTable
from mesh.security.identity import Identity
from mesh.sidecar.flight import Flight
from mesh.sidecar.http1.client import Pool
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.server import ConnTracker, Downstream
from mesh.sidecar.pipeline import request_view
from mesh.sidecar.runtime import Runtime
from mesh.sidecar.telemetry import Telemetry
from mesh.snapshot import Endpoint, Snapshot
from mesh.topology import Pod, Topology

HEADER = "apiVersion: networking.istio.io/v1beta1\n"
# The course lab's world, from its manifests (workloads/, profile course).
COURSE = lab_workloads(lab_entries("course")).topology


def doc(kind: str, name: str, spec: str) -> str:
    """One YAML document; ``spec`` is the indented body under ``spec:``."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return f"{HEADER}kind: {kind}\nmetadata:\n  name: {name}\nspec:\n{body}\n"


def security_doc(
    kind: str,
    name: str,
    spec: str,
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    api_version: str = "security.istio.io/v1",
) -> str:
    """A PeerAuthentication or AuthorizationPolicy document in ``namespace``."""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ") or "  {}"
    meta = f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
    if annotations:
        meta += "  annotations:\n" + "".join(f'    {k}: "{v}"\n' for k, v in annotations.items())
    spec_line = "spec:\n" + body if body.strip() != "{}" else "spec: {}"
    return f"apiVersion: {api_version}\nkind: {kind}\n{meta}{spec_line}\n"


def docs(*documents: str) -> str:
    return "---\n".join(documents)


def load(text: str) -> LoadResult:
    return load_text(text, "test.yaml")


def findings(text: str, endpoints: list[Endpoint] | None = None) -> list[str]:
    """Every finding as 'Severity CODE path: message' strings (loader + analyzer), against the
    course lab's topology (with ``endpoints`` as its pods when given)."""
    loaded = load(text)
    topology = COURSE if endpoints is None else COURSE.with_app_pods(e.as_pod() for e in endpoints)
    found = loaded.issues + analyze(loaded.resources, topology)
    return [f"{i.severity} {i.code} {i.path}: {i.message}" for i in found]


VS_KIND = "VirtualService"
ROUTE = "route:\n  - destination: {host: reviews, subset: v1}"


def vs(spec: str, name: str = "reviews") -> str:
    """A VirtualService ``name`` beside the Bookinfo DestinationRules (``BOOKINFO_RULES``)."""
    return docs(BOOKINFO_RULES, doc(VS_KIND, name, spec))


def assert_finding(text: str, expected: str | None, fragment: str | None) -> None:
    """``text`` yields a finding starting with ``expected`` (e.g. "Error IST0106 http[0]")
    whose message has ``fragment``; ``expected`` None: no finding above Info."""
    found = findings(text)
    if expected is None:
        assert [f for f in found if not f.startswith("Info")] == []
        return
    matching = [f for f in found if f.startswith(expected + ":")]
    assert matching, f"no {expected!r} in {found}"
    assert any(fragment in f for f in matching), matching


def pods(*specs: str) -> list[Endpoint]:
    """``pods("reviews:v1", "reviews:v2")`` → endpoints on distinct loopback ports."""
    endpoints = []
    for n, spec in enumerate(specs):
        service, _, version = spec.partition(":")
        endpoints.append(
            Endpoint(
                f"{service}-{version}-{n}",
                service,
                "127.0.0.1",
                20000 + n,
                {"app": service, "version": version},
            )
        )
    return endpoints


BOOKINFO_RULES = docs(
    doc(
        "DestinationRule",
        "reviews",
        """
        host: reviews
        subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
        - {name: v3, labels: {version: v3}}
    """,
    ),
    doc(
        "DestinationRule",
        "productpage",
        """
        host: productpage
        subsets:
        - {name: v1, labels: {version: v1}}
        - {name: v2, labels: {version: v2}}
    """,
    ),
)
BOOKINFO_PODS = pods(
    "reviews:v1",
    "reviews:v2",
    "reviews:v3",
    "productpage:v1",
    "productpage:v2",
    "details:v1",
    "ratings:v1",
)


# A root VirtualService whose /reviews rule delegates to ``reviews-rules`` (Istio's
# delegation): one delegate rule within the root's prefix, one outside it, one catch-all.
DELEGATING_ROOT = doc(
    "VirtualService",
    "bookinfo",
    """
    hosts: [reviews]
    http:
    - match: [{uri: {prefix: /reviews}}]
      timeout: 3s
      delegate: {name: reviews-rules}
    - route: [{destination: {host: reviews, subset: v1}}]
    """,
)
REVIEWS_DELEGATE = doc(
    "VirtualService",
    "reviews-rules",
    """
    http:
    - match: [{uri: {prefix: /reviews/0}, headers: {end-user: {exact: jason}}}]
      route: [{destination: {host: reviews, subset: v2}}]
    - match: [{uri: {prefix: /ratings}}]
      route: [{destination: {host: reviews, subset: v3}}]
    - route: [{destination: {host: reviews, subset: v3}}]
    """,
)


def table(
    text: str, proxy: ProxyIdentity | None = None, endpoints: list[Endpoint] | None = None
) -> RouteTable:
    loaded = load(text)
    errors = [i for i in loaded.issues if i.is_error]
    assert not errors, errors
    return compile_config(
        loaded.resources,
        BOOKINFO_PODS if endpoints is None else endpoints,
        proxy or ProxyIdentity("test", {"app": "productpage", "version": "v1"}),
        services=COURSE.services,
    )


def route(rt: RouteTable, host: str = "reviews", seed: int = 7, **request: object):
    return decide(rt, RequestView(host=host, **request), random.Random(seed))  # type: ignore[arg-type]


CHROMIUM_HINT = "install them with: apt-get install -y chromium chromium-driver"


def headless_chromium():  # type: ignore[no-untyped-def]
    """Real headless Chromium through Debian's chromedriver (never Selenium Manager's
    download). A missing browser fails the test with the install command, never a skip."""
    import shutil

    import pytest
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail(
            f"browser test needs chromium ({chromium}) and chromedriver ({driver_path}); "
            + CHROMIUM_HINT,
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(20)
    return driver


def istio_check(text: str) -> list[Issue]:
    """Loader and analyzer findings for one policy document, with no workloads around."""
    loaded = load_text(text, "test.yaml")
    assert loaded.resources, [str(i) for i in loaded.issues]
    return loaded.issues + analyze(loaded.resources, Topology())


def istio_verdict(found: list[Issue]) -> tuple[bool, bool]:
    """(valid, warned) as Istio's validation would say: an Istio error (IST0106), an Istio
    warning (IST0133, and the webhook's rule-order warnings IST0130/IST0131); the lab's own
    findings have other codes."""
    errors = [i for i in found if i.severity == "Error" and i.code == codes.SCHEMA_VALIDATION_ERROR]
    warnings = [i for i in found if i.severity == "Warning" and i.code in ISTIO_WARNINGS]
    return not errors, bool(warnings)


ISTIO_WARNINGS = frozenset({codes.SCHEMA_WARNING, codes.UNREACHABLE_RULE, codes.INEFFECTIVE_MATCH})


def task_pod(app: str, namespace: str, sidecar: bool = True) -> Pod:
    """A pod of istio.io's security tasks: ``sleep``/``httpbin`` in a namespace, running as
    the service account of its name, without sidecar in ``legacy``."""
    return Pod(
        f"{app}-{namespace}",
        {"app": app, "version": "v1"},
        namespace,
        service_account=app,
        proxy="sidecar" if sidecar else "none",
    )


# A fixed "now" for the certificate tests (the TLS handshake tests use the real clock, as
# OpenSSL does), and the identities of istio.io's sleep and httpbin in foo.
CERT_NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SLEEP_ID = Identity("foo", "sleep")
HTTPBIN_ID = Identity("foo", "httpbin")


# A hand-edited multi-document config file: comments, a separator with a comment.
HAND_EDITED = """\
# my hand-written file
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews   # keep me?
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
--- # second document
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews  # a comment that must survive
  subsets: [{name: v1, labels: {version: v1}}]
"""


# ---------------------------------------------------------------- a sidecar downstream by hand


class FakeTransport(asyncio.Transport):
    """Records what a protocol writes; peer 10.0.0.9."""

    def __init__(self) -> None:
        super().__init__()
        self.out = b""
        self.closed = False
        self.aborted = False
        self.paused = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.out += bytes(data)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_extra_info(self, name, default=None):  # type: ignore[no-untyped-def]
        return ("10.0.0.9", 5555) if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class Tracker(ConnTracker):
    """Records finished exchanges and bad-request statuses."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.done: list[Exchange] = []
        self.bad: list[int] = []

    def on_exchange_done(self, ex: Exchange) -> None:
        self.done.append(ex)

    def on_bad_request(self, ex: Exchange, status: int) -> None:
        self.bad.append(status)


def make_downstream(handler=None):  # type: ignore[no-untyped-def]
    """A ``Downstream`` connection on a ``FakeTransport``: (conn, transport, tracker, the
    exchanges the default handler saw — it answers 200 with the request target)."""
    seen: list[Exchange] = []

    def default(ex: Exchange) -> None:
        seen.append(ex)
        ex.reply(200, ex.url)

    tracker = Tracker()
    conn = Downstream(handler or default, tracker, 80)
    transport = FakeTransport()
    conn.connection_made(transport)
    return conn, transport, tracker, seen


# Istio's Bookinfo pods, and a Deployment to plant errors in (IMAGE is replaced).
ISTIO_BOOKINFO = [
    "productpage-v1",
    "details-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v9}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    metadata:
      labels: {app: reviews, version: v9}
    spec:
      containers:
      - name: reviews
        image: IMAGE
"""


# ---------------------------------------------------------------- a sidecar pipeline by hand
# A Runtime with a compiled table for one service ``svc``, and exchanges parsed from raw bytes
# on a fake connection, to drive stages 1-7 without sockets.


def svc_snapshot(resources, endpoints, version=1):  # type: ignore[no-untyped-def]
    return Snapshot(version, normal_documents(resources), tuple(endpoints))


def svc_endpoint(pod, port, version="v1"):  # type: ignore[no-untyped-def]
    return Endpoint(pod, "svc", "127.0.0.1", port, {"app": "svc", "version": version})


def svc_vs(http):  # type: ignore[no-untyped-def]
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": {"name": "svc"}, "spec": {"hosts": ["svc"], "http": http}}  # fmt: skip


def svc_dr(**policy):  # type: ignore[no-untyped-def]
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "svc"},
            "spec": {"host": "svc", "subsets": [{"name": "v1", "labels": {"version": "v1"}}],
                     "trafficPolicy": policy}}  # fmt: skip


def sidecar_runtime(loop, resources, endpoints):  # type: ignore[no-untyped-def]
    rt = Runtime(loop, Pool(loop), Telemetry("p", "client-v1", None), random.Random(1))
    rt.install(
        compile_snapshot(svc_snapshot(resources, endpoints), ProxyIdentity("p", {"app": "c"}))
    )
    return rt


def parsed_exchange(raw: bytes) -> Exchange:
    pending: list[Exchange] = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(raw)
    return pending[0]


def flight_for(rt: Runtime, ex: Exchange) -> Flight:
    view = request_view(ex, None, absolute=True)
    fwd = decide(rt.table, view, rt.rng)
    return Flight(rt, ex, rt.states.get(fwd.cluster.name), view, fwd, [])


def written(ex: Exchange) -> bytes:
    return ex.conn.transport.out  # type: ignore[union-attr]


def page_hops(page: str) -> list[str]:
    """The product page's served-by banner as a reader sees it: one string per hop (tags
    dropped, spaces squeezed), e.g. ``reviews ✗ 503 FI 2 ms (retried after ✗ 503 FI)``."""
    banner = page.split('id="served-by"', 1)[1].split("</div>", 1)[0]
    pattern = r'<span class="hop [^"]*">(.*?)</span>\s*(?:<span class="arrow">|$)'
    hops = re.findall(pattern, banner, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", h).replace("&#10007;", "✗").split()) for h in hops]


def client_hello(sni: str, alpn: list[str]) -> bytes:
    """The first flight of a TLS client (this Python's ssl), as a server peeks at it."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()
