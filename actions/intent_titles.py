"""Readable Chinese titles for intents, from ``resources/intent_titles.yml``."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import yaml

TITLES_FILE = Path(__file__).resolve().parent / "resources" / "intent_titles.yml"


@lru_cache(maxsize=4)
def load_titles(path: Path = TITLES_FILE) -> Dict[str, str]:
    """Return the intent -> title mapping of ``path`` (cached)."""
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return {str(key): str(value) for key, value in data.items()}


def title_for(intent: str, titles: Optional[Dict[str, str]] = None) -> Optional[str]:
    """The title of ``intent`` or ``None`` when it has none."""
    return (titles if titles is not None else load_titles()).get(intent)
