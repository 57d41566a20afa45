"""Synthetic annotator populations with conflicting tastes, for the LPC experiment (issue 6).

Each population is a deterministic scorer: `score(population, text) -> float` (higher = preferred)
and a margin below which the population has no preference (the pair is dropped). Each population
is tied to a prompt feature, the prompt's `source` (topic), by `POPULATION_OF_SOURCE`. Tastes
conflict on purpose: concise vs elaborate (length), lists vs elaborate prose (structure), formal
vs casual (register). So no single style wins everywhere: a model must read the prompt's topic to
know whose taste applies, the latent factor LPC's codes should discover.

Used by tools/make_population_data.py (judging pairs) and tools/lpc_experiment.py (steering: every
generated output scored by every population). Pure Python, no dependencies.
"""
from __future__ import annotations

import re

# source (topic of the prompt) -> the population whose taste judges its pairs
POPULATION_OF_SOURCE = {
    "science": "concise",
    "creative": "elaborate",
    "howto": "lists",
    "definitions": "formal",
    "advice": "casual",
}
POPULATIONS = ["concise", "elaborate", "lists", "formal", "casual"]

DESCRIPTIONS = {
    "concise": "fewer words is better",
    "elaborate": "more words of prose is better; list lines count against",
    "lists": "more bulleted / numbered list lines is better; then fewer words",
    "formal": "longer words, no contractions, exclamations, emoji or chatty words",
    "casual": "contractions, exclamations, emoji, chatty words and 'you'; short words",
}

LIST_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S", re.MULTILINE)
WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019]*")
# Contractions, not possessives: n't 're 've 'll 'd 'm anywhere, 's only after pronoun-like words.
CONTRACTION = re.compile(r"\b(?:[A-Za-z]+['\u2019](?:re|ve|ll|d|m|t)|(?:it|that|what|there|here|he|she|let|who|where|how)['\u2019]s)\b",
                         re.IGNORECASE)
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
CHATTY = {
    "hey", "hi", "yeah", "yep", "gonna", "wanna", "gotta", "cool", "awesome", "lol", "super",
    "stuff", "kinda", "sorta", "totally", "okay", "ok", "guys", "buddy", "pal", "oh", "wow",
    "honestly", "basically", "pretty", "fun", "haha", "dude", "amazing", "just", "really", "so",
}
MARGINS = {"concise": 6.0, "elaborate": 6.0, "lists": 1.0, "formal": 0.6, "casual": 1.0}


def words(text: str) -> list[str]:
    return WORD.findall(text)


def list_lines(text: str) -> int:
    return len(LIST_LINE.findall(text))


def casual_markers(text: str) -> int:
    """Count of informal markers: contractions, '!', emoji, chatty words, second person."""
    ws = [w.lower() for w in words(text)]
    return (len(CONTRACTION.findall(text)) + text.count("!") + len(EMOJI.findall(text))
            + sum(1 for w in ws if w in CHATTY) + sum(1 for w in ws if w in ("you", "your", "you're")))


def features(text: str) -> dict:
    ws = words(text)
    n = len(ws)
    return {
        "words": n,
        "list_lines": list_lines(text),
        "casual_markers": casual_markers(text),
        "mean_word_length": (sum(len(w) for w in ws) / n) if n else 0.0,
    }


def score(population: str, text: str) -> float:
    """The population's taste as a number; higher is better. Deterministic."""
    f = features(text)
    n = max(f["words"], 1)
    if population == "concise":
        return -float(f["words"])
    if population == "elaborate":
        return float(f["words"]) - 15.0 * f["list_lines"]
    if population == "lists":
        # list lines dominate; among equal structure, fewer words (scaled below one list line)
        return float(f["list_lines"]) - f["words"] / 1000.0
    # register, per 10 words so long answers are not favoured by count alone
    rate = 10.0 * f["casual_markers"] / n
    if population == "formal":
        return f["mean_word_length"] - rate
    if population == "casual":
        return rate - 0.5 * f["mean_word_length"]
    raise ValueError(f"unknown population {population!r}; known: {', '.join(POPULATIONS)}")


def judge(population: str, a: str, b: str) -> tuple[int, float] | None:
    """(0 if a wins else 1, |score margin|), or None when the margin is below the population's."""
    sa, sb = score(population, a), score(population, b)
    if abs(sa - sb) < MARGINS[population]:
        return None
    return (0 if sa > sb else 1), abs(sa - sb)


def score_all(text: str) -> dict:
    return {p: score(p, text) for p in POPULATIONS}


if __name__ == "__main__":
    # Self-check: each population prefers what its description says, and tastes conflict.
    short, long_ = "Water is wet.", " ".join(["Water molecules stick together strongly"] * 5) + "."
    lst = "- one step\n- two steps\n- three steps"
    casual, formal = "Hey, it's super easy, you'll love it!", "Consequently, photosynthesis transforms illumination."
    assert judge("concise", short, long_)[0] == 0 and judge("elaborate", short, long_)[0] == 1
    assert judge("lists", lst, long_)[0] == 0 and judge("elaborate", lst, long_)[0] == 1
    assert judge("casual", casual, formal)[0] == 0 and judge("formal", casual, formal)[0] == 1
    assert casual_markers("The Earth's atmosphere") == 0 and casual_markers("It's what's left, don't go") == 3
    print("lpc_annotators: self-check passed")
