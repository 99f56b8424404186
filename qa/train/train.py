"""LoRA-adapt the bundled multilingual-e5-small to questions over Norwegian text, on CPU.

sentence-transformers' trainer with MultipleNegativesRankingLoss (in-batch negatives plus
one mined hard negative a question), e5's "query: " / "passage: " prompts kept, LoRA (peft)
on the attention and feed-forward projections of every layer: the result is an adapter of
a few MB (``qa.embedding.adapter`` merges it into the weights at load). The held-out texts
pick the best snapshot (hit@1 among their passages), measured before training too: when no
snapshot beats the base model, the report says so. bfloat16 autocast is used only where the
CPU has AMX or AVX512-BF16; elsewhere training runs in float32.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.train.data import Mined

#: The modules of each BERT layer that get LoRA matrices.
TARGETS = ("query", "key", "value", "dense")


@dataclass(frozen=True)
class TrainConfig:
    """What decides the adapter (stored beside it, so it can be made again)."""

    epochs: float = 1.0
    max_steps: int = -1  # > 0: stop after this many steps (smoke runs)
    batch_size: int = 32
    mini_batch: int = 16  # CachedMNRL: activations of 16 texts at a time, same loss
    learning_rate: float = 1e-4
    # e5 was trained at temperature 0.01: sentence-transformers' default scale 20 (0.05)
    # pulls its narrow band of cosines apart and the first run got worse while its loss fell
    scale: float = 100.0
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    max_seq_length: int = 256
    warmup_ratio: float = 0.1
    evals: int = 4  # held-out evaluations during training (plus one before)
    seed: int = 13


def cpu_has_bf16() -> bool:
    """AMX or AVX512-BF16: bfloat16 matmuls in hardware (elsewhere they are slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return any(f in flags.split() for f in ("amx_bf16", "avx512_bf16"))


def held_out_hit1(model: Any, mined: Mined, batch_size: int = 32) -> float:
    """Share of held-out questions whose best passage (among the held-out texts' passages)
    holds the answer."""
    if not mined.held_out or not mined.held_out_rows:
        return 0.0
    texts = [mined.passages[i].text for i in mined.held_out_rows]
    queries = [ex.question.question for ex in mined.held_out]
    p = model.encode(texts, prompt="passage: ", batch_size=batch_size, normalize_embeddings=True)
    q = model.encode(queries, prompt="query: ", batch_size=batch_size, normalize_embeddings=True)
    best = np.asarray(q) @ np.asarray(p).T
    top = [mined.held_out_rows[int(i)] for i in best.argmax(axis=1)]
    return float(
        np.mean([row in ex.positives for row, ex in zip(top, mined.held_out, strict=True)])
    )


def lora_state(model: Any) -> dict[str, Any]:
    """The LoRA matrices of a sentence-transformers model, named as in the BERT model."""
    out = {}
    for name, tensor in model[0].auto_model.state_dict().items():
        if ".lora_A." in name or ".lora_B." in name:
            out[name.replace(".default.", ".")] = tensor.detach().clone().float()
    return out


def save_adapter(state: dict[str, Any], out_dir: Path, config: TrainConfig, meta: dict) -> Path:
    """adapter_config.json (peft's keys), adapter_model.safetensors and how it was made."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    peft_config = {
        "peft_type": "LORA",
        "task_type": "FEATURE_EXTRACTION",
        "base_model_name_or_path": "intfloat/multilingual-e5-small",
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "target_modules": list(TARGETS),
        "bias": "none",
        "use_rslora": False,
        "fan_in_fan_out": False,
    }
    (out_dir / "adapter_config.json").write_text(json.dumps(peft_config, indent=2) + "\n")
    tensors = {k: v.contiguous() for k, v in sorted(state.items())}
    save_file(tensors, str(out_dir / "adapter_model.safetensors"), metadata={"format": "pt"})
    info = {"training": asdict(config)} | meta
    (out_dir / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def train_adapter(
    base_folder: Path,
    mined: Mined,
    out_dir: Path,
    config: TrainConfig,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, keep the best held-out snapshot, save it when it beats the base model.

    Returns the figures (held-out hit@1 before and at each evaluation, seconds, steps).
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
    )
    from transformers import TrainerCallback, set_seed

    t0 = time.perf_counter()
    random.seed(config.seed)
    set_seed(config.seed)
    model = SentenceTransformer(str(base_folder), device="cpu")
    model.max_seq_length = config.max_seq_length
    before = held_out_hit1(model, mined)
    say(f"held-out hit@1 of the base model: {before:.3f} ({len(mined.held_out)} questions)")
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(TARGETS),
        bias="none",
    )
    # peft directly: transformers' own add_adapter wants a newer peft than PyPI has
    model[0].auto_model = get_peft_model(model[0].auto_model, lora)  # type: ignore[arg-type]
    data = Dataset.from_dict(mined.triples())
    steps_per_epoch = max(1, len(data) // config.batch_size)
    total = config.max_steps if config.max_steps > 0 else int(steps_per_epoch * config.epochs)
    every = max(1, total // max(1, config.evals))
    bf16 = cpu_has_bf16()
    say(
        f"training on {len(data)} triples, {total} steps of {config.batch_size}, "
        f"{'bfloat16 autocast' if bf16 else 'float32'}; held-out check every {every} steps"
    )
    history: list[dict[str, float]] = [{"step": 0, "hit1": before}]
    best: dict[str, Any] = {"hit1": before, "step": 0, "state": None}

    class HeldOut(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step = state.global_step
            if step % every and step != total:
                return
            was_training = model.training
            model.eval()
            with torch.inference_mode():
                hit1 = held_out_hit1(model, mined)
            model.train(was_training)
            history.append({"step": step, "hit1": hit1})
            spent = time.perf_counter() - t0
            say(f"step {step}/{total}: held-out hit@1 {hit1:.3f} ({spent:.0f} s so far)")
            if hit1 > best["hit1"]:
                best.update(hit1=hit1, step=step, state=lora_state(model))

    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir / ".trainer"),
        num_train_epochs=config.epochs,
        max_steps=total,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        bf16=bf16,
        use_cpu=True,
        seed=config.seed,
        data_seed=config.seed,
        prompts={"anchor": "query: ", "positive": "passage: ", "negative": "passage: "},
        batch_sampler="no_duplicates",
        eval_strategy="no",
        save_strategy="no",
        logging_steps=max(1, every // 2),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=CachedMultipleNegativesRankingLoss(
            model, scale=config.scale, mini_batch_size=config.mini_batch
        ),
        callbacks=[HeldOut()],
    )
    trainer.train()
    seconds = time.perf_counter() - t0
    figures = {
        "held_out_hit1_before": before,
        "held_out_hit1_best": best["hit1"],
        "best_step": best["step"],
        "steps": total,
        "triples": len(data),
        "held_out_questions": len(mined.held_out),
        "held_out_texts": len(mined.held_out_texts),
        "seconds": round(seconds, 1),
        "history": history,
        "bf16": bf16,
    }
    if best["state"] is None:  # kept apart for the record, never where it would be used
        rejected = save_adapter(
            lora_state(model), out_dir / "rejected", config, {"figures": figures}
        )
        say(
            f"no snapshot beat the base model on the held-out texts ({before:.3f}): the last "
            f"one is in {rejected}, for measuring only"
        )
        figures["saved"] = False
        return figures
    save_adapter(best["state"], out_dir, config, {"figures": figures})
    figures["saved"] = True
    say(f"adapter of step {best['step']} saved in {out_dir} ({seconds:.0f} s in all)")
    return figures
