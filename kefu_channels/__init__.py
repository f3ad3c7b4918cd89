"""Input channels of the Kefu Rasa server (configured in credentials.yml)."""
