"""Each run setting, declared once: its name, type, default, valid values, help, and the noises it applies to.

``SETTINGS`` is the one declaration of the settings of a run (the keys of a resolved config, in their order).
From it come:

- the flags of ``lattice-train`` (``lattice.experiments.cli.add_setting_flags``: ``--name`` per setting, its help
  ending with the declared default);
- the defaults layer of every config (``defaults()``; ``configs/defaults.yaml`` repeats it with comments, and a
  test checks that the two agree);
- the checks of every value and their one-line messages (``Setting.check``, used by
  ``lattice.experiments.validate``), naming the bad value and the valid range or choices;
- the docs' table of settings (``settings_table()``).

The keywords of ``normalize`` (SB3's ``VecNormalize``) are declared the same way in ``NORMALIZE_KEYWORDS``. The
keywords of the algorithm and its policy (``hyperparams``) are the constructors' own: their defaults are read from
the signatures and their ranges are in ``lattice.experiments.keywords``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch as th
import yaml

from lattice.experiments.algorithms import ALGORITHM_NAMES
from lattice.experiments.errors import ConfigError
from lattice.noise import NOISES


@dataclass(frozen=True)
class Interval:
    """The numbers a setting may take: ``low .. high`` (ends included or not), or one of ``also``."""

    low: float
    high: float = math.inf
    closed: str = "[]"  # which ends are included: "[]", "(]", "[)" or "()"
    also: tuple[float, ...] = ()

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.closed[0] == "[" else value > self.low
        below = value <= self.high if self.closed[1] == "]" else value < self.high
        return (above and below) or value in self.also

    def __str__(self) -> str:
        text = f"{self.closed[0]}{self.low:g}, {self.high:g}{self.closed[1]}".replace("inf]", "inf)")
        return text + "".join(f" or {v:g}" for v in self.also)

    def integers(self) -> str:
        """The interval as words for integers: ``a positive integer``, ``a positive integer at most 512``, ..."""
        if self.closed != "[]":
            return f"an integer in {self}"
        if self.low in (0, 1):
            text = "a positive integer" if self.low == 1 else "a non-negative integer"
        else:
            text = f"an integer >= {self.low:g}"
        if self.high < math.inf:
            text += f" at most {self.high:.0f}"
        return text + "".join(f" or {v:g}" for v in self.also)


REQUIRED = object()  # the default of a setting that has none (algo, noise): a run must name it


@dataclass(frozen=True)
class Setting:
    """A run setting.

    :param name: Its key in configs and in ``--hyperparams``; its flag is ``--name`` with dashes.
    :param kind: ``int``, ``str``, ``choice`` (one of ``choices``), ``mapping``, ``device``, ``normalize`` or
        ``weights`` (a mapping of names to finite numbers).
    :param default: Its value in the defaults layer (``REQUIRED``: none, a run must give it).
    :param help: What it means, one line (the flag's help and the docs' table).
    :param valid_range: The numbers an ``int`` setting may take.
    :param limit: Why ``valid_range`` has its upper end (said when a value is above it).
    :param choices: The values a ``choice`` setting may take.
    :param nullable: Whether ``null`` is a value (its meaning is in ``help``).
    :param noises: The noises it applies to (None: all); with another noise it must stay at its default, and the
        resolved config records null.
    :param short: A short flag, e.g. ``-n``.
    :param since: The version that added it (None: configs of every version hold it). A config recorded before then
        lacks it and is read with its default, so that such a setting's default must train as those versions did.
    """

    name: str
    kind: str
    default: Any
    help: str
    valid_range: Interval | None = None
    limit: str = ""
    choices: tuple[str, ...] = ()
    nullable: bool = False
    noises: tuple[str, ...] | None = None
    short: str | None = None
    since: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def valid(self) -> str:
        """The values it may take, in words (the docs' table and the error messages)."""
        text = {
            "str": "a string",
            "choice": "one of: " + ", ".join(self.choices),
            "mapping": "a mapping",
            "device": "auto, cpu, cuda, cuda:<index> or mps",
            "normalize": "false, true or a mapping of VecNormalize keywords (normalize.*)",
            "weights": "a mapping of reward term -> finite number",
        }.get(self.kind)
        if text is None:
            assert self.valid_range is not None
            text = self.valid_range.integers()
        return text + (" or null" if self.nullable else "")

    def check(self, value: Any) -> Any:
        """``value`` if the setting may take it (normalised: ``1e6`` → ``1000000``, ``normalize: true`` → ``{}``),
        else a ConfigError naming the value and the valid ones."""
        if value is None and self.nullable:
            return None
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(f"Unknown {self.name} {value!r}; choose one of: {', '.join(self.choices)}")
            return value
        if self.kind == "int":
            return self._check_int(value)
        if self.kind in ("str", "device") and not isinstance(value, str):
            raise ConfigError(f"{self.name} must be {self.valid()}, got {value!r}")
        if self.kind == "device":
            try:
                th.device("cpu" if value == "auto" else value)
            except (RuntimeError, TypeError):
                raise ConfigError(f"Unknown device {value!r}; choose auto, cpu, cuda or cuda:<index>") from None
        if self.kind == "normalize":
            return check_normalize(value)
        if self.kind in ("mapping", "weights"):
            value = {} if value is None else value  # an empty YAML block
            if not isinstance(value, dict):
                raise ConfigError(f"{self.name} must be {self.valid()}, got {value!r}")
        if self.kind == "weights":
            for term, weight in value.items():
                if not _finite_number(weight):
                    raise ConfigError(f"reward_weights.{term} must be a finite number, got {weight!r}")
        return value

    def _check_int(self, value: Any) -> int:
        assert self.valid_range is not None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # YAML reads 1e6 as a float
        if not isinstance(value, int) or isinstance(value, bool) or value not in self.valid_range:
            why = f" ({self.limit})" if self.limit and isinstance(value, int) and value > self.valid_range.high else ""
            raise ConfigError(f"{self.name} must be {self.valid()}, got {value!r}{why}")
        return value


def _finite_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# numpy seeds are below 2^32; a run seeds its workers with seed + steps done (and seed + n_envs for evaluation),
# so seed and timesteps each stay below 2^31.
_SEED_BOUND = 2**31 - 1
# SubprocVecEnv holds two file descriptors per env in the training process (a pipe and the process's sentinel), and
# Linux's default limit is 1024 per process: 512 envs is the most that starts without raising that limit.
MAX_ENVS = 512
STATE_DEPENDENT = tuple(name for name, spec in NOISES.items() if spec.state_dependent)

SETTINGS: tuple[Setting, ...] = (
    Setting("algo", "choice", REQUIRED, "algorithm", choices=ALGORITHM_NAMES),
    Setting("noise", "choice", REQUIRED, "exploration noise (lattice.noise.NOISES)", choices=tuple(NOISES)),
    Setting("env", "str", "ant", "task (a task file of the config dir: ant, reorient, ...) or a gymnasium id"),
    Setting("env_kwargs", "mapping", {}, "keywords of the env's constructor"),
    Setting(
        "max_episode_steps",
        "int",
        None,
        "episode length (null: the registered one)",
        valid_range=Interval(1),
        nullable=True,
    ),
    Setting(
        "reward_weights", "weights", None, "MyoSuite reward term -> weight (null: the env's own reward)", nullable=True
    ),
    Setting(
        "n_envs",
        "int",
        1,
        "parallel training envs (where they run: vec_env)",
        valid_range=Interval(1, MAX_ENVS),
        limit="an env in a worker process holds 2 open files in the training process; Linux allows 1024 by default",
    ),
    Setting(
        "vec_env",
        "choice",
        "auto",
        "where n_envs > 1 envs run: subproc, a worker process each (SB3's SubprocVecEnv); dummy, in the training "
        "process (DummyVecEnv); auto, in-process when the run has one core (its CPU affinity, a sweep trial's "
        "resources.cpus), else worker processes. Seeds, episodes and results are the same either way",
        choices=("auto", "dummy", "subproc"),
        since="0.3.0",
    ),
    Setting("normalize", "normalize", False, "VecNormalize keywords (normalize.*), or false"),
    Setting(
        "seed",
        "int",
        0,
        "random seed (worker i uses seed + i; evaluation uses seed + n_envs)",
        valid_range=Interval(0, _SEED_BOUND),
        limit="numpy seeds are below 2^32, and a run seeds with seed + steps",
    ),
    Setting(
        "timesteps",
        "int",
        1_000_000,
        "total environment steps",
        valid_range=Interval(1, _SEED_BOUND),
        limit="numpy seeds are below 2^32, and a run seeds with seed + steps",
        short="-n",
    ),
    Setting(
        "noise_period",
        "int",
        4,
        "T: steps between redraws of state-dependent noise (SB3's sde_sample_freq; -1: once per rollout)",
        valid_range=Interval(1, also=(-1,)),
        nullable=True,
        noises=STATE_DEPENDENT,
    ),
    Setting("eval_freq", "int", 10_000, "environment steps (all envs together) between evaluations", Interval(1)),
    Setting("eval_episodes", "int", 10, "episodes per evaluation", Interval(1)),
    Setting("save_freq", "int", 50_000, "environment steps between checkpoints", Interval(1)),
    Setting("device", "device", "auto", "torch device"),
    Setting("hyperparams", "mapping", {}, "keywords of the algorithm's constructor (policy_kwargs included)"),
)
SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Keyword:
    """A keyword of ``normalize`` (SB3's ``VecNormalize``).

    :param name: The keyword.
    :param kind: ``bool``, ``number`` (finite, in ``valid_range``) or ``keys`` (a list of observation keys or null).
    :param default: VecNormalize's default (``None`` for gamma: the algorithm's gamma, as the runner sets it).
    :param help: What it means.
    """

    name: str
    kind: str
    default: Any
    help: str
    valid_range: Interval | None = None

    def valid(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "keys":
            return "a list of observation keys or null"
        return f"a number in {self.valid_range}"


NORMALIZE_KEYWORDS: tuple[Keyword, ...] = (
    Keyword("norm_obs", "bool", True, "normalise observations by their running mean and std"),
    Keyword("norm_reward", "bool", True, "scale rewards by the running std of the discounted return"),
    Keyword(
        "clip_obs", "number", 10.0, "clip normalised observations to [-clip_obs, clip_obs]", Interval(0, closed="(]")
    ),
    Keyword(
        "clip_reward", "number", 10.0, "clip scaled rewards to [-clip_reward, clip_reward]", Interval(0, closed="(]")
    ),
    Keyword(
        "gamma",
        "number",
        None,
        "discount of the return whose std scales rewards (default: the algorithm's)",
        Interval(0, 1, "(]"),
    ),
    Keyword(
        "epsilon", "number", 1e-8, "added to the variance before dividing by its square root", Interval(0, closed="(]")
    ),
    Keyword("norm_obs_keys", "keys", None, "keys of a dict observation to normalise (null: all)"),
)
# Set by the runner: the training env learns its statistics, the evaluation env does not.
NORMALIZE_RUNNER_SET = ("venv", "training")


def check_normalize(value: Any) -> dict[str, Any] | bool:
    """``normalize``: false, or VecNormalize keywords (true: none, VecNormalize's defaults), each in its range."""
    if value is True:
        return {}
    if value is False:
        return False
    if not isinstance(value, dict):
        raise ConfigError(f"normalize must be false or a mapping of VecNormalize keywords, got {value!r}")
    keywords = {k.name: k for k in NORMALIZE_KEYWORDS}
    for key, given in value.items():
        if key in NORMALIZE_RUNNER_SET:
            raise ConfigError(f"normalize.{key} cannot be set in a config: the runner sets it")
        keyword = keywords.get(key)
        if keyword is None:
            raise ConfigError(f"Unknown VecNormalize keyword {key!r} in normalize; valid: {', '.join(keywords)}")
        if keyword.kind == "bool":
            ok = isinstance(given, bool)
        elif keyword.kind == "keys":
            ok = given is None or (isinstance(given, list) and all(isinstance(k, str) for k in given))
        else:
            assert keyword.valid_range is not None
            ok = _finite_number(given) and given in keyword.valid_range
        if not ok:
            raise ConfigError(f"normalize.{key} must be {keyword.valid()}, got {given!r}")
    return value


def defaults() -> dict[str, Any]:
    """The defaults layer: every setting that has a default, at it (``configs/defaults.yaml`` says the same)."""
    return {s.name: yaml_copy(s.default) for s in SETTINGS if not s.required}


def yaml_copy(value: Any) -> Any:
    """A fresh copy of a plain YAML value (a declared default is never shared with a config that changes it)."""
    if isinstance(value, dict):
        return {k: yaml_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [yaml_copy(v) for v in value]
    return value


def as_yaml(value: Any) -> str:
    """A value as one line of YAML (``false``, ``null``, ``{}``, ``[1, 2]``), as it is written in a config."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()


def default_text(setting: Setting) -> str:
    """The declared default as help texts and the docs show it."""
    return "none (required)" if setting.required else as_yaml(setting.default)


def settings_table() -> str:
    """The run settings as a Markdown table (for the docs: MyST renders it), with the keywords of ``normalize``.

    Columns: the setting (its config key), its flag, its default, its valid values (and the noises it applies to)
    and its meaning. Generated from ``SETTINGS`` and ``NORMALIZE_KEYWORDS``, so it cannot drift from the code.
    """
    rows = [
        "| setting | flag | default | valid values | meaning |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        flag = f"`{s.short}`, `{s.flag}`" if s.short else f"`{s.flag}`"
        if s.name == "hyperparams":
            flag = "`--hyperparams KEY=VALUE ...`"
        valid = s.valid()
        if s.noises is not None:
            valid += f"; only for noises {', '.join(s.noises)} (null for the others)"
        if s.limit:
            valid += f" ({s.limit})"
        rows.append(f"| `{s.name}` | {flag} | `{default_text(s)}` | {_cell(valid)} | {_cell(s.help)} |")
    for k in NORMALIZE_KEYWORDS:
        default = "the algorithm's gamma" if k.name == "gamma" else f"`{as_yaml(k.default)}`"
        flag = f"`--hyperparams normalize.{k.name}=...`"
        rows.append(f"| `normalize.{k.name}` | {flag} | {default} | {_cell(k.valid())} | {_cell(k.help)} |")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
