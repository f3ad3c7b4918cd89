"""Tell waiting customers when their place in the queue changes.

Every few seconds the notifier compares each waiting ticket's position with
``last_notified_position``; when it changed, it sets the slots
``queue_position`` / ``queue_wait_minutes`` and runs ``utter_queue_update``
in the customer's conversation through Rasa's HTTP API. Before that, each
round lets customers who asked to leave the queue go (``QueueExitWatcher``),
so the others hear their new positions in the same round.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

from actions.handoff.rasa_api import RasaClient, RasaError, RasaUnavailable
from actions.handoff.tickets import QueueEntry, TicketStore
from workspace.queue_exit import QueueExitWatcher

log = logging.getLogger(__name__)

QUEUE_UPDATE_ACTION = "utter_queue_update"
DEFAULT_INTERVAL = 3.0


class QueueNotifier:
    """Sends ``utter_queue_update`` to customers whose queue position changed.

    ``exits`` (a ``QueueExitWatcher``) runs first in every round.
    """

    def __init__(self, store: TicketStore, rasa: RasaClient, interval: float = DEFAULT_INTERVAL) -> None:
        self.store = store
        self.rasa = rasa
        self.interval = interval
        self.exits = QueueExitWatcher(store, rasa)
        self._task: Optional["asyncio.Task[None]"] = None
        self._rasa_down = False  # warn once per outage, not every round

    async def run_once(self) -> int:
        """Check the queue once; returns how many customers were notified."""
        try:
            await self.exits.run_once()
        except RasaUnavailable as exc:
            self._paused(exc)
            return 0
        snapshot = await asyncio.to_thread(self.store.queue_snapshot)
        sent = 0
        for entry in snapshot:
            if entry.ticket.last_notified_position == entry.position:
                continue
            try:
                sent += await asyncio.to_thread(self._notify, entry)
            except RasaUnavailable as exc:
                self._paused(exc)
                return sent  # try again next round rather than hammering a dead server
        if self._rasa_down and sent:
            log.info("queue updates resumed")
            self._rasa_down = False
        return sent

    def _paused(self, exc: RasaUnavailable) -> None:
        if not self._rasa_down:
            log.warning("queue updates paused, Rasa unavailable: %s", exc)
        self._rasa_down = True

    def _notify(self, entry: QueueEntry) -> int:
        """Claim the notification (compare-and-set), send it; undo the claim if Rasa is down."""
        ticket, position = entry.ticket, entry.position
        if self.store.position(ticket.id) != position:
            return 0  # the queue moved since the snapshot; next round
        old = ticket.last_notified_position
        if not self.store.set_last_notified_position(ticket.id, position, expected=old):
            return 0  # another notifier got there first
        try:
            self._send(ticket.conversation_id, position, entry.wait_minutes)
        except RasaUnavailable:
            self.store.set_last_notified_position(ticket.id, old, expected=position)
            raise  # retried next round
        except RasaError as exc:  # refused (4xx): retrying would fail the same way
            log.warning("queue update for ticket %s refused: %s", ticket.id, exc)
            return 0
        return 1

    def _send(self, conversation_id: str, position: int, wait_minutes: int) -> None:
        slots = [
            {"event": "slot", "name": "queue_position", "value": position},
            {"event": "slot", "name": "queue_wait_minutes", "value": wait_minutes},
        ]
        self.rasa.append_events(conversation_id, slots)
        self.rasa.execute_action(conversation_id, QUEUE_UPDATE_ACTION)

    async def run_forever(self) -> None:
        """``run_once`` every ``interval`` seconds until cancelled; never raises."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not kill the loop
                log.exception("queue notifier round failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start ``run_forever`` as a background task of the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run_forever())

    async def stop(self) -> None:
        """Cancel the background task and wait for it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
