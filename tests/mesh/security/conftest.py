"""The CA the certificate tests share: one root per module (workload keys are cheap)."""

from __future__ import annotations

import pytest

from mesh.security.ca import MeshCA
from tests.helpers import CERT_NOW


@pytest.fixture(scope="module")
def ca() -> MeshCA:
    return MeshCA.create(CERT_NOW)
