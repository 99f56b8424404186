"""``qa train``: make the LoRA adapter of the bundled model again from a training folder.

Needs the ``train`` extra (``pip install -e '.[train]'``: peft, accelerate, datasets).
Mining uses the base model (never an adapter), so a run does not depend on the last one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from qa.cli_context import embedder_or_fail, fail, settings_or_fail


@click.command("train")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="Training folder: train.jsonl and sources/ (e.g. ../shared/norquad-train).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the adapter goes (adapter_config.json, adapter_model.safetensors).",
)
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--max-steps", type=int, default=-1, help="Stop after this many steps.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--lr", "learning_rate", type=float, default=1e-4, show_default=True)
@click.option(
    "--scale",
    type=float,
    default=100.0,
    show_default=True,
    help="Inverse temperature of the ranking loss (e5 was trained at 0.01, i.e. 100).",
)
@click.option("--rank", type=int, default=8, show_default=True, help="LoRA rank.")
@click.option("--max-seq-length", type=int, default=256, show_default=True)
@click.option("--limit", type=int, default=None, help="Use only the first N questions.")
@click.option("--seed", type=int, default=13, show_default=True)
def train_command(
    data_dir: Path,
    out_dir: Path,
    epochs: float,
    max_steps: int,
    batch_size: int,
    learning_rate: float,
    scale: float,
    rank: int,
    max_seq_length: int,
    limit: int | None,
    seed: int,
) -> None:
    """Train a LoRA adapter of the bundled model on questions with answer offsets.

    The training texts are indexed as `qa index` does (in --out/.work), hard negatives are
    mined from that index's dense and BM25 results, a tenth of the texts is held out to
    pick the best snapshot. Saved only when it beats the base model on the held-out texts.
    """
    from qa.config import BUNDLED_MODEL
    from qa.embedding.bundled import ensure_bundled_model
    from qa.train.data import prepare
    from qa.train.train import TrainConfig, train_adapter

    try:
        from qa.train.data import check_not_validation

        check_not_validation(data_dir)
    except ValueError as exc:
        fail(str(exc))
    if not (data_dir / "train.jsonl").is_file() or not (data_dir / "sources").is_dir():
        fail(f"{data_dir} needs train.jsonl and a sources/ folder")
    t0 = time.perf_counter()
    settings = settings_or_fail(model=BUNDLED_MODEL, backend="torch", model_adapter="none")
    say = lambda message: click.echo(f"[qa train] {message}", err=True)  # noqa: E731
    say(f"indexing {data_dir / 'sources'} and mining hard negatives")
    embedder = embedder_or_fail(settings)
    mined = prepare(data_dir, out_dir / ".work", settings, embedder, seed=seed, limit=limit)
    say(
        f"{len(mined.train)} training and {len(mined.held_out)} held-out questions "
        f"({len(mined.held_out_texts)} held-out texts), {time.perf_counter() - t0:.0f} s"
    )
    config = TrainConfig(
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        scale=scale,
        rank=rank,
        max_seq_length=max_seq_length,
        seed=seed,
    )
    base = ensure_bundled_model(settings.cache_dir)
    figures = train_adapter(base, mined, out_dir, config, say)
    figures["total_seconds"] = round(time.perf_counter() - t0, 1)
    say(f"done in {figures['total_seconds']:.0f} s")
    click.echo(json.dumps({k: v for k, v in figures.items() if k != "history"}))
