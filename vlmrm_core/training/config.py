"""Configuration of one training run: environment, CLIP reward, algorithm hyperparameters.

A :class:`TrainConfig` is stored as JSON in the ``training_runs.config`` column and read back by
the worker process, so every field is a plain JSON value, except the reward model and reward,
which are the project's one definition (:class:`~vlmrm_core.reward.spec.ModelRef`,
:class:`~vlmrm_core.reward.spec.RewardSpec`) and are stored as their ``to_dict()``. Learning hyperparameters default to
``None``, meaning "stable-baselines3's own default for this algorithm"; :func:`paper_defaults`
fills them with the settings of Rocamonde et al. (2023).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import gymnasium as gym

from vlmrm_core.enums import Precision, RewardBatching, choices
from vlmrm_core.errors import VlmrmError
from vlmrm_core.reward.spec import ModelRef, RewardSpec, SpecError

if TYPE_CHECKING:
    from vlmrm_core.store.prompt_sets import PromptSet

Algo = Literal["sac", "dqn", "ppo"]
ALGOS: tuple[str, ...] = ("sac", "dqn", "ppo")
OFF_POLICY_ALGOS: tuple[str, ...] = ("sac", "dqn")

#: Hyperparameters of both off-policy algorithms (replay buffer, target network).
OFF_POLICY_PARAMS: tuple[str, ...] = (
    "learning_rate",
    "batch_size",
    "gamma",
    "tau",
    "learning_starts",
    "train_freq",
    "gradient_steps",
    "buffer_size",
)

#: Hyperparameters each algorithm accepts (the rest are ignored for that algorithm).
_ALGO_PARAMS: dict[str, tuple[str, ...]] = {
    "dqn": (
        *OFF_POLICY_PARAMS,
        "exploration_fraction",
        "exploration_final_eps",
        "target_update_interval",
    ),
    "sac": (*OFF_POLICY_PARAMS, "ent_coef"),
    "ppo": ("learning_rate", "batch_size", "gamma", "n_steps", "n_epochs", "ent_coef"),
}

#: The paper's prompts (Rocamonde et al. 2023, Table 3), keyed by environment family.
PAPER_PROMPTS: dict[str, tuple[list[str], list[str]]] = {
    "CartPole": (["pole vertically upright on top of the cart"], ["pole and cart"]),
    "MountainCar": (
        ["a car at the peak of the mountain, next to the yellow flag"],
        ["a car in the mountain"],
    ),
    "Humanoid": (["a humanoid robot kneeling"], ["a humanoid robot"]),
}


class ConfigError(VlmrmError, ValueError):
    """A training configuration that cannot run; the message says what to change."""


@dataclass
class TrainConfig:
    """Everything needed to (re)start one training run.

    Reward source: the inline fields ``model``/``pretrained``/``goal``/``baseline``/``alpha``/...,
    or ``prompt_set``, a prompt set saved in the store. When a run is queued the prompt set is
    copied into the inline fields (:func:`with_prompt_set`), so editing the set later does not
    change the reward of a run that already started.
    """

    # --- environment -------------------------------------------------------------------------
    env_id: str = "CartPole-v1"
    """Gymnasium environment id, e.g. ``CartPole-v1``, ``MountainCarContinuous-v0``, ``Humanoid-v5``."""
    algo: str = "dqn"
    """RL algorithm: ``'sac'`` (Box actions), ``'dqn'`` (Discrete actions) or ``'ppo'`` (either)."""
    total_steps: int = 100_000
    """Total environment steps (summed over all parallel envs) the run trains for."""
    n_envs: int = 1
    """Number of parallel environments; their frames are scored by CLIP in one batch per step."""
    episode_length: int | None = None
    """Episode length enforced with a ``TimeLimit``; None keeps the environment's default."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for ``gymnasium.make`` (e.g. ``terminate_when_unhealthy``)."""
    textured: bool = False
    """Render with realistic textures where the sources module provides them (MountainCar, Humanoid)."""
    seed: int = 0
    """Seed of the environments and the algorithm."""
    subprocess_envs: bool = False
    """Step and render the envs in worker subprocesses (SB3 ``SubprocVecEnv``): worth it when
    rendering is slow (MuJoCo on a CPU) and cores are free; the CLIP batch is the same."""

    # --- reward ------------------------------------------------------------------------------
    prompt_set: str | None = None
    """Name of a saved prompt set. When the run is queued its model and reward are copied into
    :attr:`model` and :attr:`reward` (editing the set later does not change a started run)."""
    model: ModelRef = field(default_factory=lambda: ModelRef(precision=Precision.AUTO))
    """The CLIP reward model (architecture, weights, aspect, resampling, precision). Its
    precision defaults to ``auto``: bf16/fp16 where the worker's GPU supports it, fp32 on a CPU
    (resolved when the worker loads the model, and named in the run's log). A prompt set or
    reward file brings the rest of the model but not its precision (:func:`with_reward`)."""
    reward: RewardSpec | None = None
    """What to reward with CLIP; None while a :attr:`prompt_set` is still to be copied in, or
    when the run trains on another reward source (:attr:`reward_data`)."""
    reward_data: dict[str, Any] | None = None
    """The JSON of a reward file whose source is not ``clip`` (e.g. a VLM judge's), copied in
    when the run is queued (:func:`with_reward_file`: editing the file later does not change
    the run); the worker builds the reward from it through the reward-file registry
    (:func:`vlmrm_core.reward.file.reward_from_data`), in the run's precision
    (``model.precision``). None for CLIP runs, which use :attr:`model` and :attr:`reward`."""
    reward_file: str | None = None
    """Where :attr:`reward_data` was read from (absolute): for the record, and to find files it
    names relative to itself (a judge's model folder)."""
    model_config: str | None = None
    """Path of an open_clip model config JSON defining a custom architecture, registered
    under the file's stem (which ``model.architecture`` must then name); None for built-ins."""
    reward_device: str | None = None
    """Torch device of the reward model; None picks CUDA when available."""
    reward_batching: str = RewardBatching.STEP.value
    """``'step'``: one reward call per env step on all envs' frames. ``'rollout'`` (DQN, SAC):
    one call per rollout window (``train_freq`` steps × ``n_envs`` frames, kept in memory until
    then), just before the gradient steps: bigger batches for a GPU."""
    progress_shaping: bool = False
    """Train on the reward's progress, r_t = γ·R(s_{t+1}) − R(s_t) (potential-based shaping,
    :class:`~vlmrm_core.reward.shaping.ProgressShaping`), with γ the algorithm's discount factor
    (:attr:`gamma`, or the algorithm's default), so the optimal policy is unchanged. Works with
    every reward, windowed ones included."""

    # --- bookkeeping -------------------------------------------------------------------------
    checkpoint_every: int = 10_000
    """Environment steps between checkpoints (model zip, plus replay buffer for off-policy)."""
    eval_every: int = 10_000
    """Environment steps between evaluations; 0 disables periodic evaluation."""
    eval_episodes: int = 2
    """Deterministic episodes per evaluation."""
    eval_steps: int = 200
    """Maximum steps per evaluation episode."""
    log_every: int = 1_000
    """Environment steps between rows of training metrics written to the store."""

    # --- learning hyperparameters (None = stable-baselines3 default) --------------------------
    learning_rate: float | None = None
    """Optimizer learning rate."""
    batch_size: int | None = None
    """Minibatch size of each gradient step."""
    gamma: float | None = None
    """Discount factor."""
    tau: float | None = None
    """Polyak coefficient of the target network update (off-policy)."""
    learning_starts: int | None = None
    """Environment steps collected before learning starts (off-policy)."""
    train_freq: int | None = None
    """Update the model every ``train_freq`` steps per env (off-policy)."""
    gradient_steps: int | None = None
    """Gradient steps per update (off-policy)."""
    buffer_size: int | None = None
    """Replay buffer capacity in transitions (off-policy)."""
    net_arch: list[int] | None = None
    """Hidden layer sizes of the policy/value MLPs, e.g. ``[256, 256]``."""
    ent_coef: float | str | None = None
    """Entropy coefficient (SAC: a float or ``'auto'``; PPO: a float)."""
    n_steps: int | None = None
    """Rollout length per env between PPO updates."""
    n_epochs: int | None = None
    """PPO epochs per update."""
    exploration_fraction: float | None = None
    """Fraction of training over which DQN's ε decays."""
    exploration_final_eps: float | None = None
    """Final ε of DQN's ε-greedy exploration."""
    target_update_interval: int | None = None
    """Environment steps between DQN target network updates."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, as stored in ``training_runs.config``."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["model"] = self.model.to_dict()
        data["reward"] = self.reward.to_dict() if self.reward is not None else None
        return json.loads(json.dumps(data))  # deep copy with plain lists and dicts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict` output.

        Args:
            data: Field values; keys starting with ``_`` (bookkeeping flags) are ignored.

        Returns:
            The config.

        Raises:
            ConfigError: On an unknown field name.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in names and not k.startswith("_"))
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}")
        values = {k: v for k, v in data.items() if k in names}
        try:
            if isinstance(values.get("model"), dict):
                values["model"] = ModelRef.from_dict(values["model"])
            if isinstance(values.get("reward"), dict):
                values["reward"] = RewardSpec.from_dict(values["reward"])
        except SpecError as exc:
            raise ConfigError(str(exc)) from None
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def algo_kwargs(self) -> tuple[dict[str, Any], list[str]]:
        """Keyword arguments for the stable-baselines3 constructor of :attr:`algo`.

        Returns:
            ``(kwargs, ignored)``: the hyperparameters that were set and apply to this algorithm
            (``net_arch`` becomes ``policy_kwargs``), and the names of set ones that do not apply.
        """
        accepted = _ALGO_PARAMS[self.algo]
        kwargs: dict[str, Any] = {}
        ignored: list[str] = []
        for name in sorted({n for params in _ALGO_PARAMS.values() for n in params}):
            value = getattr(self, name)
            if value is None:
                continue
            if name in accepted:
                kwargs[name] = value
            else:
                ignored.append(name)
        if self.net_arch is not None:
            kwargs["policy_kwargs"] = {"net_arch": list(self.net_arch)}
        return kwargs, ignored


def with_reward(config: TrainConfig, model: ModelRef, reward: RewardSpec) -> TrainConfig:
    """Train on a saved reward (a prompt set's or a reward file's), in the run's own precision.

    The saved model's precision is the one the reward was made with (usually fp32, on whatever
    machine that was). For training it is a runtime choice instead: precisions change rewards
    only by rounding, while bf16/fp16 is what lets a GPU score all envs' frames in one fast
    batched call per step. So the run keeps its ``model.precision`` (``auto`` unless the user
    chose one) and takes everything else (architecture, weights, aspect, resampling) from the
    saved model. The saved prompt set or file itself is not changed.

    Args:
        config: The run's configuration.
        model: The saved reward's model.
        reward: The saved reward.

    Returns:
        A config with ``model`` (in ``config.model.precision``) and ``reward``.
    """
    return config.replace(
        model=model.replace(precision=config.model.precision),
        reward=reward,
        reward_data=None,  # a CLIP reward replaces any other source
        reward_file=None,
    )


def with_reward_file(config: TrainConfig, path: str | Path) -> TrainConfig:
    """Train on a reward file of any source.

    A ``clip`` file's model and reward are copied in as :func:`with_reward` does (its
    checkpoint looked up as :func:`~vlmrm_core.reward.file.locate_checkpoint` does); any other
    source's JSON is copied into :attr:`TrainConfig.reward_data` whole, with the file's absolute
    path, and the CLIP reward fields are cleared. No model is loaded here.

    Raises:
        RewardFileError: the file cannot be read or is not a valid reward file.
    """
    from vlmrm_core.reward.file import locate_checkpoint, read_reward_data, reward_file_from_dict

    path = Path(path)
    source, data = read_reward_data(path)
    if source.name == "clip":
        content = reward_file_from_dict(data, origin=f"reward file {path}")
        model = locate_checkpoint(content.model, path)
        return with_reward(config, model, content.reward)
    return config.replace(
        reward=None,
        prompt_set=None,
        reward_data=data,
        reward_file=str(path.expanduser().resolve()),
    )


def with_prompt_set(config: TrainConfig, prompt_set: PromptSet) -> TrainConfig:
    """Copy a saved prompt set's model and reward into the run's config (see :func:`with_reward`:
    the run's precision is kept).

    Args:
        config: The configuration (its ``prompt_set`` name is kept, for the record).
        prompt_set: A prompt set from the store.

    Returns:
        A config whose ``model`` (but for its precision) and ``reward`` are the prompt set's.
    """
    return with_reward(config, prompt_set.model, prompt_set.reward).replace(
        prompt_set=prompt_set.name
    )


SB3_PPO_N_STEPS = 2048
"""stable-baselines3's PPO default rollout length per env."""
SB3_PPO_BATCH_SIZE = 64
"""stable-baselines3's PPO default minibatch size."""


def fit_ppo_rollout(config: TrainConfig) -> tuple[TrainConfig, str | None]:
    """PPO's rollout fitted to a short run, so ``total_steps`` is what it trains for.

    PPO collects ``n_steps × n_envs`` steps before each update and only stops after a whole
    rollout: with SB3's default ``n_steps`` of 2048, ``--steps 512 --n-envs 4`` would train
    8,192 steps. When ``n_steps`` is unset and the default rollout is longer than the run,
    ``n_steps`` becomes ``total_steps // n_envs``, and the minibatch size the largest divisor
    of the rollout not above the chosen (or default) one, as PPO needs. An ``n_steps`` set by
    the user is left alone (:func:`validate` refuses one that does not fit).

    Returns:
        ``(config, note)``: the config, and a sentence saying what changed (None if nothing).
    """
    if config.algo != "ppo" or config.n_steps is not None:
        return config, None
    if SB3_PPO_N_STEPS * config.n_envs <= config.total_steps:
        return config, None
    n_steps = config.total_steps // config.n_envs
    if n_steps * config.n_envs < 2:
        return config, None  # validate() says what is wrong
    rollout = n_steps * config.n_envs
    wanted = config.batch_size or SB3_PPO_BATCH_SIZE
    batch_size = min(wanted, rollout)
    while rollout % batch_size:
        batch_size -= 1
    note = (
        f"PPO: n_steps {n_steps} (SB3's {SB3_PPO_N_STEPS} × {config.n_envs} envs would train "
        f"{SB3_PPO_N_STEPS * config.n_envs} steps, more than the run's {config.total_steps})"
    )
    if batch_size != wanted:
        note += f", batch size {batch_size} (a divisor of the {rollout}-step rollout)"
    return config.replace(n_steps=n_steps, batch_size=batch_size), note


def env_family(env_id: str) -> str | None:
    """The paper's environment family of an env id (``'CartPole'``, ``'MountainCar'``,
    ``'Humanoid'``), or None."""
    for family in PAPER_PROMPTS:
        if env_id.startswith(family):
            return family
    return None


def paper_defaults(env_id: str, algo: str) -> TrainConfig:
    """The settings Rocamonde et al. (2023) trained with, for ``env_id`` and ``algo``.

    The paper's prompts (Table 3) are always filled in for a known environment family; the
    hyperparameters only when ``algo`` is the one the paper used for that environment (DQN for
    CartPole, SAC for MountainCar and Humanoid). Unknown combinations get stable-baselines3's
    defaults.

    Args:
        env_id: Gymnasium environment id.
        algo: ``'sac'``, ``'dqn'`` or ``'ppo'``.

    Returns:
        A config; change fields with :meth:`TrainConfig.replace`.
    """
    family = env_family(env_id)
    cfg = TrainConfig(env_id=env_id, algo=algo)
    if family is not None:
        goal, baseline = PAPER_PROMPTS[family]
        cfg = cfg.replace(reward=RewardSpec(tuple(goal), tuple(baseline), alpha=0.0))
    if family == "CartPole" and algo == "dqn":
        cfg = cfg.replace(
            episode_length=200, learning_starts=75_000, learning_rate=2.3e-3, net_arch=[256, 256]
        )
    elif family == "MountainCar" and algo == "sac":
        cfg = cfg.replace(
            tau=0.01,
            gamma=0.9999,
            learning_rate=1e-4,
            ent_coef=0.1,
            net_arch=[64, 64],
            textured=True,
        )
    elif family == "Humanoid" and algo == "sac":
        cfg = cfg.replace(
            total_steps=10_000_000,
            n_envs=32,
            episode_length=100,
            # The paper's episodes never end early; only the time limit stops them.
            env_kwargs={"terminate_when_unhealthy": False},
            textured=True,
            subprocess_envs=True,
            gamma=0.95,
            learning_rate=6e-4,
            batch_size=512,
            tau=0.005,
            learning_starts=50_000,
            train_freq=100,
            gradient_steps=100,
            # Only the weights change: the precision stays the run's (auto by default).
            model=cfg.model.replace(architecture="ViT-bigG-14", pretrained="laion2b_s39b_b160k"),
        )
    return cfg


def validate(config: TrainConfig, *, check_env: bool = True) -> None:
    """Check a config before a run is queued, so mistakes surface as one clear message.

    Args:
        config: The configuration.
        check_env: Also build the environment once to check its action space against the
            algorithm (DQN needs Discrete actions, SAC needs Box). The environment id is
            checked either way (:func:`check_env_id`), before anything imports or builds it.

    Raises:
        ConfigError: Naming the field and what to change.
    """
    if config.algo not in ALGOS:
        raise ConfigError(f"algo must be one of {', '.join(ALGOS)}; got {config.algo!r}")
    if config.reward_batching not in choices(RewardBatching):
        raise ConfigError(
            f"reward_batching must be one of {', '.join(choices(RewardBatching))}; "
            f"got {config.reward_batching!r}"
        )
    if config.reward_batching == RewardBatching.ROLLOUT and config.algo not in OFF_POLICY_ALGOS:
        raise ConfigError(
            f"reward_batching 'rollout' scores a replay buffer's rollout window, which only "
            f"{' and '.join(a.upper() for a in OFF_POLICY_ALGOS)} have; use 'step' with "
            f"{config.algo.upper()}"
        )
    for name in ("total_steps", "n_envs", "checkpoint_every", "log_every", "eval_episodes"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1; got {getattr(config, name)}")
    if config.eval_every < 0 or config.eval_steps < 1:
        raise ConfigError("eval_every must be ≥ 0 and eval_steps ≥ 1")
    if config.episode_length is not None and config.episode_length < 1:
        raise ConfigError(
            f"episode_length must be at least 1 or unset; got {config.episode_length}"
        )
    if config.algo == "ppo":
        _check_ppo_rollout(config)
    if config.reward_data is not None:
        _check_reward_data(config)
    resolved = config.reward is not None
    if not resolved and config.prompt_set is None and config.reward_data is None:
        raise ConfigError(
            "give a reward: a prompt set name, a reward file, or at least one goal prompt"
        )
    if config.model_config is not None:
        path = Path(config.model_config)
        if not path.is_file() or path.suffix != ".json":
            raise ConfigError(f"model_config must be an existing .json file; got {path}")
        if path.stem != config.model.architecture:
            raise ConfigError(
                f"model must be {path.stem!r}, the name model_config {path.name} registers"
            )
    if resolved:
        _check_model(config)
    if config.net_arch is not None and (
        not config.net_arch or any(int(n) < 1 for n in config.net_arch)
    ):
        raise ConfigError(f"net_arch must be a list of positive layer sizes; got {config.net_arch}")
    check_env_id(config.env_id)
    if check_env:
        check_action_space(config.env_id, config.algo, config.env_kwargs)


def _check_reward_data(config: TrainConfig) -> None:
    """A non-CLIP reward file's content: a valid file, and the only reward of the run."""
    from vlmrm_core.reward.file import RewardFileError, check_reward_data

    origin = f"reward file {config.reward_file}" if config.reward_file else "reward_data"
    try:
        source = check_reward_data(config.reward_data, origin=origin)
    except RewardFileError as exc:
        raise ConfigError(str(exc)) from None
    if source.name == "clip":
        raise ConfigError(
            f"{origin} is a CLIP reward: give it as model and reward (with_reward_file does)"
        )
    if config.reward is not None or config.prompt_set is not None:
        raise ConfigError(
            f"the run has two rewards: {origin} ({source.name}) and "
            f"{'a prompt set' if config.prompt_set else 'CLIP prompts'}; keep one"
        )


def check_env_id(env_id: str) -> None:
    """The deployment's environment-id check (:func:`vlmrm_core.security.check_env_id_allowed`,
    the one the app and rollouts use), as a config error: registered ids only, so a
    ``module:Env`` id never imports its module, and only those ``VLMRM_ENV_ALLOWLIST`` allows.
    """
    from vlmrm_core.security import NotAllowedError, check_env_id_allowed

    try:
        check_env_id_allowed(env_id)
    except NotAllowedError as exc:
        raise ConfigError(f"env_id: {exc}") from None


def _check_ppo_rollout(config: TrainConfig) -> None:
    """A PPO rollout (``n_steps × n_envs``) of at least 2 steps and no longer than the run."""
    n_steps = config.n_steps or SB3_PPO_N_STEPS
    rollout = n_steps * config.n_envs
    if config.n_steps is not None and rollout > config.total_steps:
        most = max(config.total_steps // config.n_envs, 1)
        raise ConfigError(
            f"PPO's n_steps {n_steps} × {config.n_envs} envs = {rollout} steps per update, more "
            f"than the run's {config.total_steps}: use n_steps ≤ {most} (--n-steps), or leave it "
            "unset to have it fitted"
        )
    if rollout < 2:
        raise ConfigError(
            f"PPO needs at least 2 steps per update; n_steps {n_steps} × {config.n_envs} envs "
            f"gives {rollout}: train for more steps"
        )


def _check_model(config: TrainConfig) -> None:
    """Catch unknown architectures and tags now rather than in the worker."""
    from vlmrm_core.clip.models import open_clip  # loaded after the torchvision workaround

    if config.model_config is not None:
        return  # a custom architecture: known once registered (in the worker)
    architecture, tag = config.model.architecture, config.model.pretrained
    if architecture not in open_clip.list_models():
        raise ConfigError(f"unknown open_clip architecture {architecture!r}")
    if tag is None:
        return
    is_path = tag.lower().endswith((".pt", ".pth", ".bin", ".safetensors")) or "/" in tag
    if is_path:
        if not Path(tag).expanduser().is_file():
            raise ConfigError(f"checkpoint not found: {tag}")
    elif tag not in open_clip.list_pretrained_tags_by_model(architecture):
        known = ", ".join(open_clip.list_pretrained_tags_by_model(architecture)) or "none"
        raise ConfigError(f"{tag!r} is not a pretrained tag of {architecture} (known: {known})")


def register_model_config(path: str | Path) -> str:
    """Make a custom open_clip architecture known to this process.

    Args:
        path: An open_clip model config JSON (``embed_dim``, ``vision_cfg``, ``text_cfg``).

    Returns:
        The architecture name it registers (the file's stem).
    """
    from vlmrm_core.clip.models import open_clip  # loaded after the torchvision workaround

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"model config not found: {path}")
    open_clip.add_model_config(path)
    return path.stem


def check_action_space(env_id: str, algo: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Check that ``algo`` can act in ``env_id``.

    Raises:
        ConfigError: Unknown environment, or an action space the algorithm cannot handle.
    """
    from vlmrm_core.envs.make import make_env

    try:
        env = make_env(env_id, render_mode=None, **(env_kwargs or {}))
    except gym.error.Error as exc:
        raise ConfigError(f"cannot create environment {env_id!r}: {exc}") from exc
    except TypeError as exc:
        raise ConfigError(f"bad env_kwargs for {env_id!r}: {exc}") from exc
    try:
        space = env.action_space
    finally:
        env.close()
    if algo == "dqn" and not isinstance(space, gym.spaces.Discrete):
        hint = " (try SAC or PPO)" if isinstance(space, gym.spaces.Box) else ""
        raise ConfigError(f"DQN needs a Discrete action space; {env_id} has {space}{hint}")
    if algo == "sac" and not isinstance(space, gym.spaces.Box):
        hint = (
            "; use MountainCarContinuous-v0"
            if env_id.startswith("MountainCar")
            else " (try DQN or PPO)"
        )
        raise ConfigError(f"SAC needs a continuous (Box) action space; {env_id} has {space}{hint}")
    if algo == "ppo" and not isinstance(
        space,
        gym.spaces.Box | gym.spaces.Discrete | gym.spaces.MultiDiscrete | gym.spaces.MultiBinary,
    ):
        raise ConfigError(f"PPO cannot act in {env_id}'s action space {space}")
