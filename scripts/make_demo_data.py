"""Generate examples/reviews/{train,validation,test}.jsonl: short product and movie reviews written for baton.

The phrases below were written for this project. Reviews mix plain, negated ("not bad at all"), and mixed opinions
("X, but Y": the clause after "but" decides the label), and some carry typos. Seeded: rerunning gives the same files.
Usage: python scripts/make_demo_data.py [OUT_DIR]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SUBJECTS = {
    "movie": [
        "the movie",
        "this film",
        "the sequel",
        "the documentary",
        "the ending",
        "the script",
        "the cast",
        "the soundtrack",
        "the pacing",
        "the plot",
        "the director's cut",
        "the animation",
    ],
    "product": [
        "this blender",
        "the headphones",
        "the battery",
        "this phone case",
        "the charger",
        "the keyboard",
        "the vacuum",
        "this kettle",
        "the backpack",
        "the screen",
        "the mattress",
        "the coffee grinder",
        "these running shoes",
        "the delivery",
        "customer support",
        "the app",
    ],
}
POS_ADJ = [
    "great",
    "excellent",
    "wonderful",
    "fantastic",
    "solid",
    "delightful",
    "impressive",
    "reliable",
    "charming",
    "superb",
    "sturdy",
    "brilliant",
    "lovely",
    "well made",
    "gripping",
]
NEG_ADJ = [
    "terrible",
    "awful",
    "boring",
    "disappointing",
    "flimsy",
    "dull",
    "useless",
    "cheap",
    "clumsy",
    "broken",
    "annoying",
    "mediocre",
    "painful",
    "sloppy",
    "forgettable",
]
POS_CLAUSE = [
    "I would buy it again",
    "worth every penny",
    "I loved every minute",
    "it exceeded my expectations",
    "highly recommended",
    "my whole family enjoyed it",
    "it works exactly as advertised",
    "I keep coming back to it",
    "five stars from me",
    "it made my week",
    "I'm telling all my friends about it",
    "it still works perfectly after months",
]
NEG_CLAUSE = [
    "I want my money back",
    "a complete waste of time",
    "I returned it after two days",
    "it stopped working within a week",
    "I walked out halfway through",
    "one star is generous",
    "avoid it",
    "it fell apart almost immediately",
    "I regret buying it",
    "nobody in my family liked it",
    "it never worked properly",
    "I nearly fell asleep",
]
NEG_OF_POS = [
    "not great",
    "not worth the price",
    "not as good as the reviews said",
    "never comfortable",
    "not something I would recommend",
    "hardly impressive",
    "not reliable at all",
]
NEG_OF_NEG = [
    "not bad at all",
    "never boring",
    "not disappointing in the slightest",
    "far from cheap-feeling",
    "not a waste of money",
    "hardly a flaw to be found",
    "not as flimsy as I feared",
]
OPENERS = ["Honestly,", "Overall,", "To be fair,", "After a month,", "I have to say", "In short,", "Well,", "", "", ""]
CLOSERS = ["", "", "", "!", ".", " :)", " :(", "..."]


def _typo(text: str, rng: random.Random) -> str:
    words = text.split()
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = rng.randrange(len(w) - 1)
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    words[i] = w
    return " ".join(words)


def _simple(rng: random.Random, positive: bool, subject: str) -> str:
    kind = rng.random()
    if kind < 0.45:
        adj = rng.choice(POS_ADJ if positive else NEG_ADJ)
        clause = rng.choice(POS_CLAUSE if positive else NEG_CLAUSE)
        return f"{subject} is {adj}, {clause}"
    if kind < 0.75:
        phrase = rng.choice(NEG_OF_NEG if positive else NEG_OF_POS)
        return f"{subject} was {phrase}"
    adj1, adj2 = rng.sample(POS_ADJ if positive else NEG_ADJ, 2)
    return f"{subject} felt {adj1} and {adj2}"


def _mixed(rng: random.Random, positive: bool, subject: str, other: str) -> str:
    # The clause after "but" carries the verdict.
    first = rng.choice(NEG_ADJ if positive else POS_ADJ)
    second = rng.choice(POS_CLAUSE if positive else NEG_CLAUSE)
    return (
        f"{subject} was a bit {first}, but {other} made up for it and {second}"
        if positive
        else (f"{subject} looked {first} at first, but {second}")
    )


def review(rng: random.Random, positive: bool) -> str:
    domain = rng.choice(list(SUBJECTS))
    subject, other = rng.sample(SUBJECTS[domain], 2)
    body = _mixed(rng, positive, subject, other) if rng.random() < 0.25 else _simple(rng, positive, subject)
    if rng.random() < 0.3:
        extra = _simple(rng, positive, other)
        body = f"{body}. Also, {extra}"
    opener = rng.choice(OPENERS)
    text = f"{opener} {body}".strip()
    text = text[0].upper() + text[1:] + rng.choice(CLOSERS)
    if rng.random() < 0.15:
        text = _typo(text, rng)
    return text


def main(out_dir: str = "examples/reviews") -> None:
    rng = random.Random(20261128)
    sizes = {"train": 600, "validation": 150, "test": 150}
    seen: set[str] = set()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split, size in sizes.items():
        rows = []
        while len(rows) < size:
            positive = len(rows) % 2 == 0
            text = review(rng, positive)
            if text.lower() in seen or not 3 <= len(text.split()) <= 60:
                continue
            seen.add(text.lower())
            rows.append({"text": text, "label": "positive" if positive else "negative"})
        rng.shuffle(rows)
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
