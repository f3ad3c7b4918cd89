"""Kefu's custom action server package (rasa-sdk).

One module per concern:

- ``fallback``: the "您是想问……吗？" clarification and bad-input answers.
- ``intent_titles``: readable Chinese names of intents for buttons.
- ``conversation``: small helpers that read the tracker.
"""
