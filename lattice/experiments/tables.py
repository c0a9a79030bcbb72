"""Report tables as Markdown (``final.md``): ``estimate [low, high]`` per metric, each seed's value beside it, from
the tables of ``stats``; and the sentences that say what their intervals are."""

from __future__ import annotations

import pandas as pd

from lattice.experiments.stats import (
    COMPARED,
    ENERGY_LABELS,
    INTERVALS,
    METRICS,
    RESAMPLES,
    RUN_STATISTICS,
    START,
    SUCCESS_BIN_LABELS,
)

# What the intervals of each statistic are, under the tables of final.md.
FINAL_NOTE = {
    "mean": "Intervals: the mean over seeds ± t₀.₉₇₅,ₙ₋₁ · s / √n (Student's t, s the seeds' standard deviation).",
    "iqm": f"Intervals: rliable's stratified bootstrap of the interquartile mean ({RESAMPLES:,} resamples of the "
    "seeds; at 3–5 seeds narrower than 95% coverage: --statistic mean gives intervals that hold there).",
}
COMPARISON_NOTE = {
    "mean": "differences of means with Welch's t-interval and p-value; energies' relative change with Fieller's "
    "interval for the ratio of means",
    "iqm": "differences and relative changes of the IQM with rliable's stratified bootstrap interval (each group's "
    "seeds resampled)",
}


def markdown_table(table: pd.DataFrame, statistic: str = "mean") -> str:
    """The final-value table as markdown: ``estimate [low, high]`` per metric, each seed's value (in seed order)
    beside those of ``stats.PER_SEED``, the number of seeds; then what the intervals are."""
    columns = [c for c in (*METRICS, *RUN_STATISTICS) if c in table]
    header = ["env", "algo", "noise", "seeds", "steps", *_metric_header(table, columns, statistic)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [row["env"], row["algo"], row["noise"], str(row["seeds"]), f"{row['timesteps']:,}"]
        cells += _metric_cells(table, row, columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{FINAL_NOTE[statistic]} Per seed: each seed's value, in seed order.\n"


def comparison_note(baseline: str, statistic: str) -> str:
    """The sentence above the comparison table: what its numbers and intervals are."""
    return (
        f"Against {baseline} noise (final evaluations; {COMPARISON_NOTE[statistic]}; P(… > baseline): rliable's "
        "probability of improvement, the chance that a seed of the noise beats a seed of the baseline, ties counting "
        "half, with its stratified bootstrap interval):\n"
    )


def markdown_comparison(comparison: pd.DataFrame, statistic: str = "mean") -> str:
    """The comparison table as markdown: return and success as differences (with the probability of improvement),
    energies as relative changes; Welch's p-value beside each of the mean's intervals."""
    columns = [(c, how) for c, how in COMPARED if c in comparison]
    names = {"difference": "− baseline", "relative": "change vs baseline"}
    header = ["env", "algo", "noise", "vs", "seeds"]
    for c, how in columns:
        header.append(f"{c} {names[how]} ({statistic}, 95% CI)")
        if f"{c}_poi" in comparison:
            header.append(f"P({c} > baseline)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in comparison.iterrows():
        cells = [row["env"], row["algo"], row["noise"], row["baseline"], row["seeds"]]
        for c, how in columns:
            cells.append(_change_cell(row, c, how))
            if f"{c}_poi" in comparison:
                cells.append(_estimate_cell(row, f"{c}_poi", digits=2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _change_cell(row: pd.Series, column: str, how: str) -> str:
    """A comparison's ``change [low, high]`` (relative changes in %, differences to 2 decimals for return and 3 for
    the rest) and its p-value where there is one; empty without a value."""
    value = row.get(column)
    if value is None or pd.isna(value):
        return ""
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    if how == "relative":
        cell = f"{100 * value:+.0f}%" + ("" if pd.isna(low) else f" [{100 * low:+.0f}%, {100 * high:+.0f}%]")
    else:
        digits = 2 if column == "return" else 3
        cell = f"{value:+.{digits}f}" + ("" if pd.isna(low) else f" [{low:+.{digits}f}, {high:+.{digits}f}]")
    p = row.get(f"{column}_p")
    return cell + ("" if p is None or pd.isna(p) else f" p={p:.2g}")


def _estimate_cell(row: pd.Series, column: str, digits: int | None = None) -> str:
    """``estimate [low, high]`` of ``column`` in a table row (return to 2 decimals, the rest to 4, unless
    ``digits``); the estimate alone without an interval, and an empty cell without a value."""
    value = row.get(column)
    if value is None or pd.isna(value):
        return ""
    digits = digits if digits is not None else 2 if column == "return" else 4
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    return f"{value:.{digits}f}" + ("" if pd.isna(low) else f" [{low:.{digits}f}, {high:.{digits}f}]")


def _metric_header(table: pd.DataFrame, columns: list[str], statistic: str) -> list[str]:
    """The headers of ``columns``: the estimate with its interval, then each seed's value where the table has them
    (``stats.PER_SEED``)."""
    header = []
    for c in columns:
        header += [f"{c} ({statistic}, 95% CI)"] + ([f"{c} per seed"] if f"{c}_per_seed" in table else [])
    return header


def _metric_cells(table: pd.DataFrame, row: pd.Series, columns: list[str]) -> list[str]:
    """The cells of ``columns`` in a row, as ``_metric_header`` names them; each seed's values comma-separated."""
    cells = []
    for c in columns:
        cells.append(_estimate_cell(row, c))
        if f"{c}_per_seed" in table:
            values = row[f"{c}_per_seed"]
            cells.append("" if pd.isna(values) else ", ".join(str(values).split()))
    return cells


def markdown_energy(table: pd.DataFrame) -> str:
    """The energy-by-success table as markdown: a row per env × algo × noise, a column per success bin."""
    if table.empty:
        return ""
    label = ENERGY_LABELS[METRICS[table["energy"].iloc[0]][0]]
    started = START in set(table["success_bin"])
    columns = [START, *SUCCESS_BIN_LABELS] if started else list(SUCCESS_BIN_LABELS)
    header = ["env", "algo", "noise", *(c if c == START else f"success {c}" for c in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (env, algo, noise), group in table.groupby(["env", "algo", "noise"], sort=True):
        cells = {
            row.success_bin: f"{row.mean:.4f} ({row.evaluations} evals, {row.runs} runs)" for row in group.itertuples()
        }
        lines.append("| " + " | ".join([env, algo, noise, *(cells.get(c, "") for c in columns)]) + " |")
    intro = f"Mean {label} by success rate (every evaluation of every run after step 0"
    intro += "; step 0: the untrained policies)" if started else "; these runs were not evaluated at step 0)"
    return f"{intro}:\n\n" + "\n".join(lines) + "\n"


def markdown_windows(table: pd.DataFrame, statistic: str = "mean") -> str:
    """The window table as markdown: a row per env × algo × noise × span, ``estimate [low, high]`` per metric and
    each seed's mean beside those of ``stats.PER_SEED``."""
    columns = [c for c in METRICS if c in table]
    header = ["env", "algo", "noise", "steps", "seeds", *_metric_header(table, columns, statistic)]
    if "with_success" in table:
        header.append("evaluations with success > 0")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        steps = f"{row['first_step']:,}-{row['last_step']:,}"
        cells = [row["env"], row["algo"], row["noise"], steps, str(row["seeds"]), *_metric_cells(table, row, columns)]
        if "with_success" in table:
            cells.append("" if pd.isna(row["with_success"]) else f"{int(row['with_success'])} of {row['evaluations']}")
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "Learning-curve windows (each run's mean over its evaluations in the span of steps, then across seeds; "
        f"{INTERVALS[statistic]}):\n\n" + "\n".join(lines) + "\n"
    )
