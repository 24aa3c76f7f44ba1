"""Entity recognition: data layouts, alignment and windows, metrics, aggregation, offsets, export gates, serving."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_helpers import ServerThread
from support import NER, tagging_logits, write_jsonl

from baton.errors import DataError, GateError, InputError
from baton.serving.iob import iob_spans
from baton.serving.tasks.token_classification import Entity, Windows, aggregate
from baton.serving.windows import plan_windows
from baton.training.ner_align import align_rows
from baton.training.ner_data import read_token_file
from baton.training.ner_metrics import entity_metrics

# ---- data ------------------------------------------------------------------------------------------------------


def test_the_three_layouts_read_to_the_same_sentences() -> None:
    rows = read_token_file(str(NER / "validation.jsonl"), "--train-file")
    conll = read_token_file(str(NER / "validation.conll"), "--train-file")
    spans = read_token_file(str(NER / "spans.jsonl"), "--train-file")
    assert (rows.layout, conll.layout, spans.layout) == ("columns", "conll", "spans")
    as_pairs = [(s.words, s.tags) for s in rows.sentences]
    assert [(s.words, s.tags) for s in conll.sentences] == as_pairs
    assert [(s.words, s.tags) for s in spans.sentences] == as_pairs[: len(spans.sentences)]


def test_spans_split_words_at_entity_edges(tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "s.jsonl",
        [{"text": "Visit NewYork-City now", "entities": [{"start": 6, "end": 13, "label": "LOC"}]}],
    )
    (s,) = read_token_file(str(f), "--train-file").sentences
    assert list(zip(s.words, s.tags, strict=True)) == [
        ("Visit", "O"),
        ("NewYork", "B-LOC"),
        ("-City", "O"),
        ("now", "O"),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"tokens": ["a", "b"], "ner_tags": ["O"]}], "line 1: 2 tokens but 1 tags"),
        ([{"tokens": ["a"], "ner_tags": ["X-PER"]}], "line 1: tag 'X-PER' is not IOB2"),
        ([{"tokens": ["a"], "ner_tags": [3]}], "line 1: tags are ints; pass --tag-names"),
        ([{"words": ["a"], "ner_tags": ["O"]}], "not entity data"),
        ([{"text": "abc", "entities": [{"start": 2, "end": 9, "label": "X"}]}], "line 1: entities\\[0\\] \\[2, 9\\)"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, rows: list[dict], message: str) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=message):
        read_token_file(str(f), "--train-file")


def test_invalid_transitions_are_counted_and_empty_sentences_dropped(tmp_path: Path) -> None:
    f = tmp_path / "x.conll"
    f.write_text("-DOCSTART- O\n\nParis I-LOC\nis O\n\n\n\nBob B-PER\nI-ORG I-ORG\n\n", encoding="utf-8")
    read = read_token_file(str(f), "--train-file")
    assert [s.words for s in read.sentences] == [("Paris", "is"), ("Bob", "I-ORG")]
    assert read.invalid_transitions == 2  # I-LOC after the start, I-ORG after B-PER
    cols = write_jsonl(tmp_path / "e.jsonl", [{"tokens": [], "ner_tags": []}, {"tokens": ["a"], "ner_tags": ["O"]}])
    assert read_token_file(str(cols), "--train-file").dropped_empty == 1


def test_unknown_validation_tags_and_int_tags(tmp_path: Path, tiny_model_dir: Path) -> None:
    from baton.training import TrainConfig
    from baton.training.token_classification import prepare_token_data

    train = write_jsonl(tmp_path / "t.jsonl", [{"tokens": ["Ann", "runs"], "ner_tags": [1, 0]}] * 4)
    val = write_jsonl(tmp_path / "v.jsonl", [{"tokens": ["Rome"], "ner_tags": ["B-LOC"]}])
    cfg = TrainConfig(model=str(tiny_model_dir), train_file=str(train), validation_file=str(val), tag_names="O,B-PER")
    with pytest.raises(DataError, match=r"--validation-file: .*v.jsonl line 1: tag\(s\) never seen .*: B-LOC"):
        prepare_token_data(cfg)
    data = prepare_token_data(TrainConfig(model=str(tiny_model_dir), train_file=str(train), tag_names="O,B-PER"))
    assert data.labels == ["O", "B-PER", "I-PER"]  # an I- for every B-, so label-all-tokens has somewhere to go


# ---- alignment and windows -------------------------------------------------------------------------------------


def test_first_sub_token_carries_the_tag(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    words = ["Xylophonistically", "Okafor", ",", "ok", "Zzyzx"]  # rare words split into many sub-tokens
    tags = [0, 1, 0, 0, 3]
    inside = {1: 2, 3: 4}
    cols, owner = align_rows(tok, [(words, tags)], 64, 8, label_all_tokens=False, own_only=True, begin_to_inside=inside)
    enc = tok(words, is_split_into_words=True)
    word_ids = enc.word_ids()
    assert len(cols["labels"]) == 1 and owner == [0]
    firsts = [i for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]
    assert [cols["labels"][0][i] for i in firsts] == tags  # the tag on each word's first sub-token, the last too
    assert all(lab == -100 for i, lab in enumerate(cols["labels"][0]) if i not in firsts)
    assert len(enc["input_ids"]) > len(words) + 4  # the words really were split
    cols, _ = align_rows(tok, [(words, tags)], 64, 8, label_all_tokens=True, own_only=False, begin_to_inside=inside)
    rest = [cols["labels"][0][i] for i, w in enumerate(word_ids) if w == 1 and i not in firsts]
    assert rest and set(rest) == {2}  # B-PER's other sub-tokens are I-PER


def test_windows_cover_every_word_and_own_each_once() -> None:
    lengths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
    windows = plan_windows(lengths, budget=24, stride=5)
    assert len(windows) > 1
    assert all(sum(lengths[w.start : w.end]) <= 24 for w in windows)
    assert all(w.own_end > w.own_start for w in windows)  # no window is spent on words others own
    owned = [i for w in windows for i in range(w.own_start, w.own_end)]
    assert owned == list(range(len(lengths)))  # each word scored once, in order
    assert all(a.end > b.start for a, b in itertools.pairwise(windows))  # neighbours overlap
    assert plan_windows([2, 2], 16, 5) == plan_windows([2, 2], 16, 0)  # a short sentence is one window


def test_long_sentence_becomes_windows_in_training_rows(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    words = [f"word{i}" for i in range(60)]
    tags = [1 if i % 7 == 0 else 0 for i in range(60)]
    cols, owner = align_rows(tok, [(words, tags)], 32, 8, False, own_only=True, begin_to_inside={})
    assert len(owner) > 1 and set(owner) == {0}
    assert all(len(ids) <= 32 for ids in cols["input_ids"])
    assert sum(1 for row in cols["labels"] for lab in row if lab != -100) == len(words)  # never silently cut


# ---- metrics ---------------------------------------------------------------------------------------------------


def test_entity_metrics_match_seqeval() -> None:
    from seqeval.metrics import classification_report, f1_score

    true = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O", "I-MISC"], ["B-LOC", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "O", "O", "B-MISC"], ["B-LOC", "I-LOC"]]
    m = entity_metrics(true, pred, [[f"w{i}" for i in range(len(t))] for t in true])
    assert m["entity_f1"] == pytest.approx(f1_score(true, pred))
    report = classification_report(true, pred, output_dict=True)
    for kind, v in m["per_type"].items():
        assert v["f1"] == pytest.approx(report[kind]["f1-score"]), kind
    assert m["errors"]["wrong type"]["count"] == 1  # LOC → ORG, same span
    assert m["errors"]["wrong boundary"]["count"] >= 2  # ORG cut short; LOC LOC merged
    assert m["errors"]["wrong type"]["examples"] == ["gold 'w3' LOC / predicted 'w3' ORG"]


def test_iob_spans_read_invalid_transitions_as_conlleval() -> None:
    assert iob_spans(["O", "I-PER", "I-PER", "B-PER", "I-LOC"]) == [("PER", 1, 3), ("PER", 3, 4), ("LOC", 4, 5)]


# ---- aggregation (hand-computed) ------------------------------------------------------------------------------

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _item(text: str, pieces: list[tuple[int, int]]) -> Windows:
    return Windows(ids=list(range(len(pieces))), type_ids=[0] * len(pieces), truncated=False, text=text, offsets=pieces)


def test_aggregation_strategies_by_hand() -> None:
    text = "Anna Lee in Oslo"
    # tokens: "an" "na" "lee" "in" "os" "lo"
    item = _item(text, [(0, 2), (2, 4), (5, 8), (9, 11), (12, 14), (14, 16)])
    probs = np.array(
        [
            [0.1, 0.8, 0.1, 0.0, 0.0],  # an: B-PER .8
            [0.5, 0.0, 0.3, 0.2, 0.0],  # na: O .5 (sub-token says O)
            [0.1, 0.0, 0.9, 0.0, 0.0],  # lee: I-PER .9
            [0.9, 0.0, 0.0, 0.1, 0.0],  # in: O
            [0.2, 0.0, 0.0, 0.7, 0.1],  # os: B-LOC .7
            [0.1, 0.0, 0.0, 0.0, 0.9],  # lo: I-LOC .9
        ]
    )

    def got(strategy: str) -> list[tuple[str, str, float]]:
        return [(e.label, e.text, round(e.score, 4)) for e in aggregate(probs, item, LABELS, strategy)]

    # simple: tokens; "na" is O, so "An" alone is a PER and "Lee" (I-PER after O) starts another
    assert got("simple") == [("PER", "An", 0.8), ("PER", "Lee", 0.9), ("LOC", "Oslo", 0.8)]
    # first: "Anna" takes "an"'s B-PER .8; "Lee" continues it: mean(.8, .9); "Oslo" takes "os": B-LOC .7
    assert got("first") == [("PER", "Anna Lee", 0.85), ("LOC", "Oslo", 0.7)]
    # max: "Anna" takes its most confident sub-token ("an" .8 > "na" .5); "Oslo" takes "lo": I-LOC .9
    assert got("max") == [("PER", "Anna Lee", 0.85), ("LOC", "Oslo", 0.9)]
    # average: "Anna" = mean rows → O .3, B-PER .4, I-PER .2 → B-PER .4; "Oslo" → B-LOC .35 vs I-LOC .5 → I-LOC
    assert got("average") == [("PER", "Anna Lee", 0.65), ("LOC", "Oslo", 0.5)]
    assert [(e.label, e.text) for e in aggregate(probs, item, LABELS, "none")] == [
        ("B-PER", "An"),
        ("I-PER", "Lee"),
        ("B-LOC", "Os"),
        ("I-LOC", "lo"),
    ]
    with pytest.raises(InputError, match="aggregation must be one of"):
        aggregate(probs, item, LABELS, "longest")


# ---- the runtime on a real (tiny) bundle: offsets and windows -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Cafe owner José  Núñez 👋 visited", "José  Núñez"),
        ("東京 welcomes Aiko Brandt", "Aiko Brandt"),
        ("We met   Rafael Moreno", "Rafael Moreno"),  # repeated spaces, entity at the very end
        ("Ünïcödé Ñame here", "Ünïcödé Ñame"),
    ],
)
def test_offsets_point_into_the_original_string(tiny_ner_bundle: Path, text: str, name: str) -> None:
    from baton.serving.engine import build_engine

    engine = build_engine(tiny_ner_bundle, "cpu", "fp32")
    labels = engine.task.labels
    assert "B-PER" in labels
    encoded = engine.preprocess([text])
    start = text.index(name)
    logits = tagging_logits(engine.task, encoded, [(start, start + len(name), "PER")])
    for strategy in ("simple", "first", "max", "average"):
        (answer,) = engine.postprocess(logits, encoded, aggregation=strategy)
        assert [(e.label, e.start, e.end, e.text) for e in answer.entities] == [
            ("PER", start, start + len(name), name)
        ], strategy
        assert all(text[e.start : e.end] == e.text for e in answer.entities)


def test_long_texts_run_as_windows_and_entities_merge_across_them(tiny_ner_bundle: Path) -> None:
    from baton.serving.engine import build_engine

    engine = build_engine(tiny_ner_bundle, "cpu", "fp32")
    filler = " ".join(["tomorrow"] * 40)
    names = ["Maria Okafor", "Tomas Lindqvist", "Chen Wei Aiko Brandt Lena Kovacs Jonas Weber Ingrid Solberg"]
    text = f"{names[0]} {filler} {names[1]} {filler} {names[2]} {filler} end"
    encoded = engine.preprocess([text])
    (item,) = encoded.items
    assert len(item.spans) >= 3 and not item.truncated  # several windows, nothing cut
    wanted = [(text.index(n), text.index(n) + len(n), "PER") for n in names]
    logits = tagging_logits(engine.task, encoded, wanted)
    (answer,) = engine.postprocess(logits, encoded)
    assert [(e.start, e.end) for e in answer.entities] == [(a, b) for a, b, _ in wanted]
    # the long name crosses a window edge: still one entity
    owned_from = [item.offsets[w.own_start][0] for w in item.spans[1:]]
    assert any(wanted[2][0] < edge < wanted[2][1] for edge in owned_from), (owned_from, wanted)


def test_predictor_answers_entities_and_refuses_pairs(tiny_ner_bundle: Path) -> None:
    from baton.serving import Predictor

    predictor = Predictor.load(tiny_ner_bundle, device="cpu")
    texts = ["Maria Okafor joined Acme Robotics in Lisbon last week .", "", "It rained all day ."]
    answers = predictor.predict(texts)
    assert len(answers) == 3 and answers[1].entities == []
    for text, answer in zip(texts, answers, strict=True):
        assert all(isinstance(e, Entity) and text[e.start : e.end] == e.text for e in answer.entities)
    with pytest.raises(InputError, match="single texts"):
        predictor.predict(["a"], pairs=["b"])
    with pytest.raises(InputError, match="logits\\(\\) is for classification"):
        predictor.logits(["a"])


# ---- export ----------------------------------------------------------------------------------------------------


def test_ner_bundle_manifest_and_gates(tiny_ner_bundle: Path) -> None:
    manifest = json.loads((tiny_ner_bundle / "bundle.json").read_text())
    assert manifest["task"] == "token-classification" and manifest["scheme"] == "IOB2"
    assert manifest["aggregation"] == "first"  # measured best (export/tasks.py: ENTITY_AGGREGATION)
    assert manifest["labels"][0] == "O"
    parity = manifest["parity"]
    assert parity["quality_metric"] == "entity_f1"
    assert parity["fp32_vs_torch"]["passed"] and parity["fp32_vs_torch"]["max_abs_logit_diff"] < 1e-3


def test_the_fp32_gate_fails_when_it_should(tiny_ner_run: Path, tmp_path: Path) -> None:
    from baton.export import ExportConfig, export_bundle
    from baton.export.config import GateThresholds

    cfg = ExportConfig(
        run_dir=str(tiny_ner_run), output=str(tmp_path / "b"), gates=GateThresholds(max_abs_logit_diff=1e-12)
    )
    with pytest.raises(GateError, match="fp32 ONNX vs PyTorch max"):
        export_bundle(cfg)
    assert not (tmp_path / "b").exists()


# ---- serving ---------------------------------------------------------------------------------------------------


def test_grpc_recognize_kserve_and_the_wrong_task(tiny_ner_bundle: Path, tiny_bundle: Path) -> None:
    import tritonclient.grpc as tc

    from baton.serving import Client, ClientError, Predictor
    from baton.serving.config import ServeConfig

    texts = ["Maria Okafor joined Acme Robotics in Lisbon last week .", "Café in 東京 with Aiko Brandt"]
    local = Predictor.load(tiny_ner_bundle, device="cpu", variant="fp32").predict(texts)
    with (
        ServerThread(ServeConfig(bundle=str(tiny_ner_bundle), variant="fp32", threads=1)) as s,
        Client(s.target) as client,
    ):
        info = client.model_info()
        assert (info.task, info.aggregation, info.scheme) == ("token-classification", "first", "IOB2")
        remote = client.recognize(texts)
        assert [r.entities for r in remote] == [
            [(e.label, e.text, e.start, e.end, pytest.approx(e.score, abs=1e-5)) for e in a.entities] for a in local
        ]
        none = client.recognize(texts[:1], aggregation="none")
        assert all(label[:2] in ("B-", "I-") for label, *_ in none[0].entities)
        with pytest.raises(ClientError) as exc:
            client.classify(["hello"])
        assert exc.value.code == grpc.StatusCode.FAILED_PRECONDITION and "token-classification" in str(exc.value)
        with pytest.raises(ClientError) as exc:
            client.recognize(["x"], aggregation="longest")
        assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT

        k = tc.InferenceServerClient(s.target)
        meta = k.get_model_metadata("bundle")
        assert [o.name for o in meta.outputs] == ["entities"]
        text_in = tc.InferInput("text", [len(texts)], "BYTES")
        text_in.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
        docs = [json.loads(x) for x in k.infer("bundle", [text_in]).as_numpy("entities")]
        assert [[(e["label"], e["start"], e["end"]) for e in d["entities"]] for d in docs] == [
            [(e.label, e.start, e.end) for e in a.entities] for a in local
        ]
    with ServerThread(ServeConfig(bundle=str(tiny_bundle), variant="fp32", threads=1)) as s, Client(s.target) as client:
        with pytest.raises(ClientError) as exc:
            client.recognize(["hello"])
        assert exc.value.code == grpc.StatusCode.FAILED_PRECONDITION and "text-classification" in str(exc.value)


# ---- the command line ------------------------------------------------------------------------------------------


def _baton(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baton", "-q", *args], capture_output=True, text=True, timeout=300)


def test_cli_predict_prints_entities_and_bad_input_is_one_line(tiny_ner_bundle: Path, tmp_path: Path) -> None:
    text = "Maria Okafor joined Acme Robotics in Lisbon last week ."
    proc = _baton("predict", str(tiny_ner_bundle), text, "--aggregation", "none")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["text"] == text and all(text[e["start"] : e["end"]] == e["text"] for e in row["entities"])
    assert all(e["label"][:2] in ("B-", "I-") for e in row["entities"])

    bad = write_jsonl(tmp_path / "bad.jsonl", [{"tokens": ["a", "b"], "ner_tags": ["O"]}])
    proc = _baton("train", "--train-file", str(bad), "--output", str(tmp_path / "run"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"error: --train-file: {bad} line 1: 2 tokens but 1 tags"

    out = tmp_path / "eval"
    proc = _baton("evaluate", str(tiny_ner_bundle), "--input", str(NER / "validation.conll"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((tiny_ner_bundle / "bundle.json").read_text())
    assert sorted(metrics) == sorted(e["variant"] for e in manifest["files"].values() if "variant" in e)
    for variant in metrics:  # the gates scored the same sentences through the same runtime
        assert metrics[variant]["entity_f1"] == pytest.approx(manifest["parity"]["accuracy"][variant])
    assert "| error kind | count | examples |" in (out / "report.md").read_text()
    spans = _baton("evaluate", str(tiny_ner_bundle), "--input", str(NER / "spans.jsonl"), "--variant", "fp32")
    assert spans.returncode == 0 and spans.stdout.startswith("fp32: entity F1 "), spans.stderr


def test_recognize_stream_answers_in_order_and_limits_hold(tiny_ner_bundle: Path) -> None:
    from baton.serving.config import ServeConfig
    from baton.serving.v1 import recognizer_pb2 as rpb
    from baton.serving.v1 import recognizer_pb2_grpc as rpb_grpc

    cfg = ServeConfig(bundle=str(tiny_ner_bundle), variant="fp32", threads=1, max_texts_per_request=4)
    texts = [["Maria Okafor visited Oslo ."], ["It rained .", "Chen Wei joined Orion Labs ."], []]
    with ServerThread(cfg) as s, grpc.insecure_channel(s.target) as channel:
        stub = rpb_grpc.EntityRecognizerStub(channel)
        responses = list(stub.RecognizeStream(iter([rpb.RecognizeRequest(texts=t) for t in texts]), timeout=30))
        assert [len(r.results) for r in responses] == [1, 2, 0]
        for batch, response in zip(texts, responses, strict=True):
            for text, result in zip(batch, response.results, strict=True):
                assert all(text[e.start : e.end] == e.text for e in result.entities)
        with pytest.raises(grpc.RpcError) as exc:
            stub.Recognize(rpb.RecognizeRequest(texts=["a"] * 50), timeout=30)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "4 texts" in exc.value.details()


def test_words_are_grouped_as_conll_has_them() -> None:
    import re

    from baton.serving.tasks.token_classification import _words

    text = 'Visit (Reuters), "U.S." ex-England Paris. Acme Corp. 1996-08-22'
    pieces = [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]  # a pre-tokenizer's pieces
    words = [text[pieces[w[0]][0] : pieces[w[-1]][1]] for w in _words(text, pieces)]
    assert words == [
        "Visit", "(", "Reuters", ")", ",", '"', "U.S.", '"', "ex-England", "Paris", ".", "Acme", "Corp", ".",
        "1996-08-22",
    ]  # fmt: skip


def test_a_request_whose_answer_could_pass_the_send_limit_is_refused_before_any_work(tiny_ner_bundle: Path) -> None:
    """Issue 29: 30 long entity texts ran for a minute, then the answer passed the send limit and came back as
    RESOURCE_EXHAUSTED, which clients retry. The worst-case answer is bounded first: INVALID_ARGUMENT, no batch run."""
    from baton.serving.client import Client, InvalidRequest
    from baton.serving.config import ServeConfig

    cfg = ServeConfig(bundle=str(tiny_ner_bundle), max_message_bytes=64 * 1024, warmup=False)  # sends 1 MiB at most
    texts = ["Ada Lovelace met Charles Babbage in London. " * 40] * 10  # 17,600 characters, a 17 KiB request
    with ServerThread(cfg) as s, Client(s.target) as client:
        with pytest.raises(InvalidRequest, match=r"could need an answer of [0-9.]+ MiB; this server sends at most 1"):
            client.recognize(texts)
        assert "baton_batch_size_count 0.0" in s.metrics_text()  # refused before any work
        assert len(client.recognize(texts[:3])) == 3  # a smaller request of the same texts is answered


def test_one_repository_serves_a_classifier_and_an_entity_model(
    tiny_ner_bundle: Path, tiny_bundle: Path, tmp_path: Path
) -> None:
    """Issue 31: one server, two models of two tasks. Each domain service finds its own model without a name; KServe
    and tritonclient route by name; the index lists both."""
    import shutil
    import urllib.request

    import tritonclient.grpc as tc
    import tritonclient.http as th

    from baton.serving import Predictor
    from baton.serving.client import Client, ClientError
    from baton.serving.config import ServeConfig

    root = tmp_path / "repo"
    shutil.copytree(tiny_bundle, root / "sentiment" / "1")
    shutil.copytree(tiny_ner_bundle, root / "entities")
    texts = ["Maria Okafor joined Acme Robotics in Lisbon last week ."]
    entities = Predictor.load(tiny_ner_bundle, device="cpu", variant="fp32").predict(texts)
    labels = Predictor.load(tiny_bundle, device="cpu", variant="fp32").predict(texts)
    with ServerThread(ServeConfig(bundle=str(root), variant="fp32", threads=1)) as s, Client(s.target) as client:
        found = client.recognize(texts)
        assert [[e[:4] for e in r.entities] for r in found] == [
            [(e.label, e.text, e.start, e.end) for e in a.entities] for a in entities
        ]
        assert [r.label for r in client.classify(texts)] == [p.label for p in labels]
        with Client(s.target, model="sentiment") as named, pytest.raises(ClientError) as exc:
            named.recognize(texts)
        assert exc.value.code == grpc.StatusCode.FAILED_PRECONDITION and "Classify" in str(exc.value)
        k = tc.InferenceServerClient(s.target)
        index = {(m.name, m.state) for m in k.get_model_repository_index().models}
        assert index == {("sentiment", "READY"), ("entities", "READY")}
        text_in = tc.InferInput("text", [1], "BYTES")
        text_in.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
        assert json.loads(k.infer("entities", [text_in]).as_numpy("entities")[0])["entities"]
        assert k.infer("sentiment", [text_in]).as_numpy("label")[0].decode() == labels[0].label
        assert s.server is not None
        h = th.InferenceServerClient(f"127.0.0.1:{s.server.http_port}")
        assert {m["name"] for m in h.get_model_repository_index()} == {"sentiment", "entities"}
        with urllib.request.urlopen(f"http://127.0.0.1:{s.server.http_port}/v1/models", timeout=30) as r:
            assert {m["task"] for m in json.loads(r.read())["models"]} == {
                "text-classification",
                "token-classification",
            }
