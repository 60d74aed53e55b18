"""The one list of explanation methods: what each is called, its colour, what it needs and which function runs it.

Why a registry: adding a method used to mean editing the engine, two method tuples, the CLI's choices, two page
dictionaries and three figure dictionaries. Now the engine dispatch (:func:`seqrec_core.explain.engines.run_engine`),
the CLI's ``explain --method`` choices, the Explain and Patterns pages, the figures' names and colours, the stored
analyses and the report all read :data:`METHODS` here, so a new method is one :func:`register` call plus its engine.

This module imports neither torch nor Captum (the CLI must stay quick to start): an engine is named as a
``"module:function"`` string and imported only when an explanation is computed. Every engine has the signature
``engine(model, ids, targets, options, times) -> Engine`` (see :mod:`seqrec_core.explain.engines`), where ``model``
is a neural model or, for methods that ``works_for_baselines``, a fitted Markov / item-kNN scorer.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

BASELINE_MODELS = ("markov", "itemknn")  # baseline scorers that can be explained (popularity has no history)
RECURRENT_FAMILIES = ("gru4rec", "lstm")  # neural families without attention maps


@dataclass(frozen=True)
class ExplainMethod:
    """One explanation method, as every part of the product shows and runs it (colours: the theme's palette,
    never its red, which marks highlights, nor the orange that marks attributions against the target)."""

    key: str  # the CLI's --method value and the stored analyses' method column
    label: str  # full name for people ("Integrated Gradients")
    short: str  # name in tight places (legends, matrix ticks)
    phrase: str  # one plain sentence: what the number of an event means
    color: str  # hex colour in every figure
    engine: str | None  # "module:function" run by run_engine (None: not a real explanation, e.g. "random")
    knob: str | None = None  # "steps" (IG path points, GradientSHAP samples), "samples" (LIME / Kernel SHAP) or None
    default_samples: int | None = None  # for knob == "samples": the default number of perturbed histories
    has_baseline: bool = False  # reports a baseline score (the score with every event replaced)
    has_convergence_delta: bool = False  # reports sum(attributions) - (score - baseline score)
    needs_gradients: bool = False  # needs an item-embedding layer to differentiate (neural families only)
    needs_attention: bool = False  # needs attention maps (not GRU / LSTM)
    works_for_baselines: bool = False  # also explains the Markov / item-kNN baselines (perturbation only)
    in_faithfulness: bool = True  # part of the faithfulness (deletion / insertion AOPC) comparison
    in_time_mass: bool = True  # offered for the Patterns page's attribution-by-hour view
    help: str = ""  # longer help text for the pages' method pickers

    def load_engine(self) -> Callable:
        """The engine function (imported now: this is where torch and Captum get loaded)."""
        if self.engine is None:
            raise ValueError(f"method '{self.key}' has no engine")
        module, _, name = self.engine.partition(":")
        return getattr(importlib.import_module(module), name)

    def applies_to(self, family: str | None, has_attention: bool | None = None) -> bool:
        """Whether the method can explain a model of ``family`` (a neural family or a baseline's name);
        ``has_attention`` overrides the family's default when the model itself is known."""
        if family in BASELINE_MODELS:
            return self.works_for_baselines
        if self.needs_attention:
            return bool(has_attention) if has_attention is not None else family not in RECURRENT_FAMILIES
        return True


_ENGINES = "seqrec_core.explain.engines"
_PERTURBATION = "seqrec_core.explain.perturbation"
_REGISTRY: dict[str, ExplainMethod] = {}
# Not an explanation: the faithfulness curves' reference order (events removed in a seeded random order).
RANDOM = ExplainMethod(key="random", label="Random order", short="Random", color="#8A8F98", engine=None,
                       phrase="events taken in a seeded random order (the floor an explanation must beat)")


def register(method: ExplainMethod) -> ExplainMethod:
    """Add a method (its key must be new); every list below picks it up at once."""
    if method.key in _REGISTRY or method.key == RANDOM.key:
        raise ValueError(f"explanation method '{method.key}' is already registered")
    _REGISTRY[method.key] = method
    return method


def unregister(key: str) -> None:
    """Remove a method again (tests that register a toy method undo it with this)."""
    _REGISTRY.pop(key, None)


@contextmanager
def registered(method: ExplainMethod) -> Iterator[ExplainMethod]:
    """``with registered(toy): ...``: the method exists only inside the block."""
    register(method)
    try:
        yield method
    finally:
        unregister(method.key)


def all_methods() -> tuple[ExplainMethod, ...]:
    """Every registered method, in registration order (the order pages and figures show them in)."""
    return tuple(_REGISTRY.values())


def method_keys() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def by_key(key: str) -> ExplainMethod:
    """The method named ``key`` (also "random"); KeyError when unknown."""
    if key == RANDOM.key:
        return RANDOM
    return _REGISTRY[key]


def describe(key: str) -> ExplainMethod | None:
    """The method named ``key``, or None (figures fall back to the raw key for a method stored by other code)."""
    return RANDOM if key == RANDOM.key else _REGISTRY.get(key)


def applicable(family: str | None, has_attention: bool | None = None) -> tuple[str, ...]:
    """Keys of the methods that can explain a model of ``family`` ("sasrec", "gru4rec", ..., "markov",
    "itemknn"); ``has_attention`` (when the model is loaded) settles the attention question for that model."""
    return tuple(m.key for m in _REGISTRY.values() if m.applies_to(family, has_attention))


def faithfulness_keys() -> tuple[str, ...]:
    return tuple(m.key for m in _REGISTRY.values() if m.in_faithfulness)


def time_mass_keys() -> tuple[str, ...]:
    return tuple(m.key for m in _REGISTRY.values() if m.in_time_mass)


def uses_samples(key: str) -> bool:
    method = describe(key)
    return method is not None and method.knob == "samples"


register(ExplainMethod(
    key="ig", label="Integrated Gradients", short="IG", color="#4E79A7", engine=f"{_ENGINES}:ig_engine",
    knob="steps", has_baseline=True, has_convergence_delta=True, needs_gradients=True,
    phrase="share of the score gap to an average history that the event carries",
    help="Captum integrated gradients on the item embeddings (baseline: the catalogue's average item at every "
         "event, order kept)."))
register(ExplainMethod(
    key="occlusion", label="Occlusion", short="Occlusion", color="#D37295", engine=f"{_PERTURBATION}:occlusion_engine",
    works_for_baselines=True, phrase="how much the score drops when the event is removed",
    help="Score drop when the event is removed from the history (Captum FeatureAblation)."))
register(ExplainMethod(
    key="gradshap", label="GradientSHAP", short="GradSHAP", color="#59A14F", engine=f"{_ENGINES}:gradshap_engine",
    knob="steps", has_baseline=True, has_convergence_delta=True, needs_gradients=True, in_faithfulness=False,
    in_time_mass=False, phrase="sampled-gradient estimate of the event's share of the score gap",
    help="Captum GradientSHAP: integrated gradients at random points of the path (seeded)."))
register(ExplainMethod(
    key="attention", label="Attention (last position)", short="Attention", color="#B07AA1",
    engine=f"{_ENGINES}:attention_engine", needs_attention=True,
    phrase="share of the prediction point's attention rollout on the event",
    help="The prediction point's row of the attention rollout (all layers, residual counted)."))
register(ExplainMethod(
    key="lime", label="LIME", short="LIME", color="#76B7B2", engine=f"{_PERTURBATION}:lime_engine",
    knob="samples", default_samples=200, works_for_baselines=True, in_time_mass=False,
    phrase="weight of the event in a local linear fit of the score over histories with events removed",
    help="Captum Lime: the score of histories with random events blanked, fitted by a weighted ridge "
         "regression on which events are present (seeded)."))
register(ExplainMethod(
    key="kernelshap", label="Kernel SHAP", short="KernelSHAP", color="#9C755F",
    engine=f"{_PERTURBATION}:kernelshap_engine", knob="samples", default_samples=300, works_for_baselines=True,
    in_time_mass=False, phrase="Shapley value of the event, estimated from histories with events removed",
    help="Captum KernelShap: Shapley values of the events from histories with random subsets removed (seeded)."))
