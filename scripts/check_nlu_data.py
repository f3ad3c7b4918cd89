"""Check NLU YAML files: entity annotations must align with jieba token boundaries.

Usage: python scripts/check_nlu_data.py FILE_OR_DIR [...]
Uses the same normalisation (OpenCC t2s + full-width folding) and user
dictionary as the real pipeline, so a clean run here means zero
"Misaligned entity annotation" warnings in `rasa train`.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402

from kefu_nlu.normalize import normalize_text  # noqa: E402
from kefu_nlu.segment import segment  # noqa: E402


def main(paths: list[str]) -> int:
    problems = 0
    seen: dict[str, set] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for path in paths:
        data = load_data(path)
        for msg in data.nlu_examples:
            text = msg.get("text")
            intent = msg.get("intent")
            full = msg.get("intent_response_key") or intent
            counts[full] += 1
            seen[normalize_text(text)].add(full)
            tokens = segment(normalize_text(text))
            starts = {s for s, _e, _t in tokens}
            ends = {e for _s, e, _t in tokens}
            for ent in msg.get("entities") or []:
                if ent["start"] not in starts or ent["end"] not in ends:
                    problems += 1
                    print(f"MISALIGNED [{full}] {text!r} entity {ent['entity']}="
                          f"{text[ent['start']:ent['end']]!r} tokens={[t for *_x, t in tokens]}")
    for text, intents in seen.items():
        if len(intents) > 1:
            problems += 1
            print(f"CONFLICT {text!r} appears under {sorted(intents)}")
    for name in sorted(counts):
        print(f"{counts[name]:4d}  {name}")
    print(f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
