"""`python -m benchmarks.illustrate` (or `python -m engine bench`): time a fixed storybook job, naive vs ours.

The job: pictures for two stories of six segments (512x512 on the full architecture, 64x64 on tiny),
captions for four of those pictures, and one story of about 300 tokens written from four captions.

Variants run in one process, interleaved round by round after a warm-up, on the same model files:

* naive: what the seed project did. fp32; each story request builds its pipeline from disk again
  (reported as its own 'load' line) and calls it once per picture; captions one picture at a time and
  the storyteller loaded per request, all in fp32.
* engine-same-steps: our Illustrator, Captioner and Storyteller as the studio runs them (shared model
  cache, warm; batching; half precision on a GPU), with the naive run's steps and guidance: the
  systems speed-up with nothing changed about the pictures.
* engine-default: the same, with the profile's steps and guidance, as a user gets it.
* engine-default:<flag>: the pictures only, with one SpeedOptions flag changed, to show what it buys.

Stages are timed by wrapping the pipeline's own parts (encode_prompt, vae.decode, the image
post-processing, the preview decoder) for the length of a run, with the device synchronised around each
timer; denoising is what is left of the pipeline call (UNet steps, scheduler, latent set-up).

The full architecture is the `fast` profile's models at full size (SD-Turbo, BLIP base, Qwen2.5-0.5B)
built from the published configs in configs/ (beside this file) with random weights, saved once as safetensors
and loaded through the same from_pretrained paths as real downloads: the compute equals the real
models'. Their tokenizers are the tinykit's, padded to the models' vocabulary sizes (CLIP prompts are
padded to 77 tokens as always), since the cost is in the models, not the tokenizers. Random weights
write random tokens, so every caption and story passage is held to its full token budget (end-of-text
is suppressed) and each variant does the same work.

FLOPs: the diffusion models are counted with torch's FlopCounterMode on meta-device copies (no compute),
the captioner and storyteller while the engine-default warm-up runs; the job's FLOPs over the measured
matmul rate of this device (measured in the same run) is the FLOP floor of the job.

The package, by stage: `workload` (the job and its variants), `models` (the full-size random-weight models
from the published configs in configs/), `flops` (counting on the meta device), `measure` (clocks, memory,
kernel rates, picture differences), `runner` (one run of one variant, and the whole measurement), `report`
(statistics, the JSON report and the table), `cli` (the command), `cast` (the cast features' bench).
It reaches the engine through its public interfaces only: a private model cache comes from
`engine.cache.use_cache`, a separate copy of the pipeline from `engine.loading.loaded_model(copy=...)`.
"""
