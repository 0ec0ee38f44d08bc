"""What a person may ask for: story length, the storyteller's tones, ages and lengths."""

from __future__ import annotations

MAX_STORY_CHARS = 200_000  # what is cut into pages and drawn in one book (storage keeps longer texts)
MAX_CANDIDATES = 8  # best of N: pictures drawn per page, the best scored one chosen (1 to this)
# How closely pages follow a character's reference picture unless the person chooses: the share rate of shared
# attention (0 to 1) and the IP-Adapter's scale (0 to 2). The engine draws with them; the studio shows them.
DEFAULT_SHARE_RATE = 0.5
DEFAULT_IP_SCALE = 0.6

TONES: dict[str, str] = {
    "gentle": "warm and gentle",
    "funny": "funny and playful, with a silly surprise",
    "adventurous": "exciting and adventurous",
    "bedtime": "calm and sleepy, ending softly",
    "mysterious": "a little mysterious, with a small puzzle to wonder about",
}
MIN_AGE, MAX_AGE = 3, 12
MIN_CAPTIONS, MAX_CAPTIONS = 1, 12
MAX_HINTS_CHARS = 1000
MAX_CAPTION_CHARS = 300
MAX_TITLE_CHARS = 120
MIN_WORDS, MAX_WORDS = 10, 250
MAX_TEMPERATURE = 2.0
DEFAULT_TEMPERATURE = 0.8
# What a story from pictures is asked with unless a person says otherwise: the studio's boxes show these, and the
# engine, the CLI and a saved request without them use the same.
DEFAULT_TONE, DEFAULT_AGE, DEFAULT_WORDS = "gentle", 6, 50
