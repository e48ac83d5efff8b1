"""Port Istio's validation table tests into this folder's YAML fixtures (a dev tool).

Usage, with a checkout of istio/istio at the commit named in ``__init__.ISTIO_COMMIT``::

    .venv/bin/python -m tests.mesh.config.validate.istio.port_tables ISTIO_CHECKOUT

It reads the Go composite literals of the table tests (``Parser``: the subset those tables
use: typed and elided literals, maps, slices, strings, numbers, proto enums, oneof wrappers
flattened as in proto JSON, wrapper types unwrapped, durations as proto-JSON strings, a few
helpers, and local variables bound earlier in the test), wraps a case that tests one field in
the smallest valid resource, and writes one YAML file per kind with Istio's verdict per case.
"""

from __future__ import annotations

import ast
import base64
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.mesh.config.validate.istio import ISTIO_COMMIT

ONEOF_FIELDS = {
    "MatchType",
    "HttpDelayType",
    "ErrorType",
    "Specifier",
    "LbPolicy",
    "HashKey",
    "HashAlgorithm",
    "RedirectPort",
    "HealthCheckMethod",
    "PortSelector",
}
SPECIAL_NAMES = {"String_": "string", "Consecutive_5XxErrors": "consecutive5xxErrors"}


class Unsupported(Exception):
    pass


@dataclass
class Duration:
    nanos: int

    def json(self) -> str:
        seconds, nanos = divmod(self.nanos, 1_000_000_000)
        if nanos:
            frac = f"{nanos:09d}".rstrip("0")
            return f"{seconds}.{frac}s"
        return f"{seconds}s"


@dataclass
class Composite:
    type_name: str  # "" when elided
    items: list  # list of (key or None, value)


TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<raw>`[^`]*`)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<rune>'(?:[^'\\]|\\.)*')
  | (?P<num>\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+|0x[0-9a-fA-F]+|\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.\.|:=|<<|&&|\|\||==|!=|<=|>=|[{}()\[\],:&*+\-/.<>=!%;|^])
    """,
    re.S | re.X,
)

TIME_UNITS = {
    "Nanosecond": 1,
    "Microsecond": 1_000,
    "Millisecond": 1_000_000,
    "Second": 1_000_000_000,
    "Minute": 60_000_000_000,
    "Hour": 3_600_000_000_000,
}


def tokenize(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise Unsupported(f"cannot tokenize at {text[pos : pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group()))
    return out


def go_string(tok: str) -> str:
    if tok.startswith("`"):
        return tok[1:-1]

    return ast.literal_eval(tok)


class Parser:
    def __init__(self, tokens: list[tuple[str, str]], env: dict[str, Any] | None = None) -> None:
        self.toks = tokens
        self.i = 0
        self.env = {"kb": 1024, "mb": 1024 * 1024, **(env or {})}

    def peek(self, k: int = 0) -> tuple[str, str]:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if value is not None and tok[1] != value:
            raise Unsupported(f"expected {value!r}, got {tok[1]!r} near {self.context()}")
        self.i += 1
        return tok

    def context(self) -> str:
        return " ".join(t for _, t in self.toks[max(0, self.i - 8) : self.i + 8])

    # -- types -----------------------------------------------------------------------------

    def parse_type(self) -> str:
        """[]*pkg.T, map[K]V, *pkg.T, pkg.T, struct{...}: returned as text."""
        parts = []
        while True:
            kind, tok = self.peek()
            if tok == "[":
                self.take("[")
                self.take("]")
                parts.append("[]")
            elif tok == "*":
                self.take()
                parts.append("*")
            elif tok == "map":
                self.take()
                self.take("[")
                key = self.parse_type()
                self.take("]")
                value = self.parse_type()
                return "".join(parts) + f"map[{key}]{value}"
            elif tok == "struct":
                self.take()
                self.take("{")
                depth = 1
                fields = []
                while depth:
                    k, t = self.take()
                    if t == "{":
                        depth += 1
                    elif t == "}":
                        depth -= 1
                    fields.append(t)
                return "".join(parts) + "struct{" + " ".join(fields)
            elif kind == "ident":
                self.take()
                name = tok
                if self.peek()[1] == "." and self.peek(1)[0] == "ident":
                    self.take(".")
                    name += "." + self.take()[1]
                return "".join(parts) + name
            else:
                raise Unsupported(f"bad type near {self.context()}")

    # -- expressions -------------------------------------------------------------------------

    def parse_expr(self, elided_type: str = "") -> Any:
        left = self.parse_unary(elided_type)
        while self.peek()[1] in ("+", "*", "-", "/", "<<"):
            op = self.take()[1]
            right = self.parse_unary(elided_type)
            left = self.binop(op, left, right)
        return left

    def binop(self, op: str, a: Any, b: Any) -> Any:
        if isinstance(a, Duration) or isinstance(b, Duration):
            av = a.nanos if isinstance(a, Duration) else a
            bv = b.nanos if isinstance(b, Duration) else b
            if op == "*":
                return Duration(int(av * bv))
            if op == "+":
                return Duration(av + bv)
            if op == "-":
                return Duration(av - bv)
            if op == "/":
                if isinstance(a, Duration) and isinstance(b, Duration):
                    return av // bv
                return Duration(av // bv)
        if op == "<<":
            return a << b
        if op == "+":
            return a + b
        if op == "*":
            return a * b
        if op == "-":
            return a - b
        if op == "/":
            return a // b if isinstance(a, int) and isinstance(b, int) else a / b
        raise Unsupported(op)

    def parse_unary(self, elided_type: str = "") -> Any:
        kind, tok = self.peek()
        if tok == "-":
            self.take()
            value = self.parse_unary()
            return Duration(-value.nanos) if isinstance(value, Duration) else -value
        if tok == "&":
            self.take()
            return self.parse_unary(elided_type)
        if tok == "(":
            self.take()
            value = self.parse_expr()
            self.take(")")
            return value
        if kind in ("str", "raw"):
            self.take()
            return go_string(tok)
        if kind == "num":
            self.take()
            if tok.startswith("0x"):
                return int(tok, 16)
            return float(tok) if ("." in tok or "e" in tok) else int(tok)
        if tok == "{":
            return self.parse_composite(elided_type)
        if tok in ("[", "map", "*"):
            type_name = self.parse_type()
            if self.peek()[1] == "(":
                (value,) = self.args()
                if type_name == "[]byte":
                    import base64

                    return base64.b64encode(value.encode()).decode()
                return value
            return self.parse_composite(type_name)
        if kind == "ident":
            return self.parse_ident_expr()
        raise Unsupported(f"unexpected {tok!r} near {self.context()}")

    def parse_ident_expr(self) -> Any:
        kind, tok = self.take()
        if tok in ("true", "false"):
            return tok == "true"
        if tok == "nil":
            return None
        name = tok
        while self.peek()[1] == "." and self.peek(1)[0] == "ident":
            self.take(".")
            name += "." + self.take()[1]
        if self.peek()[1] == "{" and name not in self.env:
            return self.parse_composite(name)
        if self.peek()[1] == "(":
            return self.call(name)
        if name in self.env:
            return self.env[name]
        if name.startswith("time.") and name[5:] in TIME_UNITS:
            return Duration(TIME_UNITS[name[5:]])
        if "." in name:
            pkg, const = name.split(".", 1)
            if pkg in ("networking", "networkingv1beta1", "networkingv1alpha3"):
                return enum_value(const)
            if pkg == "math" and const == "MaxUint32":
                return 4294967295
            if pkg == "math" and const == "MaxInt32":
                return 2147483647
        raise Unsupported(f"unknown identifier {name}")

    def args(self) -> list[Any]:
        self.take("(")
        out = []
        while self.peek()[1] != ")":
            out.append(self.parse_expr())
            if self.peek()[1] == ",":
                self.take()
        self.take(")")
        return out

    def call(self, name: str) -> Any:
        args = self.args()
        if name == "durationpb.New":
            return args[0]
        if name in ("time.Duration", "int64", "int32", "uint32", "int", "float64", "uint64"):
            return args[0]
        if name == "strings.Repeat":
            return args[0] * args[1]
        if name == "fmt.Sprintf":
            fmt, *rest = args
            return re.sub(r"%[sdv]", "{}", fmt).format(*rest)
        if name.startswith("wrapperspb.") or name.startswith("wrappers."):
            return Wrapped(args[0])
        if name in ("errors.New", "fmt.Errorf"):
            return {"error": args[0]}
        if name == "string":
            return args[0]
        raise Unsupported(f"call {name}")

    def parse_composite(self, type_name: str) -> Any:
        self.take("{")
        items: list[tuple[Any, Any]] = []
        element_type = element_of(type_name)
        while self.peek()[1] != "}":
            # key: value, or value
            start = self.i
            key = None
            if self.peek()[0] == "ident" and self.peek(1)[1] == ":":
                key = self.take()[1]
                self.take(":")
            elif type_name.startswith("map["):
                key = self.parse_expr()
                self.take(":")
            else:
                self.i = start
            value = self.parse_expr(
                element_type if key is None or type_name.startswith("map[") else ""
            )
            items.append((key, value))
            if self.peek()[1] == ",":
                self.take()
        self.take("}")
        return build(type_name, items)


def element_of(type_name: str) -> str:
    if type_name.startswith("[]"):
        return type_name[2:]
    if type_name.startswith("map["):
        depth = 0
        for i, ch in enumerate(type_name):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    return type_name[i + 1 :]
    return ""


def enum_value(const: str) -> str:
    parts = const.split("_")
    value: list[str] = []
    for part in reversed(parts):
        if part and re.fullmatch(r"[A-Z0-9]+", part):
            value.insert(0, part)
        else:
            break
    if not value:
        raise Unsupported(f"enum {const}")
    return "_".join(value)


def json_name(go_name: str) -> str:
    if go_name in SPECIAL_NAMES:
        return SPECIAL_NAMES[go_name]
    return go_name[:1].lower() + go_name[1:]


def build(type_name: str, items: list[tuple[Any, Any]]) -> Any:
    bare = type_name.lstrip("*&")
    if bare.startswith("[]"):
        return [v for _, v in items]
    if bare.startswith("map["):
        return {k: v for k, v in items}
    if bare.startswith("struct{"):
        return Composite(bare, items)
    short = bare.split(".")[-1]
    if (
        bare.startswith(("durationpb.", "types.Duration"))
        or short == "Duration"
        and bare.startswith(("durationpb", "types"))
    ):
        fields = dict(items)
        return Duration(int(fields.get("Seconds", 0)) * 10**9 + int(fields.get("Nanos", 0)))
    if bare.startswith(("wrapperspb.", "wrappers.", "types.")) and short.endswith("Value"):
        return Wrapped(dict(items).get("Value", False if "Bool" in short else 0))
    if any(k is None for k, _ in items) and items:
        return Composite(bare, items)
    out: dict[str, Any] = {}
    for key, value in items:
        if key in ONEOF_FIELDS and isinstance(value, dict):
            # a oneof member is present even at its zero value (prefix: "")
            out.update(
                {
                    k: v if isinstance(v, (dict, list, Duration, Wrapped)) else Wrapped(v)
                    for k, v in value.items()
                }
            )
            continue
        out[json_name(key)] = value
    return TypedDict(bare, out)


@dataclass
class Wrapped:
    """A protobuf wrapper value: present even when zero."""

    value: Any


class TypedDict(dict):
    """A message with the Go type it was written as (for elided-type resolution)."""

    def __init__(self, type_name: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.type_name = type_name


def plain(value: Any) -> Any:
    """To JSON-able values: durations as strings, empty messages kept as {}."""
    if isinstance(value, Duration):
        return value.json()
    if isinstance(value, Wrapped):
        return plain(value.value) if not isinstance(value.value, Duration) else value.value.json()
    if isinstance(value, TypedDict):
        return {k: plain(v) for k, v in value.items() if not _is_zero(v)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Composite):
        raise Unsupported(f"positional composite {value.type_name}")
    return value


def _is_zero(value: Any) -> bool:
    # proto3 scalars at their zero value are absent in proto JSON; messages (dicts) and
    # durations stay even when empty (presence matters: an empty trafficPolicy is invalid).
    if isinstance(value, bool):
        return value is False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str):
        return value == ""
    if value is None:
        return True
    if isinstance(value, list):
        return len(value) == 0
    return False


def function_body(source: str, name: str) -> str:
    start = source.index(f"func {name}(")
    brace = source.index("{", source.index(")", start))
    depth = 0
    for i in range(brace, len(source)):
        if source[i] == "{":
            depth += 1
        elif source[i] == "}":
            depth -= 1
            if depth == 0:
                return source[brace + 1 : i]
    raise ValueError(name)


def cases(source: str, name: str) -> list[dict[str, Any]]:
    body = function_body(source, name)
    tokens = tokenize(body)
    parser = Parser(tokens)
    env: dict[str, Any] = {}
    # walk statements: `x := expr` before the table; the table is `x := []struct{...}{...}`
    while parser.peek()[0] != "eof":
        kind, tok = parser.peek()
        if kind == "ident" and parser.peek(1)[1] == ":=":
            var = parser.take()[1]
            parser.take(":=")
            if parser.peek()[1] == "[" and parser.peek(2)[1] == "struct":
                type_name = parser.parse_type()
                fields = table_fields(body)
                parser.env.update(env)
                table = parser.parse_composite(type_name)
                return [to_case(entry, fields) for entry in table]
            start = parser.i
            try:
                parser.env.update(env)
                env[var] = parser.parse_expr()
            except Unsupported:
                parser.i = start + 1
            continue
        parser.take()
    raise ValueError(f"no table in {name}")


def table_fields(body: str) -> list[str]:
    m = re.search(r"\[\]struct\s*{(.*?)\n\s*}\s*{", body, re.S)
    assert m, "struct"
    names = []
    for line in m.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        first = line.split()[0]
        names.append(first)
    return names


def to_case(entry: Any, fields: list[str]) -> dict[str, Any]:
    if isinstance(entry, Composite):
        if all(k is None for k, _ in entry.items):
            return {f: v for f, (_, v) in zip(fields, entry.items, strict=False)}
        return {k: v for k, v in entry.items}
    if isinstance(entry, dict):
        # keyed fields with lowercase names went through json_name: identical
        return dict(entry)
    raise Unsupported(f"case {entry!r}")


TESTS = {
    "validation_test.go": "TestValidateGateway TestValidateServer TestValidateServerPort TestValidateTlsOptions "
    "TestValidateHTTPHeaderName TestValidateCORSPolicy TestValidateHTTPStatus TestValidateHTTPFaultInjectionAbort "
    "TestValidateHTTPFaultInjectionDelay TestValidateHTTPRetry TestValidateHTTPRewrite TestValidateUriRegexRewrite "
    "TestValidatePortName TestValidateHTTPRedirect TestValidateHTTPDirectResponse TestValidateDestination "
    "TestValidateHTTPRoute TestValidateRouteDestination TestValidateVirtualService TestValidateDestinationRule "
    "TestValidateTrafficPolicy TestValidateConnectionPool TestValidateLoadBalancer TestValidateOutlierDetection "
    "TestValidateServiceEntries Test_validateExportTo TestValidateHTTPHeaderValue",
    "virtualservice_test.go": "TestValidateChainingVirtualService TestValidateRootHTTPRoute "
    "TestValidateDelegateHTTPRoute",
    "agent/validation_test.go": "TestValidateTLS TestValidateWildcardDomain "
    "TestValidateWildcardDomainForVirtualServiceBoundToGateway TestValidateLocalityLbSetting "
    "TestValidateZoneAwareLbSetting TestValidateFQDN",
}


def read_tables(checkout: Path) -> dict[str, list[dict[str, Any]]]:
    tables: dict[str, list[dict[str, Any]]] = {}
    for file, names in TESTS.items():
        source = (checkout / "pkg/config/validation" / file).read_text(encoding="utf-8")
        for name in names.split():
            tables[name] = [{k: plain(v) for k, v in case.items()} for case in cases(source, name)]
    return tables


def compact(value: Any) -> Any:
    """Long repeated strings as {__repeat__: s, times: n} (Istio's size-limit cases)."""
    if isinstance(value, str) and len(value) > 300 and len(set(value)) == 1:
        return {"__repeat__": value[0], "times": len(value)}
    if isinstance(value, str) and len(value) > 300:
        try:
            raw = base64.b64decode(value, validate=True).decode()
        except ValueError:
            raw = ""
        if raw and len(set(raw)) == 1:
            return {"__base64_of_repeat__": raw[0], "times": len(raw)}
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


FILES = {
    "VirtualService": "virtual_service",
    "DestinationRule": "destination_rule",
    "Gateway": "gateway",
    "ServiceEntry": "service_entry",
}


def _duration_json(nanos: int) -> str:
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), 10**9)
    return f"{sign}{whole}" + (f".{frac:09d}".rstrip("0") if frac else "") + "s"


def main(checkout: Path, target: Path) -> None:
    data = read_tables(checkout)
    route = {"route": [{"destination": {"host": "foo.baz"}}]}
    out: dict[str, list[dict]] = {k: [] for k in FILES}
    skipped: list[str] = []

    def emit(
        test: str,
        kind: str,
        wrap: Any,
        *,
        key: str = "in",
        full: str | None = None,
        skip_nil: bool = False,
        name: Any = None,
    ) -> None:
        """One Go table into ``kind``'s cases: ``wrap(input)`` is the resource spec; the
        verdict is error/no-error, or valid/warning/error when the test checks ``full``."""
        for c in data[test]:
            label = name(c) if name else c["name"]
            if skip_nil and c.get(key) is None:
                skipped.append(f"{test}: {label} (nil)")
                continue
            valid = c.get("valid", False)
            if full is None:
                istio = "no-error" if valid else "error"
            else:
                istio = "error" if not valid else ("warning" if c.get(full, False) else "valid")
            out[kind].append({"case": f"{test}: {label}", "istio": istio, "spec": wrap(c.get(key))})

    def vs(**fields: Any) -> dict:
        return {"hosts": ["foo.bar"], **fields}

    def http(**fields: Any) -> dict:
        return {**route, **fields}

    def dr(policy: dict) -> dict:
        return {"host": "reviews", "trafficPolicy": policy}

    V, D, G, S = "VirtualService", "DestinationRule", "Gateway", "ServiceEntry"
    emit("TestValidateVirtualService", V, lambda x: x or {}, full="warning")
    emit("TestValidateChainingVirtualService", V, lambda x: x or {})
    for test in ("TestValidateHTTPRoute", "TestValidateRootHTTPRoute"):
        emit(test, V, lambda x: vs(http=[x or {}]), key="route")
    emit("TestValidateDelegateHTTPRoute", V, lambda x: {"http": [x or {}]}, key="route")
    emit("TestValidateRouteDestination", V, lambda x: vs(tcp=[{"route": x or []}]), key="routes")
    # ValidateHTTPHeaderNameOrJwtClaimRoute: the header names of a match
    emit(
        "TestValidateHTTPHeaderName",
        V,
        lambda x: vs(http=[http(match=[{"headers": {x: {"exact": "v"}}}])]),
        key="name",
        name=lambda c: repr(c["name"]),
    )
    emit("TestValidateCORSPolicy", V, lambda x: vs(http=[http(corsPolicy=x or {})]))
    emit(
        "TestValidateHTTPStatus",
        V,
        lambda x: vs(http=[{"directResponse": {"status": x} if x else {}}]),
        name=lambda c: str(c["in"]),
    )
    for test, field in (
        ("TestValidateHTTPFaultInjectionAbort", "abort"),
        ("TestValidateHTTPFaultInjectionDelay", "delay"),
    ):
        emit(test, V, lambda x, f=field: vs(http=[http(fault={f: x})]), skip_nil=True)
    emit("TestValidateHTTPRetry", V, lambda x: vs(http=[http(retries=x or {})]))
    emit("TestValidateHTTPRewrite", V, lambda x: vs(http=[http(rewrite=x)]), skip_nil=True)
    emit(
        "TestValidateUriRegexRewrite",
        V,
        lambda x: vs(http=[http(rewrite={"uriRegexRewrite": x})]),
        skip_nil=True,
    )
    emit(
        "TestValidateHTTPRedirect",
        V,
        lambda x: vs(http=[{"redirect": x}]),
        key="redirect",
        skip_nil=True,
    )
    emit(
        "TestValidateHTTPDirectResponse",
        V,
        lambda x: vs(http=[{"directResponse": x}]),
        key="directResponse",
        full="warning",
        skip_nil=True,
    )
    emit(
        "TestValidateDestination",
        V,
        lambda x: vs(http=[{"route": [{"destination": x or {}}]}]),
        key="destination",
    )
    for c in data["TestValidateHTTPHeaderValue"]:
        c["valid"] = c.get("expected") is None
    emit(
        "TestValidateHTTPHeaderValue",
        V,
        lambda x: vs(http=[http(headers={"request": {"set": {"x-lab": x}}})]),
        key="input",
        name=lambda c: repr(c["input"]),
    )
    gateway_hosts = data["TestValidateWildcardDomainForVirtualServiceBoundToGateway"]
    for c in gateway_hosts:
        c["valid"] = c.get("out", "") == ""
        c["spec"] = {"hosts": [c["in"]], "gateways": ["gateway"]}
        if c.get("sni", False):
            c["spec"]["tls"] = [
                {
                    "match": [{"sniHosts": [c["in"]]}],
                    "route": [{"destination": {"host": "foo.baz"}}],
                }
            ]
        else:
            c["spec"]["http"] = [dict(route)]
    # ValidateVirtualService itself accepts an IP host: no resource shows that case.
    skipped += [
        f"TestValidateWildcardDomainForVirtualServiceBoundToGateway: {c['name']} (IP host)"
        for c in gateway_hosts
        if c["in"] == "1.1.1.1"
    ]
    data["TestValidateWildcardDomainForVirtualServiceBoundToGateway"] = [
        c for c in gateway_hosts if c["in"] != "1.1.1.1"
    ]
    emit("TestValidateWildcardDomainForVirtualServiceBoundToGateway", V, lambda x: x, key="spec")
    # ValidateFQDN checks a gateway name given without namespace/
    emit("TestValidateFQDN", V, lambda x: vs(gateways=[x], http=[dict(route)]), key="fqdn")
    # agent TestValidateDuration and TestValidatePort (map and struct tables, written out here)
    data["TestValidateDuration"] = [
        {"name": f"Seconds: {s}, Nanos: {n}", "in": _duration_json(s * 10**9 + n), "valid": v}
        for s, n, v in (
            (1, 0, True),
            (1, -1, False),
            (-11, -1, False),
            (0, 1, False),
            (1, 1, False),
        )
    ]
    emit("TestValidateDuration", V, lambda x: vs(http=[http(timeout=x)]))
    data["TestValidatePort"] = [
        {"name": str(p), "in": p, "valid": v}
        for p, v in (
            (0, False),
            (65536, False),
            (-1, False),
            (100, True),
            (1000, True),
            (65535, True),
        )
    ]
    emit(
        "TestValidatePort",
        V,
        lambda x: vs(
            http=[
                {
                    "route": [
                        {"destination": {"host": "foo.baz", "port": {"number": x} if x else {}}}
                    ]
                }
            ]
        ),
    )

    emit("TestValidateDestinationRule", D, lambda x: x or {}, full="warning")
    emit("TestValidateTrafficPolicy", D, lambda x: dr(x or {}))
    emit("TestValidateConnectionPool", D, lambda x: dr({"connectionPool": x or {}}))
    emit("TestValidateLoadBalancer", D, lambda x: dr({"loadBalancer": x or {}}))
    emit(
        "TestValidateOutlierDetection", D, lambda x: dr({"outlierDetection": x or {}}), full="warn"
    )
    emit("TestValidateTLS", D, lambda x: dr({"tls": x or {}}), key="tls")
    for test, field in (
        ("TestValidateLocalityLbSetting", "localityLbSetting"),
        ("TestValidateZoneAwareLbSetting", "zoneAwareLbSetting"),
    ):
        for c in data[test]:
            c["valid"] = not c.get("err", False)
            if c.get("in") is not None:
                policy = {"loadBalancer": {field: c["in"]}}
                if c.get("outlier") is not None:
                    policy["outlierDetection"] = c["outlier"]
                c["policy"] = policy
        emit(test, D, lambda x: dr(x), key="policy", full="warn", skip_nil=True)
    for c in data["TestValidateWildcardDomain"]:
        c["valid"] = c.get("out", "") == ""
    emit("TestValidateWildcardDomain", D, lambda x: {"host": x})
    for c in data["Test_validateExportTo"]:
        # The lab's traffic kinds live in one namespace: the case's namespace is written "default".
        export = [("default" if e == c["namespace"] else e) for e in c.get("exportTo") or []]
        c["valid"] = not c.get("wantErr", False)
        if c.get("isServiceEntry"):
            c["entry"] = {
                "hosts": ["foo.bar.com"],
                "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                "resolution": "DNS",
                "exportTo": export,
            }
        else:
            c["rule"] = {"host": "reviews", "exportTo": export}
            if c.get("isDestinationRuleWithSelector"):
                c["rule"]["workloadSelector"] = {"matchLabels": {"app": "reviews"}}
    exports = data["Test_validateExportTo"]
    data["Test_validateExportTo"] = [c for c in exports if "rule" in c]
    emit("Test_validateExportTo", D, lambda x: x, key="rule")
    data["Test_validateExportTo"] = [c for c in exports if "entry" in c]
    emit("Test_validateExportTo", S, lambda x: x, key="entry")

    for c in data["TestValidateGateway"]:
        c["valid"], c["warn"] = not c.get("out", ""), bool(c.get("warning", ""))
    skipped += [
        f"TestValidateGateway: {c['name']} (not a Gateway)"
        for c in data["TestValidateGateway"]
        if "servers" not in (c.get("in") or {}) and c.get("out", "") == "cannot cast"
    ]
    data["TestValidateGateway"] = [
        c
        for c in data["TestValidateGateway"]
        if "servers" in (c.get("in") or {}) or c.get("out", "") != "cannot cast"
    ]
    emit("TestValidateGateway", G, lambda x: x or {}, full="warn")
    for c in data["TestValidateServer"]:
        c["valid"] = not c.get("out", "")
    emit("TestValidateServer", G, lambda x: {"servers": [x or {}]}, full="never")
    for c in data["TestValidateServerPort"]:
        c["valid"] = c.get("out", "") == ""
        port = c.get("in") or {}
        server = {"hosts": ["foo.bar.com"], "port": port}
        if c.get("bind"):
            server["bind"] = c["bind"]
        if str(port.get("protocol", "")).upper() in ("HTTPS", "TLS"):
            server["tls"] = {"mode": "SIMPLE", "credentialName": "cert"}
        c["server"] = server
    emit("TestValidateServerPort", G, lambda x: {"servers": [x]}, key="server")
    for c in data["TestValidateTlsOptions"]:
        c["valid"], c["warn"] = not c.get("out", ""), bool(c.get("warning", ""))
    https = {"number": 443, "name": "https", "protocol": "HTTPS"}
    emit(
        "TestValidateTlsOptions",
        G,
        lambda x: {"servers": [{"hosts": ["foo.bar.com"], "port": https, "tls": x or {}}]},
        full="warn",
    )

    for c in data["TestValidateServiceEntries"]:
        out[S].append(
            {
                "case": f"TestValidateServiceEntries: {c['name']}",
                "istio": "error"
                if not c.get("valid", False)
                else ("warning" if c.get("warning", False) else "valid"),
                **({"labels": c["labels"]} if c.get("labels") else {}),
                "spec": c.get("in") or {},
            }
        )
    emit(
        "TestValidatePortName",
        S,
        lambda x: {
            "hosts": ["foo.bar.com"],
            "ports": [{"number": 80, "protocol": "HTTP", **({"name": x} if x else {})}],
            "resolution": "DNS",
        },
        key="name",
        name=lambda c: repr(c["name"]),
    )

    for kind, kind_cases in out.items():
        header = (
            f"# Istio's own validation table tests for {kind}, as lab fixtures.\n"
            f"# Source: istio/istio@{ISTIO_COMMIT}\n"
            "#   pkg/config/validation/validation_test.go, virtualservice_test.go, agent/validation_test.go\n"
            "# Each case names its Go test and case; a case that tests one field is wrapped in the\n"
            "# smallest valid resource. istio: valid | warning | error, or no-error where Istio's test\n"
            "# checks errors only. {__repeat__: c, times: n} stands for a string of n times c.\n"
        )
        with open(target / f"{FILES[kind]}.yaml", "w", encoding="utf-8") as fh:
            fh.write(header)
            yaml.safe_dump(
                [compact(c) for c in kind_cases], fh, sort_keys=False, allow_unicode=True, width=100
            )
        print(kind, len(kind_cases))
    print("skipped", len(skipped))
    for line in skipped:
        print("  ", line)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).parent)
