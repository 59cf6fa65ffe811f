"""The custom search commands as their wrappers declare them: package/bin/escape<verb>.py, read with `ast`.

The wrappers cannot be imported here (they need splunklib and UCC's import_declare_test), so this module reads
their source: the class decorated with @Configuration(distributed=...), its `name = Option(doc=..., default=...,
require=..., validate=validators.Set(...) / Integer(min, max) / Float(min, max) / Fieldname() / Boolean())` class
attributes in declaration order, and the ##Syntax / ##Description / ##Example sections of the class or module
docstring. searchbnf.conf (rendered into the build output by additional_packaging.py) and docs/commands.md
(tools/docs.py) are both generated from this model, so neither can drift from the code.
"""
import ast
import re
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import jinja2

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "package" / "bin"
COMMANDS = ("escapecorrelate", "escapeesxi", "escapefindings", "escapeinspect", "escapereduce", "escaperegistry",
            "escapethreshold", "escapewindows")
TEMPLATES = Path(__file__).resolve().parent / "templates"

# The search assistant's one-line comment under each example (searchbnf.conf comment1). A wrapper's ##Example may
# carry its own: prose lines in that section are the comment, the SPL line is the example; the entry below is used
# only while the docstring has none.
EXAMPLE_COMMENTS = {
    "escapecorrelate": "Alert on container-escape chains within the configured time window.",
    "escapeesxi": "vmkernel module loads that are not stock, allowed or already in the baseline.",
    "escapefindings": "The attempts the Linux correlation saved since the previous run of this search.",
    "escapeinspect": "Inspect pod creates, dropping allowlisted node agents.",
    "escapereduce": "Reduce audit records on the search peers; correlate the compact rows on the search head.",
    "escaperegistry": "Upsert the containers the runtimes described into the registry the Linux chains are named from.",
    "escapethreshold": "One alert per cluster and hour with more privileged launches than the threshold.",
    "escapewindows": "Container processes that created files under the restricted host directories.",
}


class CommandError(ValueError):
    """A wrapper this module cannot read; the message names the file."""


@dataclass(frozen=True)
class Option:
    """One `name = Option(...)` class attribute of a wrapper."""
    name: str
    required: bool
    default: Optional[str]           # as Splunk would see it typed: "300", "2.0", "escapes"; None without a default
    kind: str                        # string | int | num | field | bool | set
    allowed: Tuple[str, ...] = ()    # validators.Set(...)
    minimum: Optional[str] = None    # validators.Integer / Float
    maximum: Optional[str] = None
    placeholder: str = ""            # the <...> of the doc's **Syntax:**, e.g. "<seconds>"
    meaning: str = ""                # the doc's **Description:**, when it has one

    @property
    def bnf(self) -> str:
        """The value in searchbnf.conf syntax: (a|b), <int>, <num>, <field>, <bool> or <string>."""
        if self.kind == "set":
            return "({})".format("|".join(self.allowed))
        return "<{}>".format(self.kind)

    @property
    def allowed_text(self) -> str:
        """What the validator accepts, for people."""
        if self.kind == "set":
            return ", ".join("`{}`".format(a) for a in self.allowed)
        bounds = {"int": "whole number", "num": "number", "field": "field name", "bool": "true or false"}
        text = bounds.get(self.kind, "text")
        if self.minimum is not None and self.maximum is not None:
            return "{} from {} to {}".format(text, self.minimum, self.maximum)
        if self.minimum is not None:
            return "{} >= {}".format(text, self.minimum)
        return text


@dataclass(frozen=True)
class Command:
    """One custom search command: its options, docstring sections and where Splunk may run it."""
    name: str
    path: Path
    shortdesc: str
    syntax: str                      # the docstring's ##Syntax, as written for people
    description: str                 # the docstring's ##Description, on one line
    example: str
    comment: str
    distributed: bool
    options: Tuple[Option, ...]
    generating: bool = False         # a GeneratingCommand: it starts a search, after a leading pipe
    placement: str = ""              # why it runs where it runs: the comment right above its @Configuration

    @property
    def bnf_syntax(self) -> str:
        parts = [self.name]
        for option in self.options:
            term = "{}={}".format(option.name, option.bnf)
            parts.append(term if option.required else "({})?".format(term))
        return " ".join(parts)


# ---------------------------------------------------------------- reading a wrapper
def _literal(node: ast.AST, where: str) -> object:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise CommandError("{}: {} is not a literal".format(where, ast.dump(node)[:80])) from None


def _number(value: object) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def _call_name(node: ast.AST) -> str:
    """`Option`, `validators.Set`, `Configuration`: the last name of a call's function."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _validator(call: ast.expr, where: str) -> Tuple[str, Tuple[str, ...], Optional[str], Optional[str]]:
    """(kind, allowed, minimum, maximum) of a `validate=validators.X(...)` argument."""
    name = _call_name(call)
    assert isinstance(call, ast.Call)
    args = [_literal(a, where) for a in call.args]
    keywords = {k.arg: _literal(k.value, where) for k in call.keywords if k.arg}
    if name == "Set":
        return "set", tuple(str(a) for a in args), None, None
    if name in ("Integer", "Float"):
        low = args[0] if args else keywords.get("minimum")
        high = args[1] if len(args) > 1 else keywords.get("maximum")
        return ("int" if name == "Integer" else "num", (),
                None if low is None else _number(low), None if high is None else _number(high))
    kinds = {"Fieldname": "field", "Boolean": "bool"}
    if name in kinds:
        return kinds[name], (), None, None
    raise CommandError("{}: validators.{} is not one this reader knows (Set, Integer, Float, Fieldname, "
                       "Boolean)".format(where, name))


def _doc_parts(doc: str) -> Tuple[str, str]:
    """("<seconds>", meaning) from splunklib's doc convention
    "**Syntax:** **window=***<seconds>* **Description:** ..."."""
    syntax, _, meaning = doc.partition("**Description:**")
    placeholder = re.sub(r"^.*?\*\*\w+=\*\*\*", "", syntax.strip()).strip().strip("*").strip()
    return placeholder, " ".join(meaning.split())


def _option(target: str, call: ast.Call, where: str) -> Option:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    kind: str = "string"
    allowed: Tuple[str, ...] = ()
    minimum: Optional[str] = None
    maximum: Optional[str] = None
    if "validate" in keywords:
        kind, allowed, minimum, maximum = _validator(keywords["validate"], "{}: option {}".format(where, target))
    default = _literal(keywords["default"], where) if "default" in keywords else None
    doc = str(_literal(keywords["doc"], where)) if "doc" in keywords else ""
    placeholder, meaning = _doc_parts(doc)
    return Option(name=str(_literal(keywords["name"], where)) if "name" in keywords else target,
                  required=bool(_literal(keywords["require"], where)) if "require" in keywords else False,
                  default=None if default is None else _number(default), kind=kind, allowed=allowed,
                  minimum=minimum, maximum=maximum, placeholder=placeholder, meaning=meaning)


def _sections(doc: str) -> Tuple[str, Dict[str, str]]:
    """The docstring's first paragraph and its ##Name sections (dedented text)."""
    head, *rest = re.split(r"^\s*##(\w+)\s*$", doc, flags=re.MULTILINE)
    sections = {rest[i].lower(): textwrap.dedent(rest[i + 1]).strip() for i in range(0, len(rest), 2)}
    return " ".join(head.strip().split("\n\n")[0].split()), sections


def _example(text: str, command: str) -> Tuple[str, str]:
    """(SPL, comment) of a ##Example section: the line that runs the command is the example, prose is the comment."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("..")]
    spl = [line for line in lines if re.search(r"(^|\|\s*){}\b".format(command), line) or line.startswith(("`", "|"))]
    prose = [line for line in lines if line not in spl]
    return " ".join(spl), " ".join(prose)


def read_command(path: Path) -> Command:
    """The command a wrapper declares; raise CommandError naming the file when it is not in the expected shape."""
    where = path.name
    with warnings.catch_warnings():  # an invalid escape in a wrapper's docstring is Python's to report when it runs
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
               and any(_call_name(d) == "Configuration" for d in n.decorator_list)]
    if len(classes) != 1:
        raise CommandError("{}: expected one class decorated with @Configuration, found {}".format(where, len(classes)))
    cls = classes[0]
    configuration = next(d for d in cls.decorator_list if _call_name(d) == "Configuration")
    settings = {k.arg: k.value for k in configuration.keywords if k.arg} if isinstance(configuration, ast.Call) else {}
    if "distributed" not in settings:
        raise CommandError("{}: @Configuration must say distributed=True or False".format(where))
    options = []
    for statement in cls.body:
        target, value = None, None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign):
            target, value = statement.target, statement.value
        if isinstance(target, ast.Name) and isinstance(value, ast.Call) and _call_name(value) == "Option":
            options.append(_option(target.id, value, where))
    doc = next((d for d in (ast.get_docstring(cls), ast.get_docstring(tree)) if d and "##Syntax" in d), None)
    if doc is None:
        raise CommandError("{}: neither the class nor the module docstring has a ##Syntax section".format(where))
    shortdesc, sections = _sections(doc)
    missing = [s for s in ("syntax", "description", "example") if not sections.get(s)]
    if missing:
        raise CommandError("{}: the docstring has no ##{} section".format(
            where, ", ##".join(s.title() for s in missing)))
    name = path.stem
    example, comment = _example(sections["example"], name)
    source_lines = path.read_text(encoding="utf-8").splitlines()
    above = min(d.lineno for d in cls.decorator_list) - 2  # 0-based index of the line above the first decorator
    reason: List[str] = []
    while above >= 0 and source_lines[above].startswith("#"):
        reason.insert(0, source_lines[above].lstrip("#").strip())
        above -= 1
    return Command(name=name, path=path, shortdesc=shortdesc, syntax=" ".join(sections["syntax"].split()),
                   description=" ".join(sections["description"].split()), example=example,
                   comment=comment or EXAMPLE_COMMENTS.get(name, ""), distributed=bool(_literal(
                       settings["distributed"], where)), options=tuple(options), placement=" ".join(reason),
                   generating=any(_call_name(b) == "GeneratingCommand" for b in cls.bases))


def commands(bin_dir: Path = BIN, names: Sequence[str] = COMMANDS) -> List[Command]:
    return [read_command(bin_dir / (name + ".py")) for name in names]


# ---------------------------------------------------------------- searchbnf.conf
def _wrapped(text: str) -> str:
    """A long conf value on several lines, each continued with a trailing backslash."""
    return " \\\n    ".join(textwrap.wrap(text, width=110, break_long_words=False, break_on_hyphens=False))


def render_searchbnf_conf(bin_dir: Path = BIN) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["wrapped"] = _wrapped
    return env.get_template("searchbnf.conf.j2").render(commands=commands(bin_dir))


def write_searchbnf(app_dir: Path, bin_dir: Path = BIN) -> Path:
    target = app_dir / "default" / "searchbnf.conf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_searchbnf_conf(bin_dir), encoding="utf-8")
    return target
