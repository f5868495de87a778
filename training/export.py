"""After training: a merged copy of a LoRA run, and the push of an output directory to the Hub."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from training.chat_templates import TemplateSpec, write_format_marker

logger = logging.getLogger(__name__)

# Trainer state and optimizer files are for resuming, not for serving.
_NOT_PUSHED = ["checkpoint-*", "checkpoint-*/**", "*.pt", "*.pth", "runs/**", "training_args.bin"]


def export_merged(
    adapter_dir: Path, target: Path, spec: TemplateSpec, model_init_kwargs: dict[str, Any]
) -> Path:
    """Base model + the saved LoRA adapter, merged into plain weights any runtime (vLLM too) can load.

    Reloads from the saved adapter rather than merging the live model, so it works the same after
    ZeRO-3 (where the live weights are sharded across ranks).
    """
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    kwargs = {
        k: v
        for k, v in model_init_kwargs.items()
        if k in {"revision", "trust_remote_code", "dtype"} and v is not None
    }
    kwargs.pop("revision", None)  # the revision names the base model, not the adapter directory
    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), **kwargs)
    merged = model.merge_and_unload()
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(target)
    write_format_marker(target, spec)
    logger.info("merged model saved to %s", target)
    return target


def push_output_dir(output_dir: Path, repo_id: str | None, *, private: bool, token: str | None) -> str:
    """Upload the model, tokenizer, marker, data report and card (not the checkpoints) to ``repo_id``."""
    from huggingface_hub import HfApi

    if not repo_id:
        raise ValueError(
            "push_to_hub is set but hub_model_id is not; set hub_model_id: <org>/<name> in the recipe."
        )
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(output_dir),
        repo_type="model",
        ignore_patterns=_NOT_PUSHED,
        commit_message="Upload fine-tuned model (apigen-mt training/sft.py)",
    )
    logger.info("pushed %s to https://huggingface.co/%s", output_dir, repo_id)
    return repo_id
