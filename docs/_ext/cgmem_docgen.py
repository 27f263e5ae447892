"""Sphinx extension: pages generated from the code at build time.

Writes ``docs/generated/*.md`` (git-ignored) before Sphinx reads the sources:

- ``magics.md`` from the argument parser of every magic registered in
  ``cgmem_nb.integrations.extension.MAGICS`` (the same parser makes ``%%memprofile?``);
- ``api.md``: autodoc directives for the public names in ``cgmem_nb.__all__``;
- ``schemas.md`` from ``cgmem_nb.schema.schema_markdown()``;
- ``configuration.md`` from the ``ProfilerConfig`` fields, their ``#:`` comments and
  ``cgmem_nb.config.ENV_VARS``;
- ``cli-usage.md`` from the command line's parser;
- ``versions-table.md`` from ``cgmem_nb.engine.versions`` (the one table of supported
  CPython versions), included by ``versions.md``.

It also fills the "Capabilities" toctree of ``index.md`` with every other page in
``docs/`` (analysis, dashboard, exports, guard, panel, sampler, ... whichever exist).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent
GENERATED = DOCS / "generated"
CAPABILITIES_MARKER = "<!-- capability pages -->"
#: Pages written by hand for the index's fixed sections (everything else is a capability page).
CORE_PAGES = {"index", "installation", "tour", "pytest-plugin", "cli", "overhead", "limits", "architecture", "versions"}


def _escape_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _dedent_doc(doc: str | None) -> str:
    return inspect.cleandoc(doc or "")


# -- magics --------------------------------------------------------------------------------


def _argument_rows(parser: Any) -> list[str]:
    rows = ["| option | value | default | meaning |", "| --- | --- | --- | --- |"]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        value = f"`{action.metavar}`" if action.metavar else ("" if action.nargs == 0 else f"`{action.dest.upper()}`")
        default = "" if action.default in (None, False) else f"`{action.default}`"
        rows.append(f"| {names} | {value} | {default} | {_escape_cell(action.help or '')} |")
    return rows


def magics_markdown() -> str:
    from cgmem_nb.integrations.extension import MAGICS

    out = [
        "# Magic reference",
        "",
        "Generated from the magics' own argument parsers — the same parsers that make",
        "`%%memprofile?` and report a bad option — so this page cannot drift from the code.",
        "Load the magics with `%load_ext cgmem_nb`.",
        "",
    ]
    for module, name in MAGICS:
        cls = getattr(importlib.import_module(module), name)
        kinds: dict[str, list[str]] = {}
        for kind, table in cls.magics.items():
            for magic_name in table:
                kinds.setdefault(magic_name, []).append(kind)
        for magic_name in sorted(kinds):
            func = getattr(cls, magic_name)
            parser = getattr(func, "parser", None)
            prefixes = " / ".join(("%%" if k == "cell" else "%") + magic_name for k in sorted(kinds[magic_name], reverse=True))
            out += [f"## `{prefixes}`", ""]
            description = parser.description if parser is not None and parser.description else func.__doc__
            out += [_dedent_doc(description).replace("``", "`"), ""]
            if parser is not None:
                usage = parser.format_usage().strip().replace("usage: ", "", 1)
                usage = inspect.cleandoc(usage[2:] if usage.startswith("::") else usage)
                out += ["Usage:", "", "```text", usage, "```", ""]
                out += _argument_rows(parser)
                out.append("")
            out.append(f"Defined in `{module}.{name}`.")
            out.append("")
    return "\n".join(out)


# -- API -----------------------------------------------------------------------------------

_EXTRA_API = [
    ("cgmem_nb.session.scope", "CategoryScope"),
    ("cgmem_nb.session.runner", "run_in_session"),
    ("cgmem_nb.schema", "GuardReport"),
    ("cgmem_nb.schema", "GuardLine"),
    ("cgmem_nb.schema", "make_frame"),
    ("cgmem_nb.schema", "schema_markdown"),
    ("cgmem_nb.outputs.feed", "LiveFeed"),
    ("cgmem_nb.outputs.charts", "ChartSpec"),
    ("cgmem_nb.outputs.charts", "ChartContext"),
    ("cgmem_nb.integrations.cli", "main"),
    ("cgmem_nb.integrations.memgates", "limit_message"),
    ("cgmem_nb.integrations.memgates", "leak_message"),
]


def _defining_module(name: str) -> str:
    import sys

    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith("cgmem_nb.") and name in vars(module) and module_name != "cgmem_nb":
            source = inspect.getsource(module) if hasattr(module, "__file__") else ""
            if f"\n{name} = " in source or f"\n{name}: " in source:
                return module_name
    return "cgmem_nb"


def _directive(qualname: str, obj: Any) -> list[str]:
    if inspect.ismodule(obj):
        return [f".. automodule:: {obj.__name__}", "   :members:", ""]
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return [f".. autoexception:: {qualname}", "   :show-inheritance:", ""]
    if inspect.isclass(obj):
        return [f".. autoclass:: {qualname}", "   :members:", "   :show-inheritance:", ""]
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return [f".. autofunction:: {qualname}", ""]
    return [f".. autodata:: {qualname}", "   :annotation:", ""]


def api_markdown() -> str:
    import cgmem_nb

    out = [
        "# API reference",
        "",
        "Generated from the docstrings of the names `cgmem_nb` exports (`cgmem_nb.__all__`),",
        "then a few names from submodules that the public API hands out.",
        "",
        "## `cgmem_nb`",
        "",
        "```{eval-rst}",
        ".. automodule:: cgmem_nb",
        "   :no-members:",
        "",
    ]
    for name in sorted(cgmem_nb.__all__, key=str.lower):
        obj = getattr(cgmem_nb, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            out += _directive(f"cgmem_nb.{name}", obj)
        else:  # data: documented by its `#:` comment where it is defined
            out += _directive(f"{_defining_module(name)}.{name}", obj)
    out += ["```", "", "## From submodules", "", "```{eval-rst}"]
    for module, name in _EXTRA_API:
        out += _directive(f"{module}.{name}", getattr(importlib.import_module(module), name))
    out += ["```", ""]
    return "\n".join(out)


# -- configuration ---------------------------------------------------------------------------


def configuration_markdown() -> str:
    from sphinx.pycode import ModuleAnalyzer

    from cgmem_nb.config import ENV_VARS, ProfilerConfig

    docs = ModuleAnalyzer.for_module("cgmem_nb.config").find_attr_docs()
    field_doc = {attr: " ".join(lines).strip() for (cls, attr), lines in docs.items() if cls == "ProfilerConfig"}
    out = [
        "# Configuration and environment variables",
        "",
        "Generated from the fields of `ProfilerConfig` and `cgmem_nb.config.ENV_VARS`.",
        "",
        "A `ProfilerConfig` is immutable; make one with the fields you want to change, or",
        "`ProfilerConfig.from_env()` to read the environment, and hand it to the profiler:",
        "",
        "```python",
        "from cgmem_nb import MEMORY_PROFILER, ProfilerConfig",
        "MEMORY_PROFILER.initialize(ProfilerConfig(stack_trace_depth=4, memory_limit_bytes=\"8 GiB\"))",
        "MEMORY_PROFILER.initialize(sampling_rate=0.01)   # or change fields of the current one",
        "```",
        "",
        "A bad value raises `ConfigError` naming the field (or variable), the value and what is accepted.",
        "",
        "## Fields",
        "",
        "| field | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for f in dataclasses.fields(ProfilerConfig):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = ""
        out.append(f"| `{f.name}` | `{_escape_cell(str(f.type))}` | `{default}` | {_escape_cell(field_doc.get(f.name, ''))} |")
    out += [
        "",
        "## Environment variables",
        "",
        "Read by `ProfilerConfig.from_env()` (and so by `MEMORY_PROFILER` on first use).",
        "",
        "| variable | sets | meaning |",
        "| --- | --- | --- |",
    ]
    for variable, field_name in ENV_VARS.items():
        out.append(f"| `{variable}` | `{field_name}` | {_escape_cell(field_doc.get(field_name, ''))} |")
    out += [
        "",
        "`MEMORY_PROFILER_LIMIT_MB` is in decimal megabytes (1 MB = 1,000,000 bytes);",
        "`MEMORY_PROFILER_ENABLED` accepts 1/0, true/false, yes/no, on/off.",
        "",
    ]
    return "\n".join(out)


# -- command line ----------------------------------------------------------------------------


def cli_usage_markdown() -> str:
    from cgmem_nb.integrations.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    out = ["<!-- generated from cgmem_nb.integrations.cli.build_parser() -->", ""]
    out += ["```text", parser.format_help().rstrip(), "```", ""]
    for name, sub in subparsers.choices.items():
        out += [f"### `python -m cgmem_nb {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


# -- Sphinx hooks ----------------------------------------------------------------------------


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate(app: Any = None) -> None:
    from cgmem_nb.engine.versions import versions_markdown
    from cgmem_nb.schema import schema_markdown

    GENERATED.mkdir(exist_ok=True)
    schemas = schema_markdown()
    schemas = schemas.replace(
        "# DataFrame schemas\n",
        "# DataFrame schemas\n\nGenerated from `cgmem_nb.schema.TABLES`: every DataFrame cgmem_nb hands out "
        "(`result.lines`, `.stacks`, `.categories`, `.threads`, `.timeline`, ...) has these columns, "
        "in this order, with these dtypes, even when empty.\n",
        1,
    )
    pages = {
        "magics.md": magics_markdown(),
        "api.md": api_markdown(),
        "schemas.md": schemas,
        "configuration.md": configuration_markdown(),
        "cli-usage.md": cli_usage_markdown(),
        "versions-table.md": "<!-- generated from cgmem_nb.engine.versions.VERSIONS -->\n\n" + versions_markdown(),
    }
    for name, text in pages.items():
        _write_if_changed(GENERATED / name, text)


def capability_pages(srcdir: Path) -> list[str]:
    """Hand-written pages that are not in the index's fixed sections, sorted."""
    return sorted(p.stem for p in srcdir.glob("*.md") if p.stem not in CORE_PAGES)


def _fill_index(app: Any, docname: str, source: list[str]) -> None:
    if docname != "index" or CAPABILITIES_MARKER not in source[0]:
        return
    pages = capability_pages(Path(app.srcdir))
    source[0] = source[0].replace(CAPABILITIES_MARKER, "\n".join(pages))


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    app.connect("source-read", _fill_index)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
