"""Generate examples/ner/: short news-like sentences with people, organisations and places, written for baton.

The names and sentence patterns below were invented for this project (no sentence is copied from a corpus).
Writes the three layouts `baton train` reads for entity recognition, all from the same sentences:
    train.jsonl / validation.jsonl   {"tokens": [...], "ner_tags": [...]} (IOB2)
    validation.conll                 CoNLL-2003 text: a token and its tag per line, a blank line between sentences
    spans.jsonl                      {"text": ..., "entities": [{"start", "end", "label"}]} (annotation-tool export)
Seeded: rerunning gives the same files. Usage: python scripts/make_ner_demo_data.py [OUT_DIR]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

PEOPLE = [
    "Maria Okafor",
    "Tomas Lindqvist",
    "Aiko Brandt",
    "Rafael Moreno",
    "Priya Ranganathan",
    "Jonas Weber",
    "Lena Kovacs",
    "Samuel Adeyemi",
    "Chen Wei",
    "Ingrid Solberg",
    "Dario Fontana",
    "Fatima Haddad",
    "Oliver Grant",
    "Sofia Petrova",
    "Kwame Mensah",
    "Hannah Novak",
    "Luis Alvarado",
    "Mei Tanaka",
]
ORGS = [
    "Northwind Bank",
    "Acme Robotics",
    "Blue Harbor Shipping",
    "Stellar Foods",
    "the Riverside Council",
    "Kestrel Airlines",
    "Orion Labs",
    "Greenfield University",
    "Harbor Light Media",
    "Copperline Energy",
    "Summit Health",
    "Atlas Motors",
]
PLACES = [
    "Lisbon",
    "Oslo",
    "Nairobi",
    "Porto Alegre",
    "Kyoto",
    "Winnipeg",
    "Tbilisi",
    "Cape Town",
    "Valparaiso",
    "Glasgow",
    "Lyon",
    "Hanoi",
    "New Orleans",
    "Tallinn",
    "Accra",
]
PATTERNS = [
    "{PER} joined {ORG} in {LOC} last week .",
    "{ORG} opened a new office in {LOC} on Monday .",
    "{PER} said {ORG} would hire more staff .",
    "Officials in {LOC} met {PER} to discuss the plan .",
    "{PER} , chief executive of {ORG} , visited {LOC} .",
    "Shares of {ORG} rose after {PER} spoke in {LOC} .",
    "The mayor of {LOC} thanked {PER} for her help .",
    "{ORG} and {ORG} signed a deal in {LOC} .",
    "{PER} moved from {LOC} to {LOC} in 2019 .",
    "According to {PER} , the trains to {LOC} were late again .",
    "Fans waited outside the {ORG} stadium for hours .",
    "It rained all day and nobody went outside .",
    "The report from {ORG} was published on Friday .",
    "{PER} met {PER} at a conference in {LOC} .",
]
KINDS = {"PER": PEOPLE, "ORG": ORGS, "LOC": PLACES}


def _sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    tokens: list[str] = []
    tags: list[str] = []
    for piece in rng.choice(PATTERNS).split():
        kind = piece.strip("{}")
        if piece.startswith("{") and kind in KINDS:
            words = rng.choice(KINDS[kind]).split()
            if words[0] == "the":  # "the" is not part of the name
                tokens.append(words.pop(0))
                tags.append("O")
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(piece)
            tags.append("O")
    return tokens, tags


def _spans(tokens: list[str], tags: list[str]) -> dict[str, object]:
    text, starts = "", []
    for token in tokens:
        starts.append(len(text) + (1 if text else 0))
        text = f"{text} {token}" if text else token
    entities = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            j = i + 1
            while j < len(tags) and tags[j] == f"I-{tag[2:]}":
                j += 1
            entities.append({"start": starts[i], "end": starts[j - 1] + len(tokens[j - 1]), "label": tag[2:]})
    return {"text": text, "entities": entities}


def main(out_dir: Path) -> None:
    rng = random.Random(7)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {"train": [_sentence(rng) for _ in range(400)], "validation": [_sentence(rng) for _ in range(100)]}
    for name, rows in splits.items():
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for tokens, tags in rows:
                f.write(json.dumps({"tokens": tokens, "ner_tags": tags}) + "\n")
    with (out_dir / "validation.conll").open("w", encoding="utf-8") as f:
        f.write("-DOCSTART- O\n\n")
        for tokens, tags in splits["validation"]:
            f.write("".join(f"{t} {g}\n" for t, g in zip(tokens, tags, strict=True)) + "\n")
    with (out_dir / "spans.jsonl").open("w", encoding="utf-8") as f:
        for tokens, tags in splits["validation"][:40]:
            f.write(json.dumps(_spans(tokens, tags)) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "examples" / "ner")
