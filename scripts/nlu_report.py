"""Summarise `rasa test nlu` results and enforce the accuracy floor.

Usage: python scripts/nlu_report.py RESULTS_DIR [--min-accuracy 0.90]

Prints intent accuracy, macro-F1 and per-intent F1 (weakest first), the
retrieval (faq) sub-intent scores, and exits 1 when intent accuracy is below
the floor.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

SUMMARY_KEYS = {"accuracy", "macro avg", "weighted avg", "micro avg"}


def load_report(path: Path) -> Dict[str, Any]:
    """Read one of Rasa's ``*_report.json`` files (empty dict when missing)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def per_label_f1(report: Dict[str, Any]) -> List[Tuple[str, float, int]]:
    """``(label, f1, support)`` rows of a report, weakest F1 first."""
    rows = [
        (label, float(scores["f1-score"]), int(scores["support"]))
        for label, scores in report.items()
        if label not in SUMMARY_KEYS and isinstance(scores, dict)
    ]
    return sorted(rows, key=lambda row: (row[1], row[0]))


def summary(report: Dict[str, Any]) -> Tuple[float, float]:
    """``(accuracy, macro-F1)`` of a report."""
    accuracy = report.get("accuracy", report.get("micro avg", {}).get("f1-score", 0.0))
    return float(accuracy), float(report.get("macro avg", {}).get("f1-score", 0.0))


def print_table(title: str, report: Dict[str, Any]) -> float:
    """Print a report's summary and per-label F1; return its accuracy."""
    accuracy, macro_f1 = summary(report)
    print(f"{title}: accuracy {accuracy:.3f}  macro-F1 {macro_f1:.3f}")
    for label, f1, support in per_label_f1(report):
        print(f"  {f1:.3f}  {label:<28} ({support} examples)")
    return accuracy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--min-accuracy", type=float, default=0.90)
    args = parser.parse_args()
    intents = load_report(args.results / "intent_report.json")
    if not intents:
        print(f"no intent report in {args.results}")
        return 1
    accuracy = print_table("Intents", intents)
    responses = load_report(args.results / "response_selection_report.json")
    if responses:
        print_table("FAQ sub-intents (ResponseSelector)", responses)
    if accuracy < args.min_accuracy:
        print(f"FAIL: intent accuracy {accuracy:.3f} < {args.min_accuracy:.2f}")
        return 1
    print(f"OK: intent accuracy {accuracy:.3f} >= {args.min_accuracy:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
