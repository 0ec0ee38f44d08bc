"""Statistics over the runs, the JSON report and the table printed from it."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.illustrate.flops import picture_flops
from benchmarks.illustrate.measure import max_rss_bytes
from benchmarks.illustrate.workload import PICTURE_STAGES, SEED_PROJECT, STAGE_LABELS, STAGES


def summarise(values: list[float]) -> dict:
    values = [float(v) for v in values]
    if not values:
        return {}
    q1, q3 = statistics.quantiles(values, n=4, method="inclusive")[0::2] if len(values) > 1 else (values[0], values[0])
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": q1,
        "q3": q3,
        "n": len(values),
        "samples": values,
    }


def _fmt_seconds(stat: dict | None) -> str:
    if not stat:
        return "-"
    m = stat["median"]
    digits = 3 if m < 1 else 2 if m < 10 else 1
    if stat["n"] == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{stat['min']:.{digits}f}-{stat['max']:.{digits}f}]"


def _fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _fmt_rate(flops_per_second: float) -> str:
    return (
        f"{flops_per_second / 1e12:.2f} TFLOP/s"
        if flops_per_second >= 1e11
        else f"{flops_per_second / 1e9:.1f} GFLOP/s"
    )


def render_table(report: dict) -> str:
    variants = report["variants"]
    names = list(variants)
    rows: list[list[str]] = [["median s [min-max]"] + names]

    def row(label: str, cell: Callable[[dict], str]) -> None:
        rows.append([label] + [cell(variants[n]) for n in names])

    def optional(key: str, fmt: Callable[[Any], str]) -> Callable[[dict], str]:
        return lambda v: fmt(v[key]) if v.get(key) else "-"

    labels = {**STAGE_LABELS, "pictures": "pictures (wall time)", "end_to_end": "end to end"}

    def mode(v: dict) -> str:
        st = v["settings"]
        kind = f"finish:{st['finish']}" if st.get("finish") else "draft" if st.get("draft") else "final"
        dtype = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}.get(st["dtype"], st["dtype"])
        batch = f"b1+{st['batch_size']}" if st.get("first_alone") else f"b{st['batch_size']}"
        runtime = (st.get("speed") or {}).get("runtime", "torch")
        return f"{kind} {dtype} {st['steps']}st {batch}" + ("" if runtime == "torch" else f" {runtime}")

    row("mode, format, steps, batch", mode)
    for stage in STAGES + ("pictures", "end_to_end"):
        row(labels[stage], lambda v, stage=stage: _fmt_seconds(v["stages"].get(stage)))
    row("pictures per second", lambda v: f"{v['images_per_second']['median']:.3g}")
    row("seconds per picture", lambda v: _fmt_seconds(v.get("seconds_per_picture")))
    row("first picture after (s)", lambda v: _fmt_seconds(v.get("first_image_seconds")))
    row("story tokens per second", optional("story_tokens_per_second", lambda x: f"{x:.1f}"))
    row("peak GPU memory", lambda v: _fmt_bytes(v.get("peak_gpu_bytes")))
    row("peak host memory (RSS)", lambda v: _fmt_bytes(v.get("peak_host_bytes")))
    row("job FLOPs (counted)", lambda v: f"{v['flops']['total'] / 1e12:.3g} T")
    row("achieved, end to end", optional("achieved_flops_per_second", _fmt_rate))
    row("achieved, denoising", optional("denoising_flops_per_second", _fmt_rate))
    row("% of roofline, its format (e2e)", optional("roofline_fraction", lambda x: f"{100 * x:.1f}%"))
    row("FLOP floor (s)", optional("flop_floor_seconds", lambda x: f"{x:.3g}"))

    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)) for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    meta, roof = report["meta"], report["roofline"]
    load = meta.get("load_average") or {}
    head = [
        f"Storybook bench, arch {meta['arch']} on {meta['device']} ({meta['date']})",
        f"workload: {meta['workload_text']}",
        f"{meta['repeats']} timed repeat(s) after {meta['warmup']} warm-up round(s), variants interleaved"
        + (f"; load average {load['start']} at the start, {load['end']} at the end" if load.get("start") else ""),
    ]
    tail = [
        "roofline (the job's kernels, best of each): matmul "
        + ", ".join(f"{k} {_fmt_rate(v['flops_per_second'])} ({v['shape']})" for k, v in roof["matmul"].items())
        + "; convolution "
        + ", ".join(f"{k} {_fmt_rate(v['flops_per_second'])} ({v['shape']})" for k, v in roof.get("conv", {}).items())
        + f"; memory copy {roof['copy']['bytes_per_second'] / 1e9:.1f} GB/s"
    ]
    if meta.get("cpu_speed"):
        tail.append(f"CPU number format race at start-up: {meta['cpu_speed']['text']}")
    cold = report.get("cold_start") or {}
    if cold.get("first_image_seconds") is not None:
        line = (
            f"cold start (engine, models loaded from disk into an empty cache): first picture after "
            f"{cold['first_image_seconds']:.2f} s"
        )
        if cold.get("since_process_start_seconds") is not None:
            line += f"; {cold['since_process_start_seconds']:.1f} s after the process started"
            if meta["models_prepare_seconds"] >= 1:
                line += f" (of which {meta['models_prepare_seconds']:.1f} s building the benchmark models)"
        if cold.get("peak_host_bytes"):
            line += (
                f"; {cold.get('variant')} in {cold.get('dtype')}, loading {cold.get('load_seconds') or 0:.1f} s, "
                f"peak host memory {_fmt_bytes(cold['peak_host_bytes'])}"
            )
        tail.append(line)
    eq = report.get("equivalence") or {}
    if eq.get("skipped"):
        tail.append(f"equivalence: skipped, {eq['skipped']}")
    for name, m in (eq.get("modes") or {}).items():
        psnr = "identical" if m["psnr_db_min"] is None else f"PSNR {m['psnr_db_min']:.1f} dB (lowest)"
        tail.append(
            f"equivalence, {name}: {eq['dtype']} vs float32 over {eq['pictures']} picture(s), same seeds: {psnr}, "
            f"mean abs diff {m['mean_abs_diff_max']:.2f}/255 (highest), max {m['max_abs_diff']:.0f}; "
            + ("within" if m["within_thresholds"] else "OUTSIDE")
            + f" the thresholds (PSNR >= {eq['thresholds']['psnr_db']:g} dB, mean abs diff <= "
            f"{eq['thresholds']['mean_abs_diff']:g})"
        )
    tail.append(
        "stages: denoising is the pipeline call minus the timed stages inside it; 'load' is the "
        "naive per-request build, or the warm-cache lookup for the engine"
    )
    tail.append(
        "engine variants encode and save PNGs on a saver thread, as the studio does: those two rows overlap "
        "the drawing and are not part of its wall time (png-on-draw-thread shows them inline)"
    )
    return "\n".join(head + [""] + lines + [""] + tail)


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def build_report(
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
    load_average=None,
    variant_choices=None,
    batch_sizes=None,
    equivalence=None,
    cpu_speed=None,
) -> dict:
    import torch

    from engine.profiles import PROFILES

    base = PROFILES["fast" if workload.arch == "full" else "tiny"]
    from engine.device import DeviceChoice

    variant_choices = variant_choices or {
        v.name: DeviceChoice(choice.device, torch.float32) if v.naive else choice for v in variants
    }
    batch_sizes = batch_sizes or {v.name: 1 if v.naive else base.batch_size for v in variants}
    device_name = choice.describe()
    if not choice.is_gpu:
        device_name += f" ({_cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "arch": workload.arch,
        "device": device_name,
        "engine_dtype": str(choice.dtype).removeprefix("torch."),
        "naive_dtype": "float32",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "repeats": repeats,
        "warmup": warmup,
        "quick": bool(args.quick),
        "workload_text": workload.describe(),
        "models": {role: str(path) for role, path in models.items()},
        "models_prepare_seconds": prepare_seconds,
        "process_max_rss_bytes": max_rss_bytes(),
        "profile": {"name": base.name, "steps": base.steps, "guidance": base.guidance, "batch_size": base.batch_size},
        "seed_project": SEED_PROJECT,
        "load_average": load_average,
        "cpu_speed": cpu_speed,
    }
    if choice.device.startswith("cuda"):
        meta["gpu"] = torch.cuda.get_device_name()
    caption_story_flops = counted.get("captioning_and_story")
    out_variants = {}
    for variant in variants:
        runs = results[variant.name]
        steps, guidance = variant.steps_and_guidance(workload, base)
        preview = bool(variant.speed and variant.speed.preview) or variant.draft
        flops = picture_flops(per_picture, workload.images, steps, guidance, preview)
        if variant.finish == "refine":
            from engine.illustrate import REFINE_STRENGTH

            refine_steps = int(max(base.steps, round(1 / REFINE_STRENGTH)) * REFINE_STRENGTH)
            flops["denoising"] += picture_flops(per_picture, workload.images, refine_steps, guidance, False)[
                "denoising"
            ]
        if variant.whole_job and workload.captions and caption_story_flops:
            flops["captioning_and_story"] = caption_story_flops
        flops["total"] = sum(flops.values())
        stages = {}
        for stage in STAGES:
            values = [r.stages.get(stage) for r in runs]
            ran = stage in PICTURE_STAGES or (variant.whole_job and workload.captions)
            stages[stage] = summarise([v or 0.0 for v in values]) if ran else None
        stages["pictures"] = summarise([r.pictures_seconds for r in runs])
        stages["end_to_end"] = summarise([r.end_to_end for r in runs])
        median_e2e = stages["end_to_end"]["median"]
        variant_choice = variant_choices[variant.name]
        dtype_key = str(variant_choice.dtype).removeprefix("torch.")
        rate = roofline.get("best", {}).get(dtype_key) or roofline["matmul"].get(dtype_key, {}).get("flops_per_second")
        denoise = stages["denoising"]["median"] if stages.get("denoising") else 0
        entry = {
            "description": variant.description,
            "settings": {
                "steps": steps,
                "guidance": guidance,
                "dtype": dtype_key,
                "speed": asdict(variant.speed) if variant.speed else None,
                "batch_size": batch_sizes[variant.name],
                # On a CPU the engine draws the first picture alone, then full batches.
                "first_alone": not variant.naive and not choice.is_gpu and batch_sizes[variant.name] > 1,
                "draft": variant.draft,
                "finish": variant.finish,
                "whole_job": variant.whole_job,
                "saver_thread": variant.saver_thread,
            },
            "stages": stages,
            "images": runs[0].images,
            "images_per_second": summarise([r.images / r.pictures_seconds for r in runs]),
            "seconds_per_picture": summarise([r.pictures_seconds / r.images for r in runs]),
            "first_image_seconds": summarise([r.first_image for r in runs if r.first_image is not None]),
            "caption_tokens": runs[0].caption_tokens,
            "story_tokens": runs[0].story_tokens,
            "story_generate_calls": runs[0].story_calls,
            "story_tokens_per_second": (
                runs[0].story_tokens / stages["story"]["median"]
                if stages.get("story") and stages["story"]["median"]
                else None
            ),
            "peak_gpu_bytes": max((r.peak_gpu_bytes for r in runs if r.peak_gpu_bytes is not None), default=None),
            "peak_gpu_above_start_bytes": max(
                (r.peak_gpu_above_start for r in runs if r.peak_gpu_above_start is not None), default=None
            ),
            "peak_host_bytes": max(r.peak_host_bytes for r in runs),
            "flops": flops,
            "achieved_flops_per_second": flops["total"] / median_e2e if median_e2e else None,
            "denoising_flops_per_second": flops["denoising"] / denoise if denoise else None,
            "decoding_flops_per_second": (
                flops["decoding"] / stages["decoding"]["median"] if stages["decoding"]["median"] else None
            ),
            "roofline_flops_per_second": rate,
            "flop_floor_seconds": flops["total"] / rate if rate else None,
            "roofline_fraction": (flops["total"] / median_e2e) / rate if rate and median_e2e else None,
        }
        out_variants[variant.name] = entry
    report = {
        "meta": meta,
        "workload": asdict(workload),
        "roofline": roofline,
        "flops_per_picture": {
            **per_picture,
            "note": "one prompt encoding, one UNet evaluation at batch 1 "
            "(without guidance), one decode; counted on meta-device copies",
        },
        "cold_start": cold,
        "variants": out_variants,
        "equivalence": equivalence,
    }
    if "naive" in out_variants:
        naive = out_variants["naive"]
        report["speedups"] = {
            name: naive["stages"]["end_to_end"]["median"] / v["stages"]["end_to_end"]["median"]
            for name, v in out_variants.items()
            if v["settings"]["whole_job"] and name != "naive"
        }
        report["speedups_pictures"] = {
            name: naive["stages"]["pictures"]["median"] / v["stages"]["pictures"]["median"]
            for name, v in out_variants.items()
            if name != "naive"
        }
    return report
