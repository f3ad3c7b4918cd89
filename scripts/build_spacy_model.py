"""Build Kefu's spaCy pipeline: blank ``zh`` + jieba tokenizer + EntityRuler.

Run by ``make train`` before ``rasa train``. The pipeline is written to
``var/spacy/zh_kefu`` (not committed) and loaded by Rasa's ``SpacyNLP``.

- tokenizer: jieba with ``kefu_nlu/resources/userdict.txt`` plus every
  product name of ``data/lookups/product.yml``;
- entity_ruler: one phrase pattern per product name, label ``product``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import spacy  # noqa: E402

from kefu_nlu.segment import default_user_lines, read_product_names  # noqa: E402
from kefu_nlu.spacy_tokenizer import JiebaTokenizer  # noqa: E402

DEFAULT_OUTPUT = ROOT / "var" / "spacy" / "zh_kefu"
PRODUCT_LABEL = "product"


def build_pipeline() -> spacy.language.Language:
    """Return the blank Chinese pipeline with tokenizer and product ruler."""
    nlp = spacy.blank(
        "zh", config={"nlp": {"tokenizer": {"@tokenizers": "kefu.JiebaTokenizer.v1"}}}
    )
    nlp.tokenizer = JiebaTokenizer(nlp.vocab, default_user_lines())
    nlp.meta["name"] = "zh_kefu"
    nlp.meta["description"] = "Kefu: jieba segmentation + product EntityRuler"
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "NORM"})
    names = sorted(set(read_product_names()), key=len, reverse=True)
    ruler.add_patterns([{"label": PRODUCT_LABEL, "pattern": name} for name in names])
    return nlp


def main() -> None:
    """Build the pipeline and write it to disk."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    nlp = build_pipeline()
    args.output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(args.output)
    print(f"spaCy pipeline written to {args.output} "
          f"({len(nlp.get_pipe('entity_ruler'))} product patterns)")


if __name__ == "__main__":
    main()
