#!/usr/bin/env python3
"""Writes notebooks/evaluation.ipynb (nbformat v4, no outputs) from the cells below.

    python3 notebooks/make_evaluation_notebook.py [--out notebooks/evaluation.ipynb]

Edit the cells here, not in the .ipynb, and regenerate, so the notebook stays reviewable.
"""

import argparse
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """\
# thingward detector evaluation

Reads the JSON that `thingward eval --out DIR` writes (`DIR/eval.json`) and plots:

- **(a)** precision and recall per detector, one panel per level (`LOW`, `MEDIUM`, `HIGH`, or `rule`
  for the Rules baselines and external detectors);
- **(b)** calibration: observed per-datapoint false-positive rate on clean devices against the level's
  target, log–log, with the ideal y = x line and the [0.5, 2]× band;
- **(c)** recall per attack class.

Set `EVAL_JSON` below and run all cells. See `notebooks/README.md` for producing the file."""),
    ("code", """\
# Path of thingward eval's output (DIR/eval.json).
EVAL_JSON = "eval-out/eval.json"
# Where to save the figures (None: only show them).
FIG_DIR = None"""),
    ("code", """\
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

LEVEL_ORDER = ["LOW", "MEDIUM", "HIGH", "rule"]
SCALARS = ["fpr", "target_fpr", "precision", "recall", "f1",
           "alarms_per_1000_device_days", "benign_false_alarms"]


def records(doc):
    \"\"\"(detector, level, result) triples from the accepted layouts of eval.json:
    {"results": [{"detector", "level", ...}]} (what thingward eval writes), a bare list of such
    records, or a nested {detector: {level: {...}}} mapping (optionally under "detectors").\"\"\"
    if isinstance(doc, dict) and "results" in doc:
        doc = doc["results"]
    elif isinstance(doc, dict) and "detectors" in doc:
        doc = doc["detectors"]
    if isinstance(doc, list):
        for r in doc:
            yield r["detector"], r.get("level", "rule"), r
    else:
        for detector, levels in doc.items():
            for level, r in levels.items():
                yield detector, level, r


doc = json.loads(Path(EVAL_JSON).read_text())
level_rows, class_rows = [], []
for detector, level, r in records(doc):
    level_rows.append({"detector": detector, "level": level,
                       **{k: r.get(k) for k in SCALARS}})
    for c in r.get("classes", []):
        class_rows.append({"detector": detector, "level": level, **c})

schema = {"detector": pl.String, "level": pl.String, **{k: pl.Float64 for k in SCALARS}}
levels = pl.DataFrame(level_rows, schema=schema)
classes = pl.DataFrame(class_rows, schema={
    "detector": pl.String, "level": pl.String, "class": pl.String, "events": pl.Int64,
    "detected": pl.Int64, "recall": pl.Float64, "f1": pl.Float64,
    "ttd_median": pl.Float64, "ttd_p90": pl.Float64})
level_rank = {l: i for i, l in enumerate(LEVEL_ORDER)}
levels = levels.sort(pl.col("level").replace_strict(level_rank, default=len(LEVEL_ORDER)), "detector")
if isinstance(doc, dict):
    print({k: v for k, v in doc.items() if k not in ("results", "detectors")})
levels"""),
    ("code", """\
def save(fig, name):
    if FIG_DIR:
        Path(FIG_DIR).mkdir(parents=True, exist_ok=True)
        fig.savefig(Path(FIG_DIR) / name, dpi=150, bbox_inches="tight")"""),
    ("md", "## (a) Precision and recall per level"),
    ("code", """\
present = [l for l in LEVEL_ORDER if l in levels["level"].to_list()]
present += sorted(set(levels["level"].to_list()) - set(present))
fig, axes = plt.subplots(1, len(present), figsize=(4.5 * len(present), 4), squeeze=False,
                         sharey=True)
for ax, level in zip(axes[0], present):
    sub = levels.filter(pl.col("level") == level)
    x = np.arange(sub.height)
    ax.bar(x - 0.2, sub["precision"].fill_null(0).to_numpy(), 0.4, label="precision")
    ax.bar(x + 0.2, sub["recall"].fill_null(0).to_numpy(), 0.4, label="recall")
    for xi, f1 in zip(x, sub["f1"].to_list()):
        if f1 is not None:
            ax.annotate(f"F1 {f1:.2f}", (xi, 1.02), ha="center", fontsize=8)
    ax.set_xticks(x, sub["detector"].to_list(), rotation=30, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"level {level}")
    ax.grid(axis="y", alpha=0.3)
axes[0][0].set_ylabel("episode-level score")
axes[0][0].legend(loc="upper left")
fig.tight_layout()
save(fig, "precision_recall.png")
plt.show()"""),
    ("md", """\
## (b) Calibration: observed vs target false-positive rate

Each point is one (detector, level) with a target. An observed rate of 0 cannot be drawn on a log
axis; such points are drawn at the bottom of the plot as hollow triangles."""),
    ("code", """\
cal = levels.filter(pl.col("target_fpr").is_not_null() & (pl.col("target_fpr") > 0))
if cal.height == 0:
    print("No level has a target false-positive rate (only rule/external detectors): nothing to calibrate.")
else:
    targets = cal["target_fpr"].to_numpy()
    observed = cal["fpr"].fill_null(0).to_numpy()
    positive = observed[observed > 0]
    lo = min(targets.min(), positive.min() if positive.size else targets.min()) / 5
    hi = max(targets.max(), observed.max()) * 5
    floor = lo * 1.5
    fig, ax = plt.subplots(figsize=(5.5, 5))
    line = np.array([lo, hi])
    ax.fill_between(line, line * 0.5, line * 2, color="tab:green", alpha=0.15, label="[0.5, 2]× target")
    ax.plot(line, line, "k--", lw=1, label="observed = target")
    markers = dict(zip(sorted(set(cal["level"].to_list()), key=lambda l: level_rank.get(l, 9)), "osD^vp"))
    colors = {d: f"C{i}" for i, d in enumerate(sorted(set(cal["detector"].to_list())))}
    for row in cal.iter_rows(named=True):
        zero = not row["fpr"]
        ax.scatter(row["target_fpr"], floor if zero else row["fpr"],
                   marker="v" if zero else markers[row["level"]],
                   facecolors="none" if zero else colors[row["detector"]],
                   edgecolors=colors[row["detector"]], s=60, zorder=3)
    for d, c in colors.items():
        ax.scatter([], [], color=c, label=d)
    for l, m in markers.items():
        ax.scatter([], [], marker=m, color="grey", label=l)
    ax.set_xscale("log"); ax.set_yscale("log")
    ax.set_xlim(lo, hi); ax.set_ylim(lo, hi)
    ax.set_xlabel("target false-positive rate (per datapoint)")
    ax.set_ylabel("observed false-positive rate (clean devices)")
    ax.grid(which="both", alpha=0.2)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save(fig, "calibration.png")
    plt.show()
    display(cal.select("detector", "level", "target_fpr", "fpr",
                       (pl.col("fpr") / pl.col("target_fpr")).alias("observed/target")))"""),
    ("md", "## (c) Recall per attack class"),
    ("code", """\
if classes.height == 0:
    print("No per-class results in the file.")
else:
    class_names = sorted(set(classes["class"].to_list()))
    series = classes.select("detector", "level").unique(maintain_order=True).rows()
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(min(16, 4 + 0.25 * len(class_names) * len(series)), 4.5))
    x = np.arange(len(class_names))
    for i, (detector, level) in enumerate(series):
        sub = classes.filter((pl.col("detector") == detector) & (pl.col("level") == level))
        recall = dict(zip(sub["class"].to_list(), sub["recall"].fill_null(0).to_list()))
        ax.bar(x - 0.4 + width * (i + 0.5), [recall.get(c, 0) for c in class_names], width,
               label=detector if level == "rule" else f"{detector} {level}")
    ax.set_xticks(x, class_names, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall (events detected / events)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    save(fig, "class_recall.png")
    plt.show()"""),
    ("md", "### Per-class detail (time to detect in datapoints from onset)"),
    ("code", """\
classes.sort("class", "detector", pl.col("level").replace_strict(level_rank, default=9))"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02}"  # stable ids: regenerating gives the same file
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("evaluation.ipynb"))
    a = p.parse_args()
    nb = build()
    nbformat.validate(nb)
    a.out.write_text(nbformat.writes(nb), encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
