"""``kvplan check`` verdicts as text lines, JUnit XML and Markdown."""

from __future__ import annotations

from kvplan.workflows.check import Verdict


def junit_xml(verdicts: list[Verdict]) -> str:
    """JUnit XML: one test suite per model, one test case per budget key."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="kvplan check")
    models = list(dict.fromkeys(v.model for v in verdicts))
    root.set("tests", str(len(verdicts)))
    root.set("failures", str(sum(not v.passed for v in verdicts)))
    for model in models:
        mine = [v for v in verdicts if v.model == model]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=model,
            tests=str(len(mine)),
            failures=str(sum(not v.passed for v in mine)),
            errors="0",
            skipped="0",
        )
        for v in mine:
            case = ET.SubElement(suite, "testcase", classname=f"kvplan.check.{model}", name=v.key)
            if v.passed:
                ET.SubElement(case, "system-out").text = v.text
            else:
                failure = ET.SubElement(case, "failure", message=v.text, type="BudgetNotMet")
                failure.text = f"measured {v.measured!r}, limit {v.limit!r}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def markdown(verdicts: list[Verdict]) -> str:
    """Verdicts as a Markdown table for a CI step summary or a PR comment."""
    failed = sum(not v.passed for v in verdicts)
    head = (
        f"### kvplan check: {len(verdicts) - failed} of {len(verdicts)} budgets hold"
        if not failed
        else f"### kvplan check: {failed} of {len(verdicts)} budgets fail"
    )
    lines = [head, "", "| | model | budget | verdict |", "|---|---|---|---|"]
    for v in verdicts:
        mark = "✅" if v.passed else "❌"
        lines.append(f"| {mark} | `{v.model}` | `{v.key}` | {v.text} |")
    return "\n".join(lines) + "\n"
