"""``kvplan verify``'s side-by-side, as text or Markdown."""

from __future__ import annotations

from kvplan.workflows.verify import Verification


def lines(check: Verification, *, markdown: bool = False) -> list[str]:
    """kvplan's and vLLM's figures side by side, then the verdict."""
    versions = check.environment.get("versions", {})
    against = ", ".join(f"{k} {v}" for k, v in versions.items() if k in ("vllm", "torch", "transformers"))
    head = f"kvplan verify: kvplan against vLLM's own model on the meta device ({against or 'vLLM'})"
    if markdown:
        out = [f"### {head}", "", "| | kvplan | vLLM | |", "|---|---|---|---|"]
        out += [
            f"| {r.what} | {r.kvplan} | {r.vllm} | {'same' if r.same else '**differs**'} |"
            for r in check.rows
        ]
    else:
        out = [head]
        for r in check.rows:
            mark = "same   " if r.same else "DIFFERS"
            out.append(f"{mark}  {r.what}")
            out.append(f"         kvplan: {r.kvplan}")
            if not r.same or r.kvplan != r.vllm:
                out.append(f"         vLLM:   {r.vllm}")
    verdict = (
        "kvplan and vLLM agree on every figure"
        if not check.differences
        else f"{len(check.differences)} figures differ"
    )
    return [*out, "", verdict]
