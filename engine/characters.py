"""Who is on each page: a fast rule-based resolver of names, pronouns and descriptive references.

A page that says "she" or "the old keeper" instead of "Mara" still shows Mara, so her description must
reach that page's prompt. The resolver reads the pages in order and keeps a list of the characters
mentioned most recently (across page breaks); every mention is one of:

* the character's name, whole word, any case ("Mara", "MARA", "Mara's"), or the last word of a
  several-word name ("Captain Hook" -> "Hook"), or one of the character's aliases;
* a descriptive reference: "the", "this", "that" or a possessive ("her", "his", "their", "Mara's")
  followed within three words by a head noun of the character's description. Head nouns are the last
  word of each part of the description before "with", "who", "in", "wearing", ... : "an old lighthouse
  keeper with a white beard, Mara's grandfather" gives "keeper" and "grandfather", so "the old keeper"
  and "her grandfather" are him. A head noun two characters share names neither.
* a pronoun outside quoted speech: "she/her/hers/herself" is the most recent female character, or,
  if none was mentioned, the most recent one whose gender is unknown; "he/him/his/himself" likewise
  for males; "they/them/their" the characters of the last sentence that held two or more, less
  those already in this sentence ("The owl blinked at them": not the owl), else the most recent one.
  "it", "I" and "you" are never resolved (too often a thing, or the speaker).
  Gender comes from the character's own `gender` ("female", "male") or from words in the description
  ("girl", "woman", "queen", "she" ... ; "boy", "man", "king", "he" ...).
* a page that begins with a pronoun before any character was ever mentioned looks ahead: the pronoun
  is the first compatible character the following pages name (a story that opens "She ran." about Mara).

Quoted speech counts for names ("Come here, Pip!" puts Pip on the page) but not for pronouns, whose
referent inside speech is the speaker's business. No tagger, no download, linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.errors import InputError

FEMALE, MALE, UNKNOWN = "female", "male", ""

_FEMALE_WORDS = frozenset(
    "she her hers herself girl woman lady queen princess mother mom mum mama grandmother granny grandma aunt "
    "sister daughter wife witch niece duchess empress hen vixen mare maiden heroine actress".split()
)
_MALE_WORDS = frozenset(
    "he him his himself boy man gentleman king prince father dad papa grandfather grandpa granddad uncle "
    "brother son husband wizard nephew duke emperor rooster stallion lad hero actor".split()
)
_PRONOUNS = {
    "she": FEMALE,
    "her": FEMALE,
    "hers": FEMALE,
    "herself": FEMALE,
    "he": MALE,
    "him": MALE,
    "his": MALE,
    "himself": MALE,
    "they": "plural",
    "them": "plural",
    "their": "plural",
    "theirs": "plural",
    "themselves": "plural",
}
_DETERMINERS = frozenset("the this that these those".split())
_POSSESSIVES = frozenset("her his their my your our its".split())
# Words after which a description stops naming what the character is and starts saying what they have.
_HEAD_BREAKS = frozenset(
    "with who whose which that in on wearing carrying holding from of named called and or at by for "
    "under over near, beside".split()
)
_ARTICLES = frozenset("a an the some one".split())
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|[.!?…]+|\n\s*\n")
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|«[^»]*»|‘(?:[^’]|’(?=\w))*’')
_SENTENCE_END = re.compile(r"^(?:[.!?…]+|\n\s*\n)$")


@dataclass(frozen=True)
class Character:
    """A character as the story's cast list holds it."""

    name: str
    description: str = ""
    gender: str = UNKNOWN  # "female", "male" or "" (from the description)
    aliases: tuple[str, ...] = ()


@dataclass
class PageCast:
    """Who is on one page, in order of first appearance, and why (one reason per mention kind)."""

    names: list[str] = field(default_factory=list)
    evidence: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, why: str) -> None:
        if name not in self.evidence:
            self.names.append(name)
            self.evidence[name] = []
        if why not in self.evidence[name]:
            self.evidence[name].append(why)


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in re.findall(r"[^\W\d_]+(?:['’][^\W\d_]+)*", text or "")]


def infer_gender(character: Character) -> str:
    if character.gender in (FEMALE, MALE):
        return character.gender
    words = set(_words(character.description))
    female, male = bool(words & _FEMALE_WORDS), bool(words & _MALE_WORDS)
    if female and not male:
        return FEMALE
    if male and not female:
        return MALE
    if female and male:  # "a girl with her father's hat": the first such word describes the character
        for word in _words(character.description):
            if word in _FEMALE_WORDS:
                return FEMALE
            if word in _MALE_WORDS:
                return MALE
    return UNKNOWN


def head_nouns(description: str) -> list[str]:
    """The words of a description that say what the character is: see the module notes."""
    heads: list[str] = []
    for chunk in re.split(r"[,;:()]", description or ""):
        words = _words(chunk)
        run: list[str] = []
        for word in words:
            if word in _HEAD_BREAKS:
                break
            run.append(word)
        run = [w for w in run if w not in _ARTICLES and not w.endswith("'s")]
        if run and run[-1] not in _PRONOUNS and len(run[-1]) > 1:
            heads.append(run[-1])
    return list(dict.fromkeys(heads))


def _as_character(item) -> Character:
    if isinstance(item, Character):
        return item
    name, description = item
    return Character(name=name, description=description or "")


class _Cast:
    def __init__(self, characters: Sequence[Character]):
        self.characters = [c for c in characters if (c.name or "").strip()]
        self.gender = {c.name: infer_gender(c) for c in self.characters}
        self.names: dict[tuple[str, ...], str] = {}  # a name's words (lower case) -> character
        for c in self.characters:
            words = tuple(_words(c.name))
            if words:
                self.names[words] = c.name
            for alias in c.aliases:
                if _words(alias):
                    self.names.setdefault(tuple(_words(alias)), c.name)
        for c in self.characters:  # "Captain Hook" is also "Hook", unless that is someone else's name
            words = tuple(_words(c.name))
            if len(words) > 1:
                self.names.setdefault(words[-1:], c.name)
        heads: dict[str, set[str]] = {}
        for c in self.characters:
            for head in head_nouns(c.description):
                heads.setdefault(head, set()).add(c.name)
        self.heads = {head: next(iter(owners)) for head, owners in heads.items() if len(owners) == 1}
        self.longest = max((len(k) for k in self.names), default=1)


def _tokens(text: str) -> list[tuple[str, bool]]:
    """(token, inside quoted speech) pairs; tokens are lower-case words and sentence ends."""
    spans = [m.span() for m in _QUOTED.finditer(text)]
    out = []
    for m in _TOKEN.finditer(text):
        inside = any(a <= m.start() < b for a, b in spans)
        token = m.group()
        out.append((token if _SENTENCE_END.match(token) else token.lower().replace("’", "'"), inside))
    return out


def _reference_end(tokens: list[tuple[str, bool]], start: int, cast: _Cast) -> int | None:
    """Index of a head noun within three words after a determiner or possessive at `start`, if any."""
    for j in range(start + 1, min(start + 5, len(tokens))):
        word = tokens[j][0]
        if _SENTENCE_END.match(word):
            return None
        if word.removesuffix("'s") in cast.heads:
            return j
    return None


def resolve_characters(pages: Sequence[str], characters: Sequence) -> list[PageCast]:
    """For each page, the characters on it (names in order of appearance) with the evidence for each.

    characters: `Character`s or (name, description) pairs. Pages without characters get an empty cast.
    """
    if isinstance(pages, str):
        raise InputError("Give the resolver a list of pages, not one string.")
    cast = _Cast([_as_character(c) for c in characters])
    result = [PageCast() for _ in pages]
    if not cast.characters:
        return result
    recent: list[str] = []  # most recent last
    sentence_mentions: list[str] = []
    last_group: list[str] = []  # the characters of the last sentence that had two or more
    pending: list[tuple[int, str, str]] = []  # (page, gender wanted, pronoun) before anyone was named

    def mention(page: int, name: str, why: str) -> None:
        result[page].add(name, why)
        if name in recent:
            recent.remove(name)
        recent.append(name)
        sentence_mentions.append(name)
        for item in [p for p in pending if p[1] in (cast.gender[name], UNKNOWN) or cast.gender[name] == UNKNOWN]:
            pending.remove(item)
            result[item[0]].add(name, item[2])

    def pronoun(page: int, word: str) -> None:
        kind = _PRONOUNS[word]
        if kind == "plural":
            here = set(sentence_mentions)
            group = [n for n in dict.fromkeys(last_group) if n not in here] or recent[-1:]
            for name in group:
                result[page].add(name, word)
                sentence_mentions.append(name)
            return
        for wanted in (kind, UNKNOWN):
            for name in reversed(recent):
                if cast.gender[name] == wanted:
                    result[page].add(name, word)
                    return
        if not recent:
            pending.append((page, kind, word))

    for index, text in enumerate(pages):
        tokens = _tokens(text or "")
        i = 0
        while i < len(tokens):
            token, quoted = tokens[i]
            if _SENTENCE_END.match(token):
                if len(set(sentence_mentions)) > 1:
                    last_group = list(sentence_mentions)
                sentence_mentions = []
                i += 1
                continue
            found = None
            for size in range(min(cast.longest, len(tokens) - i), 0, -1):
                key = tuple(t[0].removesuffix("'s") for t in tokens[i : i + size])
                if key in cast.names:
                    found = (cast.names[key], size)
                    break
            if found:
                mention(index, found[0], "named")
                i += found[1]
                continue
            end = (
                _reference_end(tokens, i, cast)
                if token in _DETERMINERS or token in _POSSESSIVES or (token.endswith("'s"))
                else None
            )
            if end is not None:
                if token in _PRONOUNS and not quoted:  # "her grandfather": her is someone too
                    pronoun(index, token)
                head = tokens[end][0].removesuffix("'s")
                mention(index, cast.heads[head], " ".join(t[0] for t in tokens[i : end + 1]))
                i = end + 1
                continue
            if token in _PRONOUNS and not quoted:
                pronoun(index, token)
            i += 1
    return result


def page_characters(pages: Sequence[str], characters: Sequence) -> list[list[str]]:
    """Just the names on each page (see `resolve_characters`)."""
    return [cast.names for cast in resolve_characters(pages, characters)]
