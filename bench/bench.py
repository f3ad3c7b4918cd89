"""Kefu benchmark: prints NLU quality, latency, throughput, start-up and memory.

Run with ``make bench`` (the model must be trained). Figures are printed,
never asserted; paste the Markdown block into README's performance section.

- NLU intent accuracy and macro-F1 on tests/nlu_test.yml (held out), plus
  entity precision/recall/F1 for order_id and phone (exact value match),
  all through the running server's /model/parse;
- REST round trip p50/p95 and messages/second, 1 and 20 conversations;
- time from process start to the first answer; Rasa server resident memory;
- `rasa train` time from scratch (empty component cache, into a temporary
  directory; set KEFU_BENCH_SKIP_TRAIN=1 to skip it).
"""
from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402

from stack import Processes, Stack, start_stack  # noqa: E402

MESSAGES = ["你好", "运费怎么算", "我的快递到哪了", "我要退货", "转人工", "谢谢"]
ENTITY_TYPES = ("order_id", "phone")


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def f1(tp: int, fp: int, fn: int) -> Tuple[float, float, float]:
    """Precision, recall and F1 from counts."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, score


def nlu_figures(stack: Stack) -> Dict[str, float]:
    """Intent accuracy, macro-F1 and entity F1 on the held-out set."""
    data = load_data(str(ROOT / "tests" / "nlu_test.yml"))
    counts: Dict[str, Counter] = defaultdict(Counter)
    entity_counts: Dict[str, Counter] = defaultdict(Counter)
    correct = 0
    for message in data.intent_examples:
        gold = message.get("intent")
        result = stack.parse(message.get("text"))
        predicted = result["intent"]["name"]
        correct += predicted == gold
        counts[gold]["tp" if predicted == gold else "fn"] += 1
        if predicted != gold:
            counts[predicted]["fp"] += 1
        for kind in ENTITY_TYPES:
            want = {str(e["value"]) for e in message.get("entities") or [] if e["entity"] == kind}
            got = {str(e["value"]) for e in result["entities"] if e["entity"] == kind}
            entity_counts[kind].update(tp=len(want & got), fp=len(got - want), fn=len(want - got))
    gold_labels = {m.get("intent") for m in data.intent_examples}
    macro = statistics.mean(f1(counts[i]["tp"], counts[i]["fp"], counts[i]["fn"])[2]
                            for i in gold_labels)
    figures = {"intent accuracy": correct / len(data.intent_examples), "intent macro-F1": macro}
    for kind in ENTITY_TYPES:
        c = entity_counts[kind]
        figures[f"{kind} entity F1"] = f1(c["tp"], c["fp"], c["fn"])[2]
    return figures


def conversation(stack: Stack, turns: int) -> List[float]:
    """One conversation of ``turns`` messages; the latency of each."""
    sender = f"bench-{secrets.token_hex(6)}"
    latencies = []
    for turn in range(turns):
        start = time.perf_counter()
        stack.say(sender, MESSAGES[turn % len(MESSAGES)])
        latencies.append(time.perf_counter() - start)
    return latencies


def load_figures(stack: Stack, conversations: int, turns: int) -> Dict[str, float]:
    """Latency percentiles and throughput with ``conversations`` in parallel."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=conversations) as pool:
        runs = list(pool.map(lambda _: conversation(stack, turns), range(conversations)))
    elapsed = time.perf_counter() - start
    latencies = [value for run in runs for value in run]
    return {
        "p50 ms": 1000 * percentile(latencies, 50),
        "p95 ms": 1000 * percentile(latencies, 95),
        "messages/s": len(latencies) / elapsed,
    }


def rss_mb(pid: int) -> Tuple[float, float]:
    """Current and peak resident memory (MiB) of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
              if line.startswith(("VmRSS", "VmHWM"))}
    return values["VmRSS"] / 1024, values["VmHWM"] / 1024


def cold_train_seconds() -> float:
    """Seconds of a full ``rasa train`` with an empty cache (models untouched)."""
    with tempfile.TemporaryDirectory(prefix="kefu-train-") as tmp:
        env = {**os.environ, "RASA_CACHE_DIRECTORY": str(Path(tmp) / "cache")}
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "rasa"), "train", "--force",
                        "--out", tmp, "--quiet"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
    procs = Processes(workdir)
    figures: Dict[str, str] = {}
    try:
        started = time.perf_counter()
        stack = start_stack(workdir, procs)
        stack.say("bench-warmup", "你好")
        figures["start to first answer"] = f"{time.perf_counter() - started:.1f} s"
        rasa_pid = procs.children["rasa"].pid
        figures["Rasa server RSS after start"] = f"{rss_mb(rasa_pid)[0]:.0f} MiB"
        for name, value in nlu_figures(stack).items():
            figures[name] = f"{value:.3f}"
        for conversations, turns in ((1, 60), (20, 12)):
            for name, value in load_figures(stack, conversations, turns).items():
                figures[f"REST {name}, {conversations} conversation(s)"] = f"{value:.1f}"
        figures["Rasa server peak RSS"] = f"{rss_mb(rasa_pid)[1]:.0f} MiB"
    finally:
        procs.stop_all()
    if os.environ.get("KEFU_BENCH_SKIP_TRAIN") != "1":
        figures["rasa train from scratch (no cache)"] = f"{cold_train_seconds():.0f} s"
    machine = f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    print(f"\nKefu benchmark — {time.strftime('%Y-%m-%d')} — {machine}\n")
    print("| figure | value |\n|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
