"""Shared pieces of the importers: warning categories, the conv/FC → Layer geometry, reports."""
from __future__ import annotations

import math
import warnings
from collections import Counter

from eyejax.workload.layer import Layer, LayerType, WorkloadError
from eyejax.workload.network import Network


class UnsupportedOpsWarning(UserWarning):
    """Ops that do compute (products, convolutions) were left out of an imported network."""


class ApproximationWarning(UserWarning):
    """An imported layer was stored in a form that differs from the source (see the message)."""


def conv_layer(name: str, *, N: int, C: int, M: int, groups: int, in_size, kernel, strides, pads,
               lhs_dilation=(1, 1), rhs_dilation=(1, 1)) -> tuple[Layer, list[str]]:
    """A 2-D convolution as a Layer, and notes on what had to be approximated.

    in_size=(H, W), kernel=(R, S), strides=(sy, sx), pads=((top, bottom), (left, right)).
    The output size E×F, and so the MAC count, always equal those of the source convolution:

    - padding that is not one symmetric value on all four sides: pad = the smallest side (clamped to
      [0, min(R, S) - 1]); the rest is folded into H and W (it then counts as input data).
    - unequal strides: the vertical stride is kept (the horizontal one when E == 1) and the other
      dimension's input is resized so its output count stays exact.
    - dilation: rhs_dilation d runs as the zero-inserted filter R_eff = (R-1)·d + 1 (the MACs on
      the inserted zeros are counted, as on hardware without dilation support); lhs_dilation
      (transposed conv) runs over the zero-inserted input (H-1)·d + 1.
    """
    H, W = (int(x) for x in in_size)
    R, S = (int(x) for x in kernel)
    sy, sx = (int(x) for x in strides)
    (t, b), (l, r) = ((int(p[0]), int(p[1])) for p in pads)
    dly, dlx = (int(x) for x in lhs_dilation)
    dry, drx = (int(x) for x in rhs_dilation)
    notes = []

    Re, Se = (R - 1) * dry + 1, (S - 1) * drx + 1
    He, We = (H - 1) * dly + 1, (W - 1) * dlx + 1
    if (dry, drx) != (1, 1):
        notes.append(f"rhs_dilation {(dry, drx)}: run as the zero-inserted {Re}x{Se} filter "
                     f"(MACs x{Re * Se / (R * S):.2f} the dense count)")
    if (dly, dlx) != (1, 1):
        notes.append(f"lhs_dilation {(dly, dlx)} (transposed conv): run over the zero-inserted "
                     f"{He}x{We} input (MACs on the inserted zeros are counted)")
    Hp, Wp = He + t + b, We + l + r
    if Hp < Re or Wp < Se:
        raise WorkloadError(f"layer {name!r}: padded input {Hp}x{Wp} is smaller than the filter "
                            f"{Re}x{Se}")
    E, F = (Hp - Re) // sy + 1, (Wp - Se) // sx + 1

    sides_h, sides_w = [t, b], [l, r]
    if sy == sx:
        U = sy
    elif E > 1 or F == 1:  # keep the vertical stride; rebuild the width so F stays exact
        U = sy
        Wp, sides_w = (F - 1) * U + Se, []
        if E > 1 and F > 1:
            notes.append(f"strides {(sy, sx)} unequal: stride {sy} kept, input width resized so "
                         f"F = {F} (MACs exact)")
    else:  # E == 1: the vertical stride does not matter
        U = sx
        Hp, sides_h = (E - 1) * U + Re, []

    p = max(0, min(sides_h + sides_w + [Re - 1, Se - 1]))
    while p > 0 and (Hp - 2 * p < 1 or Wp - 2 * p < 1):
        p -= 1
    Hn, Wn = Hp - 2 * p, Wp - 2 * p
    if any(s != p for s in sides_h + sides_w):
        notes.append(f"padding {((t, b), (l, r))} stored as pad={p} with input {Hn}x{Wn} "
                     f"(E, F and MACs exact; the extra rows/columns count as input)")
    kind = LayerType.DWCONV if groups > 1 and groups == C == M else LayerType.CONV
    layer = Layer(name, kind, N, C, M, Hn, Wn, Re, Se, U, p, groups)
    assert (layer.E, layer.F) == (E, F), (layer, E, F)
    return layer, notes


def fc_layer(name: str, N: int, C: int, M: int) -> Layer:
    """A dense layer: N rows of C inputs each, M outputs (H = W = R = S = 1)."""
    return Layer(name, LayerType.FC, N, C, M, 1, 1, 1, 1)


def prod(xs) -> int:
    return int(math.prod(int(x) for x in xs))


class Report:
    """Collects layers, skipped compute ops and approximation notes; builds the Network."""

    def __init__(self, source: str, name: str):
        self.source, self.name = source, name
        self.layers: list[Layer] = []
        self.notes: list[str] = []
        self.skipped: Counter = Counter()        # op kind -> count
        self.reasons: dict[str, Counter] = {}    # op kind -> reason -> count
        self._used: set[str] = set()

    def unique_name(self, preferred: str | None, kind: str) -> str:
        base = preferred or f"{kind}{len(self.layers)}"
        cand, k = base, 1
        while cand in self._used:
            cand, k = f"{base}_{k}", k + 1
        self._used.add(cand)
        return cand

    def add(self, layer: Layer, notes=()):
        self.layers.append(layer)
        self.notes.extend(f"{layer.name}: {n}" for n in notes)

    def skip(self, kind: str, reason: str, count: int = 1):
        self.skipped[kind] += count
        self.reasons.setdefault(kind, Counter())[reason] += count

    def skipped_summary(self) -> str:
        parts = []
        for kind, n in self.skipped.most_common():
            why = "; ".join(f"{c}x {r}" for r, c in self.reasons[kind].most_common())
            parts.append(f"{kind} x{n} ({why})")
        return ", ".join(parts)

    def network(self, stacklevel: int = 3) -> Network:
        head = f"{self.source}({self.name!r})"
        if not self.layers:
            extra = f"; skipped: {self.skipped_summary()}" if self.skipped else ""
            raise WorkloadError(f"{head}: no CONV, DWCONV or FC layer found{extra}")
        if self.skipped:
            total = sum(self.skipped.values())
            warnings.warn(
                f"{head}: {total} op(s) that do compute were not imported (the model covers CONV, "
                f"DWCONV and FC layers only): {self.skipped_summary()}",
                UnsupportedOpsWarning, stacklevel=stacklevel)
        if self.notes:
            warnings.warn(f"{head}: {len(self.notes)} approximation(s): " + "; ".join(self.notes),
                          ApproximationWarning, stacklevel=stacklevel)
        return Network(self.name, tuple(self.layers))
