"""The subset of Velocity (VTL) the preflight's mapping template uses, run as API
Gateway runs it (see Vtl), so the check can put requests through the template."""

from __future__ import annotations

import re
from typing import Any


class VtlError(Exception):
    pass


class Vtl:
    """Runs the subset of Velocity (VTL) an API Gateway mapping template of
    this project may use, as API Gateway runs it: `#set`, `#if`/`#elseif`/
    `#else`/`#end`, `#foreach`, `##` comments, references with properties and
    Java method calls (`keySet`, `get`, `toLowerCase`, `contains`), string,
    boolean and list literals, `==`, `!=`, `&&`, `||`, `!`. Anything else is
    an error, so the preflight template cannot grow a construct this check
    does not understand. `$input.params().header` is the request's headers;
    `#set($context.responseOverride.header.X = ...)` records a header of the
    answer (twice is an error: API Gateway answers 5XX)."""

    IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.body, stop = self.block(())
        if stop is not None:
            raise VtlError(f"unexpected #{stop}")

    # -- parsing: a template is a list of nodes

    def block(self, stops: tuple[str, ...]) -> tuple[list, str | None]:
        nodes: list = []
        text = ""
        while self.pos < len(self.text):
            s = self.text
            if s.startswith("##", self.pos):
                end = s.find("\n", self.pos)
                self.pos = len(s) if end < 0 else end + 1
                continue
            directive = re.match(r"#\{?(set|if|elseif|else|end|foreach)\}?", s[self.pos:])
            if directive:
                if text:
                    nodes.append(("text", text))
                    text = ""
                name = directive.group(1)
                self.pos += directive.end()
                if name in ("end", "else", "elseif"):
                    if name not in stops:
                        raise VtlError(f"#{name} outside a block")
                    return nodes, name
                if name == "set":
                    inner = self.parens()
                    target, _, value = inner.partition("=")
                    nodes.append(("set", self.reference_path(target.strip()), Expr(value.strip())))
                elif name == "if":
                    branches = []
                    condition = Expr(self.parens())
                    while True:
                        body, stop = self.block(("elseif", "else", "end"))
                        branches.append((condition, body))
                        if stop == "end":
                            break
                        if stop == "else":
                            body, stop = self.block(("end",))
                            branches.append((None, body))
                            break
                        condition = Expr(self.parens())
                    nodes.append(("if", branches))
                elif name == "foreach":
                    inner = self.parens()
                    match = re.fullmatch(r"\s*\$([A-Za-z][A-Za-z0-9_]*)\s+in\s+(.+)", inner, re.S)
                    if not match:
                        raise VtlError(f"cannot read #foreach({inner})")
                    body, stop = self.block(("end",))
                    nodes.append(("foreach", match.group(1), Expr(match.group(2)), body))
                continue
            if s[self.pos] == "$" or s[self.pos] == "#":
                raise VtlError(f"unsupported text at {s[self.pos:self.pos + 30]!r}")
            text += s[self.pos]
            self.pos += 1
        if text:
            nodes.append(("text", text))
        if stops:
            raise VtlError(f"missing #end (expected one of {stops})")
        return nodes, None

    def parens(self) -> str:
        s = self.text
        if self.pos >= len(s) or s[self.pos] != "(":
            raise VtlError(f"expected ( at {s[self.pos:self.pos + 30]!r}")
        depth, i, quote = 0, self.pos, None
        while i < len(s):
            c = s[i]
            if quote:
                if c == quote:
                    quote = None
            elif c in "\"'":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    inner = s[self.pos + 1:i]
                    self.pos = i + 1
                    return inner
            i += 1
        raise VtlError("unbalanced parentheses")

    def reference_path(self, text: str) -> list[str]:
        if not text.startswith("$"):
            raise VtlError(f"#set needs a reference, not {text!r}")
        parts = text[1:].split(".")
        if not all(self.IDENT.fullmatch(p) for p in parts):
            raise VtlError(f"cannot set {text!r}")
        return parts

    # -- running

    def run(self, headers: dict[str, str], variables: dict[str, Any] | None = None) -> tuple[str, dict[str, str]]:
        scope: dict[str, Any] = dict(variables or {})
        scope["input"] = {"params": lambda: {"header": dict(headers), "path": {}, "querystring": {}}}
        overrides: dict[str, str] = {}
        out: list[str] = []
        self.execute(self.body, scope, overrides, out)
        return "".join(out), overrides

    def execute(self, nodes: list, scope: dict, overrides: dict, out: list) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "set":
                path, value = node[1], node[2].evaluate(scope)
                if path[:3] == ["context", "responseOverride", "header"] and len(path) == 4:
                    if path[3].lower() in overrides:
                        raise VtlError(f"{path[3]} is overridden twice (API Gateway answers 5XX)")
                    overrides[path[3].lower()] = str(value)
                elif path == ["context", "responseOverride", "status"]:
                    overrides[":status"] = str(value)
                elif len(path) == 1:
                    if value is not None:  # Velocity leaves the variable as it was
                        scope[path[0]] = value
                else:
                    raise VtlError(f"cannot set ${'.'.join(path)}")
            elif kind == "if":
                for condition, body in node[1]:
                    if condition is None or truthy(condition.evaluate(scope)):
                        self.execute(body, scope, overrides, out)
                        break
            elif kind == "foreach":
                items = node[2].evaluate(scope)
                for item in list(items or []):
                    scope[node[1]] = item
                    self.execute(node[3], scope, overrides, out)


def truthy(value: Any) -> bool:
    return value is not None and value is not False


class Expr:
    """A VTL expression (see Vtl), parsed once and evaluated per request."""

    TOKEN = re.compile(r'\s*(?:(==|!=|&&|\|\||!|\(|\)|\[|\]|,|\.)|"([^"$]*)"|(true|false)\b|\$([A-Za-z][A-Za-z0-9_-]*)|([A-Za-z][A-Za-z0-9_-]*))')

    def __init__(self, text: str):
        self.tokens: list[tuple[str, Any]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = self.TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise VtlError(f"cannot read expression {text!r} at {text[pos:]!r}")
            op, string, boolean, ref, ident = match.groups()
            if op:
                self.tokens.append(("op", op))
            elif string is not None:
                self.tokens.append(("value", string))
            elif boolean:
                self.tokens.append(("value", boolean == "true"))
            elif ref:
                self.tokens.append(("ref", ref))
            else:
                self.tokens.append(("ident", ident))
            pos = match.end()
        self.i = 0
        self.tree = self.disjunction()
        if self.i != len(self.tokens):
            raise VtlError(f"cannot read expression {text!r}")

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.i += 1
            return True
        return False

    def disjunction(self):
        node = self.conjunction()
        while self.take("||"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self):
        node = self.comparison()
        while self.take("&&"):
            node = ("and", node, self.comparison())
        return node

    def comparison(self):
        node = self.unary()
        for op in ("==", "!="):
            if self.take(op):
                return (op, node, self.unary())
        return node

    def unary(self):
        if self.take("!"):
            return ("not", self.unary())
        if self.take("("):
            node = self.disjunction()
            if not self.take(")"):
                raise VtlError("missing )")
            return node
        if self.take("["):
            items = []
            while not self.take("]"):
                items.append(self.disjunction())
                if not self.take(","):
                    if not self.take("]"):
                        raise VtlError("missing ]")
                    break
            return ("list", items)
        token = self.peek()
        if token is None:
            raise VtlError("expression ends too soon")
        self.i += 1
        if token[0] == "value":
            return ("value", token[1])
        if token[0] != "ref":
            raise VtlError(f"unexpected {token[1]!r}")
        node = ("var", token[1])
        while self.take("."):
            name = self.peek()
            if not name or name[0] != "ident":
                raise VtlError("expected a name after .")
            self.i += 1
            if self.take("("):
                args = []
                while not self.take(")"):
                    args.append(self.disjunction())
                    self.take(",")
                node = ("call", node, name[1], args)
            else:
                node = ("property", node, name[1])
        return node

    def evaluate(self, scope: dict, node=None) -> Any:
        node = self.tree if node is None else node
        kind = node[0]
        if kind == "value":
            return node[1]
        if kind == "list":
            return [self.evaluate(scope, n) for n in node[1]]
        if kind == "var":
            return scope.get(node[1])
        if kind == "not":
            return not truthy(self.evaluate(scope, node[1]))
        if kind == "and":
            return truthy(self.evaluate(scope, node[1])) and truthy(self.evaluate(scope, node[2]))
        if kind == "or":
            return truthy(self.evaluate(scope, node[1])) or truthy(self.evaluate(scope, node[2]))
        if kind in ("==", "!="):
            equal = self.evaluate(scope, node[1]) == self.evaluate(scope, node[2])
            return equal if kind == "==" else not equal
        target = self.evaluate(scope, node[1])
        if kind == "property":
            if isinstance(target, dict):
                value = target.get(node[2])
                return value() if callable(value) else value
            return None
        name, args = node[2], [self.evaluate(scope, a) for a in node[3]]
        if isinstance(target, dict) and callable(target.get(name)) and not args:
            return target[name]()
        methods = {
            (dict, "keySet"): lambda: list(target.keys()),
            (dict, "get"): lambda: target.get(args[0]),
            (str, "toLowerCase"): lambda: target.lower(),
            (str, "contains"): lambda: args[0] in target,
            (str, "equals"): lambda: target == args[0],
            (list, "contains"): lambda: args[0] in target,
        }
        for (kind_of, method), call in methods.items():
            if isinstance(target, kind_of) and method == name:
                return call()
        raise VtlError(f"unsupported method {name}() on {type(target).__name__}")
