"""Short, readable forms of C++ kernel names for tables."""

from __future__ import annotations

import re

_LEADING_VOID = re.compile(r"^void\s+")
_ANONYMOUS = "(anonymous namespace)::"


def short_kernel_name(name: str, width: int = 60) -> str:
    """Drop the return type, namespaces, the parameter list and nested template
    arguments.

    `void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>,
    ...>(int, ...)` becomes `vectorized_elementwise_kernel<4, FillFunctor, Array>`.
    """
    text = _LEADING_VOID.sub("", name.strip()).replace(_ANONYMOUS, "")
    text = _drop_parameters(text)
    text = _flatten_templates(text)
    template = text.find("<")
    head = text if template < 0 else text[:template]
    text = head.split("::")[-1] + ("" if template < 0 else text[template:])
    return text if len(text) <= width else text[: width - 3] + "..."


def _drop_parameters(text: str) -> str:
    """Cut the parameter list that follows the last top-level template or name."""
    depth = 0
    for index, char in enumerate(text):
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        elif char == "(" and depth == 0 and index > 0:
            return text[:index]
    return text


def _flatten_templates(text: str) -> str:
    """Keep the first template level; reduce each argument to its last name part."""
    start = text.find("<")
    if start < 0:
        return text
    arguments, depth, current = [], 0, []
    for char in text[start + 1 :]:
        if char == "<":
            depth += 1
            continue
        if char == ">":
            if depth == 0:
                break
            depth -= 1
            continue
        if char == "," and depth == 0:
            arguments.append("".join(current))
            current = []
            continue
        if depth == 0:
            current.append(char)
    arguments.append("".join(current))
    shortened = [argument.strip().split("::")[-1] for argument in arguments]
    return text[:start] + "<" + ", ".join(a for a in shortened if a) + ">"
