"""Hyperparameter search per exploration noise: an Optuna study per (algorithm, noise, task), the same search space
and the same number of trials for every noise, on the sweeps' Dask engine.

A tuning file (``configs/tune/*.yaml``)::

    name: elbow_ppo                   # the study folder: <log_dir>/<name>/
    algo: ppo
    env: elbow
    noises: [isotropic, gsde, lattice, pink]
    trials: 20                        # per noise
    seed: 0                           # the training seed of every trial, and the sampler's
    settings: {timesteps: 20000, eval_freq: 2000, eval_episodes: 5}   # for every trial (as in sweeps)
    objective: {last: 3}              # mean evaluation return over the last 3 evaluations
    pruner: {startup_trials: 5, warmup_evaluations: 2}   # Optuna's median pruner
    storage: null                     # null: SQLite in the study folder; or an RDB URL (a cluster's workers)
    search:                           # key (as in --hyperparams) → a range or choices; `noises:` limits an entry
      learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}
      policy_kwargs.log_std_init: {low: -2.0, high: 0.5}
      noise_period: {choices: [1, 4, 16], noises: [gsde, lattice]}
      policy_kwargs.alpha: {low: 0.1, high: 2.0, noises: [lattice]}
      policy_kwargs.noise_exponent: {low: 0.0, high: 2.0, noises: [pink]}
    resources: {cpus: 1}              # as in sweeps, and so are retries: and slurm:

Every trial is a training run (``lattice.experiments.training``) in ``<study>/trials/<noise>/<number>/``; after each
evaluation it reports the mean return to its study, and the median pruner stops it (``error.txt`` says so) when its
best report so far is below the median of the complete trials' reports at that step. The objective is the mean
return of the last ``objective.last`` evaluations. A killed tuning resumes with the same command: finished trials
stay, trials that were running continue from their run folders' checkpoints, and the studies go on to their number
of trials.

Written into the study folder: ``study.db`` (the studies), ``trials.csv``, ``best.md``,
``best/<algo>_<noise>_<env>.yml`` (the best settings per noise, as a config ``lattice-train --config`` takes),
``seeds.yaml`` (a sweep of the tuned configs over 5 seeds other than the tuning seed), ``history.png`` and
``importance.png``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from lattice.experiments import rundir
from lattice.experiments.config import ConfigError, dump_config, load_yaml, resolve_config
from lattice.experiments.sweep import _as_text, connect, run_trial, trial_resources, worker_slots
from lattice.noise import NOISES

TUNE_KEYS = (
    "name",
    "algo",
    "env",
    "noises",
    "trials",
    "seed",
    "settings",
    "objective",
    "pruner",
    "storage",
    "search",
    "resources",
    "retries",
    "slurm",
)
SPACE_KEYS = ("low", "high", "log", "step", "choices", "noises")
SEEDS_AFTER_TUNING = 5  # seeds of the generated sweep of the tuned configs


def load_tuning(path: Path) -> dict[str, Any]:
    """The tuning file, checked: its keys, its noises, its search space, and every trial's config at both ends of
    every range and at every choice (so that a bad key or value fails before anything runs)."""
    tuning = load_yaml(path)
    tuning["name"] = str(tuning.get("name") or path.stem)
    unknown = set(tuning) - set(TUNE_KEYS)
    if unknown:
        raise ConfigError(f"Unknown tuning key(s) {sorted(unknown)} in {path}; valid: {', '.join(TUNE_KEYS)}")
    for key in ("algo", "env", "noises", "search"):
        if not tuning.get(key):
            raise ConfigError(f"The tuning file {path} needs {key!r}")
    noises = tuning["noises"]
    if not isinstance(noises, list) or not all(n in NOISES for n in noises):
        raise ConfigError(f"noises must be a list of: {', '.join(NOISES)}; got {noises!r}")
    for key, minimum in (("trials", 1), ("seed", 0)):
        value = tuning.setdefault(key, 20 if key == "trials" else 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    defaults = {"objective": {"last": 3}, "pruner": {"startup_trials": 5, "warmup_evaluations": 2}}
    for name, block_defaults in defaults.items():
        given = tuning.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{name} must be a mapping ({', '.join(block_defaults)}), got {given!r}")
        for key, value in given.items():
            if key not in block_defaults:
                raise ConfigError(f"Unknown {name} setting {key!r}; valid: {', '.join(block_defaults)}")
            minimum = 1 if key == "last" else 0
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name}.{key} must be an integer >= {minimum}, got {value!r}")
        tuning[name] = {**block_defaults, **given}
    trial_resources(tuning)
    if not isinstance(tuning["search"], dict):
        raise ConfigError(f"search must be a mapping of setting -> range or choices, got {tuning['search']!r}")
    tuning["search"] = {key: _check_space(key, entry, noises) for key, entry in tuning["search"].items()}
    for noise in noises:
        try:
            distributions(tuning["search"], noise)
        except ValueError as e:  # Optuna's own checks of a range (e.g. log with step)
            raise ConfigError(f"search: {e}") from None
        for point in _corners(tuning["search"], noise):
            trial_config(tuning, noise, point)  # raises ConfigError naming the bad setting
    return tuning


def _check_space(key: str, entry: Any, noises: list[str]) -> dict[str, Any]:
    """One search-space entry: ``{low, high[, log, step]}`` or ``{choices}``, and optionally ``noises``."""
    where = f"search.{key}"
    if not isinstance(entry, dict) or set(entry) - set(SPACE_KEYS):
        raise ConfigError(
            f"{where} must be a mapping with low and high (and log, step) or choices, and optionally noises; "
            f"got {entry!r}"
        )
    only = entry.get("noises", noises)
    if not isinstance(only, list) or not set(only) <= set(noises):
        raise ConfigError(f"{where}.noises must be a list of the tuned noises ({', '.join(noises)}), got {only!r}")
    if "choices" in entry:
        if set(entry) & {"low", "high", "log", "step"}:
            raise ConfigError(f"{where}: give either choices or low/high, not both")
        if not isinstance(entry["choices"], list) or not entry["choices"]:
            raise ConfigError(f"{where}.choices must be a non-empty list, got {entry['choices']!r}")
        return {"choices": entry["choices"], "noises": only}
    low, high = entry.get("low"), entry.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or not low < high:  # type: ignore[operator]
        raise ConfigError(f"{where} needs numbers low < high, got low={low!r}, high={high!r}")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}")
    if log and low <= 0:  # type: ignore[operator]
        raise ConfigError(f"{where}: a log range needs low > 0, got {low!r}")
    step = entry.get("step")
    if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or not 0 < step < math.inf):
        raise ConfigError(f"{where}.step must be a positive number, got {step!r}")
    if step is not None and log:
        raise ConfigError(f"{where}: give step or log, not both (Optuna samples a log range continuously)")
    return {"low": low, "high": high, "log": log, "step": step, "noises": only}


def _corners(search: dict[str, dict[str, Any]], noise: str) -> list[dict[str, Any]]:
    """Points that together take every entry's lowest and highest value and every choice."""
    entries = {k: v for k, v in search.items() if noise in v["noises"]}
    width = max([len(v["choices"]) for v in entries.values() if "choices" in v] + [2])
    points = []
    for i in range(width):
        point = {}
        for key, entry in entries.items():
            values = entry["choices"] if "choices" in entry else [entry["low"], entry["high"]]
            point[key] = values[i % len(values)]
        points.append(point)
    return points


def distributions(search: dict[str, dict[str, Any]], noise: str) -> dict[str, Any]:
    """The Optuna distributions of the entries that apply to ``noise`` (choices are stored as their YAML text)."""
    import optuna

    out: dict[str, Any] = {}
    for key, entry in search.items():
        if noise not in entry["noises"]:
            continue
        if "choices" in entry:
            out[key] = optuna.distributions.CategoricalDistribution([_as_text(c) for c in entry["choices"]])
        elif all(isinstance(entry[k], int) for k in ("low", "high", "step") if entry[k] is not None):
            out[key] = optuna.distributions.IntDistribution(
                entry["low"], entry["high"], log=entry["log"], step=entry["step"] or 1
            )
        else:
            out[key] = optuna.distributions.FloatDistribution(
                float(entry["low"]), float(entry["high"]), log=entry["log"], step=entry["step"]
            )
    return out


def trial_config(tuning: dict[str, Any], noise: str, params: dict[str, Any]) -> dict[str, Any]:
    """The resolved config of a trial: the tuning's settings, then the trial's sampled values."""
    settings = [f"{k}={_as_text(v)}" for k, v in (tuning.get("settings") or {}).items()]
    sampled = [f"{k}={v if isinstance(v, str) else _as_text(v)}" for k, v in params.items()]
    return resolve_config(
        tuning["algo"], noise, tuning["env"], overrides={"seed": tuning["seed"]}, hyperparams=settings + sampled
    )


def config_name(config: dict[str, Any]) -> str:
    """``<algo>_<noise>_<env>``: a trial config's name (its best config file's)."""
    return f"{config['algo']}_{config['noise']}_{config['env']}"


def study_name(tuning: dict[str, Any], config: dict[str, Any]) -> str:
    """The study of a noise: named by the tuning too, so that tunings can share one database."""
    return f"{tuning['name']}/{config_name(config)}"


class ReportToOptuna(BaseCallback):
    """After each evaluation (SB3's ``callback_after_eval``): report the mean return to the trial, and raise
    ``optuna.TrialPruned`` when the pruner says so (before the last step: a finished run is not pruned)."""

    def __init__(self, trial: Any, total_steps: int):
        super().__init__()
        self.trial = trial
        self.total_steps = total_steps

    def _on_step(self) -> bool:
        import optuna

        evaluation = self.parent
        assert isinstance(evaluation, EvalCallback)
        step, value = evaluation.num_timesteps, float(evaluation.last_mean_reward)
        self.trial.report(value, step)
        if step < self.total_steps and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at {step:,} steps: return {value:.2f}")
        return True


def objective(run_dir: Path, last: int) -> float:
    """Mean evaluation return over the last ``last`` evaluations of a run."""
    data = rundir.RunDir(run_dir).evaluations()
    return float(np.mean(np.asarray(data["results"])[-last:]))


def run_tuning_trial(
    config: dict[str, Any],
    run_dir: str,
    log_file: str,
    storage: str,
    name: str,
    trial_id: int,
    tuning: dict[str, Any],
) -> dict[str, Any]:
    """One trial in a Dask worker: train (or resume, or skip a finished run) with reports to the study.

    :return: ``{"state": "complete", "value": ...}`` or ``{"state": "pruned", "error": ...}``.
    """
    import optuna

    pruner = median_pruner(tuning["pruner"], config["eval_freq"])
    study = optuna.load_study(study_name=name, storage=_storage(storage), pruner=pruner)
    report = ReportToOptuna(optuna.trial.Trial(study, trial_id), config["timesteps"])
    try:
        run_trial(config, run_dir, log_file, after_eval=report)
    except optuna.TrialPruned as e:
        return {"state": "pruned", "error": str(e)}
    return {"state": "complete", "value": objective(Path(run_dir), tuning["objective"]["last"])}


def _storage(url: str) -> Any:
    """An RDB storage; SQLite waits up to a minute for a lock held by another process (workers report at once)."""
    import optuna

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def run_tuning(
    path: Path,
    log_dir: Path,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
    storage: str | None = None,
) -> pd.DataFrame:
    """Run (or continue) a tuning; write its table, best configs, seeds sweep and plots into its study folder.

    :param path: The tuning file.
    :param log_dir: The study folder is ``log_dir/<name>``.
    :param max_concurrent: Trials at once on the embedded cluster (default: as many as the cores fit).
    :param scheduler: Address of an existing Dask scheduler instead.
    :param slurm: Start Dask workers as SLURM jobs (the file's ``slurm:`` block) instead.
    :param storage: An RDB URL for the studies (default: the file's ``storage``, else SQLite in the study folder).
    :return: The trials' table.
    """
    tuning = load_tuning(path)
    name = tuning["name"]
    if slurm and not tuning.get("slurm"):
        raise ConfigError(f"--slurm needs a 'slurm:' block in {path} (queue, account, walltime, cores, memory)")
    folder = log_dir / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot create the study folder {folder}: {e.strerror or e}") from None
    url = storage or tuning.get("storage") or f"sqlite:///{(folder / 'study.db').resolve()}"
    if url.startswith("sqlite") and (scheduler or slurm):
        print(
            "warning: the studies are in SQLite, which workers on other machines share unreliably (network file "
            "systems): pass --storage with a database server's URL",
            file=sys.stderr,
            flush=True,
        )
    with rundir.writer_lock(folder):  # one process drives a study folder; a second copy exits 2 naming it
        recorded = url if url.startswith("sqlite") else "an RDB URL (not recorded: it may hold a password)"
        (folder / "tuning.yml").write_text(yaml.safe_dump({**tuning, "storage": recorded}, sort_keys=False))
        _drive(tuning, folder, url, max_concurrent, scheduler, slurm)
        return write_outputs(tuning, folder, url)


def median_pruner(settings: dict[str, int], eval_freq: int) -> Any:
    """Optuna's median pruner (a study's pruner is not stored with it: the workers build the same one)."""
    import optuna

    # Reports are at the evaluations' step counts, k·eval_freq or a few steps past it (all envs step together):
    # the first warmup_evaluations are below this, the next is not.
    warmup = settings["warmup_evaluations"] * eval_freq + eval_freq // 2
    return optuna.pruners.MedianPruner(n_startup_trials=settings["startup_trials"], n_warmup_steps=warmup)


def _studies(tuning: dict[str, Any], url: str) -> dict[str, Any]:
    """Noise → its Optuna study (created, or loaded to continue), all with the same sampler seed and pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {}
    for noise in tuning["noises"]:
        config = trial_config(tuning, noise, {})
        studies[noise] = optuna.create_study(
            study_name=study_name(tuning, config),
            storage=_storage(url),
            sampler=optuna.samplers.TPESampler(seed=tuning["seed"]),  # reseeded per trial by _ask
            pruner=median_pruner(tuning["pruner"], config["eval_freq"]),
            direction="maximize",
            load_if_exists=True,
        )
    return studies


def _drive(
    tuning: dict[str, Any],
    folder: Path,
    url: str,
    max_concurrent: int | None,
    scheduler: str | None,
    slurm: bool,
) -> None:
    """Ask the studies for trials, round-robin over the noises, as workers free up; tell them the results."""
    from distributed import as_completed

    studies = _studies(tuning, url)
    budget = tuning["trials"]
    # Trials left running by a killed tuning (this process holds the folder's lock: nobody runs them) continue.
    waiting = [(noise, t) for noise, study in studies.items() for t in study.trials if t.state.name == "RUNNING"]
    remaining = sum(max(0, budget - len(study.trials)) for study in studies.values()) + len(waiting)
    if remaining == 0:
        print(f"tuning {folder.name}: all {budget} trials per noise are done", flush=True)
        return
    resources = trial_resources(tuning)
    client, submit_resources = connect(tuning, resources, max_concurrent, scheduler, slurm, remaining)
    futures: dict[Any, tuple[str, Any]] = {}
    pending = as_completed()
    try:
        print(
            f"tuning {folder.name}: {budget} trials per noise ({', '.join(studies)}) in {folder} "
            f"on {client.scheduler.address}",
            flush=True,
        )
        while True:
            free = worker_slots(client, submit_resources) - pending.count()
            while free > 0:
                task = waiting.pop(0) if waiting else _ask(studies, budget, tuning)
                if task is None:
                    break
                noise, trial = task
                config = trial_config(tuning, noise, trial.params)
                number = f"{trial.number:03d}"
                future = client.submit(
                    run_tuning_trial,
                    config,
                    str(folder / "trials" / noise / number),
                    str(folder / "output" / f"{noise}_{number}.log"),
                    url,
                    studies[noise].study_name,
                    trial._trial_id,
                    tuning,
                    key=f"{folder.name}/{noise}_{number}",  # unique on a shared scheduler
                    retries=int(tuning.get("retries", 1)),
                    pure=False,
                    resources=submit_resources,
                )
                futures[future] = (noise, trial)
                pending.add(future)
                free -= 1
            if pending.is_empty():
                break
            for future in pending.next_batch(block=True):
                noise, trial = futures.pop(future)
                _tell(studies[noise], trial, future)
            time.sleep(0.1)
    finally:
        client.close()


def _ask(studies: dict[str, Any], budget: int, tuning: dict[str, Any]) -> tuple[str, Any] | None:
    """A new trial of the noise with the fewest trials so far (None: every study has its budget).

    The sampler is seeded with (tuning seed, trial number): a sampler seeded once would, after a restart, draw its
    first points again (its random start-up trials repeated the trials before the kill)."""
    import optuna

    open_studies = [(len(s.trials), noise) for noise, s in studies.items() if len(s.trials) < budget]
    if not open_studies:
        return None
    count, noise = min(open_studies)
    study = studies[noise]
    study.sampler = optuna.samplers.TPESampler(
        seed=int(np.random.SeedSequence([tuning["seed"], count]).generate_state(1)[0])
    )
    return noise, study.ask(distributions(tuning["search"], noise))


def _tell(study: Any, trial: Any, future: Any) -> None:
    import optuna

    label = f"{study.study_name} trial {trial.number}"
    if future.status != "finished":
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        print(f"FAILED: {label} | {repr(future.exception())[:200]}", flush=True)
        return
    result = future.result()
    if result["state"] == "pruned":
        study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
        print(f"pruned: {label} | {result['error']}", flush=True)
    else:
        study.tell(trial.number, result["value"])  # a NaN objective makes it a failed trial (Optuna's rule)
        complete = [t.value for t in study.trials if t.state.name == "COMPLETE"]
        best = f"best so far {max(complete):.2f}" if complete else "no complete trial yet"
        print(f"complete: {label} | objective {result['value']:.2f} ({best})", flush=True)


def trials_table(studies: dict[str, Any], folder: Path) -> pd.DataFrame:
    """One row per trial: noise, number, state, objective (pruned: its last report), steps, settings, folder."""
    rows = []
    for noise, study in studies.items():
        for t in study.trials:
            steps = max(t.intermediate_values) if t.intermediate_values else 0
            value = t.value if t.value is not None else t.intermediate_values.get(steps)
            row = {"noise": noise, "trial": t.number, "state": t.state.name.lower(), "objective": value}
            row |= {"steps": steps, **t.params, "run": str(folder / "trials" / noise / f"{t.number:03d}")}
            rows.append(row)
    return pd.DataFrame(rows)


def write_outputs(tuning: dict[str, Any], folder: Path, url: str) -> pd.DataFrame:
    """``trials.csv``, ``best/*.yml``, ``best.md``, ``seeds.yaml``, ``history.png``, ``importance.png``."""
    studies = _studies(tuning, url)
    table = trials_table(studies, folder)
    rundir.atomic_write_text(folder / "trials.csv", table.to_csv(index=False))
    (folder / "best").mkdir(exist_ok=True)
    lines = [
        f"# Tuning {folder.name}: {tuning['algo']} on {tuning['env']}, {tuning['trials']} trials per noise",
        "",
        f"Objective: mean evaluation return over the last {tuning['objective']['last']} evaluations "
        f"(training seed {tuning['seed']}).",
        "",
        "| noise | best objective | trial | complete | pruned | failed | best settings |",
        "|---|---|---|---|---|---|---|",
    ]
    configs = []
    for noise, study in studies.items():
        states = [t.state.name for t in study.trials]
        counts = [states.count(s) for s in ("COMPLETE", "PRUNED", "FAIL")]
        if counts[0] == 0:
            lines.append(f"| {noise} | – | – | {counts[0]} | {counts[1]} | {counts[2]} | no complete trial yet |")
            continue
        best = study.best_trial
        config = trial_config(tuning, noise, best.params)
        path = folder / "best" / f"{config_name(config)}.yml"
        dump_config(config, path)
        configs.append(str(path.relative_to(folder)))
        settings = ", ".join(f"{k}={v}" for k, v in best.params.items())
        row = f"| {noise} | {best.value:.2f} | {best.number} | {counts[0]} | {counts[1]} | {counts[2]} | {settings} |"
        lines.append(row)
    lines += ["", f"Best configs: `best/` (`lattice-train --config {folder}/best/<file>`)."]
    rundir.atomic_write_text(folder / "best.md", "\n".join(lines) + "\n")
    if configs:
        seeds = list(range(tuning["seed"] + 1, tuning["seed"] + 1 + SEEDS_AFTER_TUNING))
        sweep = {"name": f"{folder.name}_seeds", "grid": {"config": configs, "seed": seeds}}
        for key in ("resources", "retries", "slurm"):
            if key in tuning:
                sweep[key] = tuning[key]
        header = "# The tuned configs over seeds the tuning did not see: lattice-sweep --config THIS_FILE\n"
        rundir.atomic_write_text(folder / "seeds.yaml", header + yaml.safe_dump(sweep, sort_keys=False))
    plot_history(table, folder / "history.png")
    plot_importance(studies, folder / "importance.png")
    return table


def plot_history(table: pd.DataFrame, path: Path) -> None:
    """Objective per trial (dots; pruned: hollow) and the best so far (line), one colour per noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (noise, rows) in enumerate(table.groupby("noise", sort=False)):
        color = f"C{i}"
        rows = rows.sort_values("trial")
        complete = rows[rows["state"] == "complete"]
        pruned = rows[rows["state"] == "pruned"]
        ax.scatter(complete["trial"], complete["objective"], color=color, s=18)
        ax.scatter(pruned["trial"], pruned["objective"], facecolors="none", edgecolors=color, s=18)
        best = complete.set_index("trial")["objective"].cummax().reindex(rows["trial"]).ffill()
        ax.plot(rows["trial"], best, color=color, label=noise)
    ax.set(xlabel="trial", ylabel="objective (mean eval return)", title="Optimisation history (hollow: pruned)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_importance(studies: dict[str, Any], path: Path) -> None:
    """Optuna's parameter importances (fANOVA) per noise, for the noises with at least two complete trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    importances = {}
    for noise, study in studies.items():
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if len(complete) >= 2 and len(complete[0].params) >= 1:
            try:
                importances[noise] = optuna.importance.get_param_importances(study)
            except (RuntimeError, ValueError):  # e.g. every complete trial has the same objective
                continue
    fig, axes = plt.subplots(1, max(1, len(importances)), figsize=(3.2 * max(1, len(importances)), 3), squeeze=False)
    for ax, (noise, values) in zip(axes[0], importances.items(), strict=False):
        keys = list(values)[::-1]
        ax.barh([k.removeprefix("policy_kwargs.") for k in keys], [values[k] for k in keys], color="C0")
        ax.set(title=noise, xlabel="importance", xlim=(0, 1))
    if not importances:
        axes[0][0].text(0.5, 0.5, "fewer than 2 complete trials", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
