"""Run a model with random weights on a CUDA GPU for `energaizer measure --trace`.

Usage: run_model.py PRESET PHASE BATCH SEQ STEPS

PRESET is an energaizer model preset (its config builds the model; nothing is
downloaded). PHASE is forward (one forward over SEQ tokens, logits for every position),
decode (one token per step against a KV cache that starts at SEQ tokens) or train
(forward, backward and an AdamW step). Each step is wrapped in a `ProfilerStep#N` range so the trace splits into steps, and the GPU
is synchronized after every step so step boundaries are real.

The first two steps warm up. Over the rest, the time per step and the energy per step
(from the NVML energy counter of GPU 0, read only) are written as JSON to the file named
by ENERGAIZER_STEPS_FILE, when set.
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch

from energaizer.workload.presets import load_model_config


def build(preset: str):
    import transformers

    config, _ = load_model_config(preset)
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    hf_config = transformers.AutoConfig.for_model(config.pop("model_type"), **config)
    architecture = (hf_config.architectures or ["AutoModel"])[0]
    model_class = getattr(transformers, architecture, transformers.AutoModel)
    with torch.device("cuda"):
        model = model_class._from_config(hf_config, torch_dtype=torch.bfloat16)
    return model, hf_config


def main() -> int:
    preset, phase, batch, seq, steps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    model, config = build(preset)
    image = getattr(config, "image_size", None)
    if image and not hasattr(config, "vocab_size"):
        inputs = {"pixel_values": torch.randn(batch, 3, image, image, device="cuda",
                                              dtype=torch.bfloat16)}
    else:
        inputs = {"input_ids": torch.randint(0, config.vocab_size, (batch, seq), device="cuda")}
    optimizer = torch.optim.AdamW(model.parameters()) if phase == "train" else None
    cache = None
    meter = _EnergyMeter()
    for step in range(steps):
        if step == WARMUP_STEPS:
            meter.start()
        with torch.profiler.record_function(f"ProfilerStep#{step}"):
            if phase == "train":
                outputs = model(**inputs, labels=inputs.get("input_ids"))
                loss = outputs.loss if outputs.loss is not None else outputs.logits.float().mean()
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            elif phase == "decode":
                with torch.no_grad():
                    if cache is None:
                        cache = model(**inputs, use_cache=True).past_key_values
                    token = torch.randint(0, config.vocab_size, (batch, 1), device="cuda")
                    cache = model(input_ids=token, past_key_values=cache, use_cache=True).past_key_values
            else:
                with torch.no_grad():
                    model(**inputs)
            torch.cuda.synchronize()
    meter.stop(steps - WARMUP_STEPS)
    return 0


WARMUP_STEPS = 2


class _EnergyMeter:
    """Time and GPU-0 energy between start and stop, read from NVML's energy counter."""

    def __init__(self) -> None:
        from energaizer.hardware.nvml import Nvml

        self.nvml = Nvml().__enter__()
        self.device = self.nvml.device(self.nvml.handle_by_index(0), 0)

    def start(self) -> None:
        self.started_s = time.perf_counter()
        self.start_j = self.device.total_energy_j()

    def stop(self, steps: int) -> None:
        elapsed_s = time.perf_counter() - self.started_s
        energy_j = self.device.total_energy_j() - self.start_j
        self.nvml.close()
        target = os.environ.get("ENERGAIZER_STEPS_FILE")
        if target:
            with open(target, "w", encoding="utf-8") as handle:
                json.dump({"steps": steps, "time_ms": 1e3 * elapsed_s / steps,
                           "energy_j": energy_j / steps}, handle)


if __name__ == "__main__":
    raise SystemExit(main())
