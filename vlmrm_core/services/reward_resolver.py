"""Where a command's reward comes from: one rule for "prompt set | reward file | prompts".

Every command that takes a reward (``vlmrm score``, ``reward export``, ``adapt``, ``train
start``, ``train sweep``, ``embed`` for its model) describes what the user asked for as a
:class:`RewardRequest` and a :class:`ModelRequest` (plain values: no argparse here), and
:func:`resolve_reward` turns them into a :class:`ResolvedReward`: the ``(ModelRef, RewardSpec)``
pair and where it came from. The rule is the same everywhere:

* One source: a prompt set (``--prompt-set NAME``), a reward file (``--reward FILE``) or
  prompts (``--goal`` …). Two at once is an error naming both.
* A saved reward (prompt set or file) keeps its prompts and kind. An explicit ``--alpha``
  (regularized), ``--beta`` or ``--tau`` (contrastive) overrides the stored value and the
  override is reported (:attr:`ResolvedReward.overrides`); an option that does not apply to the
  reward's kind (``--alpha`` with an adapted reward, ``--negative`` with a regularized one) is
  an error naming the option and the fix.
* A saved reward keeps its model: ``--model``, ``--pretrained``, ``--aspect`` and ``--resize``
  that differ from it are refused (the prompts were chosen on that model and preprocessing);
  ``--precision`` is a runtime choice and overrides the stored one.
* Prompts take their model from the model options; without ``--pretrained`` the command's
  default model (the best one available locally, or a training run's configured model).

Errors are :class:`ResolveError` (a :class:`~vlmrm_core.errors.VlmrmError`): one line, naming
the option and what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vlmrm_core.enums import Aspect, Precision, Resize, RewardKind
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec, normalize_pretrained

if TYPE_CHECKING:
    from vlmrm_core.store import Engine

# The options a parameter applies to, by reward kind (what the user typed, for messages).
_APPLIES_TO: dict[str, RewardKind] = {
    "--alpha": RewardKind.REGULARIZED,
    "--baseline": RewardKind.REGULARIZED,
    "--beta": RewardKind.CONTRASTIVE,
    "--tau": RewardKind.CONTRASTIVE,
    "--negative": RewardKind.CONTRASTIVE,
}


class ResolveError(VlmrmError, ValueError):
    """Reward or model options that do not fit together; the message names the option and fix.

    Attributes:
        option: the command-line option at fault (e.g. ``--tau``), when there is one.
    """

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class RewardRequest:
    """What the user asked for as a reward: one source, plus parameters (None: not given)."""

    prompt_set: str | None = None
    """Name of a saved prompt set."""
    reward_file: Path | None = None
    """Path of a reward file."""
    goal: tuple[str, ...] = ()
    baseline: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ()
    kind: RewardKind | None = None
    """Reward kind of prompts given here (default regularized)."""
    alpha: float | None = None
    beta: float | None = None
    tau: float | None = None
    window: int | None = None
    """Frames whose mean embedding is scored (every kind; ``RewardSpec.window``)."""

    @property
    def sources(self) -> list[str]:
        """The reward sources given, as options (``--prompt-set``, ``--reward``, ``--goal``)."""
        given = [
            ("--prompt-set", self.prompt_set is not None),
            ("--reward", self.reward_file is not None),
            ("--goal", bool(self.goal)),
        ]
        return [option for option, present in given if present]


@dataclass(frozen=True)
class ModelRequest:
    """Model options as given (None: not given, so the source's or the default applies)."""

    architecture: str | None = None
    pretrained: str | None = None
    """open_clip tag, checkpoint path, or ``random``; None when not given."""
    aspect: Aspect | str | None = None
    resize: Resize | str | None = None
    precision: Precision | str | None = None


@dataclass(frozen=True)
class RewardSource:
    """Where a resolved reward came from."""

    kind: str
    """``prompt set``, ``reward file``, ``prompts`` (given on the command line) or ``defaults``."""
    name: str
    """The prompt set's name, the file's path, or a description."""

    @property
    def description(self) -> str:
        """E.g. ``prompt set 'upright'``, ``reward file r.json``, ``the given prompts``."""
        if self.kind == "prompt set":
            return f"prompt set {self.name!r}"
        if self.kind == "reward file":
            return f"reward file {self.name}"
        return self.name


@dataclass(frozen=True)
class ResolvedReward:
    """A reward ready to use: model, reward, where they came from, and what the options changed."""

    model: ModelRef
    reward: RewardSpec
    source: RewardSource
    overrides: tuple[str, ...] = field(default=())
    """One line per stored value an option replaced, e.g. ``α 0.5 instead of 0 (prompt set …)``."""
    prompt_set_id: int | None = None
    """The prompt set's store id, for a prompt set source."""


# --------------------------------------------------------------------------- model


def resolve_model(
    request: ModelRequest,
    *,
    stored: ModelRef | None = None,
    stored_from: str = "",
    default_model: ModelRef | None = None,
) -> ModelRef:
    """The model of a reward: the stored one (options may only change its precision) or the
    one the options describe.

    Args:
        request: the model options as given.
        stored: the model of a prompt set or reward file, if the reward has one.
        stored_from: description of that source, for messages (``prompt set 'x'``).
        default_model: model when neither ``--model`` nor ``--pretrained`` is given (None: the
            best model available locally, see :func:`vlmrm_core.clip.models.default_model_choice`).

    Raises:
        ResolveError: an option conflicts with the stored model, or ``--model`` lacks
            ``--pretrained``.
    """
    if stored is not None:
        return _stored_model(request, stored, stored_from)
    architecture, pretrained = request.architecture, request.pretrained
    base = default_model
    if pretrained is None:
        if base is None:
            base = _best_local_model()
            if base is None:
                raise no_local_model_error()
        if base is None or (architecture is not None and architecture != base.architecture):
            raise ResolveError(
                f"--model {architecture} needs --pretrained: an open_clip tag "
                "(e.g. laion2b_s34b_b79k), a checkpoint file, or 'random'",
                option="--pretrained",
            )
        architecture, pretrained = base.architecture, base.pretrained
    if architecture is None:
        architecture = base.architecture if base is not None else "ViT-B-32"
    return ModelRef(
        architecture,
        pretrained,
        aspect=Aspect(request.aspect or (base.aspect if base else Aspect.SQUASH)),
        resize=Resize(request.resize or (base.resize if base else Resize.ANTIALIAS)),
        precision=Precision(request.precision or (base.precision if base else Precision.FP32)),
    )


def _stored_model(request: ModelRequest, stored: ModelRef, stored_from: str) -> ModelRef:
    checks = [
        ("--model", request.architecture, stored.architecture),
        ("--aspect", _value(request.aspect), stored.aspect.value),
        ("--resize", _value(request.resize), stored.resize.value),
    ]
    for option, given, kept in checks:
        if given is not None and given != kept:
            raise ResolveError(
                f"{option} {given} conflicts with {stored_from}, made with {kept}: drop {option} "
                "(a saved reward keeps its model and preprocessing)",
                option=option,
            )
    if request.pretrained is not None and not _same_weights(request.pretrained, stored.pretrained):
        raise ResolveError(
            f"--pretrained {request.pretrained} conflicts with {stored_from}, made with "
            f"{stored.pretrained or 'random weights'}: drop --pretrained (a saved reward keeps "
            "its model)",
            option="--pretrained",
        )
    if request.precision is not None:
        return stored.replace(precision=request.precision)
    return stored


def _value(option: Any) -> str | None:
    return None if option is None else str(getattr(option, "value", option))


def _same_weights(given: str, stored: str | None) -> bool:
    wanted = normalize_pretrained(given)
    if wanted is None or stored is None:
        return wanted == stored
    if wanted == stored:
        return True
    try:
        return Path(wanted).expanduser().resolve() == Path(stored).expanduser().resolve()
    except OSError:
        return False


def _best_local_model() -> ModelRef | None:
    from vlmrm_core.clip.models import default_model_choice

    choice = default_model_choice()
    return None if choice is None else ModelRef(choice.name, choice.pretrained)


def no_local_model_error() -> ResolveError:
    """The error for "no --pretrained and no weights on this machine"."""
    from vlmrm_core.clip.models import NO_WEIGHTS_HELP
    from vlmrm_core.settings import get_settings

    help_text = NO_WEIGHTS_HELP.format(models_dir=get_settings().models_dir)
    return ResolveError(
        "no --pretrained given and "
        + help_text[0].lower()
        + help_text[1:]
        + " Pass --pretrained random to try it anyway.",
        option="--pretrained",
    )


# --------------------------------------------------------------------------- reward


def resolve_reward(
    request: RewardRequest,
    model: ModelRequest | None = None,
    *,
    engine: Engine | None = None,
    fallback: tuple[RewardSpec, str] | None = None,
    default_model: ModelRef | None = None,
) -> ResolvedReward:
    """The reward and model a command uses (see the module docstring for the rule).

    Args:
        request: the reward options as given.
        model: the model options as given.
        engine: the store, to read a prompt set (default: the settings' database).
        fallback: ``(reward, description)`` used when no source is given (a training run's
            paper defaults); its parameters take overrides like a saved reward's, its model is
            ``default_model`` changed by the model options.
        default_model: the model of prompts given without ``--pretrained`` (None: the best
            model available locally).

    Raises:
        ResolveError: no source, two sources, or an option that does not apply.
        NotFoundError: no prompt set of that name.
        RewardFileError: the reward file cannot be read.
        SpecError: values out of range (e.g. α outside [0, 1]).
    """
    model = model or ModelRequest()
    sources = request.sources
    if len(sources) > 1:
        raise ResolveError(
            f"{sources[0]} and {sources[1]} both name the reward: give one of --prompt-set NAME, "
            "--reward FILE or --goal prompts",
            option=sources[1],
        )
    if request.kind is RewardKind.ADAPTED:
        raise ResolveError(
            "an adapted reward is fitted to labels: make one with `vlmrm adapt`, then use it "
            "with --reward FILE",
            option="--kind",
        )
    if request.prompt_set is not None:
        return _from_prompt_set(request, model, engine)
    if request.reward_file is not None:
        return _from_reward_file(request, model)
    if request.goal:
        return _from_prompts(request, model, default_model)
    if fallback is not None:
        reward, description = fallback
        source = RewardSource("defaults", description)
        spec, overrides = _override(reward, request, source)
        ref = resolve_model(model, default_model=default_model)
        return ResolvedReward(ref, spec, source, overrides)
    stray = _prompt_options(request)
    hint = f" ({stray[0]} needs --goal too)" if stray else ""
    raise ResolveError(
        f"give a reward: --prompt-set NAME, --reward FILE, or at least one --goal prompt{hint}",
        option=stray[0] if stray else None,
    )


def _from_prompt_set(
    request: RewardRequest, model: ModelRequest, engine: Engine | None
) -> ResolvedReward:
    from vlmrm_core.store import get_prompt_set, init_db

    assert request.prompt_set is not None
    saved = get_prompt_set(engine or init_db(), request.prompt_set)
    source = RewardSource("prompt set", saved.name)
    spec, overrides = _override(saved.reward, request, source)
    ref = resolve_model(model, stored=saved.model, stored_from=source.description)
    return ResolvedReward(ref, spec, source, overrides, prompt_set_id=saved.id)


def _from_reward_file(request: RewardRequest, model: ModelRequest) -> ResolvedReward:
    from vlmrm_core.reward.file import locate_checkpoint, read_reward_file

    assert request.reward_file is not None
    path = Path(request.reward_file)
    content = read_reward_file(path)
    source = RewardSource("reward file", str(path))
    spec, overrides = _override(content.reward, request, source)
    # A checkpoint travels next to its reward file: find it now, so every command (and a
    # training worker with another working directory) loads the same file.
    stored = locate_checkpoint(content.model, path)
    ref = resolve_model(model, stored=stored, stored_from=source.description)
    return ResolvedReward(ref, spec, source, overrides)


def _prompt_options(request: RewardRequest) -> list[str]:
    given = [
        ("--goal", bool(request.goal)),
        ("--baseline", bool(request.baseline)),
        ("--negative", bool(request.negatives)),
    ]
    return [option for option, present in given if present]


def _parameters(request: RewardRequest) -> dict[str, float]:
    """The parameter options given, by option name."""
    values = {
        "--alpha": request.alpha,
        "--beta": request.beta,
        "--tau": request.tau,
        "--window": request.window,
    }
    return {option: value for option, value in values.items() if value is not None}


def _override(
    stored: RewardSpec, request: RewardRequest, source: RewardSource
) -> tuple[RewardSpec, tuple[str, ...]]:
    """A saved reward with the parameter options applied (and what they changed)."""
    prompts = _prompt_options(request)
    if prompts:
        raise ResolveError(
            f"{source.description} already defines the prompts: drop {prompts[0]} (or give "
            "--goal prompts alone to write your own)",
            option=prompts[0],
        )
    if request.kind is not None and request.kind != stored.kind:
        raise ResolveError(
            f"{source.description} is a {stored.kind.value} reward: drop --kind "
            f"{request.kind.value}",
            option="--kind",
        )
    changes: dict[str, float] = {}
    notes: list[str] = []
    for option, value in _parameters(request).items():
        applies_to = _APPLIES_TO.get(option)  # None: every kind (--window)
        if applies_to is not None and stored.kind is not applies_to:
            raise ResolveError(
                f"{option} applies to {applies_to.value} rewards, and {source.description} is "
                f"{stored.kind.value}: drop {option}",
                option=option,
            )
        name = option.removeprefix("--")
        old = getattr(stored, name)
        if old != value:
            changes[name] = value
            was = "1/logit_scale" if old is None else f"{old:g}"
            notes.append(f"{name} {value:g} instead of {source.description}'s {was}")
    spec = stored.replace(**changes) if changes else stored
    return spec, tuple(notes)


def _from_prompts(
    request: RewardRequest, model: ModelRequest, default_model: ModelRef | None
) -> ResolvedReward:
    kind = request.kind or RewardKind.REGULARIZED
    given: dict[str, object] = {
        "--baseline": request.baseline or None,
        "--negative": request.negatives or None,
        **_parameters(request),
    }
    for option, value in given.items():
        if value is not None and _APPLIES_TO.get(option, kind) is not kind:
            fix = (
                f"add --kind {_APPLIES_TO[option].value} or drop {option}"
                if kind is RewardKind.REGULARIZED
                else f"drop {option}"
            )
            raise ResolveError(
                f"{option} applies to {_APPLIES_TO[option].value} rewards, not {kind.value}: {fix}",
                option=option,
            )
    spec = RewardSpec(
        goal_prompts=tuple(request.goal),
        baseline_prompts=tuple(request.baseline),
        alpha=0.0 if request.alpha is None else request.alpha,
        kind=kind,
        negatives=tuple(request.negatives),
        tau=request.tau,
        beta=0.5 if request.beta is None else request.beta,
        window=1 if request.window is None else request.window,
    )
    ref = resolve_model(model, default_model=default_model)
    return ResolvedReward(ref, spec, RewardSource("prompts", "the given prompts"))


def with_alphas(resolved: ResolvedReward, alphas: Sequence[float]) -> list[ResolvedReward]:
    """One resolved reward per α of a sweep (the reward itself when ``alphas`` is empty).

    Raises:
        ResolveError: α given for a reward that is not regularized.
    """
    if not alphas:
        return [resolved]
    if resolved.reward.kind is not RewardKind.REGULARIZED:
        raise ResolveError(
            f"--alpha applies to regularized rewards, and {resolved.source.description} is "
            f"{resolved.reward.kind.value}: drop --alpha",
            option="--alpha",
        )
    stored = resolved.source.kind in ("prompt set", "reward file")
    out = []
    for alpha in alphas:
        old = resolved.reward.alpha
        note = f"alpha {alpha:g} instead of {resolved.source.description}'s {old:g}"
        overrides = resolved.overrides + ((note,) if stored and alpha != old else ())
        spec = resolved.reward.replace(alpha=float(alpha))
        out.append(
            ResolvedReward(resolved.model, spec, resolved.source, overrides, resolved.prompt_set_id)
        )
    return out


# --------------------------------------------------------------------------- export checks


def check_model_ref(ref: ModelRef) -> None:
    """Check, without loading weights, that ``ref`` can load: a known architecture, a known tag
    of it, or a checkpoint whose tensors fit it (what ``vlmrm reward export`` writes must load).

    Raises:
        ModelError: unknown architecture or tag, an unreadable checkpoint, or one that does not
            fit the architecture; one line, naming the fix.
    """
    from vlmrm_core.clip.models import _check_architecture, _tag_config, is_checkpoint_path

    _check_architecture(ref.architecture)
    if ref.pretrained is None:
        return
    if not is_checkpoint_path(ref.pretrained):
        _tag_config(ref.architecture, ref.pretrained)
        return
    _check_checkpoint_fits(ref.architecture, Path(ref.pretrained).expanduser())


def _check_checkpoint_fits(architecture: str, path: Path) -> None:
    from vlmrm_core.clip.models import ModelError

    found = _checkpoint_shapes(path)
    expected = _architecture_shapes(architecture)
    differ = [k for k in expected if k in found and found[k] != expected[k]]
    missing = [k for k in expected if k not in found and not k.endswith("position_ids")]
    unexpected = [k for k in found if k not in expected]
    if not (differ or missing or unexpected):
        return
    problems = []
    if differ:
        key = differ[0]
        problems.append(
            f"{len(differ)} tensor(s) differ in shape (e.g. {key}: {list(found[key])} in the "
            f"file, {list(expected[key])} in {architecture})"
        )
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    guess = _architecture_named_in(path.name)
    hint = f" (its name suggests --model {guess})" if guess and guess != architecture else ""
    raise ModelError(
        f"checkpoint {path.name} does not fit architecture {architecture}: "
        f"{'; '.join(problems)}. Give --model the architecture it was trained with{hint}"
    )


def _checkpoint_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of a checkpoint (safetensors: read from the header only)."""
    from vlmrm_core.clip.models import _read_state_dict, _unreadable_checkpoint

    shapes: dict[str, tuple[int, ...]]
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
        except Exception:
            raise _unreadable_checkpoint(path) from None
    else:
        shapes = {k: tuple(v.shape) for k, v in _read_state_dict(path).items()}
    if shapes and all(k.startswith("module.") for k in shapes):
        shapes = {k.removeprefix("module."): v for k, v in shapes.items()}
    return shapes


def _architecture_shapes(architecture: str) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape of an open_clip architecture, built on the meta device (no memory)."""
    import logging

    import torch

    from vlmrm_core.clip.models import open_clip

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip's "initialized randomly" warning is noise here
    try:
        with torch.device("meta"):
            model = open_clip.create_model(
                architecture, pretrained=None, pretrained_text=False, device="meta"
            )
    finally:
        root.setLevel(level)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _architecture_named_in(file_name: str) -> str | None:
    """The longest open_clip architecture a file name starts with (the models folder's rule)."""
    from vlmrm_core.clip.models import open_clip

    names = sorted(open_clip.list_models(), key=len, reverse=True)
    return next((n for n in names if file_name.startswith(n)), None)
