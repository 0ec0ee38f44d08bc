"""One run of one variant of the job, and the whole measurement: warm-up, interleaved repeats, equivalence."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.illustrate.flops import diffusion_flops
from benchmarks.illustrate.measure import (
    EQUIVALENCE_MEAN_ABS_DIFF,
    EQUIVALENCE_PSNR_DB,
    Generation,
    HostMemory,
    StageClock,
    best_roofline,
    measure_roofline,
    picture_difference,
    private_cache,
    save_durably,
    stage_hooks,
    sync_for,
)
from benchmarks.illustrate.models import bench_models
from benchmarks.illustrate.report import build_report
from benchmarks.illustrate.workload import (
    STORY_CAPTIONS,
    Variant,
    Workload,
    choose_variants,
    picture_requests,
    resolve_workload,
)
from engine.errors import InputError

# --- one run of one variant --------------------------------------------------------------------------


@dataclass
class RunResult:
    stages: dict[str, float]
    pictures_seconds: float
    end_to_end: float
    first_image: float | None
    images: int
    caption_tokens: int = 0
    story_tokens: int = 0
    story_calls: int = 0
    peak_gpu_bytes: int | None = None
    peak_gpu_above_start: int | None = None
    peak_host_bytes: int = 0
    flops_counted: dict[str, float] = field(default_factory=dict)


def draft_settings(illustrator, request) -> dict:
    """What a draft of this request records, without drawing it: the engine's own settings_for."""
    from engine.illustrate import validate

    return illustrator.settings_for(validate(replace(request, draft=True), illustrator.defaults))


class Bench:
    def __init__(
        self,
        workload: Workload,
        models: dict[str, Path],
        choice,
        variants: list[Variant],
        out_dir: Path,
        log: Callable[[str], None],
    ):
        import torch

        from engine.device import DeviceChoice
        from engine.profiles import PROFILES

        self.workload = workload
        self.models = models
        self.choice = choice
        self.naive_choice = DeviceChoice(choice.device, torch.float32)
        self.variants = variants
        self.out_dir = out_dir
        self.log = log
        self.sync = sync_for(choice.device)
        base = PROFILES["fast" if workload.arch == "full" else "tiny"]
        self.profile = replace(
            base,
            name=f"bench-{workload.arch}",
            models={role: str(path) for role, path in models.items()},
            width=workload.size,
            height=workload.size,
        )
        self._run_number = 0
        self._own_illustrators: dict[str, Any] = {}

    def choice_for(self, variant: Variant):
        """The device and number format a variant's engine runs in."""
        from engine.device import DeviceChoice, pick_device

        if variant.naive:
            return self.naive_choice
        if variant.dtype is None:
            return self.choice
        return DeviceChoice(self.choice.device, pick_device(self.choice.device, variant.dtype).dtype)

    def batch_size_for(self, variant: Variant) -> int:
        if variant.naive:
            return 1
        if variant.batch_size:
            return variant.batch_size
        from engine.illustrate import Defaults

        return Defaults.from_profile(self.profile, self.choice_for(variant)).batch_size

    # -- the pieces of the job --

    @staticmethod
    def _saver(clock: StageClock, folder: Path, started: float, first: list, images: list) -> Callable:
        """What the studio does with each finished picture: PNG-encode it and save it durably."""
        from engine.imageio import to_png_bytes

        def on_image(key, image) -> None:
            with clock.stage("png_encoding"):
                data = to_png_bytes(image)
            with clock.stage("saving"):
                save_durably(folder, f"picture-{key:03d}.png", data)
            images.append((key, image))
            if not first:
                first.append(time.perf_counter() - started)

        return on_image

    def _naive_pictures(self, clock: StageClock, folder: Path, started: float, first: list) -> list:
        import torch
        from diffusers import DiffusionPipeline

        images: list = []
        on_image = self._saver(clock, folder, started, first, images)
        w = self.workload
        for story in picture_requests(w, steps=w.steps, guidance=w.guidance):
            with clock.stage("load"):
                pipe = DiffusionPipeline.from_pretrained(
                    str(self.models["illustrator"]), dtype=torch.float32, use_safetensors=True, local_files_only=True
                )
                pipe = pipe.to(self.naive_choice.device)
                pipe.set_progress_bar_config(disable=True)
            with stage_hooks(pipe, clock), clock.stage("_pictures"):
                for r in story:
                    with torch.inference_mode():
                        image = pipe(
                            prompt=r.prompt,
                            negative_prompt=r.negative_prompt if r.guidance > 1 else None,
                            num_inference_steps=r.steps,
                            guidance_scale=r.guidance,
                            width=r.width,
                            height=r.height,
                            generator=torch.Generator("cpu").manual_seed(r.seed),
                        ).images[0]
                    on_image(r.key, image)
            del pipe
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return [image for _, image in images]

    def _illustrator(self, variant: Variant, stack: contextlib.ExitStack):
        from engine.illustrate import Defaults, Illustrator, load_pipeline, open_illustrator
        from engine.loading import loaded_model

        choice = self.choice_for(variant)
        drafts = variant.draft or bool(variant.finish)
        if not variant.own_pipeline:
            return stack.enter_context(open_illustrator(self.profile, choice, speed=variant.speed, draft=drafts))
        # A copy of the pipeline whose memory layout or compiled UNet must not leak into the shared one.
        # Its Illustrator is made once: re-applying the options every run could recompile the graph.
        ref = self.profile.model("illustrator")
        loader = functools.partial(load_pipeline, choice=choice)
        pipe = stack.enter_context(loaded_model("illustrator", ref, choice, loader, copy=f"bench:{variant.name}"))
        illustrator = self._own_illustrators.get(variant.name)
        if illustrator is None or illustrator.pipe is not pipe:
            illustrator = Illustrator(pipe, ref, choice, Defaults.from_profile(self.profile, choice), variant.speed)
            self._own_illustrators[variant.name] = illustrator
        return illustrator

    def _engine_pictures(self, variant: Variant, clock: StageClock, folder: Path, started: float, first: list) -> list:
        images: list = []
        w = self.workload
        steps, guidance = (
            (None, None) if variant.profile_steps or variant.draft or variant.finish else (w.steps, w.guidance)
        )
        # The studio's worker hands each picture to a saver thread and draws on; the saver's own clock
        # never synchronises the device, so its stages overlap the drawing (their sum is not wall time).
        saver_clock = StageClock(lambda: None) if variant.saver_thread else clock
        save = self._saver(saver_clock, folder, started, first, images)
        with contextlib.ExitStack() as stack:
            saver = (
                stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="bench-saver"))
                if variant.saver_thread
                else None
            )
            saves: list = []
            with clock.stage("load"):
                illustrator = self._illustrator(variant, stack)
            decoder = illustrator.preview_decoder if illustrator.speed.preview or variant.draft else None

            def on_image(result) -> None:
                if saver is None:
                    save(result.key, result.image)
                else:
                    saves.append(saver.submit(save, result.key, result.image))

            with stage_hooks(illustrator.pipe, clock, decoder), clock.stage("_pictures"):
                # Every story of the job in one call: batches fill across stories, one generator per picture.
                requests = [
                    replace(r, draft=variant.draft)
                    for story in picture_requests(w, steps=steps, guidance=guidance)
                    for r in story
                ]
                if variant.finish:
                    illustrator.finish(
                        [(r.key, draft_settings(illustrator, r)) for r in requests],
                        method=variant.finish,
                        on_image=on_image,
                    )
                else:
                    # No batch size unless the variant sets one: the engine's own default (on a CPU the
                    # first picture alone, then batches), as the studio gets it.
                    illustrator.illustrate(requests, on_image=on_image, batch_size=variant.batch_size)
            with clock.stage("_saver_tail"):  # the last pictures' saves, after the drawing ended
                for future in saves:
                    future.result()
        for stage in ("png_encoding", "saving"):
            if variant.saver_thread and stage in saver_clock.seconds:
                clock.seconds["_overlapped_" + stage] = saver_clock.seconds[stage]
        images.sort(key=lambda im: im[0])
        return [image for _, image in images]

    def _captions_and_story(self, naive: bool, clock: StageClock, images: list, counts: dict) -> None:
        from engine.caption import Captioner
        from engine.storyteller import Storyteller

        w = self.workload
        if not w.captions:
            return
        choice = self.naive_choice if naive else self.choice
        captioner = Captioner(ref=self.profile.model("captioner"), profile=self.profile, device=choice)
        teller = Storyteller(ref=self.profile.model("storyteller"), profile=self.profile, device=choice)
        with contextlib.ExitStack() as stack:
            with clock.stage("load"):
                # Engine: cache hits once warm. Naive (in a private cache): loaded from disk for this request.
                cap = stack.enter_context(captioner.loaded())
                story = stack.enter_context(teller.loaded())
            caption_tokens, story_tokens = Generation(), Generation()
            with caption_tokens.hook(cap.model), clock.stage("captioning"):
                captioner.caption(images[: w.captions], batch_size=1 if naive else 8)
            with story_tokens.hook(story.model), clock.stage("story"):
                teller.tell(list(STORY_CAPTIONS[: w.captions]), words_per_picture=w.story_words, seed=0)
        counts.update(
            caption_tokens=caption_tokens.tokens, story_tokens=story_tokens.tokens, story_calls=story_tokens.calls
        )

    def run(self, variant: Variant, *, count_flops: bool = False) -> RunResult:
        """One run of the variant's job; stages in seconds."""
        import torch

        self._run_number += 1
        folder = self.out_dir / f"run-{self._run_number:03d}-{variant.name.replace(':', '-')}"
        folder.mkdir(parents=True)
        clock = StageClock(self.sync)
        first: list[float] = []
        counts: dict[str, int] = {}
        flops: dict[str, float] = {}
        gpu = self.choice.device.startswith("cuda")
        if gpu:
            torch.cuda.reset_peak_memory_stats()
            gpu_start = torch.cuda.memory_allocated()
        with HostMemory() as host:
            self.sync()
            started = time.perf_counter()
            if variant.naive:
                with private_cache():
                    images = self._naive_pictures(clock, folder, started, first)
                    if variant.whole_job:
                        self._captions_and_story(True, clock, images, counts)
            else:
                images = self._engine_pictures(variant, clock, folder, started, first)
                if variant.whole_job:
                    if count_flops:
                        from torch.utils.flop_counter import FlopCounterMode

                        with FlopCounterMode(display=False) as counter:
                            self._captions_and_story(False, clock, images, counts)
                        flops["captioning_and_story"] = float(counter.get_total_flops())
                    else:
                        self._captions_and_story(False, clock, images, counts)
            self.sync()
            total = time.perf_counter() - started
        seconds = dict(clock.seconds)
        pictures_call = seconds.pop("_pictures", 0.0)
        tail = seconds.pop("_saver_tail", 0.0)
        inside = sum(seconds.get(s, 0.0) for s in ("text_encoding", "decoding", "png_encoding", "saving"))
        seconds["denoising"] = max(0.0, pictures_call - inside)
        overlapped = {
            s: seconds.pop("_overlapped_" + s) for s in ("png_encoding", "saving") if "_overlapped_" + s in seconds
        }
        seconds.update(overlapped)
        # Wall time of the pictures: loading, the drawing (with whatever ran inside it) and the saver's tail.
        pictures_seconds = seconds.get("load", 0.0) + pictures_call + tail
        shutil.rmtree(folder, ignore_errors=True)
        result = RunResult(
            stages=seconds,
            pictures_seconds=pictures_seconds,
            end_to_end=total,
            first_image=first[0] if first else None,
            images=len(images),
            peak_host_bytes=host.peak,
            flops_counted=flops,
            **counts,
        )
        if gpu:
            result.peak_gpu_bytes = int(torch.cuda.max_memory_allocated())
            result.peak_gpu_above_start = int(torch.cuda.max_memory_allocated() - gpu_start)
        return result


# --- the whole measurement ---------------------------------------------------------------------------


def _process_start_wallclock() -> float | None:
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - psutil is optional
        pass
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _quiet_libraries() -> None:
    with contextlib.suppress(Exception):
        from diffusers.utils import logging as dlog

        dlog.disable_progress_bar()
        dlog.set_verbosity_error()
    with contextlib.suppress(Exception):
        from transformers.utils import logging as tlog

        tlog.disable_progress_bar()
        tlog.set_verbosity_error()


def run_bench(args) -> dict:
    import torch

    from engine.device import pick_device

    log = (lambda s: None) if args.silent else (lambda s: print(s, file=sys.stderr, flush=True))
    workload = resolve_workload(args)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else 1
    if repeats < 1 or warmup < 0:
        raise InputError("--repeats must be at least 1 and --warmup at least 0.")
    choice = pick_device(args.device, args.dtype)
    variants = choose_variants(args.variants, choice.is_gpu)
    _quiet_libraries()
    load_start = _load_average()

    log(f"Preparing the {workload.arch} models…")
    started = time.perf_counter()
    models = bench_models(workload.arch, args.models_dir, log)
    prepare_seconds = time.perf_counter() - started
    per_picture = diffusion_flops(models["illustrator"], models.get("preview_decoder"), workload.size)

    out_dir = Path(tempfile.mkdtemp(prefix="storybook-bench-"))
    bench = Bench(workload, models, choice, variants, out_dir, log)
    results: dict[str, list[RunResult]] = {v.name: [] for v in variants}
    cold: dict[str, Any] = {}
    counted: dict[str, float] = {}
    try:
        # Warm-up: the first engine run meets an empty cache, which is the cold start we report.
        order = sorted(variants, key=lambda v: (v.naive, not v.name == "engine-same-steps"))
        for round_number in range(warmup):
            for variant in order:
                log(f"warm-up {round_number + 1}/{warmup}: {variant.name}")
                count = round_number == 0 and variant.name == "engine-default"
                result = bench.run(variant, count_flops=count)
                if count:
                    counted.update(result.flops_counted)
                if not cold and not variant.naive and result.first_image is not None:
                    process_start = _process_start_wallclock()
                    first_at = time.time() - result.end_to_end + result.first_image
                    cold = {
                        "variant": variant.name,
                        "first_image_seconds": result.first_image,
                        "load_seconds": result.stages.get("load"),
                        "run_seconds": result.end_to_end,
                        "since_process_start_seconds": (first_at - process_start) if process_start else None,
                        # Only this variant's models are loaded yet: the host memory that mode needs.
                        "peak_host_bytes": result.peak_host_bytes,
                        "dtype": str(bench.choice_for(variant).dtype).removeprefix("torch."),
                    }
        rooflines = []
        for round_number in range(repeats):
            # Measured every round and the best kept: a busy moment on a shared machine only lowers it.
            dtypes = [choice.dtype, torch.float32] + [bench.choice_for(v).dtype for v in variants]
            rooflines.append(measure_roofline(choice.device, dtypes, bench.sync, small=workload.arch == "tiny"))
            shift = round_number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                log(f"repeat {round_number + 1}/{repeats}: {variant.name}")
                results[variant.name].append(bench.run(variant))
        equivalence = None
        pictures = args.equivalence if args.equivalence is not None else 2
        if pictures:
            if choice.dtype == torch.float32:
                equivalence = {"skipped": "the engine runs in float32 here: nothing to compare"}
            else:
                log(f"equivalence: {pictures} picture(s) in float32 and {choice.dtype}, final and draft")
                runtimes = {v.speed.runtime for v in variants if v.speed is not None}
                equivalence = measure_equivalence(
                    bench, min(pictures, workload.images), openvino="openvino" in runtimes
                )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    roofline = best_roofline(rooflines)
    load = {"start": load_start, "end": _load_average()}
    return build_report(
        args,
        workload,
        choice,
        variants,
        results,
        roofline,
        per_picture,
        counted,
        cold,
        repeats,
        warmup,
        prepare_seconds,
        models,
        load,
        variant_choices={v.name: bench.choice_for(v) for v in variants},
        batch_sizes={v.name: bench.batch_size_for(v) for v in variants},
        equivalence=equivalence,
        cpu_speed=None if choice.is_gpu else _cpu_speed(),
    )


def _cpu_speed() -> dict:
    from engine.device import bf16_is_fast, measure_cpu_speed

    speed = measure_cpu_speed()
    return {**asdict(speed), "speedup": speed.speedup, "bf16_chosen": bf16_is_fast(speed), "text": speed.describe()}


def measure_equivalence(bench: Bench, pictures: int, openvino: bool = False) -> dict:
    """The same seeds, steps and decoder in float32 and in the engine's reduced precision, picture by picture;
    with `openvino`, drafts whose UNet OpenVINO ran in that precision too, against the same float32 ones."""
    import torch

    from engine.device import DeviceChoice
    from engine.illustrate import SpeedOptions, open_illustrator

    low = bench.choice
    full = DeviceChoice(low.device, torch.float32)
    requests = [r for story in picture_requests(bench.workload, steps=None, guidance=None) for r in story][:pictures]
    out: dict[str, Any] = {
        "dtype": str(low.dtype).removeprefix("torch."),
        "pictures": len(requests),
        "thresholds": {"psnr_db": EQUIVALENCE_PSNR_DB, "mean_abs_diff": EQUIVALENCE_MEAN_ABS_DIFF},
        "modes": {},
    }
    modes = [("final", False, "torch"), ("draft", True, "torch")]
    if openvino:
        modes.append(("draft on OpenVINO", True, "openvino"))
    for mode, draft, runtime in modes:
        drawn = {}
        for choice, speed in ((full, SpeedOptions(runtime="torch")), (low, SpeedOptions(runtime=runtime))):
            with open_illustrator(bench.profile, choice, speed=speed, draft=draft) as illustrator:
                drawn[choice.dtype] = illustrator.illustrate([replace(r, draft=draft) for r in requests], batch_size=1)
        per = [picture_difference(a.image, b.image) for a, b in zip(drawn[full.dtype], drawn[low.dtype])]
        psnrs = [p["psnr_db"] for p in per if p["psnr_db"] is not None]
        worst_psnr = min(psnrs) if psnrs else None
        worst_mad = max(p["mean_abs_diff"] for p in per)
        out["modes"][mode] = {
            "psnr_db_min": worst_psnr,
            "mean_abs_diff_max": worst_mad,
            "max_abs_diff": max(p["max_abs_diff"] for p in per),
            "per_picture": per,
            "within_thresholds": (worst_psnr is None or worst_psnr >= EQUIVALENCE_PSNR_DB)
            and worst_mad <= EQUIVALENCE_MEAN_ABS_DIFF,
        }
    return out


def _load_average() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None
