"""`python -m benchmarks.illustrate` (and `python -m engine bench`, which forwards to it): the smoke run reports
every variant and stage; the full configs are the real ones.

No timing is asserted: this machine's speed is not the code's business. Only shapes, presence and signs.
"""

import json

import pytest

from benchmarks.illustrate import cli
from benchmarks.illustrate.flops import count_diffusion_flops, picture_flops
from benchmarks.illustrate.measure import StageClock, patched, picture_difference
from benchmarks.illustrate.models import build_full_model, load_config, parameter_count
from benchmarks.illustrate.report import summarise
from benchmarks.illustrate.workload import PICTURE_STAGES, STAGES, Workload, choose_variants, resolve_workload
from engine.__main__ import build_parser, main


def test_quick_tiny_bench_reports_every_variant_and_stage(tmp_path, tiny_models, capsys):
    out = tmp_path / "json"
    assert main(["bench", "--quick", "--arch", "tiny", "--silent", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))

    expected = [v.name for v in choose_variants(None, is_gpu=False)]
    assert {"naive", "engine-same-steps", "engine-default"} <= set(expected)
    assert list(report["variants"]) == expected
    for name in expected:
        assert name in table
    assert report["meta"]["arch"] == "tiny" and report["meta"]["repeats"] == 1

    for name, variant in report["variants"].items():
        stages = variant["stages"]
        whole_job = variant["settings"]["whole_job"]
        for stage in STAGES + ("pictures", "end_to_end"):
            assert stage in stages, (name, stage)
            if stage in PICTURE_STAGES or whole_job or stage in ("pictures", "end_to_end"):
                assert stages[stage]["median"] > 0, (name, stage)
                assert stages[stage]["min"] <= stages[stage]["median"] <= stages[stage]["max"]
                assert len(stages[stage]["samples"]) == 1
            else:
                assert stages[stage] is None, (name, stage)
        assert variant["images"] == report["workload"]["images"]
        assert variant["images_per_second"]["median"] > 0
        assert variant["first_image_seconds"]["median"] > 0
        assert variant["peak_host_bytes"] > 0
        assert variant["flops"]["total"] > 0 and variant["flops"]["denoising"] > 0
        assert variant["achieved_flops_per_second"] > 0 and variant["flop_floor_seconds"] > 0
        if whole_job:
            # Every caption and every story passage is held to its full token budget: the same work each time.
            assert variant["caption_tokens"] == report["workload"]["captions"] * 30
            assert variant["story_tokens"] == Workload(**report["workload"]).story_tokens()
            assert variant["flops"]["captioning_and_story"] > 0

    naive, default = report["variants"]["naive"], report["variants"]["engine-default"]
    assert naive["settings"]["dtype"] == "float32" and naive["settings"]["batch_size"] == 1
    assert naive["settings"]["steps"] == report["workload"]["steps"]
    assert default["settings"]["steps"] == report["meta"]["profile"]["steps"]
    # PNG encoding runs on a saver thread in the engine, as in the studio; one variant keeps it inline.
    assert default["settings"]["saver_thread"] and not naive["settings"]["saver_thread"]
    assert not report["variants"]["engine-default:png-on-draw-thread"]["settings"]["saver_thread"]
    for variant in report["variants"].values():
        assert variant["stages"]["pictures"]["median"] >= variant["stages"]["load"]["median"]
    preview = report["variants"]["engine-default:preview"]
    assert preview["flops"]["decoding"] < default["flops"]["decoding"]
    assert report["roofline"]["matmul"]["float32"]["flops_per_second"] > 0
    assert report["roofline"]["copy"]["bytes_per_second"] > 0
    assert report["cold_start"]["first_image_seconds"] > 0
    assert set(report["speedups"]) == {"engine-same-steps", "engine-default"}
    # The CPU path's variants: drafts, finishing, fp32 beside the engine's format, one at a time vs batched.
    draft, finish = report["variants"]["engine-draft"], report["variants"]["engine-finish"]
    assert draft["settings"]["draft"] and draft["settings"]["steps"] == 1
    assert draft["settings"]["batch_size"] == report["meta"]["profile"]["batch_size"]
    assert report["variants"]["engine-draft:one-at-a-time"]["settings"]["batch_size"] == 1
    assert report["variants"]["engine-default:fp32"]["settings"]["dtype"] == "float32"
    assert draft["flops"]["total"] < default["flops"]["total"]
    assert finish["settings"]["finish"] == "decode" and finish["flops"]["decoding"] == default["flops"]["decoding"]
    refine = report["variants"]["engine-finish:refine"]
    assert refine["flops"]["denoising"] > finish["flops"]["denoising"]
    # The roofline is measured on the job's own kernels, in each number format a variant runs in.
    for dtype in {v["settings"]["dtype"] for v in report["variants"].values()}:
        assert report["roofline"]["conv"][dtype]["flops_per_second"] > 0
        assert report["roofline"]["best"][dtype] >= report["roofline"]["matmul"][dtype]["flops_per_second"]
    assert report["cold_start"]["peak_host_bytes"] > 0


def test_bf16_pictures_are_compared_with_fp32_ones_of_the_same_seeds(tmp_path, tiny_models, capsys):
    out = tmp_path / "json"
    argv = ["bench", "--quick", "--arch", "tiny", "--silent", "--dtype", "bfloat16", "--equivalence", "1"]
    assert main([*argv, "--variants", "engine-draft,engine-draft:fp32", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))
    eq = report["equivalence"]
    assert eq["dtype"] == "bfloat16" and eq["pictures"] == 1
    for mode in ("final", "draft"):
        m = eq["modes"][mode]
        assert m["mean_abs_diff_max"] > 0, "bf16 and fp32 differ in their last bits: a real comparison ran"
        assert m["psnr_db_min"] is not None and m["psnr_db_min"] > 0
        assert isinstance(m["within_thresholds"], bool)
        assert f"equivalence, {mode}: bfloat16 vs float32" in table
    assert report["variants"]["engine-draft"]["settings"]["dtype"] == "bfloat16"
    assert report["variants"]["engine-draft:fp32"]["settings"]["dtype"] == "float32"


def test_picture_difference_is_zero_for_the_same_picture_and_grows_with_noise():
    from PIL import Image

    a = Image.new("RGB", (8, 8), (100, 150, 200))
    b = Image.new("RGB", (8, 8), (110, 150, 200))
    same = picture_difference(a, a)
    assert same["psnr_db"] is None and same["mean_abs_diff"] == 0
    diff = picture_difference(a, b)
    assert abs(diff["mean_abs_diff"] - 10 / 3) < 1e-9 and diff["max_abs_diff"] == 10
    assert 30 < diff["psnr_db"] < 40


def test_bench_is_a_subcommand_with_the_workload_flags():
    args = build_parser().parse_args(
        ["bench", "--arch", "full", "--images", "1", "--steps", "1", "--size", "256", "--repeats", "1"]
    )
    assert args.func is cli.cmd_bench
    workload = resolve_workload(args)
    assert (workload.images, workload.steps, workload.size, workload.captions) == (1, 1, 256, 1)
    assert workload.story_sizes() == [1]
    full = resolve_workload(build_parser().parse_args(["bench", "--arch", "full"]))
    assert full.story_sizes() == [6, 6] and full.size == 512 and full.captions == 4
    assert 280 <= full.story_tokens() <= 320  # "a story of about 300 tokens"


def test_bad_workloads_are_refused_in_words(capsys):
    assert main(["bench", "--quick", "--size", "100"]) == 1
    assert "multiple of 8" in capsys.readouterr().err
    assert main(["bench", "--quick", "--variants", "engine-default:compile"]) == 1
    assert "GPU" in capsys.readouterr().err


# Published sizes: SD 2.1 UNet 865.9M, OpenCLIP-H text tower (23 layers) 340.4M, SD VAE 83.65M,
# BLIP base 247.4M as its checkpoint stores it (the decoder's tied output matrix counted twice),
# Qwen2.5-0.5B 494.0M (embeddings tied), TAESD 2.45M.
@pytest.mark.parametrize(
    "part, expected, tied_twice",
    [
        ("unet", 865_910_724, False),
        ("text_encoder", 340_387_840, False),
        ("vae", 83_653_863, False),
        ("captioner", 247_414_076, True),
        ("storyteller", 494_032_768, False),
        ("preview_decoder", 2_445_063, False),
    ],
)
def test_full_configs_build_on_meta_with_the_published_sizes(part, expected, tied_twice):
    model = build_full_model(part, device="meta")
    assert all(p.device.type == "meta" for p in model.parameters())
    count = parameter_count(model, count_tied_twice=tied_twice)
    assert abs(count - expected) / expected < 0.02, (part, count)


def test_full_configs_are_the_fast_profiles_architectures():
    unet = load_config("unet")
    assert unet["cross_attention_dim"] == 1024 and unet["attention_head_dim"] == [5, 10, 20, 20]
    assert unet["use_linear_projection"] and unet["block_out_channels"] == [320, 640, 1280, 1280]
    assert unet["sample_size"] == 64 and unet["in_channels"] == unet["out_channels"] == 4
    text = load_config("text_encoder")
    assert (text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"]) == (1024, 23, 16)
    assert text["intermediate_size"] == 4096 and text["hidden_act"] == "gelu" and text["projection_dim"] == 1024
    scheduler = load_config("scheduler")
    assert scheduler["_class_name"] == "EulerDiscreteScheduler" and scheduler["timestep_spacing"] == "trailing"
    qwen = load_config("storyteller")
    assert (
        qwen["hidden_size"],
        qwen["num_hidden_layers"],
        qwen["num_attention_heads"],
        qwen["num_key_value_heads"],
        qwen["intermediate_size"],
        qwen["vocab_size"],
    ) == (896, 24, 14, 2, 4864, 151936)
    assert qwen["tie_word_embeddings"]
    blip = load_config("captioner")
    assert blip["vision_config"]["image_size"] == 384 and blip["text_config"]["vocab_size"] == 30524


def test_flop_floor_of_a_512_picture_matches_the_known_figures():
    parts = {p: build_full_model(p, device="meta") for p in ("unet", "vae", "text_encoder", "preview_decoder")}
    flops = count_diffusion_flops(parts["unet"], parts["vae"], parts["text_encoder"], parts["preview_decoder"], 512)
    assert 0.75e12 < flops["unet"] < 0.85e12  # about 0.8 TFLOP per UNet evaluation at 512x512
    assert 2.4e12 < flops["vae_decode"] < 2.6e12  # about 2.5 TFLOP per full decode
    assert flops["preview_decode"] < flops["vae_decode"] / 10  # TAESD: about 1/18
    job = picture_flops(flops, images=12, steps=50, guidance=7.5, preview=False)
    assert job["denoising"] == pytest.approx(12 * 50 * 2 * flops["unet"])  # guidance runs the UNet twice
    fast = picture_flops(flops, images=12, steps=4, guidance=0.0, preview=False)
    assert fast["denoising"] == pytest.approx(12 * 4 * flops["unet"])


def test_summary_statistics():
    s = summarise([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (3.0, 1.0, 10.0, 5)
    assert s["q1"] <= s["median"] <= s["q3"]
    one = summarise([2.5])
    assert one["median"] == one["q1"] == one["q3"] == 2.5


def test_stage_hooks_are_removed_after_the_run():
    class Part:
        def decode(self, x):
            return x + 1

    part = Part()
    clock = StageClock(lambda: None)
    with patched([(part, "decode", lambda fn: clock.wrap("decoding", fn))]):
        assert part.decode(1) == 2
    assert "decode" not in vars(part) and clock.seconds["decoding"] > 0


def test_the_benchmark_command_and_the_engine_forward_take_the_same_flags(capsys):
    import argparse
    import os
    import subprocess
    import sys
    from pathlib import Path

    argv = ["--arch", "full", "--images", "1", "--variants", "naive", "--json", "x.json", "--cast-candidates", "3"]
    forwarded = vars(build_parser().parse_args(["bench", *argv]))
    own = argparse.ArgumentParser()
    cli.add_arguments(own)
    assert {k: v for k, v in forwarded.items() if k != "command"} == vars(own.parse_args(argv))
    assert cli.main(["--quick", "--size", "100"]) == 1
    assert "multiple of 8" in capsys.readouterr().err

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.illustrate", "--help"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert done.returncode == 0 and "python -m benchmarks.illustrate" in done.stdout and "--variants" in done.stdout
