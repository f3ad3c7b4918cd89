"""Access to the shop backend for actions, with the common failure handling.

``ShopAction`` is the base class of every action that talks to the order
or customer system: it resolves the backend once, and when the backend is
down or too slow it apologises, offers a human and keeps the bot running.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.backends.base import BackendUnavailable, ShopBackend
from actions.backends.factory import get_backend
from actions.masking import install_log_masking

logger = logging.getLogger(__name__)
install_log_masking()

Events = List[Dict[Text, Any]]


def backend_down(dispatcher: CollectingDispatcher, error: Exception) -> Events:
    """Apologise and offer a human when the backend failed."""
    logger.warning("shop backend unavailable: %s", error)
    dispatcher.utter_message(response="utter_backend_down")
    return [SlotSet("handoff_reason", "backend_down")]


class ShopAction(Action, ABC):
    """An action that uses the shop backend (see module docstring)."""

    @abstractmethod
    def run_with(
        self, backend: ShopBackend, dispatcher: CollectingDispatcher,
        tracker: Tracker, domain: Dict[Text, Any],
    ) -> Events:
        """The action's work; may raise ``BackendUnavailable``."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Events:
        try:
            return self.run_with(get_backend(), dispatcher, tracker, domain)
        except BackendUnavailable as error:
            return backend_down(dispatcher, error)


class ShopFormValidation(FormValidationAction, ABC):
    """A form validation action whose checks use the shop backend."""

    @abstractmethod
    def name(self) -> Text:
        """The action's name, ``validate_<form>``."""

    def events_when_backend_down(self) -> Events:
        """Extra events when the backend failed (e.g. forget an unchecked value)."""
        return []

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Events:
        try:
            return await super().run(dispatcher, tracker, domain)
        except BackendUnavailable as error:
            return backend_down(dispatcher, error) + self.events_when_backend_down()
