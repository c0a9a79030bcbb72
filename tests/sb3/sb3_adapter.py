"""A pytest plugin that runs Stable-Baselines3's own test files with this package's policies and distributions.

Loaded with ``-p sb3_adapter`` (``tests/sb3`` on ``PYTHONPATH``) on the files that ``tests/sb3/fetch.py`` keeps in
``.sb3-tests/<version>/tests/``, once per noise (``--sb3-noise``), with SB3's own pytest settings (``-c
.sb3-tests/<version>/pyproject.toml``: its warning filters and markers); ``tests/sb3/run.py`` does all that. SB3's
files are not edited; the adapter swaps classes:

- ``"MlpPolicy"`` and ``"CnnPolicy"`` of PPO, A2C and SAC become ``LatticeActorCriticPolicy`` /
  ``LatticeSACPolicy`` with the run's noise (``policy_aliases``, restored after each test). A test whose model does
  not fit the noise (a state-dependent noise needs ``use_sde=True``, the others ``use_sde=False``; discrete actions
  fit none) is skipped with that reason, so each noise runs the tests it fits. The cases of a test parametrised over
  algorithms that this package has no policy for (TD3, DDPG, DQN) are deselected: they test SB3 alone.
- In ``test_distributions.py``, whose gSDE tests build SB3's ``StateDependentNoiseDistribution`` directly, that name
  is bound to the noise's distribution class (``lattice``: ``LatticeNoiseDistribution``; ``gsde``: SB3's own) while
  the module is executed, so the parametrised instances are built from it too. The module runs statement by
  statement: a test whose *definition* fails for a noise (an argument built at import) becomes a test that fails
  with that error, instead of taking the whole file down.

Where this package's distribution object differs from SB3's on purpose (docs/sb3_compatibility.md), the test is
declared in ``EXPECTED_FAILURES``: marked ``xfail(strict=True)`` with the exception and the reason, so that it
fails the run as soon as it passes, and any other failure fails as usual.
"""

from __future__ import annotations

import ast
import json
import sys
import types
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fetch
import pytest
from _pytest.assertion.rewrite import rewrite_asserts
from gymnasium import spaces
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common import distributions as sb3_distributions
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import NatureCNN

from lattice import LatticeActorCriticPolicy, LatticeNoiseDistribution, LatticeSACPolicy
from lattice.noise import NOISES

# The files each kind of noise runs: the gSDE tests of test_distributions.py build state-dependent distributions.
STATE_DEPENDENT_FILES = ("test_sde.py", "test_save_load.py", "test_distributions.py")
PLAIN_FILES = ("test_sde.py", "test_save_load.py")

# The gSDE tests of test_distributions.py; of a test parametrised over distributions, the cases of the gSDE one.
GSDE_DISTRIBUTION_TESTS = ("test_squashed_gaussian", "test_sde_distribution", "test_entropy", "test_kl_divergence")

# The name bound to each noise's distribution class in SB3's test modules (the gSDE tests build it directly).
DISTRIBUTION_SWAPS: dict[str, dict[str, type]] = {
    "gsde": {},  # the registry's gSDE is SB3's StateDependentNoiseDistribution itself
    "lattice": {"StateDependentNoiseDistribution": LatticeNoiseDistribution},
}

BUILT = ("lattice_policy", True)  # a test's user property: it built one of this package's policies
POLICY_PASSED = "passed with this package's policy"
OUTCOMES = ("passed", POLICY_PASSED, "xfailed", "skipped", "failed", "error", "xpassed")  # in the summaries' order

_MVN = "its .distribution is a torch MultivariateNormal over the whole action (the correlated Σ), not SB3's Normal"


@dataclass(frozen=True)
class ExpectedFailure:
    """A test of SB3 that fails for a noise because of a difference kept on purpose (docs/sb3_compatibility.md).

    :param exception: The exception the test must fail with (any other fails the run).
    :param reason: Why, in one sentence.
    """

    exception: type[BaseException]
    reason: str


# (noise, file, test function) → the declared failure, for every parametrisation of that test.
EXPECTED_FAILURES: dict[tuple[str, str, str], ExpectedFailure] = {
    ("lattice", "test_distributions.py", "test_sde_distribution"): ExpectedFailure(
        AttributeError, f"Lattice: {_MVN}, which has no .scale (its std is a matrix: .covariance_matrix)"
    ),
    ("lattice", "test_distributions.py", "test_kl_divergence"): ExpectedFailure(
        AssertionError,
        "Lattice: proba_distribution() before proba_distribution_net() (SB3's test builds one at import): the "
        "latent width d, which the net sets, splits the noise matrix [P_x | P_a] and scales σ by 1/√d",
    ),
}


@dataclass
class _Run:
    """The run's settings and what the current test did."""

    noise: str = "lattice"
    sb3_dir: Path = field(default_factory=fetch.tests_folder)
    test: pytest.Item | None = None  # the test running


_RUN = _Run()


def _use_noise(action_space: spaces.Space, use_sde: bool) -> str:
    """The run's noise, for a policy that an algorithm builds from a policy name; skips the test if it does not fit."""
    noise = _RUN.noise
    if not isinstance(action_space, spaces.Box):
        pytest.skip(f"not applicable: this package's policies are for continuous actions, not {action_space}")
    state_dependent = NOISES[noise].state_dependent
    if state_dependent != use_sde:
        kind = "state-dependent (needs use_sde=True)" if state_dependent else "fresh every step (use_sde=False)"
        pytest.skip(f"not applicable: noise={noise} is {kind}; this test builds use_sde={use_sde}")
    if _RUN.test is not None and BUILT not in _RUN.test.user_properties:
        _RUN.test.user_properties.append(BUILT)  # in the test's report (pytest-xdist sends it on), for the summary
    return noise


class _RunNoise:
    """Gives a policy that SB3 builds from ``"MlpPolicy"`` / ``"CnnPolicy"`` the run's noise. A loaded policy passes
    its saved ``noise`` and is rebuilt as saved."""

    cnn = False

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, *args: Any, **kwargs: Any):
        if "noise" not in kwargs:
            kwargs["noise"] = _use_noise(action_space, bool(kwargs.get("use_sde", False)))
            if self.cnn:
                kwargs.setdefault("features_extractor_class", NatureCNN)
        super().__init__(observation_space, action_space, *args, **kwargs)  # type: ignore[call-arg]


# Module-level classes: SB3 saves the policy class with the model, pickled by reference to these names.
class MlpActorCriticPolicy(_RunNoise, LatticeActorCriticPolicy):
    """PPO's and A2C's ``"MlpPolicy"`` in these runs."""


class CnnActorCriticPolicy(_RunNoise, LatticeActorCriticPolicy):
    """PPO's and A2C's ``"CnnPolicy"`` in these runs (SB3's NatureCNN features)."""

    cnn = True


class MlpSACPolicy(_RunNoise, LatticeSACPolicy):
    """SAC's ``"MlpPolicy"`` in these runs."""


class CnnSACPolicy(_RunNoise, LatticeSACPolicy):
    """SAC's ``"CnnPolicy"`` in these runs (SB3's NatureCNN features)."""

    cnn = True


POLICY_SWAPS: dict[type, dict[str, type]] = {
    PPO: {"MlpPolicy": MlpActorCriticPolicy, "CnnPolicy": CnnActorCriticPolicy},
    A2C: {"MlpPolicy": MlpActorCriticPolicy, "CnnPolicy": CnnActorCriticPolicy},
    SAC: {"MlpPolicy": MlpSACPolicy, "CnnPolicy": CnnSACPolicy},
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sb3-lattice", "SB3's tests with this package's classes")
    group.addoption("--sb3-noise", choices=list(NOISES), required=True, help="the noise of this run")
    group.addoption("--sb3-dir", type=Path, help="SB3's files (default: .sb3-tests/<installed SB3 version>)")
    group.addoption("--sb3-report", type=Path, help="write the outcomes per file here (JSON), for tests/sb3/run.py")


def pytest_configure(config: pytest.Config) -> None:
    _RUN.noise = config.getoption("--sb3-noise")
    _RUN.sb3_dir = (config.getoption("--sb3-dir") or fetch.tests_folder()).resolve()


def _is_sb3_test(path: Path) -> bool:
    return path.resolve().parent == _RUN.sb3_dir / "tests"


def _files() -> tuple[str, ...]:
    return STATE_DEPENDENT_FILES if NOISES[_RUN.noise].state_dependent else PLAIN_FILES


def _definition_failed(statement: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, path: Path, error: Exception):
    """A test that fails with the error its definition raised, located where SB3's file defines it."""

    def test() -> None:
        raise error

    test.__name__ = test.__qualname__ = statement.name
    test.__code__ = test.__code__.replace(co_filename=str(path), co_firstlineno=statement.lineno)
    return test


def load_module(path: Path, config: pytest.Config, swaps: dict[str, type]) -> types.ModuleType:
    """Execute SB3's test file ``path`` as a module, with pytest's assertion messages, binding the names in
    ``swaps`` to this package's classes after each statement (so after its imports, before its decorators).

    :param path: The test file.
    :param config: pytest's config (for the assertion rewriting).
    :param swaps: Name in the module → the class it is bound to instead of SB3's.
    :return: The module, registered in ``sys.modules`` under the file's name, as pytest's default import does.
    """
    source = path.read_bytes()
    tree = ast.parse(source, filename=str(path))
    rewrite_asserts(tree, source, str(path), config)
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    sys.modules[path.stem] = module
    if str(path.parent) not in sys.path:  # as pytest's default "prepend" import mode: its helpers import
        sys.path.insert(0, str(path.parent))
    namespace = module.__dict__
    for statement in tree.body:
        code = compile(ast.Module(body=[statement], type_ignores=[]), str(path), "exec")
        try:
            exec(code, namespace)
        except Exception as error:
            is_def = isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if not (is_def and statement.name.startswith(("test", "Test"))):  # type: ignore[union-attr]
                raise
            namespace[statement.name] = _definition_failed(statement, path, error)  # type: ignore[arg-type]
        for name, cls in swaps.items():
            if name in namespace and namespace[name] is getattr(sb3_distributions, name):
                namespace[name] = cls
    return module


class SB3Module(pytest.Module):
    """One of SB3's test files, executed by ``load_module`` with the run's classes."""

    def _getobj(self) -> types.ModuleType:
        return load_module(self.path, self.config, DISTRIBUTION_SWAPS.get(_RUN.noise, {}))


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if not _is_sb3_test(module_path):
        return None
    return SB3Module.from_parent(parent, path=module_path)


def _is_gsde_case(item: pytest.Item) -> bool:
    """Whether an item of test_distributions.py is a gSDE test: a listed test, and, if it is parametrised over
    distributions, the case of the state-dependent one (the name SB3 builds it with, swapped or not)."""
    if getattr(item, "originalname", item.name) not in GSDE_DISTRIBUTION_TESTS:
        return False
    state_dependent = getattr(item.module, "StateDependentNoiseDistribution", None)  # type: ignore[attr-defined]
    params = getattr(getattr(item, "callspec", None), "params", {}).values()
    dists = [p for p in params if isinstance(p, sb3_distributions.Distribution)]
    return not dists or any(isinstance(d, state_dependent) for d in dists)  # type: ignore[arg-type]


def _other_algorithm(item: pytest.Item) -> bool:
    """Whether the item is a case of a test parametrised over algorithms for one this package has no policy for
    (TD3, DDPG, DQN): it tests SB3 alone, as SB3's own run does."""
    params = getattr(getattr(item, "callspec", None), "params", {}).values()
    algos = [p for p in params if isinstance(p, type) and issubclass(p, BaseAlgorithm)]
    return bool(algos) and not any(issubclass(algo, tuple(POLICY_SWAPS)) for algo in algos)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    matched: set[tuple[str, str, str]] = set()
    files_seen: set[str] = set()
    for item in items:
        path = Path(item.path)
        if not _is_sb3_test(path):
            keep.append(item)
            continue
        files_seen.add(path.name)
        test = getattr(item, "originalname", item.name)
        gsde_file = path.name == "test_distributions.py"
        if path.name not in _files() or _other_algorithm(item) or (gsde_file and not _is_gsde_case(item)):
            dropped.append(item)
            continue
        keep.append(item)
        key = (_RUN.noise, path.name, test)
        expected = EXPECTED_FAILURES.get(key)
        if expected is not None:
            matched.add(key)
            item.add_marker(pytest.mark.xfail(strict=True, raises=expected.exception, reason=expected.reason))
    # A declared failure that matches no test of a file that was collected: SB3 renamed it; update the table.
    stale = [k for k in EXPECTED_FAILURES if k[0] == _RUN.noise and k[1] in files_seen and k not in matched]
    if stale:
        raise pytest.UsageError(f"EXPECTED_FAILURES of tests/sb3/sb3_adapter.py name tests SB3 no longer has: {stale}")
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(autouse=True)
def _lattice_policies(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SB3's algorithms build this package's policies from their policy names during each test."""
    for algo, swaps in POLICY_SWAPS.items():
        for name, cls in swaps.items():
            monkeypatch.setitem(algo.policy_aliases, name, cls)
    _RUN.test = request.node
    yield
    _RUN.test = None


def _outcome(report: pytest.TestReport) -> str | None:
    """The outcome a report stands for (one per test), or None for the reports of other phases."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.when == "call" or report.outcome != "passed":  # a setup that skips or fails, a failing teardown
        return "error" if report.failed and report.when != "call" else report.outcome
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Per file: the tests that passed (and how many of them built this package's policy), xfailed, skipped."""
    counts: dict[str, Counter[str]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if not isinstance(report, pytest.TestReport):
                continue
            outcome = _outcome(report)
            if outcome is None:
                continue
            tally = counts.setdefault(Path(report.location[0]).name, Counter())
            tally[outcome] += 1
            if outcome == "passed" and any(tuple(prop) == BUILT for prop in report.user_properties):
                tally[POLICY_PASSED] += 1
    terminalreporter.section(f"SB3 {_RUN.sb3_dir.name}'s tests with noise={_RUN.noise}")
    for name, tally in sorted(counts.items()):
        terminalreporter.line(f"{name}: " + ", ".join(f"{tally[k]} {k}" for k in OUTCOMES if tally[k]))
    report_path = config.getoption("--sb3-report")
    if report_path is not None:
        report_path.write_text(json.dumps({name: dict(tally) for name, tally in counts.items()}))
