"""Compiled templates are kept in memory and shared between environments; an edited template
is compiled again (Jinja checks each cached entry against the source's checksum)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from auditor.report.render import BYTECODE, MemoryBytecodeCache, environment


def test_a_second_environment_reuses_the_compiled_template(monkeypatch) -> None:
    first = environment().get_template("macros.html")
    assert any(True for _ in BYTECODE._store)  # the first environment stored it
    compiled: list[str] = []
    real = Environment.compile

    def counting(self: Environment, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(str(name))
        return real(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(Environment, "compile", counting)
    second = environment().get_template("macros.html")
    assert compiled == []  # loaded from the cache, not compiled again
    assert second is not first
    assert sorted(second.module.__dict__) == sorted(first.module.__dict__)


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    cache = MemoryBytecodeCache()
    page = tmp_path / "page.html"
    page.write_text("one {{ x }}", encoding="utf-8")

    def render() -> str:
        env = Environment(loader=FileSystemLoader(tmp_path), bytecode_cache=cache)
        return env.get_template("page.html").render(x=1)

    assert render() == "one 1"
    assert render() == "one 1"
    page.write_text("two {{ x }}", encoding="utf-8")
    assert render() == "two 1"
