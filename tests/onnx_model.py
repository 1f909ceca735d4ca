"""A tiny ONNX text encoder made with onnx's helper API, and its tokenizer, for the onnx provider.

The graph is one Gather: each token's state is its row of a fixed table, so the vector that CLS
(first token) or mean pooling must give is known exactly. "car", "cars", "automobile" and
"vehicle" share a row: the model "understands" them as one, which BM25 cannot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HIDDEN = 8
WORDS = ["car", "cars", "automobile", "vehicle", "tyres", "winter", "insurance", "renewal",
         "garden", "tulip", "bulbs", "october", "garage", "plant", "needs", "new", "the",
         "before", "is", "due", "in", "march", "a", "path"]  # fmt: skip
SAME_AS_CAR = {"cars", "automobile", "vehicle"}
SPECIAL = ["[PAD]", "[UNK]", "[SEP]"]


def vocabulary() -> dict[str, int]:
    return {token: i for i, token in enumerate(SPECIAL + WORDS)}


def table() -> Any:
    """The embedding table: a row per token (synonyms of "car" share its row)."""
    import numpy as np

    rng = np.random.default_rng(7)
    rows = rng.normal(size=(len(SPECIAL) + len(WORDS), HIDDEN)).astype(np.float32)
    vocab = vocabulary()
    for word in SAME_AS_CAR:
        rows[vocab[word]] = rows[vocab["car"]]
    rows[vocab["[PAD]"]] = 100.0  # padding must never leak into a vector
    return rows


def token_ids(text: str) -> list[int]:
    """What the tokenizer below makes of `text`: lower-cased words and marks, then [SEP]."""
    import re

    vocab = vocabulary()
    words = re.findall(r"\w+|[^\w\s]", text.lower())  # punctuation: [UNK]
    return [vocab.get(w, vocab["[UNK]"]) for w in words] + [vocab["[SEP]"]]


def expected(text: str, pooling: str, normalize: bool) -> Any:
    import numpy as np

    rows = table()[token_ids(text)]
    vector = rows[0] if pooling == "cls" else rows.mean(axis=0)
    return vector / np.linalg.norm(vector) if normalize else vector


def write_model(folder: Path, *, int32_inputs: bool = False) -> Path:
    """model.onnx (Gather over the table) and tokenizer.json into `folder`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    folder.mkdir(parents=True, exist_ok=True)
    kind = TensorProto.INT32 if int32_inputs else TensorProto.INT64
    inputs = [
        helper.make_tensor_value_info(name, kind, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN]
    )
    weights = numpy_helper.from_array(table(), name="table")
    gather = helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)
    graph = helper.make_graph([gather], "tiny-encoder", inputs, [output], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))

    tokenizer = Tokenizer(WordLevel(vocabulary(), unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()]
    )
    sep = vocabulary()["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A [SEP]", special_tokens=[("[SEP]", sep)]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def sentence_transformers_config(folder: Path, pooling: str, normalize: bool) -> None:
    """modules.json and 1_Pooling/config.json as sentence-transformers writes them."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})  # fmt: skip
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": HIDDEN,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
