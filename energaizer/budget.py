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
import numbers
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
    Raises InputError when a limit is negative or not a finite number, when the price is
    negative or not finite, or when `pue` is below 1 or not finite.
    """

    def __init__(self, spec: ServingSpec, *, max_energy_j: float | None = None,
                 max_cost_usd: float | None = None, electricity_usd_per_kwh: float = 0.13,
                 pue: float = 1.0) -> None:
        _check_setting("max_energy_j", max_energy_j, minimum=0.0, optional=True)
        _check_setting("max_cost_usd", max_cost_usd, minimum=0.0, optional=True)
        _check_setting("electricity_usd_per_kwh", electricity_usd_per_kwh, minimum=0.0)
        _check_setting("pue", pue, minimum=1.0)
        self.spec = spec
        self.max_energy_j = max_energy_j
        self.max_cost_usd = max_cost_usd
        self._usd_per_j = j_to_kwh(1.0) * pue * electricity_usd_per_kwh
        model = ServingModel(spec)
        nodes = _NODES[_NODES <= MAX_CONTEXT_TOKENS]
        self._nodes = nodes
        self._max_tokens = int(nodes[-1])
        self._prefill_j = np.array([model.prefill(int(n)).energy_j for n in nodes])
        per_token = np.array([model.decode_step(int(n)).energy_j / spec.batch for n in nodes])
        if not (np.isfinite(self._prefill_j).all() and np.isfinite(per_token).all()):
            raise InputError(f"The serving estimate of {spec.model} on {spec.gpu} gives "
                             "energies that are not finite; check the spec's calibration.")
        # Cumulative decode energy from cache length 1, trapezoid rule between nodes.
        steps = np.diff(nodes) * 0.5 * (per_token[1:] + per_token[:-1])
        self._decode_cumulative_j = np.concatenate([[0.0], np.cumsum(steps)])

    def energy_j(self, prompt_tokens: int, max_new_tokens: int) -> float:
        """Predicted IT energy of a request that generates `max_new_tokens`, in J.

        Raises InputError when a token count is not a whole number, the prompt is under
        1 token or `max_new_tokens` is negative.
        """
        reason = _invalid_request(prompt_tokens, max_new_tokens)
        if reason:
            raise InputError(reason)
        return self._energy_j(prompt_tokens, max_new_tokens)

    def _energy_j(self, prompt_tokens: int, max_new_tokens: int) -> float:
        prefill = np.interp(prompt_tokens, self._nodes, self._prefill_j)
        start = np.interp(prompt_tokens, self._nodes, self._decode_cumulative_j)
        end = np.interp(prompt_tokens + max_new_tokens, self._nodes, self._decode_cumulative_j)
        return float(prefill + end - start)

    def check(self, prompt_tokens: int, max_new_tokens: int) -> Decision:
        """Decide whether a request fits the limits, assuming it uses all new tokens.

        Invalid token counts give a rejection instead of an exception, so a gateway can
        pass user input straight in. Such a request gets allow=False, NaN energy and cost,
        and a reason naming the values. Invalid counts are those that are not whole
        numbers (NaN, infinite, fractional, bool or not a number), a prompt under 1 token
        and negative new tokens.
        """
        reason = _invalid_request(prompt_tokens, max_new_tokens)
        if reason:
            return Decision(False, math.nan, math.nan, reason)
        if prompt_tokens + max_new_tokens > self._max_tokens:
            return Decision(False, math.nan, math.nan,
                            f"{prompt_tokens + max_new_tokens} tokens exceed the tabulated "
                            f"context of {self._max_tokens}")
        energy = self._energy_j(prompt_tokens, max_new_tokens)
        cost = energy * self._usd_per_j
        # `not value <= limit` also rejects a NaN energy or cost instead of allowing it.
        if self.max_energy_j is not None and not energy <= self.max_energy_j:
            return Decision(False, energy, cost, f"energy {energy:.1f} J exceeds the "
                                                 f"{self.max_energy_j:g} J limit")
        if self.max_cost_usd is not None and not cost <= self.max_cost_usd:
            return Decision(False, energy, cost, f"cost {cost:.3g} USD exceeds the "
                                                 f"{self.max_cost_usd:g} USD limit")
        return Decision(True, energy, cost, "within limits")


def _check_setting(name: str, value: Any, minimum: float, optional: bool = False) -> None:
    """Raise InputError unless `value` is a finite number of at least `minimum`."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        allowed = " or None for no limit" if optional else ""
        raise InputError(f"Preflight {name} must be a finite number{allowed}, got {value!r}.")
    if value < minimum:
        raise InputError(f"Preflight {name} must be at least {minimum:g}, got {value!r}.")


def _is_token_count(value: Any) -> bool:
    """Return whether `value` is a whole number: an int or NumPy integer (not a bool), or
    a finite real number with no fractional part."""
    if type(value) is int:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()


def _invalid_request(prompt_tokens: Any, max_new_tokens: Any) -> str:
    """Return why a request's token counts are invalid, or "" when they are valid."""
    if not _is_token_count(prompt_tokens) or not _is_token_count(max_new_tokens):
        return (f"invalid request: prompt_tokens {prompt_tokens!r} and max_new_tokens "
                f"{max_new_tokens!r} must be whole numbers")
    if prompt_tokens < 1 or max_new_tokens < 0:
        return (f"invalid request: prompt_tokens {prompt_tokens!r} must be at least 1 and "
                f"max_new_tokens {max_new_tokens!r} at least 0")
    return ""


# Fields of an estimate JSON that budgets and baselines compare, larger being worse.
CHECKED_FIELDS = ("energy_j", "duration_s", "avg_power_w", "idle_energy_j",
                  "energy_per_request_j", "energy_per_output_token_j", "prefill_energy_j",
                  "decode_energy_j", "time_to_first_token_s", "time_per_output_token_s")


@dataclass
class CheckResult:
    """Fields compared, with limit or baseline, value and relative change.

    `reference` is "budget" or "baseline". `tolerance` is the growth each field may show
    over the baseline (0.05 = 5%), and None for a budget.
    """

    passed: bool
    rows: list[dict[str, Any]]
    reference: str = "budget"
    tolerance: float | None = None

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


def read_estimate(path: str | Path, role: str = "estimate") -> dict[str, Any]:
    """Read an estimate JSON object and check every CHECKED_FIELDS entry it has.

    `role` ("estimate" or "baseline") names the file in errors. Raises InputError naming
    the file and the field when a value is not a finite number of at least 0.
    """
    data = read_json(path, role)
    for name in CHECKED_FIELDS:
        if name in data:
            estimate_value(data, name, f"{role} {path}")
    return data


def estimate_value(estimate: dict[str, Any], name: str, source: str) -> float:
    """Return field `name` of an estimate as a float.

    Raises InputError, naming the estimate by `source`, when the value is not a finite
    number of at least 0.
    """
    value = estimate[name]
    if not _is_finite_number(value) or value < 0:
        raise InputError(f"{_capitalized(source)}: {name} {value!r} is invalid; it must be a "
                         "finite number of at least 0. Write the file again with "
                         "`energaizer estimate --json`.")
    return float(value)


def _is_finite_number(value: Any) -> bool:
    return (not isinstance(value, bool) and isinstance(value, numbers.Real)
            and math.isfinite(value))


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _check_limit(name: str, limit: Any, source: str) -> float:
    if not _is_finite_number(limit) or limit < 0:
        raise InputError(f"{_capitalized(source)}: {name} {limit!r} is invalid; a limit must "
                         "be a finite number of at least 0.")
    return float(limit)


def read_budget(path: str | Path) -> dict[str, float]:
    """Read a budget YAML: a mapping of estimate fields to maximum values.

    Raises InputError for an unknown field, or a maximum that is not a finite number of
    at least 0 (a negative or NaN maximum would fail or pass every estimate).
    """
    path = Path(path)
    data = read_yaml(path, "budget")
    if not isinstance(data, dict) or not data:
        raise InputError(f"Budget {path} must map estimate fields to maximum values, e.g. "
                         "energy_per_request_j: 50.")
    unknown = sorted(str(key) for key in set(data) - set(CHECKED_FIELDS))
    if unknown:
        raise InputError(f"Budget {path} has unknown fields {', '.join(unknown)}; expected "
                         f"some of {', '.join(CHECKED_FIELDS)}.")
    return {key: _check_limit(key, value, f"budget {path}") for key, value in data.items()}


def check_budget(estimate: dict[str, Any], budget: dict[str, float],
                 source: str = "the estimate") -> CheckResult:
    """Compare each budgeted field of an estimate with its maximum.

    `source` names the estimate in errors. Raises InputError when the estimate lacks a
    budgeted field or a value or maximum is not a finite number of at least 0.
    """
    rows = []
    for name, limit in budget.items():
        limit = _check_limit(name, limit, "the budget")
        if name not in estimate:
            raise InputError(f"{_capitalized(source)} has no {name} field to check against "
                             "the budget.")
        value = estimate_value(estimate, name, source)
        rows.append({"field": name, "limit": limit, "value": value,
                     "change": _relative_change(value, limit), "ok": value <= limit})
    return CheckResult(all(row["ok"] for row in rows), rows, reference="budget")


def _relative_change(value: float, reference: float) -> float:
    if reference:
        return value / reference - 1
    return 0.0 if value == reference else math.inf


def check_baseline(estimate: dict[str, Any], baseline: dict[str, Any], tolerance: float,
                   source: str = "the estimate",
                   baseline_source: str = "the baseline") -> CheckResult:
    """Compare the CHECKED_FIELDS both estimates have (energies, durations, average power
    and latencies); each may grow by at most `tolerance` (0.05 = 5%).

    Raises InputError for a tolerance that is negative or not finite, a field that is
    not a finite number of at least 0, or estimates that share no checked field.
    """
    if not _is_finite_number(tolerance) or tolerance < 0:
        raise InputError(f"Tolerance {tolerance!r} is invalid; it must be a finite fraction "
                         "of at least 0, such as 0.05 for 5%.")
    rows = []
    for name in CHECKED_FIELDS:
        if name not in estimate or name not in baseline:
            continue
        old = estimate_value(baseline, name, baseline_source)
        new = estimate_value(estimate, name, source)
        change = _relative_change(new, old)
        rows.append({"field": name, "limit": old * (1 + tolerance), "baseline": old,
                     "value": new, "change": change, "ok": change <= tolerance})
    if not rows:
        raise InputError(f"{_capitalized(source)} and {baseline_source} share no field to "
                         f"compare; expected some of {', '.join(CHECKED_FIELDS)}.")
    return CheckResult(all(row["ok"] for row in rows), rows, reference="baseline",
                       tolerance=float(tolerance))


def parse_tolerance(text: str) -> float:
    """Parse a tolerance given as a percentage ("5%") or a fraction ("0.05").

    Raises InputError for a value that is negative, NaN or infinite, and for a bare
    number above 1, which could mean a percentage or a fraction ("5" as 5% or 500%).
    """
    stripped = text.strip()
    is_percentage = stripped.endswith("%")
    number = stripped[:-1].strip() if is_percentage else stripped
    try:
        value = float(number)
    except ValueError:
        raise InputError(f"Tolerance {text!r} is invalid; give a percentage such as 5% or a "
                         "fraction such as 0.05.") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"Tolerance {text!r} is invalid; it must be a finite number of at "
                         "least 0, such as 5% or 0.05.")
    if is_percentage:
        return value / 100
    if value > 1:
        raise InputError(f"Tolerance {text!r} is ambiguous; write {number}% for {number} "
                         f"percent, or {value / 100:g} as a fraction.")
    return value


def raise_if_failed(result: CheckResult) -> None:
    """Raise CheckFailedError listing every field over its budget or grown past the
    baseline tolerance."""
    if result.passed:
        return
    failures = result.failures()
    if result.reference == "baseline":
        lines = [f"{row['field']}: {row['value']:.6g} against baseline {row['baseline']:.6g} "
                 f"({row['change']:+.1%})" for row in failures]
        raise CheckFailedError(f"Grew past the baseline tolerance of "
                               f"{(result.tolerance or 0.0) * 100:g}%: " + "; ".join(lines))
    lines = [f"{row['field']}: {row['value']:.6g} > {row['limit']:.6g} ({row['change']:+.1%})"
             for row in failures]
    raise CheckFailedError("Over budget: " + "; ".join(lines))
