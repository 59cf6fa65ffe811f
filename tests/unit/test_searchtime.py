"""The offline search-time evaluator: Splunk's documented order and semantics, and refusal of what it does not model."""
import json
from pathlib import Path
from typing import Dict, Optional

import pytest

from tools.searchtime import JSON_EXTRACTION_CUTOFF, SearchTimeKnowledge, Unsupported, auto_kv_fields, json_fields


def make_app(tmp_path: Path, props: str, transforms: str = "", eventtypes: str = "", tags: str = "",
             lookups: Optional[Dict[str, str]] = None) -> SearchTimeKnowledge:
    default = tmp_path / "app" / "default"
    default.mkdir(parents=True)
    for name, text in (("props.conf", props), ("transforms.conf", transforms), ("eventtypes.conf", eventtypes),
                       ("tags.conf", tags)):
        if text:
            (default / name).write_text(text)
    for name, text in (lookups or {}).items():
        (tmp_path / "app" / "lookups").mkdir(exist_ok=True)
        (tmp_path / "app" / "lookups" / name).write_text(text)
    return SearchTimeKnowledge.from_app(tmp_path / "app")


def event(raw: str, sourcetype: str = "st", source: str = "/var/log/x.log", host: str = "h1") -> Dict[str, str]:
    return {"_raw": raw, "sourcetype": sourcetype, "source": source, "host": host}


def test_extract_classes_run_in_ascii_order_and_in_field_needs_an_earlier_field(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nKV_MODE = none\n"
                   "EXTRACT-b = user=(?<escape_user>\\w+)\n"
                   "EXTRACT-a = (?<escape_first>^\\w) in escape_user\n"
                   "EXTRACT-c = (?<escape_initial>^\\w) in escape_user\n")
    fields = app.fields(event("x user=bob"))
    assert fields["escape_user"] == "bob"
    assert "escape_first" not in fields  # class a runs before b, so its source field does not exist yet
    assert fields["escape_initial"] == "b"
    assert list(fields)[:4] == ["_raw", "sourcetype", "source", "host"]


def test_report_mv_add_appends_and_default_discards(tmp_path: Path) -> None:
    transforms = ("[escape_all]\nREGEX = (\\w+)=(\\w+)\nFORMAT = $1::$2\nMV_ADD = true\n"
                  "[escape_first]\nREGEX = (\\w+)=(\\w+)\nFORMAT = $1::$2\n")
    raw = "a=1 b=2 a=3"
    mv = make_app(tmp_path / "1", "[st]\nKV_MODE = none\nREPORT-x = escape_all\n", transforms).fields(event(raw))
    first = make_app(tmp_path / "2", "[st]\nKV_MODE = none\nREPORT-x = escape_first\n", transforms).fields(event(raw))
    assert mv["a"] == ["1", "3"] and mv["b"] == "2"
    assert first["a"] == "1" and first["b"] == "2"


def test_kv_mode_defaults_to_auto_and_never_overwrites(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nEXTRACT-x = (?<level>lvl\\d)\n")
    fields = app.fields(event('time="2026" level=debug msg="Calling POST /x" lvl1'))
    assert fields["level"] == "lvl1"  # the EXTRACT came first; auto KV does not overwrite it
    assert fields["msg"] == "Calling POST /x" and fields["time"] == "2026"
    none = make_app(tmp_path / "n", "[st]\nKV_MODE = none\n").fields(event("a=1"))
    assert "a" not in none


def test_kv_mode_json_flattens_objects_and_arrays() -> None:
    raw = json.dumps({"user": {"username": "u", "groups": ["g1", "g2"]}, "n": 12, "ok": True, "z": None,
                      "list": [{"x": 1}, {"x": 2}]})
    fields = json_fields(raw)
    assert fields == {"user.username": ["u"], "user.groups{}": ["g1", "g2"], "n": ["12"], "ok": ["true"],
                      "z": ["null"], "list{}.x": ["1", "2"]}


def test_automatic_json_extraction_stops_at_5000_bytes(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nKV_MODE = json\n")
    padding = "x" * (JSON_EXTRACTION_CUTOFF - 40)
    raw = json.dumps({"verb": "create", "pad": padding, "late": "after", "code": 201})
    assert len(raw.encode()) > JSON_EXTRACTION_CUTOFF
    fields = app.fields(event(raw))
    assert fields["verb"] == "create" and fields["pad"] == padding
    assert "late" not in fields and "code" not in fields
    # the same values are there without the cutoff, so the cutoff is what hides them
    assert json_fields(raw, cutoff=None)["late"] == ["after"]
    # a value cut by the boundary is not extracted at all, not even partly
    cut = json.dumps({"pad": "y" * (JSON_EXTRACTION_CUTOFF - 20), "num": 1234567890123})
    assert "num" not in json_fields(cut[:JSON_EXTRACTION_CUTOFF - 1] + cut[JSON_EXTRACTION_CUTOFF - 1:])


def test_auto_kv_takes_quoted_values_and_the_first_occurrence() -> None:
    assert auto_kv_fields('a=1 b="two words" a=3 c=x,y') == {"a": ["1"], "b": ["two words"], "c": ["x"]}


def test_fieldalias_overwrites_removes_and_asnew_keeps(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nKV_MODE = none\nEXTRACT-x = s=(?<src>\\w+) t=(?<tgt>\\w+)( o=(?<other>\\w+))?\n"
                   "FIELDALIAS-a = src AS tgt\nFIELDALIAS-b = missing AS other\nFIELDALIAS-c = src ASNEW keep\n"
                   "EXTRACT-y = k=(?<keep>\\w+)\n")
    fields = app.fields(event("s=1 t=2 o=3 k=4"))
    assert fields["tgt"] == "1"
    assert "other" not in fields
    assert fields["keep"] == "4"


def test_eval_runs_in_parallel_and_null_removes(tmp_path: Path) -> None:
    app = make_app(tmp_path, '[st]\nKV_MODE = none\nEXTRACT-x = y=(?<y>\\d+)\nEVAL-x = y*2\nEVAL-y = 100\n'
                   'EVAL-z = if(y==7, "seven" . "!", null())\nEVAL-w = case(match(y, "^\\d+$"), lower("OK"))\n')
    fields = app.fields(event("y=7"))
    assert fields["x"] == "14" and fields["y"] == "100" and fields["z"] == "seven!" and fields["w"] == "ok"
    assert "z" not in app.fields(event("y=8"))


def test_lookup_output_and_outputnew(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nKV_MODE = none\nEXTRACT-x = c=(?<code>\\d+)( n=(?<name>\\w+))?\n"
                   "LOOKUP-a = escape_codes code OUTPUTNEW name\nLOOKUP-b = escape_codes code OUTPUT label AS escape_label\n",
                   "[escape_codes]\nfilename = escape_codes.csv\n",
                   lookups={"escape_codes.csv": "code,name,label\n59,execve,exec\n272,unshare,ns\n"})
    assert app.fields(event("c=59"))["name"] == "execve"
    kept = app.fields(event("c=272 n=mine"))
    assert kept["name"] == "mine" and kept["escape_label"] == "ns"
    assert "escape_label" not in app.fields(event("c=1"))


def test_stanza_precedence_source_over_host_over_sourcetype(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nKV_MODE = none\nEVAL-who = \"sourcetype\"\nEVAL-st_only = 1\n"
                   "[host::h*]\nEVAL-who = \"host\"\n[source::/var/log/...]\nEVAL-who = \"source\"\n")
    assert app.fields(event("x"))["who"] == "source"
    assert app.fields(event("x", source="/tmp/other"))["who"] == "host"
    assert app.fields(event("x", source="/tmp/other", host="zz"))["who"] == "sourcetype"
    assert app.fields(event("x"))["st_only"] == "1"


def test_two_matching_source_stanzas_are_refused(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[source::/var/...]\nKV_MODE = none\n[source::.../x.log]\nKV_MODE = none\n")
    with pytest.raises(Unsupported, match="precedence"):
        app.fields(event("x"))


@pytest.mark.parametrize("props, transforms, message", [
    ("[st]\nSEDCMD-x = s/a/b/\n", "", "setting SEDCMD-x"),
    ("[st]\nKV_MODE = xml\n", "", "KV_MODE = xml"),
    ("[st]\nTRANSFORMS-x = t\n", "", "setting TRANSFORMS-x"),
    ("[st]\nEVAL-x = sha256(_raw)\n", "", r"sha256\(\) is not implemented"),
    ("[st]\nREPORT-x = t\n", "[t]\nDELIMS = \",\"\nFIELDS = a\n", "setting DELIMS"),
    ("[st]\nREPORT-x = missing\n", "", r"no stanza \[missing\]"),
    ("[st]\nLOOKUP-x = t a\n", "[t]\nexternal_cmd = x.py\n", "setting external_cmd"),
    ("[rule::x]\nsourcetype = y\n", "", "stanza is not implemented"),
])
def test_unknown_settings_are_refused_by_name(tmp_path: Path, props: str, transforms: str, message: str) -> None:
    with pytest.raises(Unsupported, match=message):
        make_app(tmp_path, props, transforms)


def test_eventtypes_and_tags(tmp_path: Path) -> None:
    app = make_app(tmp_path, "[st]\nKV_MODE = none\nEXTRACT-x = verb=(?<verb>\\w+)\n",
                   eventtypes='[escape_write]\nsearch = sourcetype="st" (verb=create OR verb=patch) NOT "dry run"\n'
                              '[escape_any]\nsearch = sourcetype=s* calling\n',
                   tags="[eventtype=escape_write]\nchange = enabled\nnoise = disabled\n")
    fields = app.fields(event("Calling verb=CREATE"))
    assert app.eventtypes(fields) == ["escape_any", "escape_write"]  # field values match case-insensitively
    assert app.tags(fields) == ["change"]
    assert app.eventtypes(app.fields(event("verb=create dry run"))) == []
    assert app.eventtypes(app.fields(event("recalling verb=get"))) == []  # terms match whole tokens


@pytest.mark.parametrize("search, message", [
    ("sourcetype=st | stats count", "pipes"),
    ("`escape_docker` x", "macros"),
    ("eventtype=escape_other", "eventtype= is not implemented"),
    ("code>5", "not implemented"),
    ("code!=5", "comparison"),
])
def test_eventtype_searches_beyond_the_subset_are_refused(tmp_path: Path, search: str, message: str) -> None:
    with pytest.raises(Unsupported, match=message):
        make_app(tmp_path, "[st]\nKV_MODE = none\n", eventtypes="[escape_x]\nsearch = {}\n".format(search))
