"""The plugin registry: entry points, decorator, collisions, unknown names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from pydantic import BaseModel

from auditor import registries
from auditor.errors import PluginError
from auditor.explainers.base import Explainer
from auditor.plugin import Params
from auditor.registry import Registry, UnknownPluginError

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_builtins_come_from_entry_points() -> None:
    assert {"python", "torchvision", "torchscript"} <= set(registries.models.names())
    assert {"sklearn", "image_folder", "torchvision", "tensors", "csv"} <= set(
        registries.datasets.names()
    )
    assert {"saliency", "integrated_gradients", "gradcam"} <= set(registries.explainers.names())
    cls = registries.explainers.get("integrated_gradients")
    assert cls.name == "integrated_gradients"
    assert cls.Params().n_steps == 32  # type: ignore[attr-defined]


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UnknownPluginError) as info:
        registries.explainers.get("integrated_gradient")
    message = str(info.value)
    assert message.startswith(
        "Unknown explainer 'integrated_gradient'. Did you mean: integrated_gradients? Known: "
    )
    assert "saliency" in message


def _explainer(name: str, params: type[BaseModel] = Params) -> type[Explainer]:
    return type(name.title(), (Explainer,), {"name": name, "Params": params, "__module__": "t"})


def test_decorator_registration_and_collision() -> None:
    registry: Registry[Explainer] = Registry("explainer", "auditor.none", Explainer)
    first = registry.register(_explainer("tiny"))
    assert registry.get("tiny") is first
    assert registry.register(first) is first  # registering the same class twice is harmless
    with pytest.raises(PluginError, match="explainer name collision: 'tiny' is registered by"):
        registry.register(_explainer("tiny"))


def test_collision_with_entry_point() -> None:
    with pytest.raises(PluginError, match="explainer name collision: 'saliency' is registered by"):
        registries.explainers.register(_explainer("saliency"))


def test_registration_checks_the_plugin() -> None:
    registry: Registry[Explainer] = Registry("explainer", "auditor.none", Explainer)

    class Loose(BaseModel):
        n: int = 1

    with pytest.raises(PluginError, match="Params must forbid extra keys"):
        registry.register(_explainer("loose", Loose))
    with pytest.raises(PluginError, match="needs a 'name' that is an identifier, got 'two words'"):
        registry.register(_explainer("two words"))
    with pytest.raises(PluginError, match="must subclass Explainer"):
        registry.register(int)  # type: ignore[arg-type]


def test_in_process_plugin_runs() -> None:
    class Doubler(Explainer):
        """Twice the input."""

        name: ClassVar[str] = "doubler_for_test"

        def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return inputs * 2

    registries.explainers.register(Doubler)
    try:
        assert "doubler_for_test" in registries.explainers.names()
    finally:
        registries.explainers.unregister("doubler_for_test")
    assert "doubler_for_test" not in registries.explainers.names()


def test_third_party_package_is_listed(plugin_site: Path) -> None:
    """The installed package's explainer shows in `auditor plugins`."""
    target = plugin_site
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [str(BIN / "auditor"), "plugins", "--kind", "explainers", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    listing = {row["name"]: row for row in json.loads(out.stdout)["explainers"]}
    assert listing["gradient_x2"]["module"] == "auditor_example_plugin.gradient_x2:GradientTimesTwo"
    assert listing["gradient_x2"]["params"] == [
        {
            "name": "scale",
            "type": "float",
            "default": 2.0,
            "description": "Factor applied to the gradient.",
        }
    ]
    assert "integrated_gradients" in listing


def test_third_party_explainer_usable_in_a_spec(plugin_site: Path, tmp_path: Path) -> None:
    target = plugin_site
    (tmp_path / "w.safetensors").write_bytes(b"")
    spec = tmp_path / "spec.yaml"
    base = (
        "version: 1\nname: t\nmodel: {source: python, class: 'a:B', weights: w.safetensors}\n"
        "data: {source: sklearn, name: digits}\nexplainers:\n  - type: gradient_x2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    spec.write_text(base + "    params: {scale: 3}\n")
    ok = subprocess.run([str(BIN / "auditor"), "validate", str(spec)], env=env, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    spec.write_text(base + "    params: {scale: -1}\n")
    bad = subprocess.run(
        [str(BIN / "auditor"), "validate", str(spec)], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr == (
        f"error: {spec}:7:21 explainers[0].params.scale: Input should be greater than 0 (got -1)\n"
    )
