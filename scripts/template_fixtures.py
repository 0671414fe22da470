#!/usr/bin/env python3
"""Record how Hugging Face transformers renders llama.cpp's real chat templates.

Usage: ~/.cache/wick/llamacpp-venv/bin/python scripts/template_fixtures.py [LLAMA_CPP_DIR]

Copies LLAMA_CPP_DIR/models/templates/*.jinja into tests/fixtures/templates/ and renders each for
the conversations of tests/fixtures/templates/conversations.json, with and without
add_generation_prompt, in a jinja2 environment set up as transformers' chat_template_utils sets it
up (`_compile_jinja_template` / `render_jinja_template`):

- ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
  extensions=[AssistantTracker, jinja2.ext.loopcontrols]);
- filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
  sort_keys=sort_keys) (no HTML escaping);
- globals raise_exception (raises TemplateError) and strftime_now (here at a fixed time,
  2024-07-26 12:00:00, so the fixtures are stable; wick is given the same time);
- render(messages=..., tools=tools or None, documents=None, add_generation_prompt=...,
  bos_token="<s>", eos_token="</s>").

Writes tests/fixtures/templates/expected.json: {template: {case: {"text": ...} | {"error": ...}}}
where an error is {"raise": message} for raise_exception and {"other": "Type: message"} otherwise.
"""
import datetime
import json
import pathlib
import shutil
import sys

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "templates"
NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)
BOS, EOS = "<s>", "</s>"


class AssistantTracker(Extension):
    # transformers' {% generation %} tag: renders its body unchanged.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class Raised(Exception):
    pass


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(fmt):
    return NOW.strftime(fmt)


def env():
    e = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    e.filters["tojson"] = tojson
    e.globals["raise_exception"] = raise_exception
    e.globals["strftime_now"] = strftime_now
    return e


def main():
    if len(sys.argv) > 1:
        src = pathlib.Path(sys.argv[1]) / "models" / "templates"
        for f in sorted(src.glob("*.jinja")):
            shutil.copyfile(f, OUT / f.name)
    convs = json.loads((OUT / "conversations.json").read_text())
    expected = {}
    for f in sorted(OUT.glob("*.jinja")):
        name = f.stem
        expected[name] = {}
        try:
            t = env().from_string(f.read_text())
        except Exception as e:  # noqa: BLE001
            for c in convs:
                for gp in (True, False):
                    expected[name][f"{c['name']}/{'gen' if gp else 'nogen'}"] = {
                        "error": {"other": f"{type(e).__name__}: {e}"}}
            continue
        for c in convs:
            for gp in (True, False):
                key = f"{c['name']}/{'gen' if gp else 'nogen'}"
                try:
                    text = t.render(messages=c["messages"], tools=c.get("tools"), documents=None,
                                    add_generation_prompt=gp, bos_token=BOS, eos_token=EOS)
                    expected[name][key] = {"text": text}
                except jinja2.exceptions.TemplateError as e:
                    if type(e) is jinja2.exceptions.TemplateError:
                        expected[name][key] = {"error": {"raise": str(e)}}
                    else:
                        expected[name][key] = {"error": {"other": f"{type(e).__name__}: {e}"}}
                except Exception as e:  # noqa: BLE001
                    expected[name][key] = {"error": {"other": f"{type(e).__name__}: {e}"}}
    # The conversations again as JSON text, so a reader keeps their key order.
    cases = [{"name": c["name"], "messages": json.dumps(c["messages"], ensure_ascii=False),
              "tools": json.dumps(c["tools"], ensure_ascii=False) if c.get("tools") else None}
             for c in convs]
    doc = {"bos_token": BOS, "eos_token": EOS, "now": "2024-07-26T12:00:00", "conversations": cases,
           "expected": expected}
    (OUT / "expected.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    n = sum(len(v) for v in expected.values())
    errs = sum(1 for v in expected.values() for r in v.values() if "error" in r)
    print(f"{len(expected)} templates, {n} cases, {errs} jinja2 errors")


if __name__ == "__main__":
    main()
