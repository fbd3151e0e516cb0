"""Import an ONNX model as a Network (needs the optional `onnx` package: pip install eyejax[onnx]).

Only shapes are read: a model saved with its weights in external data files loads without them
(only small integer tensors such as Pad's pads or Reshape's shape are read, for shape inference).

Conv (2-D, or 1-D as H = R = 1) becomes a CONV layer (DWCONV when group = C = M > 1): M, C/group,
R, S from the weight's shape, H, W from the input's inferred shape, strides, pads, auto_pad,
dilations and group from the attributes. Gemm and MatMul with one constant 2-D operand (an
initializer, a Constant node, or anything computed only from those) become FC layers
(C = the contracted size, M = the outputs, N = the rows of the activation; for MatMul on
[B, T, K] activations N = B·T). Shapes are taken from `onnx.shape_inference.infer_shapes`.

Batch: `batch`, when given, replaces the leading dimension of every graph input before shape
inference (so it reaches every layer's N). Otherwise a symbolic leading dimension (e.g.
"batch_size") is taken as 1 and a concrete one is kept.

Approximations follow from_jax (one ApproximationWarning): asymmetric pads keep the smallest side
and fold the rest into H, W; unequal strides keep the vertical one and resize the width; dilation
runs as the zero-inserted filter (R-1)·d + 1. E and F always equal the ONNX output size.

Skipped, with their counts and reasons in one UnsupportedOpsWarning: every other op that does
compute (ConvTranspose, ConvInteger, QLinearConv, MatMulInteger, QLinearMatMul, Einsum, RNN, LSTM,
GRU, Attention, MatMul/Gemm of two activations, 3-D Conv, ...), control flow (If, Loop, Scan) whose
bodies hold compute ops, and ops of other domains. Elementwise ops, reshapes, normalisation and
pooling (MaxPool, AveragePool, GlobalAveragePool) are ignored without a warning.
"""
from __future__ import annotations

import functools
import os

from eyejax.workload.importers._common import Report, conv_layer, fc_layer, prod
from eyejax.workload.layer import WorkloadError
from eyejax.workload.network import Network

COMPUTE_OPS = frozenset({
    "Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv", "Gemm", "MatMul",
    "MatMulInteger", "QLinearMatMul", "Einsum", "RNN", "LSTM", "GRU", "Attention",
    "MultiHeadAttention", "DFT", "STFT",
})
CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
_DEFAULT_DOMAINS = ("", "ai.onnx")


def _onnx():
    try:
        import onnx  # lazy: the onnx package is optional (pip install 'eyejax[onnx]')
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("from_onnx needs the onnx package: pip install 'eyejax[onnx]'") from e
    return onnx


def from_onnx(path_or_model, batch: int | None = None, name: str | None = None) -> Network:
    """The conv and dense layers of an ONNX model (a path or an onnx.ModelProto), in graph order.

    Layers are named by their ONNX node name when it is set and unique, else "conv{i}" /
    "dense{i}" with i the layer's index.
    """
    onnx = _onnx()
    if isinstance(path_or_model, (str, os.PathLike)):
        # Shapes only: weights kept in external data files (large models) are not read.
        model = onnx.load(os.fspath(path_or_model), load_external_data=False)
        _load_shape_tensors(onnx, model, os.path.dirname(os.path.abspath(path_or_model)))
        default_name = os.path.splitext(os.path.basename(os.fspath(path_or_model)))[0]
    elif isinstance(path_or_model, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(path_or_model)
        default_name = model.graph.name or "onnx_model"
    else:
        raise TypeError(f"from_onnx takes a path or an onnx.ModelProto, not "
                        f"{type(path_or_model).__name__}")
    if batch is not None and (isinstance(batch, bool) or int(batch) < 1):
        raise WorkloadError(f"batch must be an integer >= 1, got {batch!r}")
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    for inp in graph.input:
        if inp.name in init_names or not inp.type.HasField("tensor_type"):
            continue
        dims = inp.type.tensor_type.shape.dim
        if len(dims):
            if batch is not None:
                dims[0].dim_value = int(batch)
            elif not dims[0].HasField("dim_value") or dims[0].dim_value < 1:
                dims[0].dim_value = 1
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    graph = model.graph

    shapes: dict[str, tuple | None] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        shapes[vi.name] = _vi_shape(vi)
    for t in graph.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in _DEFAULT_DOMAINS:
            for a in node.attribute:
                if a.name == "value":
                    shapes[node.output[0]] = tuple(int(d) for d in a.t.dims)

    dynamic = {i.name for i in graph.input if i.name not in init_names}
    node_names = [n.name for n in graph.node if n.name]
    unique_names = {n for n in node_names if node_names.count(n) == 1}
    rep = Report("from_onnx", name or default_name)
    imp = _Importer(onnx, rep, shapes, unique_names)

    for node in graph.node:
        ins = [x in dynamic for x in node.input if x]
        if node.domain not in _DEFAULT_DOMAINS:
            rep.skip(f"{node.domain}.{node.op_type}", "op of another domain (not inspected)")
        elif node.op_type == "Conv":
            imp.conv(node)
        elif node.op_type in ("Gemm", "MatMul"):
            imp.dense(node, [x in dynamic for x in node.input[:2]])
        elif node.op_type in COMPUTE_OPS:
            rep.skip(node.op_type, "not modelled")
        elif node.op_type in CONTROL_FLOW:
            inside = _count_compute(node)
            if inside:
                rep.skip(node.op_type, f"control flow holding {inside} compute op(s)")
        if any(ins):
            dynamic.update(o for o in node.output if o)
    return rep.network(stacklevel=3)  # network <- from_onnx <- caller


_SHAPE_TENSOR_MAX = 1024  # elements: an external integer initializer this small may be a shape


def _load_shape_tensors(onnx, model, base_dir: str) -> None:
    """Reads the external data of small integer initializers only (the pads of Pad, the shape of
    Reshape, ...: shape inference needs their values); float weights stay unread. A file that is
    missing leaves the tensor unread (its consumers' shapes may then be unknown)."""
    from onnx import external_data_helper as edh  # lazy: the onnx package is optional

    ints = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
    for t in model.graph.initializer:
        if (edh.uses_external_data(t) and t.data_type in ints
                and prod(int(d) for d in t.dims) <= _SHAPE_TENSOR_MAX):
            try:
                edh.load_external_data_for_tensor(t, base_dir)
                t.data_location = onnx.TensorProto.DEFAULT
                del t.external_data[:]
            except (OSError, ValueError):
                pass


def _check_conv_attrs(node, n_sp: int, kernel, strides, dilations, group) -> None:
    """A Conv's attributes are in range before any arithmetic on them; errors name the node."""
    for attr, vals in (("kernel_shape", kernel), ("strides", strides), ("dilations", dilations)):
        if len(vals) != n_sp or any(int(v) < 1 for v in vals):
            raise WorkloadError(f"Conv {node.name!r}: {attr} {list(vals)} must be {n_sp} "
                                f"integer(s) >= 1")
    if group < 1:
        raise WorkloadError(f"Conv {node.name!r}: group {group} must be >= 1")


def _clear_errors(fn):
    """from_onnx raising a WorkloadError (a ValueError) for a file that is not an ONNX model (a
    protobuf decode error) or a model that ONNX's own shape inference rejects."""
    @functools.wraps(fn)
    def wrapper(path_or_model, *args, **kwargs):
        try:
            return fn(path_or_model, *args, **kwargs)
        except (ValueError, TypeError, ImportError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - protobuf DecodeError, onnx InferenceError, ...
            what = (repr(os.fspath(path_or_model)) if isinstance(path_or_model, (str, os.PathLike))
                    else "the model")
            raise WorkloadError(f"from_onnx: {what} is not a readable ONNX model "
                                f"({type(exc).__name__}: {str(exc)[:200]})") from exc

    return wrapper


def _vi_shape(vi):
    if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in vi.type.tensor_type.shape.dim)


def _count_compute(node) -> int:
    n = 0
    for a in node.attribute:
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for sub in g.node:
                n += sub.op_type in COMPUTE_OPS
                n += _count_compute(sub)
    return n


def _known(shape) -> bool:
    return shape is not None and all(d is not None for d in shape)


class _Importer:
    def __init__(self, onnx, report: Report, shapes, unique_names):
        self.onnx, self.rep, self.shapes, self.unique = onnx, report, shapes, unique_names

    def _name(self, node, kind):
        return self.rep.unique_name(node.name if node.name in self.unique else None, kind)

    def _attrs(self, node):
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def conv(self, node):
        xs, ws = self.shapes.get(node.input[0]), self.shapes.get(node.input[1])
        if not (_known(xs) and _known(ws)):
            self.rep.skip("Conv", "input or weight shape unknown after shape inference")
            return
        n_sp = len(xs) - 2
        if n_sp not in (1, 2) or len(ws) != len(xs):
            self.rep.skip("Conv", f"{n_sp}-D convolution")
            return
        a = self._attrs(node)
        def _str(v):
            return v.decode() if isinstance(v, bytes) else (v or "NOTSET")
        auto_pad = _str(a.get("auto_pad"))
        k = list(a.get("kernel_shape") or ws[2:])
        strides = list(a.get("strides") or [1] * n_sp)
        dil = list(a.get("dilations") or [1] * n_sp)
        group = int(a.get("group", 1))
        _check_conv_attrs(node, n_sp, k, strides, dil, group)
        in_sp = list(xs[2:])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for i in range(n_sp):
                keff = (k[i] - 1) * dil[i] + 1
                out = -(-in_sp[i] // strides[i])
                total = max(0, (out - 1) * strides[i] + keff - in_sp[i])
                small, big = total // 2, total - total // 2
                pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        elif auto_pad == "VALID":
            pads = [(0, 0)] * n_sp
        else:
            p = list(a.get("pads") or [0] * (2 * n_sp))
            pads = [(p[i], p[i + n_sp]) for i in range(n_sp)]
        if any(int(v) < 0 for pair in pads for v in pair):
            raise WorkloadError(f"Conv {node.name!r}: pads {[v for pair in pads for v in pair]} "
                                f"must be >= 0 (a negative pad crops the input)")
        if n_sp == 1:
            in_sp, k, pads = [1] + in_sp, [1] + k, [(0, 0)] + pads
            strides, dil = strides * 2, [1] + dil
        if ws[1] * group != xs[1]:
            raise WorkloadError(f"Conv {node.name!r}: weight in-channels {ws[1]} x group {group} "
                                f"!= input channels {xs[1]}")
        layer, notes = conv_layer(self._name(node, "conv"), N=xs[0], C=xs[1], M=ws[0],
                                  groups=group, in_size=in_sp, kernel=k, strides=strides,
                                  pads=pads, rhs_dilation=dil)
        self.rep.add(layer, notes)

    def dense(self, node, dyn):
        op = node.op_type
        a_dyn, b_dyn = (dyn + [False, False])[:2]
        if a_dyn and b_dyn:
            self.rep.skip(op, "both operands are activations (attention-like)")
            return
        if not (a_dyn or b_dyn):
            self.rep.skip(op, "both operands are constants")
            return
        A, B = self.shapes.get(node.input[0]), self.shapes.get(node.input[1])
        if not (_known(A) and _known(B)):
            self.rep.skip(op, "operand shape unknown after shape inference")
            return
        if op == "Gemm":
            at = self._attrs(node)
            A = A[::-1] if at.get("transA", 0) else A
            B = B[::-1] if at.get("transB", 0) else B
            if len(A) != 2 or len(B) != 2:
                self.rep.skip(op, "operands are not 2-D")
                return
            # Y[n, m] = A[n, k] B[k, m]; with the weights on the left the columns are the rows.
            N, C, M = (A[0], A[1], B[1]) if a_dyn else (B[1], B[0], A[0])
        else:  # MatMul, numpy semantics
            W = B if a_dyn else A
            X = A if a_dyn else B
            if len(W) > 2:
                self.rep.skip(op, "weights with batch dimensions")
                return
            if a_dyn:  # X[..., K] @ W[K, M]
                C, M = W[0], (W[1] if len(W) == 2 else 1)
                N = prod(X[:-1])
            else:      # W[M, K] @ X[..., K, n]
                M, C = (W[0], W[1]) if len(W) == 2 else (1, W[0])
                N = prod(X[:-2]) * X[-1] if len(X) >= 2 else 1
        self.rep.add(fc_layer(self._name(node, "dense"), N, C, M))


from_onnx = _clear_errors(from_onnx)
