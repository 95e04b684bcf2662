"""Make a model DeepLIFT-ready: a torch.fx copy where every nonlinearity is its own module.

Captum's ``DeepLift`` and shap's ``DeepExplainer`` replace the gradient of each
nonlinearity through *module* hooks that keep the module's last input and output. That
breaks on ordinary architectures:

- a module called twice (torchvision's ResNet uses one ``nn.ReLU`` per block twice):
  Captum raises "A Module ReLU(inplace=True) was detected that does not contain some of
  the input/output attributes ..."; shap silently uses the second call's tensors for both;
- in-place ops on a hooked module's output (``out += identity`` after ``bn2``,
  ``ReLU(inplace=True)``): shap raises "Output 0 of BackwardHookFunction is a view and
  is being modified inplace" and leaves its hooks on the model;
- functional calls (``F.relu``, ``x.clamp(0, 6)``) and ``ReLU6`` / ``Hardtanh``, which
  neither engine has a rule for: they get the plain gradient and completeness fails.

Two more faults hit even models built "the DeepLIFT way" (one ``nn.ReLU`` per call):

- Captum hooks a nonlinear module's *input tensor*; when that tensor has other readers
  (a residual branch) or is the output of another hooked module (``ReLU`` then
  ``MaxPool2d``, as in the example DigitsCNN), Captum loses part of the gradient: 4.8%
  completeness error on DigitsCNN, 31% for DeepLiftShap;
- both engines' max-pool rule unpools by scattering, which drops the share of an input
  that is the maximum of two overlapping windows (ResNet's 3x3/2 stem pool: ~100%).

``deeplift_model`` traces a deep copy with ``torch.fx`` and rewrites the graph: each call
site of a nonlinearity gets a fresh, non-inplace module of a type both engines support,
fed a private copy of its input; in-place ops become out-of-place ones; clamps
(``ReLU6``, ``Hardtanh``, ``clamp``) become ``lo + relu(x - lo) - relu(x - hi)`` (the same
function, and as both ReLUs see the same input difference their rescale multipliers add
up to the clamp's own); overlapping max pools become a fold ``m + relu(v - m)`` over each
window. What the rewrite cannot express is an ``UnsupportedModelError`` naming the module
and the explainers that work instead.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from auditor.errors import RunError

#: Explainers that need only gradients or forward passes, so no graph rewrite.
ALTERNATIVES = "integrated_gradients, gradient_shap, shap_gradient, occlusion or feature_ablation"


def _names(text: str) -> list[str]:
    return text.split()


#: Nonlinear modules with a DeepLIFT rule in both Captum and shap (matched by exact type).
NATIVE_NONLINEAR: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softmax,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
)

_LINEAR_NAMES = _names(
    """Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d Linear
BatchNorm1d BatchNorm2d BatchNorm3d AvgPool1d AvgPool2d AvgPool3d AdaptiveAvgPool1d
AdaptiveAvgPool2d AdaptiveAvgPool3d Dropout Dropout1d Dropout2d Dropout3d AlphaDropout
FeatureAlphaDropout Identity Flatten Unflatten ZeroPad1d ZeroPad2d ZeroPad3d ConstantPad1d
ConstantPad2d ConstantPad3d ReflectionPad1d ReflectionPad2d ReflectionPad3d ReplicationPad1d
ReplicationPad2d ReplicationPad3d Upsample UpsamplingNearest2d UpsamplingBilinear2d
PixelShuffle PixelUnshuffle ChannelShuffle"""
)
#: Modules that are affine in their input in eval mode: gradients are DeepLIFT multipliers.
LINEAR_MODULES: tuple[type[nn.Module], ...] = tuple(
    getattr(nn, n) for n in _LINEAR_NAMES if hasattr(nn, n)
)

# Functional nonlinearities -> canonical name; call_method nodes use the method's name.
_FUNCTIONS: dict[Callable[..., Any], str] = {
    F.relu: "relu",
    torch.relu: "relu",
    torch.relu_: "relu",
    F.relu6: "relu6",
    F.hardtanh: "hardtanh",
    F.hardtanh_: "hardtanh",
    torch.clamp: "clamp",
    torch.clip: "clamp",
    torch.clamp_: "clamp",
    torch.clip_: "clamp",
    F.leaky_relu: "leaky_relu",
    F.leaky_relu_: "leaky_relu",
    F.elu: "elu",
    F.elu_: "elu",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    F.softplus: "softplus",
    F.softmax: "softmax",
    torch.softmax: "softmax",
    F.max_pool1d: "max_pool1d",
    F.max_pool2d: "max_pool2d",
    F.max_pool3d: "max_pool3d",
}
# Argument names after the input, with defaults (None: required).
_ARGS: dict[str, tuple[tuple[str, Any], ...]] = {
    "relu": (("inplace", False),),
    "relu6": (("inplace", False),),
    "hardtanh": (("min_val", -1.0), ("max_val", 1.0), ("inplace", False)),
    "clamp": (("min", None), ("max", None)),
    "clip": (("min", None), ("max", None)),
    "leaky_relu": (("negative_slope", 0.01), ("inplace", False)),
    "elu": (("alpha", 1.0), ("inplace", False)),
    "sigmoid": (),
    "tanh": (),
    "softplus": (("beta", 1.0), ("threshold", 20.0)),
    "softmax": (("dim", None),),
    **{
        f"max_pool{d}d": (
            ("kernel_size", None),
            ("stride", None),
            ("padding", 0),
            ("dilation", 1),
            ("ceil_mode", False),
            ("return_indices", False),
        )
        for d in (1, 2, 3)
    },
}
_MAX_POOLS = {"max_pool1d": nn.MaxPool1d, "max_pool2d": nn.MaxPool2d, "max_pool3d": nn.MaxPool3d}

_INPLACE_OPERATORS = {
    operator.iadd: operator.add,
    operator.isub: operator.sub,
    operator.imul: operator.mul,
    operator.itruediv: operator.truediv,
}

_NONLINEAR_FUNCTIONS = (
    {
        getattr(F, n)
        for n in _names(
            """gelu silu mish hardswish hardsigmoid selu celu glu prelu rrelu softsign softmin
    log_softmax logsigmoid tanhshrink softshrink hardshrink threshold layer_norm group_norm
    instance_norm local_response_norm normalize adaptive_max_pool1d adaptive_max_pool2d
    adaptive_max_pool3d lp_pool1d lp_pool2d scaled_dot_product_attention"""
        )
        if hasattr(F, n)
    }
    | {
        getattr(torch, n)
        for n in _names(
            """exp log log1p sqrt rsqrt abs sin cos erf sign max min maximum minimum amax amin
    topk sort norm logsumexp square reciprocal floor ceil round where"""
        )
    }
    | {abs, max, min, operator.abs, operator.pow, torch.pow}
)
_NONLINEAR_METHODS = set(
    _names(
        """exp log log1p sqrt rsqrt abs sin cos erf sign max min maximum minimum amax amin topk sort
    norm logsumexp square reciprocal floor ceil round pow log_softmax softmin"""
    )
)
# Products of two data-dependent tensors have no DeepLIFT rule in either engine.
_PRODUCT_FUNCTIONS = {
    operator.mul,
    torch.mul,
    operator.matmul,
    torch.matmul,
    torch.bmm,
    torch.mm,
    torch.einsum,
    F.linear,
    F.bilinear,
    F.conv1d,
    F.conv2d,
    F.conv3d,
}
_PRODUCT_METHODS = {"mul", "matmul", "bmm", "mm"}
_DIVISIONS = {operator.truediv, torch.div, torch.true_divide, operator.floordiv, operator.mod}
# Results that describe a tensor's shape, not its values.
_SHAPE_METHODS = {"size", "dim", "numel", "ndimension", "type", "get_device", "is_contiguous"}


class UnsupportedModelError(RunError):
    """DeepLIFT's rules cannot be applied to this model; says where and what works instead."""


def deeplift_model(model: nn.Module, explainer: str) -> fx.GraphModule:
    """A traced deep copy of ``model`` that Captum's DeepLift and shap's DeepExplainer handle.

    The copy computes the same function; ``model`` itself is not touched. Raises
    ``UnsupportedModelError`` when torch.fx cannot trace the model or the graph holds an
    operation without a DeepLIFT rule (the message names the module and the alternatives).
    """
    gm = _trace(copy.deepcopy(model), explainer)
    _make_out_of_place(gm, explainer)
    _split_nonlinearities(gm, explainer)
    _isolate_inputs(gm)
    _check_supported(gm, explainer)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm.train(model.training)


def deeplift_ready(model: nn.Module, explainer: str, *, rewrite: bool) -> nn.Module:
    """The model the DeepLIFT engines run on: the fx rewrite, or a plain deep copy.

    Either way the engines hook a copy, so nothing they leave behind (hooks, saved
    tensors, when they raise) reaches ``model``.
    """
    return deeplift_model(model, explainer) if rewrite else copy.deepcopy(model)


class _PathTracer(fx.Tracer):
    """An fx tracer that remembers the innermost module where tracing failed."""

    def __init__(self) -> None:
        super().__init__()
        self.failed_in: nn.Module | None = None
        self.failed_path = ""

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in, self.failed_path = m, self.path_of_module(m)
            raise


def _trace(model: nn.Module, explainer: str) -> fx.GraphModule:
    tracer = _PathTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if tracer.failed_in is not None:
            where = f"module '{tracer.failed_path}' ({type(tracer.failed_in).__name__})"
        else:
            where = f"the forward of {type(model).__name__}"
        raise UnsupportedModelError(
            f"{explainer} cannot explain {type(model).__name__}: torch.fx cannot trace {where}: "
            f"{reason}. DeepLIFT needs the traced graph to give every activation its own "
            f"module. Explainers that work on this model: {ALTERNATIVES}."
        ) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def _make_out_of_place(gm: fx.GraphModule, explainer: str) -> None:
    """Turn in-place ops into out-of-place ones.

    Later readers of the mutated tensor read the op's result instead, which is what they
    saw before the rewrite.
    """
    order = {node: i for i, node in enumerate(gm.graph.nodes)}
    inplace = [node for node in gm.graph.nodes if _is_inplace(gm, node)]
    for node in inplace:
        mutated = node.args[0] if node.args else None
        if isinstance(mutated, fx.Node):
            for user in list(mutated.users):
                if user is not node and order.get(user, -1) > order[node]:
                    user.replace_input_with(mutated, node)
    for node in inplace:
        _to_out_of_place(gm, node, explainer)


def _is_inplace(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return getattr(gm.get_submodule(str(node.target)), "inplace", False) is True
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return (
            node.target in _INPLACE_OPERATORS
            or (node.target in _FUNCTIONS and name.endswith("_"))
            or node.kwargs.get("inplace") is True
            or _positional_inplace(node)
        )
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("__")
    return False


def _positional_inplace(node: fx.Node) -> bool:
    """``F.relu(x, True)``: the ``inplace`` flag given by position."""
    kind = _FUNCTIONS.get(node.target)  # type: ignore[arg-type]
    names = [name for name, _ in _ARGS.get(kind or "", ())]
    if "inplace" not in names:
        return False
    position = names.index("inplace") + 1
    return len(node.args) > position and node.args[position] is True


def _to_out_of_place(gm: fx.GraphModule, node: fx.Node, explainer: str) -> None:
    if node.op == "call_module":
        gm.get_submodule(str(node.target)).inplace = False  # a module of the copy
    elif node.op == "call_function":
        if node.target in _INPLACE_OPERATORS:
            node.target = _INPLACE_OPERATORS[node.target]
        elif "inplace" in node.kwargs:
            node.kwargs = {**node.kwargs, "inplace": False}
        # torch.relu_, F.hardtanh_, F.relu(x, True), ...: _split_nonlinearities replaces them
    elif node.op == "call_method":
        name = str(node.target)
        plain = name[:-1]
        if name == "requires_grad_" or not callable(getattr(torch.Tensor, plain, None)):
            raise _unsupported(explainer, gm, node, f"'{name}'", "has no out-of-place form")
        node.target = plain


def _split_nonlinearities(gm: fx.GraphModule, explainer: str) -> None:
    """Give every nonlinear call site its own fresh module (see ``_place``)."""
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            if type(module) in (nn.ReLU6, nn.Hardtanh) or type(module) in NATIVE_NONLINEAR:
                _place(gm, node, node.args[0], module, explainer)
            continue
        if node.op == "call_function" and node.target in _FUNCTIONS:
            kind = _FUNCTIONS[node.target]
        elif node.op == "call_method" and str(node.target) in _ARGS:
            kind = "clamp" if node.target == "clip" else str(node.target)
        else:
            continue
        values = _bind(gm, node, kind, explainer)
        x = node.args[0] if node.args else node.kwargs.get("input")
        if kind == "clamp":
            _clamp(gm, node, x, values["min"], values["max"])
        else:
            _place(gm, node, x, _functional_module(gm, node, kind, values, explainer), explainer)


def _functional_module(
    gm: fx.GraphModule, node: fx.Node, kind: str, values: dict[str, Any], explainer: str
) -> nn.Module:
    """The module that computes what a functional nonlinearity computes."""
    if kind in _MAX_POOLS:
        if values.pop("return_indices"):
            raise _unsupported(explainer, gm, node, f"'{kind}'", "returns indices")
        return _MAX_POOLS[kind](**values)
    factory: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hardtanh": lambda: nn.Hardtanh(values["min_val"], values["max_val"]),
        "leaky_relu": lambda: nn.LeakyReLU(values["negative_slope"]),
        "elu": lambda: nn.ELU(values["alpha"]),
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softplus": lambda: nn.Softplus(values["beta"], values["threshold"]),
        "softmax": lambda: nn.Softmax(values["dim"]),
    }
    return factory[kind]()


def _place(gm: fx.GraphModule, node: fx.Node, x: Any, module: nn.Module, explainer: str) -> None:
    """Replace ``node`` (``module`` applied to ``x``) by a call of a fresh copy of it.

    Clamps (``ReLU6``, ``Hardtanh``) become two ReLUs; max pools with overlapping windows
    become a fold of ReLUs, because both engines' max-pool rule unpools by scattering and
    loses the share of an input that is the maximum of two windows.
    """
    if type(module) in (nn.ReLU6, nn.Hardtanh):
        _clamp(gm, node, x, module.min_val, module.max_val)  # type: ignore[arg-type]
        return
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)) and _overlaps(module):
        _max_pool_as_relus(gm, node, x, module, explainer)
        return
    fresh = copy.deepcopy(module)
    if hasattr(fresh, "inplace"):
        fresh.inplace = False
    name = _add_module(gm, node, fresh)
    with gm.graph.inserting_before(node):
        replacement = gm.graph.call_module(name, (x,))
    _swap(node, replacement)


def _pool_geometry(module: nn.Module) -> tuple[tuple[int, ...], ...]:
    """Kernel, stride, padding and dilation of a max pool, one entry per spatial dim."""
    dims = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}[type(module)]

    def per_dim(value: Any) -> tuple[int, ...]:
        return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * dims

    kernel = per_dim(module.kernel_size)
    stride = per_dim(module.stride or module.kernel_size)
    return kernel, stride, per_dim(module.padding), per_dim(module.dilation)


def _overlaps(module: nn.Module) -> bool:
    kernel, stride, _, dilation = _pool_geometry(module)
    return any(d * (k - 1) + 1 > s for k, s, d in zip(kernel, stride, dilation, strict=True))


def _max_pool_as_relus(
    gm: fx.GraphModule, node: fx.Node, x: Any, module: nn.Module, explainer: str
) -> None:
    """Max over each window as ``m_j = m_{j-1} + relu(v_j - m_{j-1})`` over its elements.

    Padding replicates the edge, which never changes a window's maximum: every padded
    window also holds the edge element it copies (PyTorch allows padding <= kernel / 2).
    """
    kernel, stride, padding, dilation = _pool_geometry(module)
    if any(d != 1 for d in dilation) or getattr(module, "ceil_mode", False):
        raise _unsupported(
            explainer,
            gm,
            node,
            f"'{type(module).__name__}'",
            "has overlapping windows with dilation or ceil_mode, which no DeepLIFT rule "
            "here keeps complete",
        )
    graph = gm.graph
    with graph.inserting_before(node):
        windows = x
        if any(padding):
            pads = tuple(p for p in reversed(padding) for _ in range(2))
            windows = graph.call_function(F.pad, (windows, pads), {"mode": "replicate"})
        for axis, (k, s) in enumerate(zip(kernel, stride, strict=True)):
            windows = graph.call_method("unfold", (windows, 2 + axis, k, s))
        windows = graph.call_method("flatten", (windows, -len(kernel)))
        out = graph.call_function(operator.getitem, (windows, (Ellipsis, 0)))
        for j in range(1, math.prod(kernel)):
            value = graph.call_function(operator.getitem, (windows, (Ellipsis, j)))
            gap = graph.call_function(operator.sub, (value, out))
            rise = graph.call_module(_add_module(gm, node, nn.ReLU()), (gap,))
            out = graph.call_function(operator.add, (out, rise))
    _swap(node, out)


def _bind(gm: fx.GraphModule, node: fx.Node, kind: str, explainer: str) -> dict[str, Any]:
    """The constant arguments of a functional nonlinearity, by name."""
    spec = _ARGS[kind]
    values = {name: default for name, default in spec}
    for (name, _), value in zip(spec, node.args[1:], strict=False):
        values[name] = value
    values.update({k: v for k, v in node.kwargs.items() if k in values})
    for name, value in values.items():
        if isinstance(value, fx.Node):
            raise _unsupported(
                explainer, gm, node, f"'{kind}'", f"takes its '{name}' from the data"
            )
    return values


def _isolate_inputs(gm: fx.GraphModule) -> None:
    """Feed each nonlinear module a tensor that nothing else reads or hooks.

    Captum's DeepLift hooks the module's *input tensor*. Its gradient is the sum over all
    its readers, and Captum would replace the whole sum by this module's multiplier,
    dropping every other reader's share (a residual branch, the other half of a clamp).
    And when that tensor is the output of another hooked module (ReLU then MaxPool), the
    ReLU's hook saves its output gradient before the MaxPool's hook has rescaled it, so
    the MaxPool's multipliers are lost. A private copy in between fixes both.
    """
    for node in list(gm.graph.nodes):
        if not _is_native(gm, node) or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        source = node.args[0]
        if len(source.users) > 1 or _is_native(gm, source):
            with gm.graph.inserting_before(node):
                private = gm.graph.call_method("clone", (source,))
            node.replace_input_with(source, private)


def _is_native(gm: fx.GraphModule, node: fx.Node) -> bool:
    return node.op == "call_module" and type(gm.get_submodule(str(node.target))) in NATIVE_NONLINEAR


def _clamp(
    gm: fx.GraphModule, node: fx.Node, x: Any, low: float | None, high: float | None
) -> None:
    """Replace ``node`` (clamp of ``x`` to [low, high]) by ``low + relu(x-low) - relu(x-high)``."""
    graph = gm.graph
    with graph.inserting_before(node):
        if low is None and high is None:
            _swap(node, x)
            return
        if low is None:  # min(x, high) = high - relu(high - x)
            r = graph.call_module(
                _add_module(gm, node, nn.ReLU()), (graph.call_function(operator.sub, (high, x)),)
            )
            _swap(node, graph.call_function(operator.sub, (high, r)))
            return
        shifted = graph.call_function(operator.sub, (x, low))
        out = graph.call_module(_add_module(gm, node, nn.ReLU()), (shifted,))
        if high is not None:
            over = graph.call_module(
                _add_module(gm, node, nn.ReLU()), (graph.call_function(operator.sub, (x, high)),)
            )
            out = graph.call_function(operator.sub, (out, over))
        if low != 0:
            out = graph.call_function(operator.add, (out, low))
    _swap(node, out)


def _swap(node: fx.Node, replacement: Any) -> None:
    node.replace_all_uses_with(replacement)
    node.graph.erase_node(node)


def _add_module(gm: fx.GraphModule, node: fx.Node, module: nn.Module) -> str:
    """Register ``module`` under a fresh top-level name derived from the node."""
    existing = dict(gm.named_modules())
    base = f"deeplift_{node.name}"
    name, i = base, 0
    while name in existing:
        i += 1
        name = f"{base}_{i}"
    gm.add_submodule(name, module)
    return name


def _check_supported(gm: fx.GraphModule, explainer: str) -> None:
    """Raise on the first data-dependent operation that has no DeepLIFT rule."""
    dependent: set[fx.Node] = set()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            dependent.add(node)
            continue
        inputs = [a for a in node.all_input_nodes if a in dependent]
        if not inputs or node.op == "output" or _is_shape(node):
            continue
        dependent.add(node)
        if node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            if type(module) not in NATIVE_NONLINEAR and type(module) not in LINEAR_MODULES:
                raise _unsupported(
                    explainer,
                    gm,
                    node,
                    f"module '{node.target}' ({type(module).__name__})",
                    "has no DeepLIFT rule in Captum or shap and is not known to be linear",
                    in_module=False,
                    list_rules=True,
                )
            continue
        target = node.target
        name = getattr(target, "__name__", str(target))
        if (node.op == "call_function" and target in _NONLINEAR_FUNCTIONS) or (
            node.op == "call_method" and target in _NONLINEAR_METHODS
        ):
            raise _unsupported(
                explainer,
                gm,
                node,
                f"'{name}'",
                "is a nonlinearity without a DeepLIFT rule in Captum or shap",
                list_rules=True,
            )
        products = (node.op == "call_function" and target in _PRODUCT_FUNCTIONS) or (
            node.op == "call_method" and target in _PRODUCT_METHODS
        )
        if products and len(inputs) >= 2:
            raise _unsupported(
                explainer,
                gm,
                node,
                f"'{name}'",
                "multiplies two data-dependent tensors, which no DeepLIFT rule covers",
            )
        divides = (node.op == "call_function" and target in _DIVISIONS) or (
            node.op == "call_method" and target in ("div", "true_divide")
        )
        if divides and any(a in dependent for a in node.all_input_nodes[1:]):
            raise _unsupported(
                explainer,
                gm,
                node,
                f"'{name}'",
                "divides by a data-dependent tensor, which no DeepLIFT rule covers",
            )


def _is_shape(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function":
        if node.target is getattr:
            return node.args[1] in ("shape", "dtype", "device", "ndim")
        return node.target is len
    return False


COVERED = (
    "DeepLIFT rules cover ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus, Softmax and max "
    "pooling (ReLU6, Hardtanh and clamp are rewritten as ReLUs)."
)


def _unsupported(
    explainer: str,
    gm: fx.GraphModule,
    node: fx.Node,
    what: str,
    why: str,
    *,
    in_module: bool = True,
    list_rules: bool = False,
) -> UnsupportedModelError:
    """The error for ``node``: where it is, what it does, and what works instead."""
    where = ""
    if in_module:
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, cls = list(stack.values())[-1]
            where = f" in module '{path}' ({getattr(cls, '__name__', cls)})"
        else:
            where = f" in the forward of {type(gm).__name__}"
    covered = f" {COVERED}" if list_rules else ""
    return UnsupportedModelError(
        f"{explainer} cannot explain {type(gm).__name__}: {what}{where} {why}.{covered} "
        f"Explainers that work on this model: {ALTERNATIVES}."
    )
