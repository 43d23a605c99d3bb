"""Energy and cost budgets: a pre-flight check per request, and checks of estimates
against a budget file or a baseline estimate for CI.

`Preflight` is built once for a serving setup. It tabulates prefill energy over prompt
lengths and decode energy per token over KV-cache lengths, so `check` only interpolates
(well under a millisecond). Decode energy for n new tokens from a prompt of p tokens is
the integral of the per-token table from p to p + n, read from a cumulative table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from energaizer.costing.conversions import j_to_kwh
from energaizer.errors import CheckFailedError, InputError
from energaizer.fileio import read_yaml
from energaizer.serving.model import ServingModel
from energaizer.serving.spec import ServingSpec

# Table nodes: four per doubling of the token count, up to MAX_CONTEXT_TOKENS, an
# estimate of the context current models accept. Longer requests are rejected with a
# reason. Interpolating between nodes stayed within 1% of a direct estimate for
# llama-3.1-8b at batch 64, 1000 prompt and 400 output tokens.
MAX_CONTEXT_TOKENS = 131_072
_NODES = np.unique(np.round(2.0 ** np.arange(0.0, 17.01, 0.25)))


@dataclass(frozen=True)
class Decision:
    """The outcome of a pre-flight check: allowed or not, the predicted energy in J and
    cost in USD of the request, and the reason in words."""

    allow: bool
    energy_j: float
    cost_usd: float
    reason: str


class Preflight:
    """Per-request energy and cost limits for one serving setup.

    `max_energy_j` and `max_cost_usd` are limits per request (None for no limit).
    Cost is facility energy (IT energy times `pue`) at `electricity_usd_per_kwh`.
    """

    def __init__(self, spec: ServingSpec, *, max_energy_j: float | None = None,
                 max_cost_usd: float | None = None, electricity_usd_per_kwh: float = 0.13,
                 pue: float = 1.0) -> None:
        self.spec = spec
        self.max_energy_j = max_energy_j
        self.max_cost_usd = max_cost_usd
        self._usd_per_j = j_to_kwh(1.0) * pue * electricity_usd_per_kwh
        model = ServingModel(spec)
        nodes = _NODES[_NODES <= MAX_CONTEXT_TOKENS]
        self._nodes = nodes
        self._prefill_j = np.array([model.prefill(int(n)).energy_j for n in nodes])
        per_token = np.array([model.decode_step(int(n)).energy_j / spec.batch for n in nodes])
        # Cumulative decode energy from cache length 1, trapezoid rule between nodes.
        steps = np.diff(nodes) * 0.5 * (per_token[1:] + per_token[:-1])
        self._decode_cumulative_j = np.concatenate([[0.0], np.cumsum(steps)])

    def energy_j(self, prompt_tokens: int, max_new_tokens: int) -> float:
        """Predicted IT energy of a request that generates `max_new_tokens`, in J."""
        prefill = np.interp(prompt_tokens, self._nodes, self._prefill_j)
        start = np.interp(prompt_tokens, self._nodes, self._decode_cumulative_j)
        end = np.interp(prompt_tokens + max_new_tokens, self._nodes, self._decode_cumulative_j)
        return float(prefill + end - start)

    def check(self, prompt_tokens: int, max_new_tokens: int) -> Decision:
        """Decide whether a request fits the limits, assuming it uses all new tokens."""
        if prompt_tokens < 1 or max_new_tokens < 0:
            return Decision(False, 0.0, 0.0, f"invalid request: prompt_tokens {prompt_tokens} "
                                              f"and max_new_tokens {max_new_tokens}")
        if prompt_tokens + max_new_tokens > self._nodes[-1]:
            return Decision(False, math.nan, math.nan,
                            f"{prompt_tokens + max_new_tokens} tokens exceed the tabulated "
                            f"context of {int(self._nodes[-1])}")
        energy = self.energy_j(prompt_tokens, max_new_tokens)
        cost = energy * self._usd_per_j
        if self.max_energy_j is not None and energy > self.max_energy_j:
            return Decision(False, energy, cost, f"energy {energy:.1f} J exceeds the "
                                                 f"{self.max_energy_j:g} J limit")
        if self.max_cost_usd is not None and cost > self.max_cost_usd:
            return Decision(False, energy, cost, f"cost {cost:.3g} USD exceeds the "
                                                 f"{self.max_cost_usd:g} USD limit")
        return Decision(True, energy, cost, "within limits")


# Fields of an estimate JSON that budgets and baselines compare, larger being worse.
CHECKED_FIELDS = ("energy_j", "duration_s", "avg_power_w", "idle_energy_j",
                  "energy_per_request_j", "energy_per_output_token_j", "prefill_energy_j",
                  "decode_energy_j", "time_to_first_token_s", "time_per_output_token_s")


@dataclass
class CheckResult:
    """Fields compared, with limit or baseline, value and relative change."""

    passed: bool
    rows: list[dict[str, Any]]

    def failures(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if not row["ok"]]


def read_json(path: str | Path, what: str) -> dict[str, Any]:
    """Read a JSON object file, raising InputError with the file and problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(f"Cannot read {what} {path}: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        raise InputError(f"{what} {path} is not valid JSON: {error.msg} at line "
                         f"{error.lineno}.") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {path} must contain a JSON object.")
    return data


def read_budget(path: str | Path) -> dict[str, float]:
    """Read a budget YAML: a mapping of estimate fields to maximum values."""
    path = Path(path)
    data = read_yaml(path, "budget")
    if not isinstance(data, dict) or not data:
        raise InputError(f"Budget {path} must map estimate fields to maximum values, e.g. "
                         "energy_per_request_j: 50.")
    unknown = sorted(set(data) - set(CHECKED_FIELDS))
    if unknown:
        raise InputError(f"Budget {path} has unknown fields {', '.join(unknown)}; expected "
                         f"some of {', '.join(CHECKED_FIELDS)}.")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"Budget {path}: {key} must be a number, got {value!r}.")
    return {key: float(value) for key, value in data.items()}


def check_budget(estimate: dict[str, Any], budget: dict[str, float]) -> CheckResult:
    """Compare each budgeted field of an estimate with its maximum."""
    rows = []
    for name, limit in budget.items():
        if name not in estimate:
            raise InputError(f"The estimate has no {name} field to check against the budget.")
        value = float(estimate[name])
        rows.append({"field": name, "limit": limit, "value": value,
                     "change": value / limit - 1 if limit else math.inf, "ok": value <= limit})
    return CheckResult(all(row["ok"] for row in rows), rows)


def check_baseline(estimate: dict[str, Any], baseline: dict[str, Any],
                   tolerance: float) -> CheckResult:
    """Compare fields both estimates have; each may grow by at most `tolerance` (0.05 = 5%)."""
    rows = []
    for name in CHECKED_FIELDS:
        if name not in estimate or name not in baseline:
            continue
        old, new = float(baseline[name]), float(estimate[name])
        if old:
            change = new / old - 1
        else:
            change = 0.0 if new == old else math.inf
        rows.append({"field": name, "limit": old * (1 + tolerance), "baseline": old,
                     "value": new, "change": change, "ok": change <= tolerance})
    if not rows:
        raise InputError("The estimate and the baseline share no energy or time fields.")
    return CheckResult(all(row["ok"] for row in rows), rows)


def parse_tolerance(text: str) -> float:
    """Parse "5%" or "0.05" as a fraction."""
    stripped = text.strip()
    try:
        value = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    except ValueError:
        raise InputError(f"Tolerance {text!r} is invalid; give a percentage such as 5%.") from None
    if value < 0:
        raise InputError(f"Tolerance must be at least 0, got {text!r}.")
    return value


def raise_if_failed(result: CheckResult) -> None:
    """Raise CheckFailedError listing every field that grew past its limit."""
    if result.passed:
        return
    lines = [f"{row['field']}: {row['value']:.6g} > {row['limit']:.6g} ({row['change']:+.1%})"
             for row in result.failures()]
    raise CheckFailedError("Over budget: " + "; ".join(lines))
