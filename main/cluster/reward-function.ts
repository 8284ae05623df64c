// The reward function a cluster run uses (verl's `custom_reward_function`, with the `batch`
// reward manager, which hands it a whole step's responses at once): TTRL's majority vote over
// each prompt's responses, the labels a person reviewed in the app in place of the vote, and per
// response the keys Autodidact reads back from verl's rollout dump (verl copies every key of the
// returned dict into `reward_extra_infos_dict`, which `_dump_generations` writes beside input,
// output and score). Read from verl b178a3cd (verl/workers/reward_manager/batch.py,
// verl/trainer/ppo/ray_trainer.py `_dump_generations`, `_val_metrics_update`).
//
// It is Python because verl calls it in its own process; the app never runs it. Its answer
// extraction is the app's chain (engine/tasks/extract.ts) written again; its equivalence is
// simpler than the app's (numbers by value, everything else by normalised text), which the
// README says.
import type { AnswerFormat } from '../engine/tasks/extract.ts';

/** The keys each response gets in the rollout dump, besides verl's own (input, output, gts, score, step). */
export const REWARD_KEYS = ['index', 'answer', 'pseudo_label', 'label_source', 'votes', 'majority_ratio', 'truth_correct', 'pred', 'acc'] as const;

export interface RewardFunctionOptions {
  answerFormat: AnswerFormat;
  /** 'first': a tied vote goes to the answer seen first (TTRL's Counter.most_common); 'no-label': no label, reward 0. */
  voteTies: 'first' | 'no-label';
  /** The reviewed-labels file, relative to the reward function's folder. */
  labelsFile: string;
}

export function rewardFunctionSource(o: RewardFunctionOptions): string {
  return String.raw`# Written by 'autodidact cluster export'. verl calls compute_score (reward_model.reward_manager=batch)
# with every response of a step. Training responses (extra_info.split == "train") are rewarded
# by agreement with their prompt's pseudo-label: the label a person reviewed in Autodidact
# (reviewed-labels.json, keyed by extra_info.index, re-read whenever it changes), else the
# majority vote of the prompt's responses (TTRL). reward_model.ground_truth, the hidden answer,
# only feeds diagnostics (truth_correct) and validation, as in Autodidact.
import json
import os
import re
from collections import Counter
from fractions import Fraction

ANSWER_FORMAT = ${JSON.stringify(o.answerFormat)}
VOTE_TIES = ${JSON.stringify(o.voteTies)}
LABELS_FILE = os.environ.get(
    "AUTODIDACT_REVIEWED_LABELS",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), ${JSON.stringify(o.labelsFile)}),
)

_reviewed = {"stamp": None, "labels": {}}


def reviewed_labels():
    """{index: label} from the reviewed-labels file; re-read when it changes (the app replaces it whole)."""
    try:
        st = os.stat(LABELS_FILE)
    except FileNotFoundError:
        return {}
    stamp = (st.st_mtime_ns, st.st_size)
    if stamp != _reviewed["stamp"]:
        with open(LABELS_FILE, encoding="utf-8") as f:
            data = json.load(f)
        _reviewed["labels"] = {int(k): str(v) for k, v in data.get("labels", {}).items()}
        _reviewed["stamp"] = stamp
    return _reviewed["labels"]


def read_braced(s, start):
    if start >= len(s) or s[start] != "{":
        return None
    depth = 0
    i = start
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[start + 1 : i]
        i += 1
    return None


def extract_boxed(text):
    best = None
    for m in re.finditer(r"\\(?:boxed|fbox)\s*(\{|[^\s{$])", text):
        arg = m.end() - 1
        if m.group(1) == "{":
            content = read_braced(text, arg)
        else:
            rest = re.match(r"[^\s$]+", text[arg:])
            content = rest.group(0) if rest else None
        if content is not None and content.strip():
            best = content.strip()
    return best


def trim_phrase(s):
    t = s.strip()
    stop = re.search(r"\.\s", t)
    if stop:
        t = t[: stop.start()]
    t = re.sub(r"\*\*|__", "", t).strip()
    t = re.sub(r"^[:\s]+", "", t)
    t = re.sub(r"[.\s]+$", "", t).strip()
    return t or None


def extract_answer_is(text):
    last = None
    for m in re.finditer(r"\banswer\s*(?:\*\*|__)?\s*(?:is|:|=)\s*(?:\*\*|__)?\s*:?(?=([^\n]*))", text, re.I):
        t = trim_phrase(m.group(1))
        if t is not None:
            last = t
    if last is None:
        return None
    return extract_boxed(last) or last


def extract_gsm8k(text):
    last = None
    for m in re.finditer(r"####\s*([^\n]*)", text):
        t = trim_phrase(m.group(1))
        if t is not None:
            last = t
    return last


def extract_last_number(text):
    found = re.findall(r"(?<![\w)\]}.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|(?<![\w.])\.\d+", text)
    return found[-1].replace(",", "") if found else None


def parse_choice_letter(s):
    t = re.sub(r"\\text(?:bf)?\s*\{([^}]*)\}", r"\1", s)
    t = re.sub(r"\*\*|\$", "", t).strip()
    m = re.match(r"^\(?([A-J])\)?(?:[.:)]|\s|$)", t, re.I)
    if not m:
        return None
    if m.group(1).islower() and not re.fullmatch(r"\(?[a-j]\)?[.:)]?", t):
        return None
    return m.group(1).upper()


def extract_choice(text):
    boxed = extract_boxed(text)
    if boxed is not None:
        letter = parse_choice_letter(boxed)
        if letter:
            return letter
    said = re.findall(r"\banswer\s*(?:\*\*)?\s*(?:is|:)\s*(?:\*\*)?\s*(?:option\s+)?\(?([A-J])\)?(?![A-Za-z])", text, re.I)
    if said:
        return said[-1].upper()
    paren = re.findall(r"\(([A-J])\)", text)
    if paren:
        return paren[-1]
    tail = re.search(r"(?:^|[\s*:])([A-J])[.)]?\**\s*$", text)
    return tail.group(1) if tail else None


CHAINS = {
    "auto": [extract_boxed, extract_answer_is, extract_gsm8k, extract_last_number],
    "math": [extract_boxed, extract_answer_is, extract_gsm8k, extract_last_number],
    "gsm8k": [extract_gsm8k, extract_boxed, extract_answer_is, extract_last_number],
    "multiple-choice": [extract_choice],
}


def extract(text):
    for f in CHAINS[ANSWER_FORMAT]:
        a = f(text)
        if a is not None and a.strip():
            return a.strip()
    return None


def normalise(answer):
    """A key equal for answers this function counts as the same: numbers by value, the rest by text."""
    if answer is None:
        return None
    t = str(answer).strip()
    if ANSWER_FORMAT == "multiple-choice":
        return parse_choice_letter(t) or t.upper()
    t = re.sub(r"\\(?:left|right|!|,|;|\s)|\$|\\text\s*\{[^}]*\}|\\%|%", "", t)
    t = re.sub(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}", r"(\1)/(\2)", t)
    t = re.sub(r"\s+", "", t).rstrip(".")
    num = re.fullmatch(r"\(?(-?\d+(?:\.\d+)?)\)?(?:/\(?(\d+(?:\.\d+)?)\)?)?", t.replace(",", ""))
    if num:
        try:
            value = Fraction(num.group(1)) / (Fraction(num.group(2)) if num.group(2) else 1)
            return "n:" + str(value)
        except (ValueError, ZeroDivisionError):
            pass
    return "t:" + t.lower()


def vote(answers):
    """(label, counts, majority ratio) of one prompt's answers; label None for no answer or a tie under no-label."""
    keys = [normalise(a) for a in answers]
    shown = {}
    for a, k in zip(answers, keys):
        if k is not None and k not in shown:
            shown[k] = a
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None, {}, 0.0
    ranked = counts.most_common()
    top = ranked[0][1]
    if VOTE_TIES == "no-label" and len(ranked) > 1 and ranked[1][1] == top:
        label = None
    else:
        label = shown[ranked[0][0]]
    return label, {shown[k]: c for k, c in counts.items()}, top / len(answers)


def compute_score(data_sources, solution_strs, ground_truths, extra_infos, **kwargs):
    n = len(solution_strs)
    infos = [e if isinstance(e, dict) else {} for e in (extra_infos if extra_infos is not None else [{}] * n)]
    answers = [extract(s) for s in solution_strs]
    groups = {}
    for i, info in enumerate(infos):
        groups.setdefault((info.get("split", "train"), info.get("index", -1)), []).append(i)
    reviewed = reviewed_labels()
    out = [None] * n
    for (split, index), members in groups.items():
        label, counts, ratio = vote([answers[i] for i in members])
        source = "vote"
        if split != "test" and int(index) in reviewed:
            label, source = reviewed[int(index)], "review"
        label_key = normalise(label)
        for i in members:
            truth = ground_truths[i] if ground_truths is not None else None
            # 1/0 against the hidden answer; -1 where the item has none (the export's placeholder).
            truth_correct = -1.0 if truth in (None, "") else float(answers[i] is not None and normalise(answers[i]) == normalise(truth))
            if split == "test":
                # Validation measures accuracy against the hidden answer (verl's val-core metrics).
                score = max(truth_correct, 0.0)
            else:
                score = float(label_key is not None and answers[i] is not None and normalise(answers[i]) == label_key)
            # Every response gets the same keys, strings never None: verl stacks each key into one
            # array per batch and averages the numeric ones in validation.
            out[i] = {
                "score": score,
                "acc": score,
                "pred": answers[i] or "",
                "index": int(index),
                "answer": answers[i] or "",
                "pseudo_label": label or "",
                "label_source": source,
                "votes": json.dumps(counts, ensure_ascii=False),
                "majority_ratio": ratio,
                "truth_correct": truth_correct,
            }
    return out
`;
}
