"""Where the tests' data lives (importable from every stage folder, unlike conftest.py, whose name repeats)."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REVIEWS = REPO / "examples" / "reviews"
NER = REPO / "examples" / "ner"
SHARED_DATA = REPO.parent / "shared" / "data"
COMMITTED_BUNDLE = REPO / "tests" / "data" / "tiny-bundle"  # tests/make_tiny_bundle.py writes it
