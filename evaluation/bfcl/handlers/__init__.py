"""BFCL's decoders, one per model-handler family, written after the installed ``bfcl-eval``.

BFCL scores a model's stored results with the ``decode_ast`` / ``decode_execute`` methods of
that model's handler class (``bfcl_eval/model_handler/...``). Each :class:`Decoder` here has the
acceptance rules of one family of those methods, in our own code, never ``eval``: what BFCL
decodes, it decodes; what BFCL fails, it fails (``tests/test_bfcl_shapes.py`` holds every decoder
to its handlers' verdicts on malformed outputs). ``--lenient`` swaps in the LLM runtime's
forgiving parsers where a family has one (:mod:`.lenient`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evaluation.bfcl.handlers import (
    fc,
    functiongemma,
    json_blocks,
    lenient,
    prompt,
    python_wrapped,
    stored,
    text_json,
)
from evaluation.bfcl.handlers.base import Decoded, DecodeError, Decoder, short
from evaluation.bfcl.handlers.execution import Call, calls_from_strings

DecodeAst = Callable[[Any, str], Decoded]
_LOCAL = "bfcl_eval.model_handler.local_inference"
_API = "bfcl_eval.model_handler.api_inference"

STRICT: dict[str, Decoder] = {
    d.name: d
    for d in (
        Decoder(
            "python",
            "prompt mode: Python call syntax, [f(a=1), g(b='x')]",
            (
                f"{_LOCAL}.llama:LlamaHandler",
                f"{_LOCAL}.qwen:QwenHandler",
                f"{_LOCAL}.base_oss_handler:OSSHandler",
                f"{_API}.nvidia:NvidiaHandler",
                # The API handlers in prompt mode (their decode_ast branches on is_fc_model).
                f"{_API}.openai_completion:OpenAICompletionsHandler",
                f"{_API}.openai_response:OpenAIResponsesHandler",
                f"{_API}.claude:ClaudeHandler",
                f"{_API}.mistral:MistralHandler",
            ),
            prompt.decode_ast,
            prompt.decode_execute,
            is_fc_model=False,
        ),
        Decoder(
            "json",
            "FC APIs: stored [{name: arguments-JSON-string}], e.g. GPT/Claude/Mistral/Qwen-API -FC",
            (
                f"{_API}.openai_completion:OpenAICompletionsHandler",
                f"{_API}.openai_response:OpenAIResponsesHandler",
                f"{_API}.claude:ClaudeHandler",
                f"{_API}.mistral:MistralHandler",
            ),
            fc.decode_ast_json,
            fc.decode_execute_json,
        ),
        Decoder(
            "xlam",
            "xLAM-2: the whole text one JSON list [{name, arguments}] (or ;-separated objects)",
            (
                f"{_LOCAL}.salesforce_qwen:SalesforceQwenHandler",
                f"{_LOCAL}.salesforce_llama:SalesforceLlamaHandler",
            ),
            text_json.decode_ast_xlam,
            text_json.decode_execute_xlam,
        ),
        Decoder(
            "hermes",
            "Qwen-FC/Hermes: <tool_call>\\n{name, arguments}\\n</tool_call> blocks",
            (
                f"{_LOCAL}.qwen_fc:QwenFCHandler",
                f"{_LOCAL}.granite_4:Granite4FCHandler",
                f"{_LOCAL}.nanbeige_fc:NanbeigeFCHandler",
                f"{_LOCAL}.pelican_vl_fc:PelicanVLFCHandler",
            ),
            text_json.decode_ast_hermes,
            text_json.decode_execute_hermes,
        ),
        Decoder(
            "llama3",
            "Llama-3.1 -FC: {name, parameters} objects, ;-separated or one Python literal",
            (f"{_LOCAL}.llama_3_1:LlamaHandler_3_1",),
            text_json.decode_ast_llama3,
            text_json.decode_execute_llama3,
        ),
        Decoder(
            "hammer",
            "Hammer: a JSON list [{name, arguments}], ``` fences removed",
            (f"{_LOCAL}.hammer:HammerHandler",),
            text_json.decode_ast_hammer,
            text_json.decode_execute_hammer,
        ),
        Decoder(
            "granite",
            "granite-20b-functioncalling: <function_call> {name, arguments} pieces",
            (f"{_LOCAL}.granite:GraniteFunctionCallingHandler",),
            text_json.decode_ast_granite,
            text_json.decode_execute_granite,
        ),
        Decoder(
            "decoded",
            "stored already decoded, [{name: {param: value}}]: Phi-FC, Granite-3, Arch, Ministral, Nova",
            (
                f"{_LOCAL}.phi_fc:PhiFCHandler",
                f"{_LOCAL}.granite_3:Granite3FCHandler",
                f"{_LOCAL}.arch:ArchHandler",
                f"{_LOCAL}.mistral_fc:MistralFCHandler",
                f"{_API}.nova:NovaHandler",
            ),
            fc.decode_ast_decoded,
            fc.decode_execute_decoded,
        ),
        Decoder(
            "phi",
            "Phi prompt mode: Python call syntax after a leading ```json/```python fence",
            (f"{_LOCAL}.phi:PhiHandler",),
            prompt.decode_ast_phi,
            prompt.decode_execute_phi,
            is_fc_model=False,
        ),
        # Families added after the first nine: listed after them, so that where two formats read
        # the same rows equally well, sniffing keeps choosing the first nine.
        Decoder(
            "gemini",
            "Gemini -FC: the stored [{name: {param: value}}] as it is (a non-list wrapped in one)",
            (f"{_API}.gemini:GeminiHandler",),
            stored.decode_ast_gemini,
            stored.decode_execute_gemini,
        ),
        Decoder(
            "gemini_prompt",
            "Gemini prompt mode: Python call syntax, ```tool_code fences removed",
            (f"{_API}.gemini:GeminiHandler",),
            python_wrapped.decode_ast_gemini_prompt,
            python_wrapped.decode_execute_gemini_prompt,
            is_fc_model=False,
        ),
        Decoder(
            "cohere",
            'Cohere -FC: stored [{"tool_name", "parameters"}]; anything else is no call',
            (f"{_API}.cohere:CohereHandler",),
            stored.decode_ast_cohere,
            stored.decode_execute_cohere,
        ),
        Decoder(
            "mining",
            'xiaoming / DM-Cito: the reply\'s JSON list [{"name", "arguments"}], stored parsed',
            (f"{_API}.mining:MiningHandler",),
            stored.decode_ast_mining,
            stored.decode_execute_mining,
        ),
        Decoder(
            "nemotron",
            "Llama-Nemotron: Python call syntax inside the first <TOOLCALL>...</TOOLCALL>",
            (f"{_API}.nemotron:NemotronHandler",),
            python_wrapped.decode_ast_nemotron,
            python_wrapped.decode_execute_nemotron,
        ),
        Decoder(
            "gorilla",
            "Gorilla OpenFunctions: Python calls, the text wrapped in [ ] as it is",
            (f"{_API}.gorilla:GorillaHandler",),
            python_wrapped.decode_ast_gorilla,
            python_wrapped.decode_execute_gorilla,
        ),
        Decoder(
            "minicpm",
            "MiniCPM3 -FC: Python call statements between <|tool_call_start|> and <|tool_call_end|>",
            (f"{_LOCAL}.minicpm_fc:MiniCPMFCHandler",),
            python_wrapped.decode_ast_minicpm,
            python_wrapped.decode_execute_minicpm,
        ),
        Decoder(
            "bitagent",
            "BitAgent: the whole text one JSON list [{name, arguments}] (or one object)",
            (f"{_LOCAL}.bitagent:BitAgentHandler",),
            json_blocks.decode_ast_bitagent,
            json_blocks.decode_execute_bitagent,
        ),
        Decoder(
            "falcon",
            "Falcon3 -FC: the first <tool_call> block, a JSON list [{name, arguments}] or one object",
            (f"{_LOCAL}.falcon_fc:Falcon3FCHandler",),
            json_blocks.decode_ast_falcon,
            json_blocks.decode_execute_falcon,
        ),
        Decoder(
            "thinkagent",
            "ThinkAgent: a JSON list [{name, arguments}] after </think> (' read as \")",
            (f"{_LOCAL}.think_agent:ThinkAgentHandler",),
            json_blocks.decode_ast_thinkagent,
            json_blocks.decode_execute_thinkagent,
        ),
        Decoder(
            "glm",
            "GLM-4-9b-chat: the function name on one line, its JSON arguments on the next",
            (f"{_LOCAL}.glm:GLMHandler",),
            json_blocks.decode_ast_glm,
            json_blocks.decode_execute_glm,
        ),
        Decoder(
            "functiongemma",
            "FunctionGemma: <start_function_call>call:name{key:value,...}<end_function_call>",
            (f"{_LOCAL}.functiongemma:FunctionGemmaHandler",),
            functiongemma.decode_ast,
            functiongemma.decode_execute,
        ),
    )
}
FORMATS = tuple(STRICT)

# The runtime format whose forgiving parser --lenient uses, per decoder ("fc": our FC-layout
# reader that also takes dict arguments). Formats not listed have no forgiving variant.
_LENIENT_SOURCE = {
    "python": "python",
    "phi": "python",
    "xlam": "xlam",
    "hammer": "xlam",
    "hermes": "hermes",
    "llama3": "llama3",
    "json": "fc",
}


def _lenient(strict: Decoder) -> Decoder:
    source = _LENIENT_SOURCE[strict.name]
    if source == "fc":
        decode_ast, decode_execute = lenient.decode_ast_fc, lenient.decode_execute_fc
        summary = "the FC layout, arguments a JSON string or a dict"
    else:
        decode_ast, decode_execute = lenient.runtime_decoders(source)
        summary = f"the LLM runtime's forgiving {source} parser"
    if strict.name in ("python", "phi"):
        # Java/JavaScript source text has no runtime parser: BFCL's reading stays.
        decode_ast = _keep_source_languages(decode_ast, strict.decode_ast)
    return Decoder(strict.name, summary, strict.handlers, decode_ast, decode_execute, strict=False)


def _keep_source_languages(forgiving: DecodeAst, exact: DecodeAst) -> DecodeAst:
    def decode_ast(raw: Any, language: str = "python") -> Decoded:
        return exact(raw, language) if language in ("java", "javascript") else forgiving(raw, language)

    return decode_ast


LENIENT: dict[str, Decoder] = {name: _lenient(STRICT[name]) for name in _LENIENT_SOURCE}


def get_decoder(name: str, lenient: bool = False) -> Decoder:
    """The decoder for a format; ValueError naming every format (and every lenient one) otherwise."""
    if name not in STRICT:
        raise ValueError(f"unknown BFCL result format {name!r}; expected one of: {', '.join(FORMATS)}")
    if lenient and name not in LENIENT:
        raise ValueError(
            f"--lenient: format {name!r} has no forgiving parser (those that do: {', '.join(LENIENT)}); "
            "drop --lenient to score it as BFCL does"
        )
    return LENIENT[name] if lenient else STRICT[name]


__all__ = [
    "FORMATS",
    "LENIENT",
    "STRICT",
    "Call",
    "Decoded",
    "DecodeError",
    "Decoder",
    "calls_from_strings",
    "get_decoder",
    "short",
]
