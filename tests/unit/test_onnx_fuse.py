"""The export's graph rewriting (qa.embedding.onnx), on tiny hand-made graphs: fusion only
for layouts the optimizer knows, the token table put back whole, attention traced eager
and then restored. The real model's fused export is tested in tests/model/test_engines.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from qa.embedding import onnx as qa_onnx


def _gather_graph(rows: int, width: int = 4) -> onnx.ModelProto:
    """ids -> Gather(table): the shape of a token embedding lookup."""
    table = np.arange(rows * width, dtype=np.float32).reshape(rows, width)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"])],
        "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", width])],
        [numpy_helper.from_array(table, "table")],
    )
    return helper.make_model(graph)


def test_the_token_table_is_cut_while_fusing_and_put_back_whole() -> None:
    rows = qa_onnx.STUB_ROWS + 100
    graph = _gather_graph(rows)
    whole = numpy_helper.to_array(graph.graph.initializer[0]).copy()
    with qa_onnx._small_token_table(graph) as restore:
        cut = numpy_helper.to_array(graph.graph.initializer[0])
        assert cut.shape == (qa_onnx.STUB_ROWS, 4)
        np.testing.assert_array_equal(cut, whole[: qa_onnx.STUB_ROWS])  # the width is kept
        optimised = onnx.ModelProto()
        optimised.CopyFrom(graph)  # what the optimizer hands back: another proto
        restore(optimised)
    np.testing.assert_array_equal(numpy_helper.to_array(optimised.graph.initializer[0]), whole)


def test_a_table_the_optimizer_dropped_is_an_error_not_a_smaller_model() -> None:
    graph = _gather_graph(qa_onnx.STUB_ROWS + 1)
    with (
        qa_onnx._small_token_table(graph) as restore,
        pytest.raises(RuntimeError, match="dropped the table 'table'"),
    ):
        restore(onnx.ModelProto())


def test_a_small_table_is_left_alone() -> None:
    graph = _gather_graph(10)
    before = graph.SerializeToString()
    with qa_onnx._small_token_table(graph) as restore:
        restore(graph)
    assert graph.SerializeToString() == before


@pytest.mark.parametrize(
    "config",
    [
        SimpleNamespace(model_type="t5", num_attention_heads=8, hidden_size=512),
        SimpleNamespace(model_type="bert", num_attention_heads=0, hidden_size=384),
        SimpleNamespace(),
    ],
)
def test_an_unknown_layout_is_not_fused(config) -> None:  # type: ignore[no-untyped-def]
    graph = _gather_graph(10)
    same, fused = qa_onnx.fuse_graph(graph, config)
    assert same is graph and fused == {}


class _Model:
    """What ``_eager_attention`` reads of a transformers model."""

    def __init__(self, implementation: str | None) -> None:
        self.config = SimpleNamespace(_attn_implementation=implementation)
        self.calls: list[str] = []

    def set_attn_implementation(self, name: str) -> None:
        self.calls.append(name)
        self.config._attn_implementation = name


def test_attention_is_traced_eager_and_put_back_even_after_an_error() -> None:
    model = _Model("sdpa")
    with pytest.raises(ValueError), qa_onnx._eager_attention(model):
        assert model.config._attn_implementation == "eager"
        raise ValueError("the trace failed")
    assert model.calls == ["eager", "sdpa"] and model.config._attn_implementation == "sdpa"
    plain = _Model("eager")
    with qa_onnx._eager_attention(plain):
        pass
    assert plain.calls == []
