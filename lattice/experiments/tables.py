"""Report tables as Markdown (``final.md``): ``estimate [low, high]`` per metric, from the tables of ``stats``."""

from __future__ import annotations

import pandas as pd

from lattice.experiments.stats import COMPARED, ENERGY_LABELS, METRICS, RUN_STATISTICS, SUCCESS_BIN_LABELS


def markdown_table(table: pd.DataFrame, statistic: str = "mean") -> str:
    """The final-value table as markdown: ``estimate [low, high]`` per metric, the number of seeds."""
    columns = [c for c in (*METRICS, *RUN_STATISTICS) if c in table]
    header = ["env", "algo", "noise", "seeds", "steps", *[f"{c} ({statistic}, 95% CI)" for c in columns]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [row["env"], row["algo"], row["noise"], str(row["seeds"]), f"{row['timesteps']:,}"]
        cells += [_estimate_cell(row, c) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_comparison(comparison: pd.DataFrame, statistic: str = "mean") -> str:
    """The comparison table as markdown: return and success as differences, energies as relative changes."""
    columns = [(c, how) for c, how in COMPARED if c in comparison]
    names = {"difference": "− baseline", "relative": "change vs baseline"}
    header = ["env", "algo", "noise", "vs", "seeds"] + [f"{c} {names[how]} ({statistic}, 95% CI)" for c, how in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in comparison.iterrows():
        cells = [row["env"], row["algo"], row["noise"], row["baseline"], row["seeds"]]
        for c, how in columns:
            value = row.get(c)
            if value is None or pd.isna(value):
                cells.append("")
                continue
            low, high = row[f"{c}_low"], row[f"{c}_high"]
            if how == "relative":
                ci = "" if pd.isna(low) else f" [{100 * low:+.0f}%, {100 * high:+.0f}%]"
                cells.append(f"{100 * value:+.0f}%{ci}")
            else:
                digits = 2 if c == "return" else 3
                ci = "" if pd.isna(low) else f" [{low:+.{digits}f}, {high:+.{digits}f}]"
                cells.append(f"{value:+.{digits}f}{ci}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _estimate_cell(row: pd.Series, column: str) -> str:
    """``estimate [low, high]`` of ``column`` in a table row (return to 2 decimals, the rest to 4); the estimate alone
    without an interval, and an empty cell without a value."""
    value = row.get(column)
    if value is None or pd.isna(value):
        return ""
    digits = 2 if column == "return" else 4
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    return f"{value:.{digits}f}" + ("" if pd.isna(low) else f" [{low:.{digits}f}, {high:.{digits}f}]")


def markdown_energy(table: pd.DataFrame) -> str:
    """The energy-by-success table as markdown: a row per env × algo × noise, a column per success bin."""
    if table.empty:
        return ""
    label = ENERGY_LABELS[METRICS[table["energy"].iloc[0]][0]]
    header = ["env", "algo", "noise", *(f"success {b}" for b in SUCCESS_BIN_LABELS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (env, algo, noise), group in table.groupby(["env", "algo", "noise"], sort=True):
        cells = {
            row.success_bin: f"{row.mean:.4f} ({row.evaluations} evals, {row.runs} runs)" for row in group.itertuples()
        }
        lines.append("| " + " | ".join([env, algo, noise, *(cells.get(b, "") for b in SUCCESS_BIN_LABELS)]) + " |")
    return f"Mean {label} by success rate (every evaluation of every run):\n\n" + "\n".join(lines) + "\n"


def markdown_windows(table: pd.DataFrame, statistic: str = "mean") -> str:
    """The window table as markdown: a row per env × algo × noise × span, ``estimate [low, high]`` per metric."""
    columns = [c for c in METRICS if c in table]
    header = ["env", "algo", "noise", "steps", "seeds", *[f"{c} ({statistic}, 95% CI)" for c in columns]]
    if "with_success" in table:
        header.append("evaluations with success > 0")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        steps = f"{row['first_step']:,}-{row['last_step']:,}"
        cells = [row["env"], row["algo"], row["noise"], steps, str(row["seeds"])]
        cells += [_estimate_cell(row, c) for c in columns]
        if "with_success" in table:
            cells.append("" if pd.isna(row["with_success"]) else f"{int(row['with_success'])} of {row['evaluations']}")
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "Learning-curve windows (each run's mean over its evaluations in the span of steps, then across seeds):\n\n"
        + "\n".join(lines)
        + "\n"
    )
