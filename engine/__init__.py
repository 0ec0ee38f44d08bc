"""Storybook Studio's generation engine: models, segmentation, prompts, jobs.

Imports neither streamlit nor storage; the studio joins them in studio/actions/.
"""

import os

# huggingface_hub reads HF_HUB_OFFLINE when it is imported; a user who asked for offline mode through
# the studio's own switch gets it before any model library loads.
if os.environ.get("STORYBOOK_OFFLINE", "").strip() in {"1", "true", "yes"}:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
