#!/usr/bin/env python3
"""Python anomaly-detection baselines for `thingward eval`.

Reads a data directory written by `thingward generate` (history Parquet partitions plus
labels.json), trains one model per ML metric on the training span and writes every flagged
test-span datapoint as `thing,metric,timestamp` (epoch ms), the CSV that
`thingward eval --detector external:NAME=ALARMS.csv` reads.

    python3 notebooks/baselines.py --data DIR --detector isolation-forest --out iforest.csv
    python3 notebooks/baselines.py --data DIR --detector half-space-trees --out hst.csv

Features of a datapoint (thing d, metric m, value v, time t), all per metric:

    x        = log1p(max(v, 0))
    med      = median of x over d's training-span datapoints of m (the fleet median of m for a
               device with none)
    resid    = x - med          (how far d is from its own usual level: makes a device sending
                                 1 kB per slot comparable with one sending 1 MB)
    hsin, hcos = sin/cos(2π · UTC hour-of-day / 24)

isolation-forest: scikit-learn IsolationForest (100 trees, 256 samples per tree) fit on the
    training span; a datapoint is flagged when its score is below the training span's 1e-3
    quantile, i.e. the threshold is set so ~1e-3 of training datapoints are flagged — the
    per-datapoint false-positive target of thingward's LOW level. (Ties at the threshold are
    not flagged, so metrics with few distinct values flag fewer.)
half-space-trees: River HalfSpaceTrees (10 trees, height 8) on features min-max scaled by
    River's MinMaxScaler. Both learn online through the training span in time order (scored
    prequentially: score, then learn); the scaler is then frozen (so an attack cannot stretch
    the scale) and the trees keep learning through the test span. Two departures from River's
    defaults, both because the stream interleaves the whole fleet: the window (the reference
    mass) is one day of the learning stream rather than 250 datapoints (otherwise the reference
    covers only the last minutes and the hour-of-day features make every other hour look
    anomalous), and the trees' workspace is [0, 2] per scaled feature rather than [0, 1] (so a
    value above the training range falls in an empty leaf instead of sharing the top leaf with
    normal data; downward excursions are not separated that way). Threshold: the 99.9th
    percentile of the training-span scores after a warm-up (the first window, while there is no
    reference mass yet, or 5 % if more). A feature whose training range is zero is scaled as
    0.5 + (x - min) instead of River's constant 0.

Bounded memory: each metric is handled separately; its training rows are subsampled to at most
--max-train-rows (default 200,000) with a deterministic hash of (thing, ts), the device medians
use the whole training span (one float per datapoint of one metric), and the test span is
scored one UTC day at a time. Half-space trees learn in the test span on the same hash
subsample (same density as in training) but score every datapoint.

Deterministic for a given --seed and library versions (--jobs does not change the output).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

#: The 13 ML-capable built-in metrics (models/src/metric.rs, `ml: true`).
ML_METRICS = [
    "aws:all-bytes-in",
    "aws:all-bytes-out",
    "aws:all-packets-in",
    "aws:all-packets-out",
    "aws:message-byte-size",
    "aws:num-authorization-failures",
    "aws:num-connection-attempts",
    "aws:num-disconnects",
    "aws:num-established-tcp-connections",
    "aws:num-listening-tcp-ports",
    "aws:num-listening-udp-ports",
    "aws:num-messages-received",
    "aws:num-messages-sent",
]

DETECTORS = ("isolation-forest", "half-space-trees")
DAY_MS = 86_400_000
#: Per-datapoint false-positive target of the LOW level, used as the training flag rate.
TARGET_RATE = 1e-3
FEATURES = ["x", "med", "resid", "hsin", "hcos"]
HASH_SPACE = 1 << 32
#: Half-space trees' workspace per scaled feature: the training range is [0, 1], so values above
#: anything seen in training land in leaves that training never filled.
HST_LIMITS = (0.0, 2.0)


@dataclass
class Config:
    data: Path
    detector: str
    seed: int
    max_train_rows: int
    training_end_ms: int
    days: list[int]  # UTC day starts (ms) of the test span


@dataclass
class MetricResult:
    metric: str
    train_rows: int = 0
    train_used: int = 0
    train_flag_rate: float = 0.0
    threshold: float = float("nan")
    test_rows: int = 0
    flagged: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0


def scan(data: Path) -> pl.LazyFrame:
    return pl.scan_parquet(
        f"{data}/history/partitions/date=*/*.parquet", hive_partitioning=True
    )


def numeric(lf: pl.LazyFrame, metric: str) -> pl.LazyFrame:
    """A metric's numeric datapoints as (thing, ts ms, x = log1p(value))."""
    return lf.filter(
        (pl.col("metric") == metric) & pl.col("value").is_not_null()
    ).select(
        "thing",
        pl.col("ts").dt.epoch("ms").alias("ts"),
        pl.col("value").clip(lower_bound=0.0).log1p().alias("x"),
        pl.col("date"),
    )


def keep_expr(seed: int, fraction: float) -> pl.Expr:
    """Deterministic row subsample: hash of (thing, ts) below fraction of the hash space."""
    if fraction >= 1.0:
        return pl.lit(True)
    bound = int(fraction * HASH_SPACE)
    return (pl.struct("thing", "ts").hash(seed) % HASH_SPACE) < bound


def features(df: pl.DataFrame, medians: pl.DataFrame, fleet_median: float) -> pl.DataFrame:
    hour = (pl.col("ts") % DAY_MS).cast(pl.Float64) / DAY_MS * (2 * math.pi)
    return (
        df.join(medians, on="thing", how="left")
        .with_columns(pl.col("med").fill_null(fleet_median))
        .with_columns(
            (pl.col("x") - pl.col("med")).alias("resid"),
            hour.sin().alias("hsin"),
            hour.cos().alias("hcos"),
        )
        .sort("ts", "thing")
    )


def run_metric(args: tuple[Config, int, str]) -> MetricResult:
    cfg, index, metric = args
    started = time.perf_counter()
    res = MetricResult(metric)
    seed = cfg.seed * 1000 + index
    lf = numeric(scan(cfg.data), metric)
    train = lf.filter(pl.col("ts") < cfg.training_end_ms)

    stats = (
        train.group_by("thing")
        .agg(pl.col("x").median().alias("med"), pl.len().alias("n"))
        .collect(engine="streaming")
    )
    res.train_rows = int(stats["n"].sum()) if stats.height else 0
    if res.train_rows == 0:
        res.seconds = time.perf_counter() - started
        return res
    medians = stats.select("thing", "med")
    fleet_median = float(
        train.select(pl.col("x").median()).collect(engine="streaming").item()
    )
    fraction = min(1.0, cfg.max_train_rows / res.train_rows)
    sample = train.filter(keep_expr(seed, fraction)).collect(engine="streaming")
    if sample.height > cfg.max_train_rows:
        sample = sample.sample(cfg.max_train_rows, seed=seed)
    sample = features(sample, medians, fleet_median)
    res.train_used = sample.height
    X_train = sample.select(FEATURES).to_numpy()

    def test_days():
        for day in cfg.days:
            date = dt.datetime.fromtimestamp(day / 1000, dt.timezone.utc).date()
            df = (
                lf.filter(
                    (pl.col("date") == date) & (pl.col("ts") >= cfg.training_end_ms)
                )
                .collect(engine="streaming")
            )
            if df.height:
                df = features(df, medians, fleet_median)
                keep = df.select(keep_expr(seed, fraction).alias("k"))["k"] if fraction < 1 else None
                yield df, keep

    if cfg.detector == "isolation-forest":
        from sklearn.ensemble import IsolationForest

        model = IsolationForest(n_estimators=100, max_samples=256, random_state=seed)
        model.fit(X_train)
        train_scores = model.score_samples(X_train)  # lower = more anomalous
        res.threshold = float(np.quantile(train_scores, TARGET_RATE))
        res.train_flag_rate = float(np.mean(train_scores < res.threshold))
        for df, _ in test_days():
            scores = model.score_samples(df.select(FEATURES).to_numpy())
            hit = scores < res.threshold
            res.test_rows += df.height
            res.flagged.extend(
                zip(df["thing"].filter(pl.Series(hit)).to_list(),
                    df["ts"].filter(pl.Series(hit)).to_list())
            )
    else:
        from river import anomaly, preprocessing

        days_span = max(1.0, (int(sample["ts"].max()) - int(sample["ts"].min())) / DAY_MS)
        window = max(250, round(len(X_train) / days_span))  # one day of the learning stream
        scaler = preprocessing.MinMaxScaler()
        hst = anomaly.HalfSpaceTrees(
            n_trees=10, height=8, window_size=window, seed=seed,
            limits={f: HST_LIMITS for f in FEATURES},
        )
        scores = np.empty(len(X_train))
        for i, row in enumerate(X_train):
            x = dict(zip(FEATURES, row.tolist()))
            scaler.learn_one(x)
            xs = scaler.transform_one(x)
            scores[i] = hst.score_one(xs)
            hst.learn_one(xs)
        warmup = max(window, len(scores) // 20)
        ref = scores[warmup:] if len(scores) > warmup + 100 else scores
        res.threshold = float(np.quantile(ref, 1 - TARGET_RATE))
        res.train_flag_rate = float(np.mean(ref > res.threshold))
        lo = np.array([scaler.min[f].get() for f in FEATURES])
        hi = np.array([scaler.max[f].get() for f in FEATURES])
        span = hi - lo
        flat = span <= 0
        for df, keep in test_days():
            X = df.select(FEATURES).to_numpy()
            Xs = np.where(flat, 0.5 + (X - lo), (X - lo) / np.where(flat, 1.0, span))
            learn = keep.to_numpy() if keep is not None else np.ones(len(X), dtype=bool)
            hit = np.empty(len(X), dtype=bool)
            for i, row in enumerate(Xs):
                xs = dict(zip(FEATURES, row.tolist()))
                hit[i] = hst.score_one(xs) > res.threshold
                if learn[i]:
                    hst.learn_one(xs)
            res.test_rows += df.height
            res.flagged.extend(
                zip(df["thing"].filter(pl.Series(hit)).to_list(),
                    df["ts"].filter(pl.Series(hit)).to_list())
            )
    res.seconds = time.perf_counter() - started
    return res


def load_training_end(data: Path, labels_path: Path | None) -> tuple[int, int]:
    path = labels_path or data / "labels.json"
    with open(path, encoding="utf-8") as f:
        labels = json.load(f)
    start = labels.get("startMs", labels.get("start_ms"))
    end = labels.get("trainingEndMs", labels.get("training_end_ms"))
    if end is None:
        end = start + 14 * DAY_MS
    return int(end), int(labels.get("endMs", labels.get("end_ms")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="data directory (history/ + labels.json)")
    p.add_argument("--detector", choices=DETECTORS, required=True)
    p.add_argument("--out", type=Path, required=True, help="alarms CSV to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", type=Path, help="labels file (default DATA/labels.json)")
    p.add_argument("--max-train-rows", type=int, default=200_000,
                   help="training rows per metric, subsampled beyond (default 200000)")
    p.add_argument("--jobs", type=int, default=min(2, multiprocessing.cpu_count()),
                   help="metrics trained in parallel (output does not depend on it)")
    p.add_argument("--metrics", help="comma-separated subset of the 13 ML metrics")
    a = p.parse_args(argv)

    started = time.perf_counter()
    training_end, end = load_training_end(a.data, a.labels)
    metrics = ML_METRICS if not a.metrics else a.metrics.split(",")
    unknown = set(metrics) - set(ML_METRICS)
    if unknown:
        p.error(f"not ML metrics: {sorted(unknown)}")
    first_day = training_end - training_end % DAY_MS
    days = list(range(first_day, end, DAY_MS))
    cfg = Config(a.data, a.detector, a.seed, a.max_train_rows, training_end, days)
    work = [(cfg, ML_METRICS.index(m), m) for m in metrics]
    print(f"{a.detector}: {len(metrics)} metrics, training before {training_end} ms, "
          f"{len(days)} test day(s), jobs={a.jobs}", file=sys.stderr)
    if a.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(a.jobs) as pool:
            results = pool.map(run_metric, work, chunksize=1)
    else:
        results = [run_metric(w) for w in work]

    rows = sorted((thing, r.metric, ts) for r in results for thing, ts in r.flagged)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["thing", "metric", "timestamp"])
        w.writerows(rows)

    print(f"{'metric':38} {'train':>9} {'used':>8} {'train-flag':>10} {'test':>9} "
          f"{'flagged':>8} {'rate':>8} {'s':>7}", file=sys.stderr)
    for r in results:
        rate = len(r.flagged) / r.test_rows if r.test_rows else 0.0
        print(f"{r.metric:38} {r.train_rows:9} {r.train_used:8} {r.train_flag_rate:10.2e} "
              f"{r.test_rows:9} {len(r.flagged):8} {rate:8.1e} {r.seconds:7.1f}", file=sys.stderr)
    test_rows = sum(r.test_rows for r in results)
    print(f"{a.detector}: flagged {len(rows)} of {test_rows} test datapoints "
          f"({len(rows) / max(test_rows, 1):.1e}) in {time.perf_counter() - started:.1f} s "
          f"-> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
