"""What an order task needs: relevant orders, and the order-task slots.

An *order task* is what the customer wants done with one order; it is set
from the intent that started it (``check_order_status`` -> ``status`` ...).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

TASK_BY_INTENT: Dict[str, str] = {
    "check_order_status": "status",
    "track_shipment": "track",
    "urge_shipment": "urge",
    "cancel_order": "cancel",
    "return_goods": "return",
    "request_refund": "refund",
    "check_refund_status": "refund_status",
    "change_address": "address",
    "request_invoice": "invoice",
    "payment_problem": "payment",
}

# Orders worth offering as buttons for each task (None = any status).
RELEVANT_STATUSES: Dict[str, Optional[Sequence[str]]] = {
    "status": None,
    "track": ("shipped", "delivered"),
    "urge": ("paid",),
    "cancel": ("pending_payment", "paid"),
    "return": ("delivered",),
    "refund": ("paid", "shipped", "delivered"),
    "refund_status": None,
    "address": ("pending_payment", "paid"),
    "invoice": ("paid", "shipped", "delivered"),
    "payment": ("pending_payment", "paid"),
}

# Slots of one task's conversation, cleared when a new task starts.
TASK_DETAIL_SLOTS: List[str] = [
    "verify_phone",
    "confirmed",
    "after_sale_reason",
    "new_address",
    "invoice_title",
    "invoice_tax_number",
    "invoice_email",
]


def task_for_intent(intent: Optional[str]) -> Optional[str]:
    """The order task started by ``intent``, if any."""
    return TASK_BY_INTENT.get(intent or "")


def relevant_statuses(task: Optional[str]) -> Optional[Sequence[str]]:
    """Statuses of orders that fit ``task`` (``None``: all)."""
    return RELEVANT_STATUSES.get(task or "status")
