"""Every response is reachable, and every response an action uses exists.

Rasa's validator only knows the responses used in stories and rules (it
prints "not used in any story or rule" for those uttered by custom actions);
this test closes the gap both ways.
"""
from __future__ import annotations

import re
from typing import Set

import yaml

from actions.order_changes import CHANGE_TASKS
from conftest import ROOT

RESPONSE_NAME = re.compile(r'"(utter_[a-z0-9_/]+)"')
# strings that look like response names but are not: Rasa's metadata key on bot messages
NOT_RESPONSES = {"utter_action"}


def domain_responses() -> Set[str]:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    return set(domain["responses"])


def used_in_actions() -> Set[str]:
    """Responses named by the action server and the agent workspace."""
    names: Set[str] = set()
    paths = [*(ROOT / "actions").rglob("*.py"), *(ROOT / "workspace").rglob("*.py")]
    for path in paths:
        names |= set(RESPONSE_NAME.findall(path.read_text(encoding="utf-8")))
    names |= {f"utter_confirm_{task}" for task in CHANGE_TASKS}
    return names - NOT_RESPONSES


def used_in_dialogue() -> Set[str]:
    names: Set[str] = set()
    for path in (ROOT / "data").rglob("*.yml"):
        names |= set(re.findall(r"action: (utter_[a-z0-9_]+)", path.read_text(encoding="utf-8")))
    return names


def test_responses_used_by_actions_exist() -> None:
    assert used_in_actions() - domain_responses() == set()


def test_every_response_is_used_somewhere() -> None:
    asked_by_forms = {r for r in domain_responses() if r.startswith("utter_ask_")}
    faq_answers = {r for r in domain_responses() if r.startswith("utter_faq/")}
    unused = domain_responses() - used_in_actions() - used_in_dialogue() - asked_by_forms \
        - faq_answers
    assert unused == set()


def test_responses_are_simplified_chinese_without_traditional_characters() -> None:
    from kefu_nlu.normalize import to_simplified

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variants in domain["responses"].items():
        for variant in variants:
            text = variant.get("text", "")
            assert to_simplified(text) == text, name


def test_action_server_registers_exactly_the_domain_actions() -> None:
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert set(executor.actions) == set(domain["actions"])
