"""Chinese language support for Kefu's Rasa NLU pipeline.

- ``normalize``: length-preserving Traditional->Simplified and full-width folding.
- ``segment``: jieba word segmentation with the shop's user dictionary.
- ``spacy_tokenizer``: the spaCy tokenizer built on ``segment``.
- ``components``: Rasa graph components (text normaliser, input guard,
  entity consolidation).
"""
