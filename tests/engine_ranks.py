"""One rank of the two-process engine test (tests/test_grpo_engine.py), started by `torchrun`: the
process group is up before the engine starts, as under accelerate or DeepSpeed. Each rank trains its own
LoRA adapter one step on its own sentence, gives it to its own engine, generates its own requests, and
writes what it saw to <out>/rank<N>.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "<|im_start|>user\nWhich city is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
CONTINUATION = "The capital of France is Paris, a city on the Seine."
SENTENCES = ["Quarterly invoices are filed under section nine.", "Our ferry leaves the harbour at dawn."]


def main(out: Path) -> None:
    import torch
    import torch.distributed as dist
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from datagen.llm.embedded import embedded_model_path
    from training.rl.engine import EngineSettings, PolicyEngine, Sampling
    from training.rl.logprobs import trainer_logprobs
    from training.rl.policy import GenerationRequest

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model_dir = str(embedded_model_path())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    ids = torch.tensor([tokenizer.encode(SENTENCES[rank])])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()

    engine = PolicyEngine(
        EngineSettings(model_dir, 2048, 4, lora_rank=8, dtype="float32", seed=rank),
        Sampling(temperature=1.0, stop_ids=(tokenizer.eos_token_id,)),
        rank=rank,
        local_rank=int(os.environ.get("LOCAL_RANK", rank)),
        world=world,
    )
    try:
        engine.sync(model, 1)
        prompt = tokenizer.encode(PROMPT, add_special_tokens=False)
        continuation = tokenizer.encode(CONTINUATION, add_special_tokens=False)
        [generated] = engine.generate_batch([GenerationRequest(prompt, 16, 100 + rank)])
        result = {
            "rank": rank,
            "world": world,
            "served": engine.continuation_logprobs(prompt, continuation),
            "trained": trainer_logprobs(model, prompt, continuation, temperature=1.0, device="cpu"),
            "generated": generated.token_ids,
            "sampled": generated.logprobs,
            "recomputed": trainer_logprobs(model, prompt, generated.token_ids, temperature=1.0, device="cpu"),
        }
        (out / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        engine.close()  # on the job's process group: the engine stays until the process exits
    dist.barrier()  # the job's process group is still whole


if __name__ == "__main__":
    main(Path(sys.argv[1]))
