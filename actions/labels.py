"""Chinese labels for codes (statuses, tiers, ...) from ``resources/labels.yml``."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict

import yaml

LABELS_FILE = Path(__file__).resolve().parent / "resources" / "labels.yml"


@lru_cache(maxsize=1)
def _labels() -> Dict[str, Dict[str, str]]:
    with LABELS_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def label(group: str, code: str) -> str:
    """The label of ``code`` in ``group``; the code itself when unknown."""
    return _labels().get(group, {}).get(code, code)
