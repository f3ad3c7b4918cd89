"""Price, stock and attributes of catalogue products."""
from __future__ import annotations

from typing import List, Optional, Text

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.backends.base import ShopBackend
from actions.backends.models import Product
from actions.conversation import latest_entity_values
from actions.labels import label
from actions.services import Events, ShopAction

LOW_STOCK = 10


def product_query(tracker: Tracker) -> Optional[str]:
    """The product named in this message, else the one talked about before."""
    named = latest_entity_values(tracker, "product")
    return named[-1] if named else tracker.get_slot("product")


def attribute_text(product: Product) -> str:
    """``尺码：S/M/L；颜色：白色/黑色``."""
    return "；".join(f"{label('attribute', key)}：{'/'.join(values)}"
                    for key, values in product.attributes.items() if values)


def best_match(products: List[Product], query: str) -> Product:
    """The exact name match if any, else the shortest name containing it."""
    lowered = query.lower()
    exact = [p for p in products if p.name.lower() == lowered]
    return exact[0] if exact else min(products, key=lambda p: len(p.name))


class ActionProductInfo(ShopAction):
    """Answer a product question from the catalogue."""

    def name(self) -> Text:
        return "action_product_info"

    def run_with(self, backend: ShopBackend, dispatcher: CollectingDispatcher,
                 tracker: Tracker, domain: DomainDict) -> Events:
        query = product_query(tracker)
        if not query:
            dispatcher.utter_message(response="utter_ask_product")
            return []
        products = backend.find_products(query)
        if not products:
            dispatcher.utter_message(response="utter_product_not_found", product=query)
            return [SlotSet("product", None)]
        product = best_match(products, query)
        response = ("utter_product_out_of_stock" if product.stock <= 0 else
                    "utter_product_low_stock" if product.stock < LOW_STOCK else
                    "utter_product_info")
        dispatcher.utter_message(response=response, product=product.name,
                                 price=f"{product.price:.2f}", stock=product.stock,
                                 attributes=attribute_text(product) or "—")
        return [SlotSet("product", product.name)]
