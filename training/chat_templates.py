"""The chat templates we train with, and the tool-call format each one speaks.

A template is a Jinja file in ``training/templates/`` with ``{% generation %}`` markers around
everything the assistant writes (text, tool calls, end-of-turn token), so TRL's
``assistant_only_loss`` puts the loss on exactly those tokens. The template is saved with every
checkpoint (tokenizer ``chat_template``) together with a marker file naming the tool-call format,
so the LLM runtime renders prompts and parses calls the same way the model was trained.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

TEMPLATE_DIR = Path(__file__).parent / "templates"
# Same file name and key the LLM runtime reads (datagen/llm/embedded.py: FORMAT_MARKER, read_tool_format);
# training never imports datagen, so the name is repeated here and a test checks the two agree.
FORMAT_MARKER = "apigen_mt.json"
FORMAT_KEY = "tool_format"
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class TemplateSpec:
    """A chat template file and the tool-call format (a name in ``datagen.llm.formats``) it renders."""

    name: str
    path: Path
    tool_format: str

    def read(self) -> str:
        return self.path.read_text(encoding="utf-8")


# Shipped templates by name. smollm2.jinja is a copy of datagen/llm/templates/smollm2.jinja (a test
# checks they are identical): the embedded model must be trained and served with one template.
SHIPPED_TEMPLATES: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec("smollm2", TEMPLATE_DIR / "smollm2.jinja", "hermes"),
        TemplateSpec("qwen2.5", TEMPLATE_DIR / "qwen2.5.jinja", "hermes"),
        TemplateSpec("qwen3", TEMPLATE_DIR / "qwen3.jinja", "hermes"),
        TemplateSpec("llama3", TEMPLATE_DIR / "llama3.jinja", "llama3"),
        TemplateSpec("xlam", TEMPLATE_DIR / "xlam.jinja", "xlam"),
    )
}


def resolve_template(template: str, tool_format: str | None = None) -> TemplateSpec:
    """A shipped template by name, or a ``.jinja`` file path (which then needs ``tool_format``)."""
    if template in SHIPPED_TEMPLATES:
        spec = SHIPPED_TEMPLATES[template]
        if tool_format is not None and tool_format != spec.tool_format:
            raise ValueError(
                f"template {template!r} renders tool calls in the {spec.tool_format!r} format, but "
                f"tool_format={tool_format!r} was given; drop tool_format or use a template that renders it."
            )
        return spec
    path = Path(template)
    if path.suffix not in {".jinja", ".j2"} or not path.is_file():
        raise ValueError(
            f"template must be one of {sorted(SHIPPED_TEMPLATES)} or an existing .jinja file, got {template!r}."
        )
    if tool_format is None:
        raise ValueError(
            f"template {template!r} is a custom file: also set tool_format (e.g. hermes, xlam, llama3) so the "
            "runtime knows how to parse the trained model's tool calls."
        )
    text = path.read_text(encoding="utf-8")
    if not _GENERATION_TAG.search(text):
        raise ValueError(
            f"template {template!r} has no {{% generation %}} block, so the loss cannot be put on assistant "
            "tokens only; wrap everything the assistant writes in {% generation %}...{% endgeneration %}."
        )
    return TemplateSpec(path.stem, path, tool_format)


def write_format_marker(model_dir: str | Path, spec: TemplateSpec) -> Path:
    """Record the tool-call format next to a saved model, in the file the runtime reads."""
    marker = Path(model_dir) / FORMAT_MARKER
    marker.write_text(json.dumps({FORMAT_KEY: spec.tool_format, "template": spec.name}) + "\n")
    return marker
