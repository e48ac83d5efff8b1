"""Kubernetes manifests → the lab's ``Topology`` (pure: texts in, data and findings out).

Reads what Istio's samples use (``samples/bookinfo/platform/kube/bookinfo.yaml``,
``samples/httpbin/httpbin.yaml``, ``samples/sleep/sleep.yaml``...): ``Namespace`` (label
``istio-injection: disabled`` turns sidecars off), ``ServiceAccount``, ``Service`` (named
ports, ``targetPort``, ``selector``, the ``networking.istio.io/exportTo`` annotation) and
``Deployment`` (pod template labels ``app``/``version``, ``serviceAccountName``, the first
container's image, args, env, ports and ``readinessProbe.httpGet``, ``replicas``, the
annotation ``sidecar.istio.io/inject: "false"``). Other kinds are skipped with a note.

A Deployment becomes ``replicas`` pods named ``<deployment>`` (one replica) or
``<deployment>-<n>`` (n from 1); each pod is registered under the Service whose selector
matches its labels. What would fail on a cluster, or cannot run in the lab, is an error with
file and line: an image the lab cannot run, a Service selector that matches no pod template,
two ports of one Service with one name, a pod template without an ``app`` label, a selector
that does not match its template, a service account that does not exist, a kind twice.

Primitives: ``ManifestFile`` (name, text, the namespace ``kubectl apply -n`` would give),
``Manifest`` (one object: kind, namespace, name, its document), ``Workloads`` (topology,
manifests, findings) and ``parse_workloads(files)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mesh.config import issues as codes
from mesh.config.issues import Issue
from mesh.config.yaml_documents import ReadDocument, read_stream
from mesh.topology import (
    DEFAULT_NAMESPACE,
    DEFAULT_SERVICE_ACCOUNT,
    ROOT_NAMESPACE,
    Pod,
    ProxyKind,
    ReadinessProbe,
    Service,
    ServicePort,
    Topology,
)
from mesh.workloads.images import Program, UnknownImage, program_of

WORKLOAD_INVALID = "MSH0006"
INJECT_ANNOTATION = "sidecar.istio.io/inject"
INJECTION_LABEL = "istio-injection"
EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"
DEFAULT_POD_PORT = 9080
KINDS = {
    "Namespace": "v1",
    "ServiceAccount": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
}


@dataclass(frozen=True, slots=True)
class ManifestFile:
    name: str
    text: str
    # ``kubectl apply -n NS``: the namespace of objects that do not name one.
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    kind: str
    namespace: str
    name: str
    data: Mapping[str, Any]
    document: ReadDocument
    file: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)


@dataclass
class Workloads:
    topology: Topology = field(default_factory=Topology)
    manifests: list[Manifest] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(i.is_error for i in self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.is_error]


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


class _Reader:
    """Collects findings for one manifest, with its file and the line of a field path."""

    def __init__(self, manifest: Manifest, out: list[Issue]) -> None:
        self.manifest = manifest
        self.out = out

    def line(self, path: str) -> int:
        lines = self.manifest.document.reader.lines
        while path:
            if path in lines:
                return int(lines[path])
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return int(self.manifest.document.line)

    def issue(self, severity: codes.Severity, path: str, message: str) -> None:
        self.out.append(
            Issue(
                severity,
                WORKLOAD_INVALID if severity != "Info" else codes.SKIPPED_KIND,
                message,
                kind=self.manifest.kind,
                name=f"{self.manifest.namespace}/{self.manifest.name}",
                file=self.manifest.file,
                line=self.line(path),
                path=path,
            )
        )

    def error(self, path: str, message: str) -> None:
        self.issue("Error", path, message)


def _manifests(files: Sequence[ManifestFile], out: list[Issue]) -> list[Manifest]:
    found: list[Manifest] = []
    seen: dict[tuple[str, str, str], Manifest] = {}
    for file in files:
        documents, issues = read_stream(file.text, file.name)
        out.extend(issues)
        for document in documents:
            data = document.data
            for path, line, message in document.reader.problems:
                out.append(
                    Issue("Error", WORKLOAD_INVALID, message, file=file.name, line=line, path=path)
                )
            if not isinstance(data, Mapping):
                out.append(
                    Issue(
                        "Error",
                        WORKLOAD_INVALID,
                        "a manifest must be a mapping",
                        file=file.name,
                        line=document.line,
                    )
                )
                continue
            kind = str(data.get("kind") or "")
            api_version = str(data.get("apiVersion") or "")
            name = _get(data, "metadata", "name")
            if not kind or not api_version:
                out.append(
                    Issue(
                        "Error",
                        WORKLOAD_INVALID,
                        "missing apiVersion or kind",
                        file=file.name,
                        line=document.line,
                    )
                )
                continue
            if kind not in KINDS or api_version != KINDS[kind]:
                hint = (
                    ": traffic config goes through meshctl apply"
                    if api_version.startswith(("networking.istio.io", "security.istio.io"))
                    else ""
                )
                out.append(
                    Issue(
                        "Info",
                        codes.SKIPPED_KIND,
                        f"{kind} ({api_version}) is not a workload the lab runs: skipped{hint}",
                        kind=kind,
                        name=str(name or ""),
                        file=file.name,
                        line=document.line,
                    )
                )
                continue
            if not isinstance(name, str) or not name:
                out.append(
                    Issue(
                        "Error",
                        WORKLOAD_INVALID,
                        "missing metadata.name",
                        kind=kind,
                        file=file.name,
                        line=document.line,
                    )
                )
                continue
            namespace = _get(data, "metadata", "namespace") or file.namespace or DEFAULT_NAMESPACE
            if kind == "Namespace":
                namespace = name
            manifest = Manifest(kind, str(namespace), name, data, document, file.name)
            if file.namespace and _get(data, "metadata", "namespace") not in (None, file.namespace):
                _Reader(manifest, out).error(
                    "metadata.namespace",
                    f"the namespace from the file ({namespace}) does not match the one it is "
                    f"applied to ({file.namespace})",
                )
            earlier = seen.get(manifest.key)
            if earlier is not None:
                _Reader(manifest, out).error(
                    "metadata.name",
                    f"{kind} {namespace}/{name} is defined twice "
                    f"(first in {earlier.file}:{earlier.document.line})",
                )
                continue
            seen[manifest.key] = manifest
            found.append(manifest)
    return found


def _probe(reader: _Reader, path: str, value: Any) -> ReadinessProbe | None:
    if value is None:
        return None
    http_get = _get(value, "httpGet")
    if not isinstance(http_get, Mapping):
        reader.error(path, "only httpGet readiness probes are supported by the lab")
        return None
    defaults = ReadinessProbe()
    try:
        return ReadinessProbe(
            path=str(http_get.get("path") or "/"),
            initial_delay_seconds=float(value.get("initialDelaySeconds", 0)),
            period_seconds=float(value.get("periodSeconds", defaults.period_seconds)),
            timeout_seconds=float(value.get("timeoutSeconds", defaults.timeout_seconds)),
            failure_threshold=int(value.get("failureThreshold", defaults.failure_threshold)),
            success_threshold=int(value.get("successThreshold", defaults.success_threshold)),
        )
    except (TypeError, ValueError) as exc:
        reader.error(path, f"bad readinessProbe: {exc}")
        return None


def _field_ref(
    field_path: str, pod_name: str, namespace: str, labels: Mapping[str, str]
) -> str | None:
    """The downward API's ``fieldRef`` values the lab knows: name, namespace, labels."""
    if field_path == "metadata.name":
        return pod_name
    if field_path == "metadata.namespace":
        return namespace
    for quote in ("'", '"'):
        prefix = f"metadata.labels[{quote}"
        if field_path.startswith(prefix) and field_path.endswith(f"{quote}]"):
            return labels.get(field_path[len(prefix) : -2], "")
    return None


def _env(
    reader: _Reader, path: str, value: Any, labels: Mapping[str, str] | None = None
) -> dict[str, str]:
    env: dict[str, str] = {}
    if value is None:
        return env
    if not isinstance(value, list):
        reader.error(path, "env must be a list of {name, value}")
        return env
    for i, item in enumerate(value):
        name = _get(item, "name")
        if not isinstance(name, str) or not name:
            reader.error(f"{path}[{i}].name", "env entry without a name")
            continue
        if "valueFrom" in item:
            field_path = _get(item, "valueFrom", "fieldRef", "fieldPath")
            resolved = (
                _field_ref(
                    str(field_path), reader.manifest.name, reader.manifest.namespace, labels or {}
                )
                if field_path
                else None
            )
            if resolved is None:
                reader.issue(
                    "Info", f"{path}[{i}].valueFrom", "valueFrom is not resolved by the lab"
                )
            else:
                env[name] = resolved
            continue
        env[name] = str(item.get("value", ""))
    return env


@dataclass(frozen=True, slots=True)
class _Template:
    """One Deployment's pod template, read and checked."""

    manifest: Manifest
    labels: Mapping[str, str]
    pod: Pod | None
    replicas: int


def _deployment(manifest: Manifest, injection: Mapping[str, bool], out: list[Issue]) -> _Template:
    reader = _Reader(manifest, out)
    spec = _get(manifest.data, "spec") or {}
    template = _get(spec, "template") or {}
    labels = _str_map(_get(template, "metadata", "labels"))
    annotations = _str_map(_get(template, "metadata", "annotations"))
    pod_spec = _get(template, "spec") or {}
    ok = True
    if "app" not in labels:
        reader.error(
            "spec.template.metadata.labels",
            "the pod template has no app label: Istio (and the lab) name a workload's "
            "service by it (labels: {app: <service>, version: <vN>})",
        )
        ok = False
    match_labels = _str_map(_get(spec, "selector", "matchLabels"))
    if not match_labels:
        reader.error("spec.selector", "a Deployment needs spec.selector.matchLabels")
        ok = False
    elif any(labels.get(k) != v for k, v in match_labels.items()):
        reader.error(
            "spec.selector.matchLabels",
            f"selector {match_labels} does not match the template labels {labels} "
            "(Kubernetes refuses this Deployment)",
        )
        ok = False
    replicas = spec.get("replicas", 1) if isinstance(spec, Mapping) else 1
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        reader.error("spec.replicas", f"replicas must be a whole number >= 0, not {replicas!r}")
        replicas, ok = 0, False
    containers = _get(pod_spec, "containers")
    if not isinstance(containers, list) or not containers:
        reader.error("spec.template.spec.containers", "a pod template needs a container")
        return _Template(manifest, labels, None, replicas)
    if len(containers) > 1:
        reader.error(
            "spec.template.spec.containers[1]",
            "the lab runs one container per pod (its sidecar is added by the mesh)",
        )
        ok = False
    base = "spec.template.spec.containers[0]"
    container = containers[0] if isinstance(containers[0], Mapping) else {}
    image = container.get("image")
    args = [str(a) for a in container.get("args") or []]
    program: Program | UnknownImage = (
        program_of(str(image), args)
        if isinstance(image, str) and image
        else UnknownImage("a container needs an image")
    )
    if isinstance(program, UnknownImage):
        reader.error(f"{base}.image", program.reason)
        ok = False
    ports = [p.get("containerPort") for p in container.get("ports") or [] if isinstance(p, Mapping)]
    env = _env(reader, f"{base}.env", container.get("env"), labels)
    probe = _probe(reader, f"{base}.readinessProbe", container.get("readinessProbe"))
    account = str(pod_spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)
    inject = annotations.get(INJECT_ANNOTATION, labels.get(INJECT_ANNOTATION, "")).lower()
    proxy: ProxyKind = "sidecar"
    if isinstance(program, Program) and program.gateway:
        proxy = "gateway"
    elif inject == "false" or not injection.get(manifest.namespace, True):
        proxy = "none"
    if not ok or not isinstance(program, Program):
        return _Template(manifest, labels, None, replicas)
    if program.version is not None:
        env.setdefault("SERVICE_VERSION", program.version)
    port = next((p for p in ports if isinstance(p, int)), None)
    pod = Pod(
        name=manifest.name,
        labels=labels,
        namespace=manifest.namespace,
        service_account=account,
        workload=manifest.name,
        program=program.name if not program.gateway else "",
        env=env,
        readiness=probe,
        proxy=proxy,
        port=port or 0,
    )
    return _Template(manifest, labels, pod, replicas)


def _service(manifest: Manifest, out: list[Issue]) -> Service | None:
    reader = _Reader(manifest, out)
    spec = _get(manifest.data, "spec") or {}
    raw_ports = spec.get("ports") if isinstance(spec, Mapping) else None
    ports: list[ServicePort] = []
    names: dict[str, int] = {}
    ok = True
    for i, raw in enumerate(raw_ports or []):
        path = f"spec.ports[{i}]"
        if not isinstance(raw, Mapping) or not isinstance(raw.get("port"), int):
            reader.error(f"{path}.port", "a Service port needs a port number")
            ok = False
            continue
        name = str(raw.get("name") or "")
        if not name and len(raw_ports or []) > 1:
            reader.error(f"{path}.name", "a Service with several ports must name each one")
            ok = False
        if name in names:
            reader.error(
                f"{path}.name",
                f"port name {name!r} is used twice (spec.ports[{names[name]}]): Kubernetes "
                "refuses this Service",
            )
            ok = False
        names.setdefault(name, i)
        target = raw.get("targetPort")
        ports.append(
            ServicePort(
                raw["port"],
                name,
                target if isinstance(target, int) else None,
                str(raw.get("protocol") or "TCP"),
                str(raw["appProtocol"]) if raw.get("appProtocol") else None,
            )
        )
    if not ports:
        reader.error("spec.ports", "a Service needs at least one port")
        ok = False
    selector = spec.get("selector") if isinstance(spec, Mapping) else None
    annotations = _str_map(_get(manifest.data, "metadata", "annotations"))
    export_to = tuple(
        part.strip()
        for part in annotations.get(EXPORT_TO_ANNOTATION, "").split(",")
        if part.strip()
    )
    if not ok:
        return None
    return Service(
        manifest.name,
        manifest.namespace,
        tuple(ports),
        _str_map(selector) if selector is not None else {},
        export_to,
    )


def lab_pod_name(name: str, namespace: str) -> str:
    """The pod's name across the whole lab (registry, logs, ``meshctl proxy-status``):
    Kubernetes names pods per namespace, so outside ``default`` and ``istio-system`` the name
    carries its namespace, as Istio's proxy ids do (``httpbin.foo``)."""
    return name if namespace in (DEFAULT_NAMESPACE, ROOT_NAMESPACE) else f"{name}.{namespace}"


def parse_workloads(files: Sequence[ManifestFile]) -> Workloads:
    """Every object of these files, checked together, as the lab's topology."""
    issues: list[Issue] = []
    manifests = _manifests(files, issues)
    namespaces: list[str] = [DEFAULT_NAMESPACE, ROOT_NAMESPACE]
    injection: dict[str, bool] = {}
    accounts: set[tuple[str, str]] = set()
    for manifest in manifests:
        if manifest.namespace not in namespaces:
            namespaces.append(manifest.namespace)
        if manifest.kind == "Namespace":
            labels = _str_map(_get(manifest.data, "metadata", "labels"))
            injection[manifest.name] = labels.get(INJECTION_LABEL) != "disabled"
        elif manifest.kind == "ServiceAccount":
            accounts.add((manifest.namespace, manifest.name))
    templates = [_deployment(m, injection, issues) for m in manifests if m.kind == "Deployment"]
    services: list[tuple[Manifest, Service]] = []
    for manifest in manifests:
        if manifest.kind == "Service":
            service = _service(manifest, issues)
            if service is not None:
                services.append((manifest, service))
    for manifest, service in services:
        selector = service.selector
        if not selector:
            continue
        if not any(
            t.manifest.namespace == service.namespace
            and all(t.labels.get(k) == v for k, v in selector.items())
            for t in templates
        ):
            _Reader(manifest, issues).error(
                "spec.selector",
                f"selector {dict(selector)} matches no pod template in namespace "
                f"{service.namespace}: the Service would have no endpoints",
            )
    pods: list[Pod] = []
    for template in templates:
        pod = template.pod
        if pod is None:
            continue
        reader = _Reader(template.manifest, issues)
        if pod.service_account != DEFAULT_SERVICE_ACCOUNT and (
            (pod.namespace, pod.service_account) not in accounts
        ):
            reader.error(
                "spec.template.spec.serviceAccountName",
                f"service account {pod.service_account!r} does not exist in namespace "
                f"{pod.namespace} (Kubernetes refuses the pods)",
            )
            continue
        selecting = [
            s
            for _m, s in services
            if s.namespace == pod.namespace
            and s.selector
            and all(pod.labels.get(k) == v for k, v in s.selector.items())
        ]
        service = selecting[0] if selecting else None
        port = pod.port or (
            (service.ports[0].target_port or service.ports[0].number)
            if service is not None and pod.proxy != "gateway"
            else DEFAULT_POD_PORT
        )
        pod = replace(pod, service_name=service.name if service else "", port=port)
        names = (
            [pod.name]
            if template.replicas == 1
            else [f"{pod.name}-{n}" for n in range(1, template.replicas + 1)]
        )
        pods.extend(replace(pod, name=lab_pod_name(name, pod.namespace)) for name in names)
    topology = Topology(
        services=tuple(s for _m, s in services),
        pods=tuple(pods),
        namespaces=tuple(namespaces),
        service_accounts=tuple(sorted(accounts)),
    )
    return Workloads(topology, manifests, issues)
