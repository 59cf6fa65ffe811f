"""EVAL-<field> of props.conf: a whitelisted subset of Splunk's eval language (EVAL_FUNCTIONS), parsed once and
evaluated per event on the fields as they were before any EVAL ran (tools/searchtime.py runs them in parallel).
A function, operator or case outside the subset raises Unsupported naming it.
"""
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import pcre2

from tools.fieldrules import Unsupported, compile_pcre, substitute_groups

EVAL_FUNCTIONS = ("if", "case", "coalesce", "lower", "upper", "len", "substr", "replace", "match", "like", "isnull",
                  "isnotnull", "null", "true", "false", "tostring", "tonumber", "mvcount", "mvindex", "split")

EvalValue = Union[None, str, float, bool, List[str]]


class _Tok:
    def __init__(self, kind: str, text: str) -> None:
        self.kind, self.text = kind, text

    def __repr__(self) -> str:
        return "{}:{}".format(self.kind, self.text)


def _eval_tokens(expr: str, where: str) -> List[_Tok]:
    tokens: List[_Tok] = []
    index = 0
    while index < len(expr):
        char = expr[index]
        if char.isspace():
            index += 1
        elif char == '"':
            end = index + 1
            buf = []
            while end < len(expr) and expr[end] != '"':
                if expr[end] == "\\" and end + 1 < len(expr) and expr[end + 1] in '"\\':
                    end += 1  # only \" and \\ are escapes; any other backslash stays (regex classes like \d)
                buf.append(expr[end])
                end += 1
            if end >= len(expr):
                raise Unsupported("{}: unterminated string".format(where))
            tokens.append(_Tok("str", "".join(buf)))
            index = end + 1
        elif char == "'":
            end = expr.find("'", index + 1)
            if end < 0:
                raise Unsupported("{}: unterminated field name".format(where))
            tokens.append(_Tok("field", expr[index + 1:end]))
            index = end + 1
        elif char.isdigit():
            end = index
            while end < len(expr) and (expr[end].isdigit() or expr[end] == "."):
                end += 1
            tokens.append(_Tok("num", expr[index:end]))
            index = end
        elif char.isalpha() or char == "_":
            end = index
            while end < len(expr) and (expr[end].isalnum() or expr[end] == "_"):
                end += 1
            word = expr[index:end]
            if word.upper() in ("AND", "OR", "NOT", "XOR", "LIKE"):
                tokens.append(_Tok("op", word.upper()))
            else:
                tokens.append(_Tok("name", word))
            index = end
        else:
            for op in ("==", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", ".", "(", ")", ","):
                if expr.startswith(op, index):
                    tokens.append(_Tok("op", op))
                    index += len(op)
                    break
            else:
                raise Unsupported("{}: cannot read {!r}".format(where, expr[index:]))
    return tokens


EvalNode = Tuple[Any, ...]


class _EvalParser:
    # precedence, lowest first
    LEVELS = (("OR", "XOR"), ("AND",), ("==", "=", "!=", "<", ">", "<=", ">=", "LIKE"), ("+", "-", "."),
              ("*", "/", "%"))

    def __init__(self, expr: str, where: str) -> None:
        self.where = where
        self.tokens = _eval_tokens(expr, where)
        self.pos = 0

    def parse(self) -> EvalNode:
        node = self._level(0)
        if self.pos != len(self.tokens):
            raise Unsupported("{}: unexpected {!r}".format(self.where, self.tokens[self.pos].text))
        return node

    def _peek(self) -> Optional[_Tok]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, text: str) -> None:
        tok = self._peek()
        if tok is None or tok.kind != "op" or tok.text != text:
            raise Unsupported("{}: expected {!r}".format(self.where, text))
        self.pos += 1

    def _level(self, level: int) -> EvalNode:
        if level == 2:
            # NOT binds looser than comparisons, tighter than AND
            tok = self._peek()
            if tok is not None and tok.kind == "op" and tok.text == "NOT":
                self.pos += 1
                return ("not", self._level(2))
        if level >= len(self.LEVELS):
            return self._unary()
        node = self._level(level + 1)
        while True:
            tok = self._peek()
            if tok is None or tok.kind != "op" or tok.text not in self.LEVELS[level]:
                return node
            self.pos += 1
            node = ("bin", tok.text, node, self._level(level + 1))

    def _unary(self) -> EvalNode:
        tok = self._peek()
        if tok is None:
            raise Unsupported("{}: expression ends too early".format(self.where))
        if tok.kind == "op" and tok.text == "-":
            self.pos += 1
            return ("neg", self._unary())
        if tok.kind == "op" and tok.text == "(":
            self.pos += 1
            node = self._level(0)
            self._take(")")
            return node
        self.pos += 1
        if tok.kind == "str":
            return ("lit", tok.text)
        if tok.kind == "num":
            return ("lit", float(tok.text))
        if tok.kind == "field":
            return ("field", tok.text)
        if tok.kind == "name":
            nxt = self._peek()
            if nxt is not None and nxt.kind == "op" and nxt.text == "(":
                if tok.text not in EVAL_FUNCTIONS:
                    raise Unsupported("{}: eval function {}() is not implemented".format(self.where, tok.text))
                self.pos += 1
                args: List[EvalNode] = []
                nxt = self._peek()
                if nxt is not None and nxt.kind == "op" and nxt.text == ")":
                    self.pos += 1
                else:
                    while True:
                        args.append(self._level(0))
                        nxt = self._peek()
                        if nxt is not None and nxt.kind == "op" and nxt.text == ",":
                            self.pos += 1
                            continue
                        self._take(")")
                        break
                return ("call", tok.text, args)
            return ("field", tok.text)
        raise Unsupported("{}: unexpected {!r}".format(self.where, tok.text))


def _num(value: EvalValue) -> Optional[float]:
    if isinstance(value, bool) or value is None or isinstance(value, list):
        return None
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        return None


def _text(value: EvalValue, where: str) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, list):
        raise Unsupported("{}: a multivalue field where one value is expected is not implemented".format(where))
    if isinstance(value, bool):
        raise Unsupported("{}: a boolean where a string is expected".format(where))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


class Eval:
    def __init__(self, field: str, expr: str) -> None:
        self.field = field
        self.where = "EVAL-" + field
        self.tree = _EvalParser(expr, self.where).parse()

    def run(self, fields: Mapping[str, List[str]]) -> Optional[List[str]]:
        value = self._ev(self.tree, fields)
        if value is None:
            return None
        if isinstance(value, list):
            return list(value) or None
        if isinstance(value, bool):
            raise Unsupported("{}: the result is a boolean, which a field cannot hold".format(self.where))
        text = _text(value, self.where)
        return None if text is None else [text]

    def _ev(self, node: EvalNode, fields: Mapping[str, List[str]]) -> EvalValue:
        kind = node[0]
        if kind == "lit":
            return node[1]  # type: ignore[no-any-return]
        if kind == "field":
            values = fields.get(node[1])
            if not values:
                return None
            return values[0] if len(values) == 1 else list(values)
        if kind == "neg":
            number = _num(self._ev(node[1], fields))
            return None if number is None else -number
        if kind == "not":
            return not self._cond(node[1], fields)
        if kind == "bin":
            return self._binary(node[1], node[2], node[3], fields)
        return self._call(node[1], node[2], fields)

    def _cond(self, node: EvalNode, fields: Mapping[str, List[str]]) -> bool:
        value = self._ev(node, fields)
        if not isinstance(value, bool):
            raise Unsupported("{}: a condition must be a comparison or a boolean function".format(self.where))
        return value

    def _binary(self, op: str, left_node: EvalNode, right_node: EvalNode, fields: Mapping[str, List[str]]) -> EvalValue:
        if op in ("AND", "OR", "XOR"):
            p, q = self._cond(left_node, fields), self._cond(right_node, fields)
            return {"AND": p and q, "OR": p or q, "XOR": p != q}[op]
        left, right = self._ev(left_node, fields), self._ev(right_node, fields)
        if isinstance(left, list) or isinstance(right, list):
            raise Unsupported("{}: operator {} on a multivalue field is not implemented".format(self.where, op))
        if op == ".":
            first, second = _text(left, self.where), _text(right, self.where)
            return None if first is None or second is None else first + second
        if op in ("+", "-", "*", "/", "%"):
            if op == "+" and isinstance(left, str) and isinstance(right, str) \
                    and (_num(left) is None or _num(right) is None):
                return left + right
            x, y = _num(left), _num(right)
            if x is None or y is None:
                return None
            if op in ("/", "%") and y == 0:
                return None
            return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0.0, "%": x % y if y else 0.0}[op]
        if left is None or right is None:
            return False
        if op == "LIKE":
            text, pattern = _text(left, self.where), _text(right, self.where)
            return _like(text or "", pattern or "")
        x, y = _num(left), _num(right)
        a: Any
        b: Any
        if x is not None and y is not None:
            a, b = x, y
        else:
            a, b = _text(left, self.where), _text(right, self.where)
        result: bool = {"=": a == b, "==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b,
                        ">=": a >= b}[op]
        return result

    def _call(self, name: str, args: Sequence[EvalNode], fields: Mapping[str, List[str]]) -> EvalValue:
        where = "{}: {}()".format(self.where, name)

        def arity(low: int, high: int) -> None:
            if not low <= len(args) <= high:
                raise Unsupported("{} takes {}-{} arguments, got {}".format(where, low, high, len(args)))

        if name == "if":
            arity(3, 3)
            return self._ev(args[1] if self._cond(args[0], fields) else args[2], fields)
        if name == "case":
            if len(args) % 2:
                raise Unsupported("{} needs condition/value pairs".format(where))
            for index in range(0, len(args), 2):
                if self._cond(args[index], fields):
                    return self._ev(args[index + 1], fields)
            return None
        if name == "coalesce":
            for arg in args:
                value = self._ev(arg, fields)
                if value is not None:
                    return value
            return None
        if name in ("null", "true", "false"):
            arity(0, 0)
            return {"null": None, "true": True, "false": False}[name]
        values = [self._ev(a, fields) for a in args]
        if name in ("isnull", "isnotnull"):
            arity(1, 1)
            return (values[0] is None) == (name == "isnull")
        if name == "mvcount":
            arity(1, 1)
            value = values[0]
            return None if value is None else float(len(value) if isinstance(value, list) else 1)
        if name == "mvindex":
            arity(2, 3)
            mv = values[0]
            if mv is None:
                return None
            items = mv if isinstance(mv, list) else [_text(mv, where) or ""]
            start = _num(values[1])
            stop = _num(values[2]) if len(values) == 3 else start
            if start is None or stop is None:
                return None
            i, j = int(start), int(stop)
            i, j = (i + len(items) if i < 0 else i), (j + len(items) if j < 0 else j)
            picked = items[i:j + 1]
            return None if not picked else (picked[0] if len(picked) == 1 else picked)
        if name == "split":
            arity(2, 2)
            text, sep = _text(values[0], where), _text(values[1], where)
            if text is None or sep is None:
                return None
            return text.split(sep) if sep else list(text)
        if name == "tonumber":
            arity(1, 1)
            return _num(values[0])
        texts = [_text(v, where) for v in values]
        if name == "tostring":
            arity(1, 1)
            return texts[0]
        if name in ("lower", "upper", "len"):
            arity(1, 1)
            if texts[0] is None:
                return None
            if name == "len":
                return float(len(texts[0]))
            return texts[0].lower() if name == "lower" else texts[0].upper()
        if name == "substr":
            arity(2, 3)
            start = _num(values[1])
            if texts[0] is None or start is None:
                return None
            begin = int(start) - 1 if start > 0 else len(texts[0]) + int(start)
            length = _num(values[2]) if len(values) == 3 else None
            return texts[0][max(begin, 0):] if length is None else texts[0][max(begin, 0):max(begin, 0) + int(length)]
        if name == "replace":
            arity(3, 3)
            if None in texts:
                return None
            pattern = compile_pcre(texts[1] or "", where)
            replacement = (texts[2] or "").replace("\\", "$")
            return _regex_replace(pattern, texts[0] or "", replacement)
        if name == "match":
            arity(2, 2)
            if texts[0] is None or texts[1] is None:
                return False
            return compile_pcre(texts[1], where).search(texts[0]) is not None
        if name == "like":
            arity(2, 2)
            if texts[0] is None or texts[1] is None:
                return False
            return _like(texts[0], texts[1])
        raise Unsupported("{} is not implemented".format(where))  # pragma: no cover (whitelist and code agree)


def _regex_replace(pattern: "pcre2.Pattern", text: str, replacement: str) -> str:
    out = []
    last = 0
    for match in pattern.finditer(text):
        out.append(text[last:match.start()])
        out.append(substitute_groups(replacement, match))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def _like(text: str, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else _escape(c) for c in pattern)
    return pcre2.compile("^(?:" + regex + ")$", pcre2.DOTALL).search(text) is not None


def _escape(text: str) -> str:
    return "".join("\\" + c if not (c.isalnum() or c == "_") and ord(c) < 128 else c for c in text)

