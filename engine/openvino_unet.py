"""An optional OpenVINO runtime for the picture model's UNet on a processor (issue 18).

The UNet is most of a picture's work on a CPU (one SD-Turbo step is 0.8 of a draft's 0.99 TFLOP). OpenVINO runs
the same network with its own CPU kernels; on this project's 2-core machine, quiet, its UNet steps took 1.22x less
time than torch's in bf16, and a book of 12 drafts 1.11x less (docs/benchmarks.md). It stays optional: install it
with ``pip install openvino`` (the ``cpu-runtime`` extra) and choose it with ``STORYBOOK_CPU_RUNTIME=openvino`` or
``--runtime openvino``.

The network is converted from the torch UNet already loaded, so the weights are the same hub weights. The
converted model is kept under the data folder (keyed by the weights' files, the UNet's config, the number format
and OpenVINO's version), so the conversion (about 160 s for SD-Turbo's UNet on 2 busy cores) happens once per
model. Use it with bf16: a float32 UNet's compilation grew past 16 GiB of host memory here.
Pages drawn with a character reference (shared attention or IP-Adapter) need torch's attention processors: they
run on torch, and every picture's settings say which runtime drew it, so it redraws the same.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from core.paths import data_home
from engine.errors import InputError

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "openvino")
ENV_RUNTIME = "STORYBOOK_CPU_RUNTIME"
_HELD = "_storybook_openvino"  # (threads, the compiled model), kept on the torch UNet it was made from (freed with it)


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def runtime_from_env() -> str:
    """STORYBOOK_CPU_RUNTIME when it names a runtime, else torch."""
    told = os.environ.get(ENV_RUNTIME, "").strip().lower()
    return told if told in RUNTIMES else "torch"


def check_runtime(runtime: str) -> str:
    """The runtime's name, or InputError with a sentence saying what to do."""
    if runtime not in RUNTIMES:
        raise InputError(f"Unknown runtime '{runtime}': use {' or '.join(RUNTIMES)}.")
    if runtime == "openvino" and not openvino_installed():
        raise InputError(
            "The OpenVINO runtime was asked for, but it is not installed: run 'pip install openvino' "
            f"(or unset {ENV_RUNTIME} to draw with torch)."
        )
    return runtime


class _FloatIO(torch.nn.Module):
    """The UNet with float32 inputs and output (numpy has no bf16), in its own number format inside."""

    def __init__(self, unet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        dtype = self.unet.dtype
        out = self.unet(sample.to(dtype), timestep, encoder_hidden_states=encoder_hidden_states.to(dtype))
        return out.sample.float()


def _weights_stamp(folder: str) -> list:
    files = sorted(Path(folder).glob("*.safetensors")) if folder and os.path.isdir(folder) else []
    return [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files]


def _cache_folder(unet) -> Path:
    import diffusers
    import openvino as ov

    source = str(getattr(unet.config, "_name_or_path", "") or "")
    key = json.dumps(
        {
            "config": {k: v for k, v in dict(unet.config).items() if not k.startswith("_")},
            "source": os.path.realpath(source) if source and os.path.isdir(source) else source,
            "weights": _weights_stamp(source),
            "dtype": str(unet.dtype),
            # The converted model is a trace of diffusers' UNet code run by torch: a new version of either traces anew.
            "versions": [ov.__version__, torch.__version__, diffusers.__version__],
        },
        sort_keys=True,
        default=str,
    )
    return data_home() / "openvino" / hashlib.sha256(key.encode()).hexdigest()[:24]


def _example(unet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    size = int(unet.config.sample_size)
    width = int(unet.config.cross_attention_dim)
    return (
        torch.randn(1, int(unet.config.in_channels), size, size),
        torch.tensor([999.0]),
        torch.randn(1, 77, width),
    )


def compiled_unet(unet, threads: int | None = None):
    """The UNet compiled by OpenVINO for this CPU: converted once and kept on disk, compiled once per loaded
    model and number of threads. bf16 inside where the torch model is bf16 (the CPU was found to run it fast),
    else f32."""
    held = getattr(unet, _HELD, None)
    # Compiled for a number of threads: the model loaded once serves callers on other threads counts (a studio keeps
    # a core for its page, a command line uses every one), so another count compiles again from the kept files.
    if held is not None and held[0] == threads:
        return held[1]
    import openvino as ov

    folder = _cache_folder(unet)
    xml = folder / "unet.xml"
    core = ov.Core()
    if not xml.is_file():
        log.info("Converting the UNet for OpenVINO into %s", folder)
        sample, timestep, context = _example(unet)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # Tracing is how OpenVINO reads a torch module: its notes on shapes fixed by tracing (the
            # UNet's size checks) and on tracing being old are about the tracer, not about this model.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*torch.jit.trace.*")
            model = ov.convert_model(
                _FloatIO(unet),
                example_input=(sample, timestep, context),
                # Own copies of the weights: saving a model that shares torch's bf16 storage crashed (segfault
                # in save_model, OpenVINO 2026.4, SD-Turbo's UNet); the copy lasts only until it is saved.
                share_weights=False,
                input=[
                    ov.PartialShape([-1, sample.shape[1], -1, -1]),
                    ov.PartialShape([-1]),
                    ov.PartialShape([-1, -1, context.shape[2]]),
                ],
            )
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"unet.partial-{os.getpid()}.xml"  # two studios converting at once do not mix files
        ov.save_model(model, partial, compress_to_fp16=False)
        partial.with_suffix(".bin").replace(folder / "unet.bin")
        partial.replace(xml)  # the .xml last: a folder with it is complete
    precision = "bf16" if unet.dtype == torch.bfloat16 else "f32"
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if held is not None:
        delattr(unet, _HELD)  # the UNet holds one compilation at a time: the old one goes with its last user
    compiled = core.compile_model(core.read_model(xml), "CPU", config)
    setattr(unet, _HELD, (threads, compiled))
    return compiled


@contextmanager
def openvino_forward(unet, compiled) -> Iterator[None]:
    """While inside, calls to the torch UNet (the pipeline's) run the compiled model instead."""
    request = compiled.create_infer_request()
    dtype = unet.dtype

    def forward(sample, timestep, encoder_hidden_states, *args, return_dict: bool = True, **kwargs):
        if args or any(v is not None for v in kwargs.values()):
            raise RuntimeError("The OpenVINO UNet takes only a sample, a timestep and the prompt's embeddings.")
        batch = sample.shape[0]
        steps = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(batch).contiguous()
        out = request.infer([sample.float().numpy(), steps.numpy(), encoder_hidden_states.float().numpy()])
        result = torch.from_numpy(next(iter(out.values())).copy()).to(dtype)
        if not return_dict:
            return (result,)
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=result)

    unet.forward = forward
    try:
        yield
    finally:
        del unet.forward
