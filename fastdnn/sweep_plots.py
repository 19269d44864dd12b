"""A sweep's plots (``fastdnn sweep --plot``): every configuration's cost curve, and each swept
hyperparameter's effect on accuracy and on time. Needs matplotlib (``fastdnn[plot]``)."""

import io
import os

import numpy as np

from fastdnn.sweep_workers import TRAIN_SIZE
from fastdnn.sweeps import value_text

# Scores drawn on an effect's accuracy panel, each with its line style.
SCORE_STYLES = (("train", "--"), ("validation", "-o"), ("test", "-s"))
# Drawn on a log scale where every value is positive: their grids span decades.
LOG_SCALED = ("learning_rate", "l2")
LEGEND_MAX = 12  # more cost curves than this are drawn without a legend, which would cover them


def plot(results, folder):
    """PNGs in ``folder``: every configuration's cost curve overlaid (costs.png), and for each swept
    hyperparameter its effect on accuracy and on time per run, averaged over the other hyperparameters
    (effect-NAME.png; for train_size, the learning curve). Returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    trained = [r for r in results.rows if not r.get("error")]
    if not trained:
        return []
    paths = [_save(_costs(results, trained), folder, "costs.png")]
    for name in results.names:
        paths.append(_save(_effect(name, trained), folder, f"effect-{name}.png"))
    return paths


def _figure(figsize, rows=1, columns=1):
    """A figure on its own Agg canvas, and its axes: pyplot would pick (or, through matplotlib.use, change)
    the program's backend, which belongs to the caller."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, columns)


def _save(fig, folder, name):
    """``fig`` as the PNG ``name`` in ``folder``, replaced atomically; its path."""
    from fastdnn.files import atomic_write

    path = os.path.join(folder, name)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def _costs(results, trained):
    """The mean cost curve of each trained configuration (over its runs, as long as the shortest)."""
    fig, ax = _figure((8, 5))
    for row in trained:
        curves = results.curves[row["configuration"]]
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        ax.plot(np.arange(1, length + 1), mean, lw=1,
                label=", ".join(f"{n}={value_text(row[n])}" for n in results.names))
    ax.set(xlabel="epoch", ylabel="cost", title=f"cost curves of {len(trained)} configurations", yscale="log")
    if len(trained) <= LEGEND_MAX:
        ax.legend(fontsize=7)
    return fig


def _effect(name, trained):
    """The swept hyperparameter ``name``'s effect: accuracy (left) and seconds per run (right) at each of its
    values, over the trained configurations that have it."""
    values, numeric = _values(name, trained)
    x = np.array(values, float) if numeric else np.arange(len(values))
    fig, (acc, tim) = _figure((11, 4.2), 1, 2)
    for score, style in SCORE_STYLES:
        _score_bars(acc, x, [[r[f"{score}_mean"] for r in trained if r[name] == v and r[f"{score}_mean"] is not None]
                             for v in values], style, score)
    tim.plot(x, [np.mean([r["seconds_mean"] for r in trained if r[name] == v]) for v in values], "-o")
    for ax in (acc, tim):
        _x_axis(ax, name, x, values, numeric)
    tim.set_ylim(bottom=0)
    acc.set(ylabel="accuracy: mean over the other values (bars: range)",
            title="learning curve" if name == TRAIN_SIZE else f"{name}: accuracy")
    if acc.get_legend_handles_labels()[0]:
        acc.legend(fontsize=8)
    tim.set(ylabel="seconds per run", title=f"{name}: training time")
    return fig


def _values(name, trained):
    """(values, numeric): the values of ``name`` the trained configurations hold, in order of appearance, or
    sorted where they are numbers on one scale (fractions and counts of examples mixed are not)."""
    values = []
    for row in trained:
        if row[name] not in values:
            values.append(row[name])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and not (
        name == TRAIN_SIZE and len({type(v) for v in values}) > 1)
    if numeric:
        values.sort()
    return values, numeric


def _score_bars(ax, x, scores, style, label):
    """At each x the mean of its ``scores``, a bar spanning their range; nothing where no x has one."""
    means = np.array([np.mean(got) if got else np.nan for got in scores])
    if np.all(np.isnan(means)):
        return
    lows = np.array([np.min(got) if got else np.nan for got in scores])
    highs = np.array([np.max(got) if got else np.nan for got in scores])
    ax.errorbar(x, means, yerr=[means - lows, highs - means], fmt=style, capsize=3, label=label)


def _x_axis(ax, name, x, values, numeric):
    """The axis of ``name``'s values: their text where they are not numbers, a log scale for a rate."""
    if not numeric:
        ax.set_xticks(x, [value_text(v) for v in values])
    elif name in LOG_SCALED and min(values) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(name + (" (fraction or count of the training examples)" if name == TRAIN_SIZE else ""))
