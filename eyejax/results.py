"""Results of a batched evaluation as tables a user opens with pandas."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from eyejax import metrics
from eyejax.arch import family_of
from eyejax.arch.energy import DATA_TYPES
from eyejax.arch.family import per_config
from eyejax.dataflow.mapping import COUNT_KEYS, NOC_MODES
from eyejax.metrics import objective_of_totals

LEVELS_E = ("dram", "glb", "noc", "rf")


@dataclasses.dataclass
class NetworkResult:
    raw: dict            # numpy arrays [B, L]
    arch: object
    network: object
    sparsity: object
    objective: str
    batch: int
    mapping_keys: tuple = ()

    # ---------------------------------------------------------------- derived per-layer arrays
    def arrays(self) -> dict:
        r, B = self.raw, self.batch
        a = self.arch
        family = family_of(a)
        pes = family.num_pes(a, B)
        clock = per_config(a.clock_mhz, B).astype(np.float64)
        out = {}
        out["macs"] = r["macs"]
        out["active_pes"] = r["active_pes"]
        out["utilization"] = r["active_pes"] / pes[:, None]
        cycles = r["cycles"]
        out["cycles"] = cycles
        out["compute_cycles"] = r["compute_cycles"]
        out["ramp_cycles"] = r["ramp_cycles"]
        out["dram_cycles"] = r["dram_cycles"]
        # MAC datapaths used per cycle (Eyeriss v2 PEs have macs_per_pe datapaths; v1 PEs one)
        datapaths = family.mac_units(a, B)
        out["mac_utilization"] = metrics.mac_utilization(r["macs"], cycles, datapaths[:, None])
        out["latency_ms"] = metrics.latency_ms(cycles, clock[:, None])
        if "processing_cycles" in r:   # RS on v1: DRAM-overlapped processing vs total (JSSC17 Table V)
            out["processing_latency_ms"] = metrics.latency_ms(r["processing_cycles"], clock[:, None])
            out["total_latency_ms"] = out["latency_ms"]
        total = 0.0
        for lv in LEVELS_E:
            lv_sum = 0.0
            for dt in DATA_TYPES:
                v = r[f"energy_{lv}_{dt}"]
                out[f"energy_{lv}_{dt}"] = v
                lv_sum = lv_sum + v
            out[f"energy_{lv}"] = lv_sum
            total = total + lv_sum
        out["energy_alu"] = r["energy_alu"]
        # movement + MACs (the ISCA16 breakdown), then the chip's clock, control and leakage
        # where the family reports them (eyejax.dataflow.cost.overhead_energy); `energy` is the sum
        # of both
        out["energy_movement"] = total + r["energy_alu"]
        out["energy"] = out["energy_movement"]
        if "energy_clock" in r:
            out["energy_clock"] = r["energy_clock"]
            out["energy_leakage"] = r["energy_leakage"]
            out["energy"] = out["energy"] + r["energy_clock"] + r["energy_leakage"]
        out["chip_energy"] = out["energy"] - out["energy_dram"]
        for dt in DATA_TYPES:
            out[f"energy_{dt}"] = sum(r[f"energy_{lv}_{dt}"] for lv in LEVELS_E)
        out["dram_accesses_raw"] = sum(r[k] for k in COUNT_KEYS if k.startswith("dram_"))
        # DRAM traffic as moved (RLC-compressed fmaps), derived from the DRAM energy.
        e_dram = np.broadcast_to(per_config(a.energy.dram, B)[:, None], cycles.shape)
        out["dram_accesses"] = np.where(e_dram > 0, np.rint(out["energy_dram"] / np.where(e_dram > 0, e_dram, 1)),
                                        out["dram_accesses_raw"]).astype(np.int64)
        for lv in ("glb", "noc", "rf"):
            out[f"{lv}_accesses"] = sum(r[k] for k in COUNT_KEYS if k.startswith(lv + "_"))
        out["dram_accesses_per_mac"] = metrics.per_mac(out["dram_accesses"], r["macs"])
        for k in COUNT_KEYS:
            out.setdefault(k, r[k])
        for k in self.mapping_keys:
            out[f"map_{k}"] = r[f"map_{k}"]
        for k, v in r.items():  # dataflow-specific extras (e.g. NoC modes) pass through
            out.setdefault(k, v)
        out["feasible"] = r["feasible"]
        out["power_mw"] = self._power_mw(self._power_energy(out), out["latency_ms"])
        return out

    def _power_energy(self, arr):
        """The energy power_mw is computed from: the chip's (DRAM excluded, as JSSC17 measures
        chip power) where the family reports chip energy, else everything, as before."""
        return arr["chip_energy"] if "energy_clock" in self.raw else arr["energy"]

    def _power_mw(self, energy, latency_ms):
        if getattr(self.arch.energy, "unit", "normalized") != "pJ":
            return np.full(np.shape(energy), np.nan)
        return metrics.power_mw(energy, latency_ms)

    # ---------------------------------------------------------------- tables
    def to_dataframe(self, swept: dict | None = None) -> pd.DataFrame:
        """One row per (config_id, layer), with one column per swept field."""
        arr = self.arrays()
        B, L = arr["macs"].shape
        names = list(self.network.names)
        cols = {"config_id": np.repeat(np.arange(B), L), "layer": np.tile(names, B),
                "layer_index": np.tile(np.arange(L), B)}
        for k, v in (swept or {}).items():
            cols[k] = np.repeat(per_config(v, B), L)
        for k, v in arr.items():
            cols[k] = np.asarray(v).reshape(-1)
            if k.startswith("noc_mode_"):  # HM-NoC router modes, also by name
                cols[f"{k}_name"] = np.asarray(NOC_MODES, dtype=object)[cols[k]]
        for k in ("iact_density", "weight_density", "ofmap_density"):
            v = np.asarray(getattr(self.sparsity, k))
            cols[f"sparsity_{k}"] = np.broadcast_to(v, (B, L)).reshape(-1)
        cols["energy_unit"] = getattr(self.arch.energy, "unit", "normalized")
        return pd.DataFrame(cols)

    def network_totals(self, swept: dict | None = None) -> pd.DataFrame:
        """One row per configuration: sums over layers and network-level rates."""
        arr = self.arrays()
        B = arr["macs"].shape[0]
        t = {"config_id": np.arange(B)}
        for k, v in (swept or {}).items():
            t[k] = per_config(v, B)
        sum_keys = ["macs", "cycles", "compute_cycles", "ramp_cycles", "dram_cycles", "latency_ms",
                    "energy", "energy_dram", "energy_glb", "energy_noc", "energy_rf", "energy_alu",
                    "energy_ifmap", "energy_filter", "energy_psum", "dram_accesses", "glb_accesses",
                    "noc_accesses", "rf_accesses", "energy_movement", "chip_energy"]
        sum_keys += [k for k in ("energy_clock", "energy_leakage") if k in arr]
        sum_keys += [k for k in ("stall_cycles", "processing_cycles", "dram_wait_cycles",
                                 "processing_latency_ms", "total_latency_ms") if k in arr]
        for k in sum_keys:
            t[k] = np.asarray(arr[k]).sum(axis=1)
        t["feasible"] = np.asarray(arr["feasible"]).all(axis=1)
        t["infeasible_layers"] = (~np.asarray(arr["feasible"])).sum(axis=1)
        images = self.network.layers[0].N
        t["images"] = np.full(B, images)
        t["fps"] = metrics.frames_per_second(images, t["latency_ms"])
        t["dram_accesses_per_mac"] = metrics.per_mac(t["dram_accesses"], t["macs"])
        t["power_mw"] = self._power_mw(self._power_energy(t), t["latency_ms"])
        t["energy_per_image"] = t["energy"] / images
        t["energy_unit"] = getattr(self.arch.energy, "unit", "normalized")
        df = pd.DataFrame(t)
        for k in ("latency_ms", "energy", "fps"):
            df.loc[~df["feasible"], k] = np.nan if k != "fps" else 0.0
        return df

    def best(self, objective: str | None = None) -> int:
        """config_id of the best feasible configuration for the objective."""
        tot = self.network_totals()
        obj = objective or self.objective
        key = objective_of_totals(tot, obj)
        key = key.where(tot["feasible"], np.inf)
        return int(np.argmin(key.to_numpy()))
