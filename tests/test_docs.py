"""The docs stay true to the code.

Every setting the code reads is in docs/configuration.md's table and every name in that table is
read by some code; the same for a client's fields; and every link between README.md and docs/*.md
resolves, to a file and to a heading. Settings are found in the syntax tree, not by regexes: a
read may name its variable through a helper (``get("X")``, ``_number(get, "X", ...)``), a
variable bound from a literal (``for name, default in (("X", ...), ...)``) or an f-string over a
module's tuple (``f"GHL_INCOMING_WEBHOOK_URL_{kind.upper()}" for kind in WEBHOOK_KINDS``). A read
whose name cannot be worked out fails the test, so nothing escapes it.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DOC = ROOT / "docs" / "configuration.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Where a setting may be read: the package, the entry points and any Python helper script.
SOURCES = sorted({*ROOT.glob("vapi_bridge/**/*.py"), ROOT / "wsgi.py", ROOT / "gunicorn.conf.py",
                  *ROOT.glob("scripts/**/*.py")})
# Reads whose variable name is data, not a setting: a client's ``*_env`` field names a variable
# of the operator's choosing (CLIENTS_JSON's ``"ghl_api_key_env": "NORTH_GHL_KEY"``).
NAMED_BY_DATA = {("vapi_bridge/clients.py", "_client")}
SETTING = re.compile(r"[A-Z][A-Z0-9_]*")
ENV_METHODS = ("get", "pop", "setdefault")


class _Unknown(Exception):
    """The name an expression stands for cannot be worked out from the code."""


class EnvReads:
    """The environment variables one module reads, worked out from its syntax tree.

    The environment is ``os.environ`` (or ``os.getenv``) or a mapping called ``env`` (what
    config.py hands around). A function that reads the variable named by one of its parameters
    (``get(name)``, ``_env(env, name)``) is a reader too: its callers' arguments are the names.
    """

    def __init__(self, path: Path, readers: dict[str, int]):
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.readers = readers  # function name -> position of its name parameter
        self.parents = {child: node for node in ast.walk(self.tree)
                        for child in ast.iter_child_nodes(node)}

    def name_args(self) -> list[tuple[ast.AST, ast.expr]]:
        """(node, the expression naming the variable) for every read."""
        found = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                func = node.func
                direct = (isinstance(func, ast.Attribute) and func.attr in ENV_METHODS
                          and _is_env(func.value)) or _dotted(func) in ("os.getenv", "getenv")
                if direct and node.args:
                    found.append((node, node.args[0]))
                elif isinstance(func, ast.Name) and func.id in self.readers:
                    position = self.readers[func.id]
                    if len(node.args) > position:
                        found.append((node, node.args[position]))
            elif isinstance(node, ast.Subscript) and _is_env(node.value):
                found.append((node, node.slice))
            elif (isinstance(node, ast.Compare) and len(node.ops) == 1
                  and isinstance(node.ops[0], ast.In | ast.NotIn) and _is_env(node.comparators[0])):
                found.append((node, node.left))
        return found

    def function_of(self, node: ast.AST) -> ast.FunctionDef | None:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None

    def learn_readers(self) -> bool:
        """Add the functions that read a variable named by their parameter; True if any."""
        learned = False
        for node, arg in self.name_args():
            function = self.function_of(node)
            if function is None or not isinstance(arg, ast.Name):
                continue
            params = [a.arg for a in function.args.args]
            if (arg.id in params and not self._bindings(arg.id, function)
                    and function.name not in self.readers):
                self.readers[function.name] = params.index(arg.id)
                learned = True
        return learned

    def settings(self) -> tuple[set[str], list[str]]:
        """(the names read, a description of each read whose name cannot be worked out)."""
        names: set[str] = set()
        unknown = []
        relative = self.path.relative_to(ROOT).as_posix()
        for node, arg in self.name_args():
            function = self.function_of(node)
            if (function is not None and isinstance(arg, ast.Name)
                    and self.readers.get(function.name) is not None
                    and arg.id == function.args.args[self.readers[function.name]].arg):
                continue  # the reader itself: its callers name the variable
            try:
                names |= self._values(arg, function)
            except _Unknown:
                if (relative, function.name if function else None) not in NAMED_BY_DATA:
                    unknown.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
        return names, unknown

    def _values(self, expr: ast.expr, function: ast.FunctionDef | None) -> set[str]:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.IfExp):
            return self._values(expr.body, function) | self._values(expr.orelse, function)
        if isinstance(expr, ast.Name):
            bound = self._bindings(expr.id, function) or self._bindings(expr.id, self.tree)
            if not bound:
                raise _Unknown(expr.id)
            return set().union(*(self._values(value, function) for value in bound))
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) \
                and expr.func.attr in ("upper", "lower") and not expr.args:
            return {getattr(v, expr.func.attr)() for v in self._values(expr.func.value, function)}
        if isinstance(expr, ast.JoinedStr):
            parts = [self._values(part.value if isinstance(part, ast.FormattedValue) else part,
                                  function) for part in expr.values]
            return {"".join(combination) for combination in itertools.product(*parts)}
        raise _Unknown(ast.unparse(expr))

    def _bindings(self, name: str, scope: ast.AST | None) -> list[ast.expr]:
        """Every expression ``name`` is bound to in ``scope`` (assignments and loops)."""
        if scope is None:
            return []
        bound: list[ast.expr] = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    bound += _unpack(target, name, [node.value])
            elif isinstance(node, ast.For | ast.comprehension) and _binds(node.target, name):
                bound += _unpack(node.target, name, self._elements(node.iter))
        return bound

    def _elements(self, iterable: ast.expr) -> list[ast.expr]:
        if isinstance(iterable, ast.Tuple | ast.List):
            return list(iterable.elts)
        if isinstance(iterable, ast.Name):  # a module's constant
            for node in self.tree.body:
                if isinstance(node, ast.Assign) and _binds(node.targets[0], iterable.id) \
                        and isinstance(node.value, ast.Tuple | ast.List):
                    return list(node.value.elts)
        return [iterable]  # cannot be unpacked: _values says so


def _binds(target: ast.expr, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(target))


def _unpack(target: ast.expr, name: str, values: list[ast.expr]) -> list[ast.expr]:
    """What ``name`` takes from each of ``values`` when assigned to ``target``."""
    if isinstance(target, ast.Name):
        return values if target.id == name else []
    if isinstance(target, ast.Tuple):
        names = [t.id if isinstance(t, ast.Name) else None for t in target.elts]
        if name not in names:
            return []
        index = names.index(name)
        return [value.elts[index] if isinstance(value, ast.Tuple) else value for value in values]
    return []


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _is_env(node: ast.expr) -> bool:
    return _dotted(node) in ("os.environ", "env")


def settings_read() -> tuple[set[str], list[str]]:
    """Every environment variable the code reads, and the reads that could not be worked out."""
    readers: dict[str, int] = {}
    modules = [EnvReads(path, readers) for path in SOURCES]
    while any([module.learn_readers() for module in modules]):
        pass
    names: set[str] = set()
    unknown: list[str] = []
    for module in modules:
        found, cannot = module.settings()
        names |= found
        unknown += cannot
    return names, unknown


def _outside_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (kept: the lines)."""
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group().count("\n"), text,
                  flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "``", text)


def table_first_cells(path: Path, header: str) -> list[str]:
    """The first cell of each row of the table whose first column is ``header``."""
    lines = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    cells, inside = [], False
    for line in lines.splitlines():
        row = [cell.strip() for cell in line.strip().strip("|").split("|")] \
            if line.startswith("|") else None
        if row is None:
            inside = False
        elif row[0] == header:
            inside = True
        elif inside and not set(row[0]) <= set("-: "):
            cells.append(row[0])
    return cells


def table_names(path: Path, header: str, pattern: re.Pattern[str]) -> set[str]:
    """The `names` in a table's first column; each must be whole (no `_SUFFIX` shorthand)."""
    names = set()
    for cell in table_first_cells(path, header):
        for name in re.findall(r"`([^`]+)`", cell):
            assert pattern.fullmatch(name), f"{path.name}: write {name!r} out in full"
            names.add(name)
    return names


def client_fields() -> set[str]:
    """The fields of a CLIENTS_JSON entry: the marshmallow fields of clients._ClientSchema."""
    tree = ast.parse((ROOT / "vapi_bridge" / "clients.py").read_text(encoding="utf-8"))
    schema = next(node for node in ast.walk(tree)
                  if isinstance(node, ast.ClassDef) and node.name == "_ClientSchema")
    return {target.id for node in schema.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call) and _dotted(node.value.func).startswith("fields.")
            for target in node.targets if isinstance(target, ast.Name)}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lowercased, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[*`]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for match in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text, flags=re.M):
        base = slug(match.group(1))
        anchor, n = base, 0
        while anchor in found:  # GitHub numbers repeated headings: name, name-1, name-2
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def broken_links(paths: list[Path]) -> list[str]:
    broken = []
    for path in paths:
        text = _outside_code(path.read_text(encoding="utf-8"))
        for match in re.finditer(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto:: outside the repository
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
            if not linked.exists():
                broken.append(f"{where}: {target}: no such file")
            elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
                broken.append(f"{where}: {target}: no such heading in {linked.name}")
    return broken


def test_the_scan_finds_settings_read_every_way():
    # Direct, through get/_number/_env, from a tuple of pairs, an if-expression, an f-string
    # over a module tuple, and os.environ in gunicorn.conf.py: a scan that missed one is broken.
    names, unknown = settings_read()
    assert not unknown, "reads whose variable cannot be worked out:\n" + "\n".join(unknown)
    assert {"VAPI_WEBHOOK_HMAC_TIMESTAMP_HEADER", "STATE_STORAGE_TTL", "DEFAULT_TIMEZONE",
            "GHL_APP_BASE_URL", "KV_URL", "UPSTASH_REDIS_REST_TOKEN", "CLIENTS_JSON",
            "GHL_INCOMING_WEBHOOK_URL_BOOKING", "HOST", "WEB_CONCURRENCY", "VERCEL"} <= names
    assert all(SETTING.fullmatch(name) for name in names), sorted(names)


def test_every_setting_read_is_in_the_configuration_table():
    names, _ = settings_read()
    missing = names - table_names(CONFIG_DOC, "Variable", SETTING)
    assert not missing, f"read by the code, not in docs/configuration.md: {sorted(missing)}"


def test_every_setting_in_the_configuration_table_is_read():
    names, _ = settings_read()
    unread = table_names(CONFIG_DOC, "Variable", SETTING) - names
    assert not unread, f"in docs/configuration.md, read by no code: {sorted(unread)}"


def test_every_setting_is_cleared_between_tests():
    # tests/conftest.py clears SETTING_NAMES before each test: a setting missing there leaks in
    # from the shell running the suite.
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text(encoding="utf-8"))
    listed = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                  and any(getattr(t, "id", None) == "SETTING_NAMES" for t in node.targets))
    names, _ = settings_read()
    assert names - set(ast.literal_eval(listed)) == set()


def test_the_client_fields_table_matches_the_clients_schema():
    documented = table_names(CONFIG_DOC, "Field", re.compile(r"[a-z][a-z0-9_]*"))
    assert documented == client_fields()


def test_the_slug_rule_is_githubs():
    assert slug("What it answers (always HTTP 200 for a valid message)") \
        == "what-it-answers-always-http-200-for-a-valid-message"
    assert slug("When a call ends: GoHighLevel and Slack") \
        == "when-a-call-ends-gohighlevel-and-slack"
    assert slug("A call's path through the `vapi_bridge` modules") \
        == "a-calls-path-through-the-vapi_bridge-modules"


def test_every_link_in_the_docs_resolves():
    assert len(DOCS) >= 8  # the README and the seven pages
    broken = broken_links(DOCS)
    assert not broken, "\n".join(broken)
