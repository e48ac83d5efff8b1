"""AuthorizationPolicy value syntax: IP blocks and path templates, with Istio's wording."""

from __future__ import annotations

import re

import pytest

from mesh.config.authz_values import check_path_template, parse_ip_block, path_template_regex


@pytest.mark.parametrize(
    ("block", "network"),
    [
        ("10.1.2.3", "10.1.2.3/32"),
        ("10.1.0.0/16", "10.1.0.0/16"),
        ("10.1.2.3/16", "10.1.0.0/16"),
        ("::1", "::1/128"),
    ],  # fmt: skip
)
def test_ip_blocks(block: str, network: str) -> None:
    assert str(parse_ip_block(block)) == network


@pytest.mark.parametrize(("block", "kind"), [("ip1", "IP address"), ("10.0.0.0/33", "CIDR range")])
def test_bad_ip_blocks(block: str, kind: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"bad {kind} ({block})")):
        parse_ip_block(block)


# Istio's path template examples (authorization_policy.proto, Operation.paths).
@pytest.mark.parametrize(
    ("template", "path", "matches"),
    [
        ("/foo/{*}", "/foo/bar", True),
        ("/foo/{*}", "/foo/bar/baz", False),
        ("/foo/{*}/bar/{**}", "/foo/buzz/bar/", True),
        ("/foo/{*}/bar/{**}", "/foo/buzz/bar/baz", True),
        ("/foo/{**}/", "/foo/bar/", True),
    ],
)
def test_path_templates(template: str, path: str, matches: bool) -> None:
    assert (re.fullmatch(path_template_regex(template), path) is not None) is matches


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("/*/baz/{*}", "segment '*' is not a valid literal"),
        ("/**/baz/{*}", "segment '**' is not a valid literal"),
        ("/{**}/foo/{*}", "{**} is not the last operator"),
        ("/foo/{*}.txt", "'{' or '}' outside {*} and {**}"),
    ],
)
def test_invalid_path_templates(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        check_path_template(template)
