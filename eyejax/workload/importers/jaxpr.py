"""Import a JAX function or a Flax (linen) module as a Network by walking its jaxpr.

Each `conv_general_dilated` becomes a CONV (DWCONV when groups = C = M > 1) layer and each
`dot_general` that multiplies activations by weights becomes an FC layer. Calls (jit/pjit,
closed_call, custom_jvp/custom_vjp, remat/checkpoint) are walked recursively; the bodies of
scan / while / cond are not unrolled, so the products inside them are reported as skipped.

Weights vs activations: every value computed only from constants (closed-over arrays, literals) or
from the arguments named in `weight_argnums` is a weight; everything that depends on another
argument is an activation. A `dot_general` is a dense layer when exactly one operand is a weight
and there are no batch dimensions: C = product of the contracted sizes, M = product of the weight's
free dimensions, N = product of the activation's free dimensions (so a Flax Dense on [N, T, K]
gives N·T rows). Products of two activations (attention scores, attention × values) and batched
products are skipped.

Not imported, without a warning: elementwise ops, reshapes/transposes, normalisation and pooling
(`reduce_window`, `reduce_max`, ...), which the Eyeriss model does not cover. Every skipped op that
does compute (a `dot_general` that is not a dense layer, an unsupported `conv_general_dilated`
such as 3-D or batch_group_count > 1, products inside control flow, other matrix ops) is named,
with its count and reason, in one `UnsupportedOpsWarning`.

Shapes that the Layer form cannot hold exactly are approximated (one `ApproximationWarning`
listing them; see `_common.conv_layer`): asymmetric padding (e.g. 'SAME' with an odd total) keeps
pad = the smallest side and folds the rest into H, W; unequal strides keep the vertical stride and
resize the width; dilation runs as the zero-inserted filter R_eff = (R-1)·d + 1, whose MACs exceed
the dense count by R_eff·S_eff / (R·S). In every case E, F equal the source's output size.

Layer names: the name scope (Flax module path, e.g. "Block_0/Conv_0", or jax.named_scope) of the
op when there is one, else "conv{i}" / "dense{i}" with i the layer's index in program order.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import jax
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

from eyejax.workload.importers._common import Report, conv_layer, fc_layer, prod
from eyejax.workload.network import Network

# Primitives that multiply-accumulate; any of them not turned into a layer is reported.
COMPUTE_PRIMITIVES = frozenset({
    "conv_general_dilated", "dot_general", "ragged_dot", "ragged_dot_general", "fft",
    "triangular_solve", "cholesky", "lu", "qr", "svd", "eigh", "eig", "schur", "hessenberg",
    "tridiagonal", "tridiagonal_solve",
})
# Primitives whose bodies run a data-dependent or repeated number of times: not unrolled.
CONTROL_FLOW = frozenset({"scan", "while", "cond"})
_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")
_WRAPPED = re.compile(r"^[A-Za-z_][\w.]*\((.*)\)$")


def from_jax(fn, *example_args, name: str = "model", weight_argnums: Sequence[int] | int = (),
             scope_names: bool = True) -> Network:
    """Trace `fn(*example_args)` with jax.make_jaxpr and return its conv and dense layers.

    weight_argnums: positions of arguments that hold weights (e.g. 0 for `fn(params, x)`); arrays
        closed over by `fn` are weights already. Without it, a dense product whose weights arrive
        as an argument looks like an activation × activation product and is skipped (warned).
    scope_names: name layers by their name scope (Flax module path) when there is one.
    Batch N is read from the activations, so set it with the example input's leading dimension.
    """
    if isinstance(weight_argnums, int):
        weight_argnums = (weight_argnums,)
    weight_argnums = {int(i) % max(len(example_args), 1) for i in weight_argnums}
    closed = jax.make_jaxpr(fn)(*example_args)
    taint = []
    for i, arg in enumerate(example_args):
        taint += [i not in weight_argnums] * len(jax.tree_util.tree_leaves(arg))
    return _import(closed, taint, name, "from_jax", scope_names, drop_root=None)


def from_flax(module, variables, *example_inputs, name: str | None = None, method=None,
              scope_names: bool = True, **apply_kwargs) -> Network:
    """A Flax linen module applied to `example_inputs` with `variables` (the dict from `init`;
    a bare params dict without a "params" key is wrapped). Extra keyword arguments go to
    `module.apply` (e.g. train=False). Layers are named by module path ("Block_0/Conv_0").

    For a Flax NNX module (which holds its own weights) use `from_jax(model, x)`.
    """
    if hasattr(variables, "keys") and "params" not in variables:
        variables = {"params": variables}

    def fn(v, *xs):
        return module.apply(v, *xs, method=method, **apply_kwargs)

    name = name or type(module).__name__
    closed = jax.make_jaxpr(fn)(variables, *example_inputs)
    taint = [False] * len(jax.tree_util.tree_leaves(variables))
    for x in example_inputs:
        taint += [True] * len(jax.tree_util.tree_leaves(x))
    return _import(closed, taint, name, "from_flax", scope_names,
                   drop_root=type(module).__name__)


# ----------------------------------------------------------------------------------------------
def _import(closed: ClosedJaxpr, taint, name, source, scope_names, drop_root) -> Network:
    jaxpr = closed.jaxpr
    if len(taint) != len(jaxpr.invars):  # flattening differed (should not happen): be safe
        taint = [True] * len(jaxpr.invars)
    w = _Walker(Report(source, name), scope_names, drop_root)
    w.walk(jaxpr, taint, ())
    return w.report.network(stacklevel=4)  # network <- _import <- from_jax <- caller


def _unwrap(part: str) -> str:
    while (m := _WRAPPED.match(part)) is not None:  # jvp(M) -> M, transpose(jvp()) -> ""
        part = m.group(1)
    return part


def _stack(eqn) -> tuple[str, ...]:
    try:
        s = str(eqn.source_info.name_stack)
    except AttributeError:
        return ()
    return tuple(p for p in (_unwrap(x) for x in s.split("/")) if p)


def _sub_jaxprs(params):
    for v in params.values():
        for x in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(x, ClosedJaxpr):
                yield x.jaxpr
            elif isinstance(x, Jaxpr):
                yield x


def _shape(v) -> tuple[int, ...]:
    return tuple(int(d) for d in getattr(getattr(v, "aval", None), "shape", ()))


class _Walker:
    def __init__(self, report: Report, scope_names: bool, drop_root: str | None):
        self.report, self.scope_names, self.drop_root = report, scope_names, drop_root

    # Walk ---------------------------------------------------------------------------------
    def walk(self, jaxpr: Jaxpr, in_taint, prefix) -> list[bool]:
        env = {}
        for v in jaxpr.constvars:
            env[v] = False
        for v, t in zip(jaxpr.invars, in_taint):
            env[v] = bool(t)

        def tainted(v):
            return False if isinstance(v, Literal) else env.get(v, False)

        for eqn in jaxpr.eqns:
            ins = [tainted(v) for v in eqn.invars]
            prim = eqn.primitive.name
            scope = prefix + _stack(eqn)
            outs = None
            if prim == "conv_general_dilated":
                self._conv(eqn, scope)
            elif prim == "dot_general":
                self._dot(eqn, ins, scope)
            elif prim in COMPUTE_PRIMITIVES:
                self.report.skip(prim, "not a conv or dense layer")
            elif prim in CONTROL_FLOW:
                self._count_inside(list(_sub_jaxprs(eqn.params)), f"inside {prim} (not unrolled)")
            else:
                body = next((eqn.params[k] for k in _CALL_PARAMS
                             if isinstance(eqn.params.get(k), (Jaxpr, ClosedJaxpr))), None)
                if body is not None:
                    outs = self._call(body, ins, scope)
                else:
                    subs = list(_sub_jaxprs(eqn.params))
                    if subs:
                        self._count_inside(subs, f"inside {prim} (not walked)")
            if outs is None or len(outs) != len(eqn.outvars):
                outs = [any(ins)] * len(eqn.outvars)
            for v, t in zip(eqn.outvars, outs):
                env[v] = t
        return [tainted(v) for v in jaxpr.outvars]

    def _call(self, body, ins, scope):
        inner = body.jaxpr if isinstance(body, ClosedJaxpr) else body
        if len(inner.invars) != len(ins):
            ins = [any(ins)] * len(inner.invars)
        return self.walk(inner, ins, scope)

    def _count_inside(self, jaxprs, reason):
        for j in jaxprs:
            for eqn in j.eqns:
                if eqn.primitive.name in COMPUTE_PRIMITIVES:
                    self.report.skip(eqn.primitive.name, reason)
                self._count_inside(list(_sub_jaxprs(eqn.params)), reason)

    # Layers -------------------------------------------------------------------------------
    def _name(self, scope, kind):
        if self.scope_names and scope:
            parts = list(scope)
            if self.drop_root is not None and parts[0] == self.drop_root:
                parts = parts[1:]
            if parts:
                return self.report.unique_name("/".join(parts), kind)
        return self.report.unique_name(None, kind)

    def _conv(self, eqn, scope):
        p = eqn.params
        lhs, rhs = _shape(eqn.invars[0]), _shape(eqn.invars[1])
        dn = p.get("dimension_numbers")
        nd = len(lhs)
        if dn is None:
            lhs_spec = rhs_spec = tuple(range(nd))
        else:
            lhs_spec, rhs_spec = tuple(dn.lhs_spec), tuple(dn.rhs_spec)
        n_sp = nd - 2
        if n_sp not in (1, 2):
            self.report.skip("conv_general_dilated", f"{n_sp}-D convolution")
            return
        if int(p.get("batch_group_count", 1)) != 1:
            self.report.skip("conv_general_dilated", "batch_group_count > 1")
            return
        N, C = lhs[lhs_spec[0]], lhs[lhs_spec[1]]
        M = rhs[rhs_spec[0]]
        groups = int(p.get("feature_group_count", 1))
        in_sp = [lhs[d] for d in lhs_spec[2:]]
        k_sp = [rhs[d] for d in rhs_spec[2:]]
        strides = list(p["window_strides"])
        pads = [tuple(x) for x in p["padding"]]
        ldil = list(p.get("lhs_dilation") or (1,) * n_sp)
        rdil = list(p.get("rhs_dilation") or (1,) * n_sp)
        if n_sp == 1:  # a 1-D conv is a 2-D one with H = R = 1
            in_sp, k_sp, pads = [1] + in_sp, [1] + k_sp, [(0, 0)] + pads
            strides, ldil, rdil = strides * 2, [1] + ldil, [1] + rdil
        if any(x == 0 for x in (N, C, M, *in_sp)):
            self.report.skip("conv_general_dilated", "empty operand")
            return
        layer, notes = conv_layer(self._name(scope, "conv"), N=N, C=C, M=M, groups=groups,
                                  in_size=in_sp, kernel=k_sp, strides=strides, pads=pads,
                                  lhs_dilation=ldil, rhs_dilation=rdil)
        out = _shape(eqn.outvars[0])
        if dn is not None and out:
            out_sp = [out[d] for d in tuple(dn.out_spec)[2:]]
            if n_sp == 1:
                out_sp = [1] + out_sp
            assert (layer.E, layer.F) == tuple(out_sp), (layer, out_sp)
        self.report.add(layer, notes)

    def _dot(self, eqn, ins, scope):
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        lhs, rhs = _shape(eqn.invars[0]), _shape(eqn.invars[1])
        lt, rt = ins[0], ins[1]
        if lb or rb:
            self.report.skip("dot_general", "batched product (attention-like)")
            return
        if lt and rt:
            self.report.skip("dot_general", "both operands are activations (attention-like; "
                             "weights passed as an argument need weight_argnums)")
            return
        if not (lt or rt):
            self.report.skip("dot_general", "both operands are constants")
            return
        if not lc:
            self.report.skip("dot_general", "no contracted dimension (outer product)")
            return
        act, ac, wt, wc = (lhs, lc, rhs, rc) if lt else (rhs, rc, lhs, lc)
        C = prod(wt[d] for d in wc)
        M = prod(s for d, s in enumerate(wt) if d not in wc)
        N = prod(s for d, s in enumerate(act) if d not in ac)
        if min(C, M, N) < 1:
            self.report.skip("dot_general", "empty operand")
            return
        self.report.add(fc_layer(self._name(scope, "dense"), N, C, M))
