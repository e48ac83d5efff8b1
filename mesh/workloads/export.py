"""The lab's workloads as manifests for a real cluster (pure: manifests in, documents out).

``export_documents(manifests, image=..., istio_images=...)`` turns the lab's manifests into
what ``kubectl apply`` runs on a cluster with Istio:

- every object gets its namespace written out (a profile's ``{file, namespace}`` is
  ``kubectl apply -n``); each namespace other than ``default`` gets a ``Namespace`` with
  ``istio-injection: enabled`` (``disabled`` where the lab runs pods without a sidecar);
- every container runs the lab's image (``image``, e.g. ``ghcr.io/me/meshlab:1.0``) with
  ``python -m services.serve <program>``, the version its Istio image implied in
  ``SERVICE_VERSION`` — so the pages carry ``x-served-by`` and ``make verify-*`` can attribute
  them — or, with ``istio_images``, keeps Istio's own images where Istio has one (Bookinfo,
  go-httpbin, curl, fortio) and uses ``image`` only for the lab's own programs;
- the lab's control plane (``istio-system``: the ingress gateway) is left out: the cluster's
  Istio install provides it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from mesh.topology import DEFAULT_NAMESPACE, ROOT_NAMESPACE
from mesh.workloads.images import LAB_IMAGE, Program, image_name, program_of
from mesh.workloads.manifests import INJECTION_LABEL, Manifest

SERVE = ["python", "-m", "services.serve"]


def _container(container: dict[str, Any], image: str, istio_images: bool) -> dict[str, Any]:
    program = program_of(str(container.get("image", "")), container.get("args") or [])
    if not isinstance(program, Program) or program.gateway:
        return container
    own = image_name(str(container.get("image", ""))) == LAB_IMAGE
    if istio_images and not own:
        return container
    out = dict(container)
    out["image"] = image
    out["command"] = list(SERVE)
    out["args"] = [program.name]
    out["imagePullPolicy"] = "IfNotPresent"
    env = [e for e in out.get("env") or [] if e.get("name") != "SERVICE_VERSION"]
    if program.version is not None:
        env.append({"name": "SERVICE_VERSION", "value": program.version})
    else:
        version = next(
            (e for e in container.get("env") or [] if e.get("name") == "SERVICE_VERSION"), None
        )
        env.append(
            version
            or {
                "name": "SERVICE_VERSION",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['version']"}},
            }
        )
    out["env"] = env
    return out


def export_documents(
    manifests: Sequence[Manifest],
    *,
    image: str,
    istio_images: bool = False,
    no_sidecar_namespaces: Sequence[str] = (),
) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    namespaces = [
        m.namespace for m in manifests if m.namespace not in (DEFAULT_NAMESPACE, ROOT_NAMESPACE)
    ]
    declared = {m.name for m in manifests if m.kind == "Namespace"}
    for namespace in dict.fromkeys(namespaces):
        if namespace in declared:
            continue
        injection = "disabled" if namespace in no_sidecar_namespaces else "enabled"
        documents.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {INJECTION_LABEL: injection}},
            }
        )
    for manifest in manifests:
        if manifest.namespace == ROOT_NAMESPACE:
            continue
        data = copy.deepcopy(dict(manifest.data))
        metadata = dict(data.get("metadata") or {})
        if manifest.kind != "Namespace":
            metadata["namespace"] = manifest.namespace
        elif INJECTION_LABEL not in (metadata.get("labels") or {}):
            metadata["labels"] = {**(metadata.get("labels") or {}), INJECTION_LABEL: "enabled"}
        data["metadata"] = metadata
        if manifest.kind == "Deployment":
            pod_spec = data.get("spec", {}).get("template", {}).get("spec", {})
            pod_spec["containers"] = [
                _container(c, image, istio_images) for c in pod_spec.get("containers") or []
            ]
        documents.append(data)
    return documents
