"""recbole_umi.internals lists every RecBole and hyperopt internal the package relies on.

- Each entry is checked against the installed packages: the name is defined where it says
  (in the source as installed, so a name compat replaces at run time is looked up in
  RecBole's own code), a function has the listed parameters (``inspect.signature``) and a
  body the package depends on still has the recorded digest. Controls: a copy of the list
  with one name renamed, one parameter renamed and one digest changed is reported, entry by
  entry, so the check cannot pass vacuously.
- The list is complete: a static scan of the package finds every private name of RecBole's
  or hyperopt's classes that the package's classes override, call or read on ``self`` or
  ``super()`` (against the RecBole classes each one extends, found at run time, mixins
  through the classes that mix them in), every such name read on another object, and every
  private RecBole module path; each must be listed for the module that uses it. Control: a
  module that adds an unlisted ``super()._load_feat(...)`` is reported.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path


from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import recbole_umi  # noqa: E402
from recbole_umi.internals import HOW, INTERNALS  # noqa: E402

PACKAGE = Path(recbole_umi.__file__).resolve().parent
THEIRS = ("recbole", "hyperopt")


# -- the installed source ------------------------------------------------------------------
def _module_and_rest(name: str):
    """The longest importable module prefix of the dotted ``name`` and the parts after it."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        try:
            return importlib.import_module(".".join(parts[:end])), parts[end:]
        except ImportError:
            continue
    raise LookupError(name)


def _binds(statement: ast.stmt, part: str):
    """The node of ``statement`` that binds ``part`` in its scope (def, class, assignment,
    import), looking into module-level if / try blocks; None if it binds no such name."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return statement if statement.name == part else None
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        return statement if part in names else None
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        bound = [alias.asname or alias.name.split(".")[0] for alias in statement.names]
        return statement if part in bound else None
    if isinstance(statement, (ast.If, ast.Try)):
        blocks = [statement.body, statement.orelse, *[h.body for h in getattr(statement, "handlers", [])]]
        return next((found for block in blocks for s in block if (found := _binds(s, part))), None)
    return None


def _assigns_on_self(cls: ast.ClassDef, attribute: str) -> bool:
    return any(isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr == attribute
               and isinstance(node.value, ast.Name) and node.value.id == "self" for node in ast.walk(cls))


def upstream(name: str):
    """``(source text, node)`` of ``name`` in the installed file that defines it, read from
    disk (what RecBole ships, whatever compat replaced at run time); the node is the class
    for an instance attribute its methods assign. LookupError where there is none."""
    module, rest = _module_and_rest(name)
    text = Path(inspect.getsourcefile(module)).read_text(encoding="utf-8")
    node, scope = None, ast.parse(text).body
    for index, part in enumerate(rest):
        found = next((bound for statement in scope if (bound := _binds(statement, part))), None)
        if found is None:
            if index == len(rest) - 1 and isinstance(node, ast.ClassDef) and _assigns_on_self(node, part):
                return text, node
            raise LookupError(name)
        node, scope = found, getattr(found, "body", [])
    return text, node


def source_digest(name: str) -> str:
    text, node = upstream(name)
    return hashlib.sha256(ast.get_source_segment(text, node).encode()).hexdigest()[:16]


def scan_digest() -> str:
    """The digest of what ``how="scan"`` reads: the keys RecBole's source reads as config['key']."""
    from recbole_umi.config import recbole_source_keys

    return hashlib.sha256("\n".join(sorted(recbole_source_keys())).encode()).hexdigest()[:16]


def parameters(name: str) -> tuple[str, ...]:
    """Parameter names of the function ``name``: ``inspect.signature`` of the object at run
    time where it is RecBole's or hyperopt's own, else (compat replaced it) of its definition."""
    module, rest = _module_and_rest(name)
    obj = module
    try:
        for part in rest:
            obj = getattr(obj, part)
    except AttributeError:
        obj = None
    if obj is not None and str(getattr(obj, "__module__", "")).split(".")[0] in THEIRS:
        return tuple(inspect.signature(obj).parameters)
    _, node = upstream(name)
    args = node.args
    return tuple(a.arg for a in [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg] if a)


def check_inventory(entries) -> list[str]:
    """One line per problem: a name not where its entry says, other parameters, another digest."""
    problems = []
    for entry in entries:
        if entry.how not in HOW or not entry.used_by or not entry.why:
            problems.append(f"{entry.name}: how must be one of {HOW}, with used_by and why")
        try:
            if entry.how == "scan":
                found = scan_digest()
            else:
                upstream(entry.name)
                found = source_digest(entry.name) if entry.digest else None
        except LookupError:
            problems.append(f"{entry.name}: not found in the installed source")
            continue
        if entry.params is not None and parameters(entry.name) != entry.params:
            problems.append(f"{entry.name}: parameters {parameters(entry.name)}, listed {entry.params}")
        if entry.digest and found != entry.digest:
            problems.append(f"{entry.name}: its source changed (digest {found}, listed {entry.digest}): re-read it "
                            f"({entry.why}), adapt {', '.join(entry.used_by)}, update the entry")
    return problems


def test_every_listed_internal_is_where_the_inventory_says():
    assert check_inventory(INTERNALS) == []


def test_the_check_reports_a_missing_name_other_parameters_and_another_body():
    by_name = {entry.name: entry for entry in INTERNALS}
    load_feat, fill_nan, tuning = (by_name[f"recbole.{n}"] for n in (
        "data.dataset.dataset.Dataset._load_feat", "data.dataset.dataset.Dataset._fill_nan",
        "trainer.hyper_tuning.HyperTuning.__init__"))
    changed = [
        dataclasses.replace(load_feat, name=load_feat.name.replace("_load_feat", "_load_features")),
        dataclasses.replace(fill_nan, params=("self", "value")),  # compat replaced it: RecBole's own is checked
        dataclasses.replace(tuning, digest="0" * 16),
        by_name["recbole"],
    ]
    problems = check_inventory(changed)
    assert [p.split(":")[0] for p in problems] == [e.name for e in changed[:3]]
    assert "not found" in problems[0] and "parameters ('self',)" in problems[1] and "digest" in problems[2]


# -- completeness: a static scan of the package ---------------------------------------------
def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _theirs(cls: type) -> bool:
    return cls.__module__.split(".")[0] in THEIRS


def their_private_members() -> dict[str, set[str]]:
    """Private name -> the RecBole and hyperopt classes (dotted) whose source defines it as
    a method or assigns it as an attribute."""
    members: dict[str, set[str]] = defaultdict(set)
    for package in THEIRS:
        root = Path(importlib.import_module(package).__file__).parent
        for path in root.rglob("*.py"):
            module = ".".join((package, *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
            for cls in ast.walk(ast.parse(path.read_text(encoding="utf-8", errors="replace"))):
                if not isinstance(cls, ast.ClassDef):
                    continue
                for node in ast.walk(cls):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(node.name):
                        members[node.name].add(f"{module}.{cls.name}")
                    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
                        members[node.attr].add(f"{module}.{cls.name}")
    return members


def host_mros(cls: type) -> list[list[str]]:
    """The RecBole and hyperopt classes ``cls`` extends, in method resolution order; for a
    mixin, those of each class that mixes it in."""
    theirs = [_dotted(k) for k in cls.__mro__ if _theirs(k)]
    if theirs:
        return [theirs]
    mros, pending = [], list(cls.__subclasses__())
    while pending:
        sub = pending.pop()
        theirs = [_dotted(k) for k in sub.__mro__ if _theirs(k)]
        if theirs:
            mros.append(theirs)
        else:
            pending += sub.__subclasses__()
    return mros


def private_uses(source: str, classes: dict[str, type], members: dict[str, set[str]]) -> set:
    """``(name, owners)`` of each RecBole / hyperopt internal ``source`` touches: a method of
    a class named like a private method of the classes it extends, a private attribute of
    theirs on ``self``, ``cls`` or ``super()`` there (the owner: the first of its RecBole
    classes that defines it, as Python resolves it), a private attribute of any of their
    classes read on another object (any owner), and an import or module path with a
    private part."""
    tree = ast.parse(source)
    candidates, on_self = [], set()
    for cls_node in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        mros = host_mros(classes[cls_node.name]) if cls_node.name in classes else []
        candidates += [(sub.name, mros) for sub in cls_node.body if isinstance(sub, ast.FunctionDef)]
        for node in ast.walk(cls_node):
            if isinstance(node, ast.Attribute) and (ast.unparse(node.value) in ("self", "cls", "super()")):
                candidates.append((node.attr, mros))
                on_self.add(id(node))
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in on_self:
            candidates.append((node.attr, None))  # on another object: any of their classes
        paths = []
        if isinstance(node, ast.Import):
            paths = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            paths = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            paths = [node.value]
        uses |= {(path, frozenset()) for path in paths
                 if path.split(".")[0] in THEIRS and any(map(_private, path.split(".")))}
    for name, mros in candidates:
        defined = members.get(name, set()) if _private(name) else set()
        if mros is None:
            owners = defined
        else:
            owners = {next(owner for owner in mro if owner in defined) for mro in mros if defined & set(mro)}
        if owners:
            uses.add((name, frozenset(owners)))
    return uses


def unlisted(module_name: str, source: str, classes: dict[str, type], members, entries) -> list[str]:
    """The private uses in ``source`` that ``entries`` do not list for ``module_name``."""
    listed = {entry.name for entry in entries if module_name in entry.used_by}
    missing = []
    for name, owners in sorted(private_uses(source, classes, members), key=lambda use: use[0]):
        if not ({f"{owner}.{name}" for owner in owners} | {name}) & listed:
            missing.append(f"{module_name}: {name} ({', '.join(sorted(owners)) or 'a module path'}) "
                           "is not in recbole_umi.internals")
    return missing


def _package_modules():
    """``(name, source, classes defined there)`` of every module of the package."""
    from recbole.trainer import Trainer

    from recbole_umi.checkpoints.trainer import safe_trainer

    safe_trainer(Trainer)  # the trainer mixins' host, made at run time
    for info in pkgutil.walk_packages([str(PACKAGE)], "recbole_umi."):
        if info.name == "recbole_umi.internals":  # the list itself names them
            continue
        module = importlib.import_module(info.name)
        classes = {name: value for name, value in vars(module).items()
                   if isinstance(value, type) and value.__module__ == info.name}
        yield info.name, Path(inspect.getsourcefile(module)).read_text(encoding="utf-8"), classes


def test_every_private_use_in_the_package_is_listed():
    members, found, missing = their_private_members(), set(), []
    for name, source, classes in _package_modules():
        found |= {(name, use) for use, _ in private_uses(source, classes, members)}
        missing += unlisted(name, source, classes, members, INTERNALS)
    assert missing == []
    # the scan sees the package: overrides, calls on super(), reads on other objects, a patch
    assert {("recbole_umi.config", "_load_cmd_line"), ("recbole_umi.data.checks", "_load_feat"),
            ("recbole_umi.quick_start", "_dataset"), ("recbole_umi.compat", "_fill_nan")} <= found


def test_the_scan_reports_an_unlisted_override():
    from recbole.data.dataset import Dataset

    from recbole_umi.data.checks import DataChecks

    class LoggedDataset(DataChecks, Dataset):
        pass

    source = ("class LoggedDataset(DataChecks, Dataset):\n"
              "    def _load_feat(self, filepath, source):\n"
              "        return super()._load_feat(filepath, source)\n"
              "    def _remap_ID_all(self):\n"
              "        return super()._remap_ID_all()\n"
              "    def _own_helper(self):\n"
              "        return self._window\n")
    members, classes = their_private_members(), {"LoggedDataset": LoggedDataset}
    found = unlisted("recbole_umi.data.checks", source, classes, members, INTERNALS)
    assert [line.split(" (")[0] for line in found] == ["recbole_umi.data.checks: _remap_ID_all"]
    without_load_feat = [e for e in INTERNALS if not e.name.endswith("._load_feat")]
    found = unlisted("recbole_umi.data.checks", source, classes, members, without_load_feat)
    assert [line.split(" (")[0] for line in found] == ["recbole_umi.data.checks: _load_feat",
                                                        "recbole_umi.data.checks: _remap_ID_all"]


def test_the_inventory_is_light_to_import():
    code = "import sys, recbole_umi.internals; print(sorted({'recbole', 'hyperopt', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PACKAGE.parent)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-1500:]


def test_every_user_is_a_module_of_the_package():
    for entry in INTERNALS:
        for user in entry.used_by:
            assert importlib.util.find_spec(user) is not None, (entry.name, user)
