"""Instruction styles for chat rows: explain, compare, list, summarise, patient-friendly, case reasoning...

Each style returns an :class:`Exchange` built from the fact table with random personas and numbers.
Answers stay between roughly 30 and 1500 characters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from aloe_fixtures.corpus import mcqa, yesno
from aloe_fixtures.corpus.context import PERSONAL, STUDY, details
from aloe_fixtures.corpus.facts import Disease, Drug
from aloe_fixtures.corpus.facts_clinical import DISEASES, LABS
from aloe_fixtures.corpus.facts_drugs import DRUGS, similar
from aloe_fixtures.corpus.facts_science import ARTERIES, CRANIAL_NERVES, HORMONES, NERVES, ORGANISMS
from aloe_fixtures.corpus.mcqa_clinical import adult, lab_value, with_unit
from aloe_fixtures.corpus.mcqa_common import background, disease_opening
from aloe_fixtures.corpus.phrasing import RELATIONS, article, cap, join_list, patient, pick, rint
from aloe_fixtures.corpus.sentences import (
    artery_sentences,
    cranial_sentences,
    disease_sentences,
    drug_sentences,
    hormone_sentences,
    lab_sentences,
    nerve_sentences,
    organism_sentences,
    some,
)

MAX_ANSWER = 1500


@dataclass
class Exchange:
    user: str
    answer: str
    instruction: str | None = None  # Alpaca split of ``user`` (instruction + input), when natural
    input: str | None = None
    followups: list[tuple[str, str]] = field(default_factory=list)
    audience: str | None = None  # "patient" or "student": which personal details suit the request


CLOSINGS = (
    "If you notice anything worrying, contact your doctor or pharmacist.",
    "Your care team can tailor this to your situation.",
    "Please do not change or stop a medicine without talking to your prescriber first.",
    "Seek urgent care if symptoms suddenly get worse.",
    "It is worth writing down your questions for your next appointment.",
    "Your pharmacist is a good person to ask about interactions with other medicines.",
    "",
)
STUDENTS = (
    "first-year medical",
    "second-year medical",
    "final-year medical",
    "nursing",
    "pharmacy",
    "physician assistant",
    "third-year medical",
    "paramedic",
)


def fit(sentences: list[str], limit: int = MAX_ANSWER) -> str:
    """Join sentences, dropping trailing ones until the text fits ``limit`` characters."""
    kept = [s for s in sentences if s]
    while len(" ".join(kept)) > limit and len(kept) > 1:
        kept.pop()
    return " ".join(kept)


_BY_AGE = (
    (18, ("my son", "my daughter")),
    (
        40,
        (
            "my partner",
            "my husband",
            "my wife",
            "my sister",
            "my brother",
            "my friend",
            "my son",
            "my daughter",
        ),
    ),
    (
        65,
        (
            "my partner",
            "my husband",
            "my wife",
            "my sister",
            "my brother",
            "my friend",
            "my neighbour",
            "my mother",
            "my father",
            "my aunt",
            "my uncle",
        ),
    ),
    (
        200,
        (
            "my mother",
            "my father",
            "my grandmother",
            "my grandfather",
            "my husband",
            "my wife",
            "my aunt",
            "my uncle",
            "my neighbour",
        ),
    ),
)
_PRONOUN = {r: p for r, p, _ in RELATIONS} | {"my son": "he", "my daughter": "she", "my friend": "they"}


def relation(rng: random.Random, sex: str = "any", age: int | None = None) -> tuple[str, str]:
    """('my mother', 'she'): a relative plausible for ``age`` (random when None) and matching ``sex``."""
    age = rint(rng, 20, 90) if age is None else age
    names = next(names for limit, names in _BY_AGE if age < limit)
    wanted = {"female": "she", "male": "he"}.get(sex)
    options = [n for n in names if wanted is None or _PRONOUN[n] in (wanted, "they")]
    name = pick(rng, options)
    return name, _PRONOUN[name]


def student(rng: random.Random) -> str:
    kind = pick(rng, STUDENTS)
    return f"I'm {article(kind)} {kind} student"


def personalize(rng: random.Random, ex: Exchange, chance: float = 0.7) -> Exchange:
    """With probability ``chance``, prefix the request with details suiting its audience (a patient's age,
    weight, readings; a student's exam date) and echo them in the answer.

    The Alpaca split is dropped for a personalised exchange (its instruction would lose the details).
    """
    if ex.audience is None or rng.random() >= chance:
        return ex
    kinds = PERSONAL if ex.audience == "patient" else STUDY
    prompt, echoes = details(rng, kinds, 1, 2)
    echo = " ".join(rng.sample(echoes, rint(rng, 1, len(echoes))))
    room = MAX_ANSWER - len(echo) - 2
    answer = ex.answer if len(ex.answer) <= room else fit(ex.answer.split(" "), room)
    joiner = "\n\n" if "\n" in answer else " "
    return Exchange(f"{prompt} {ex.user}", f"{answer}{joiner}{echo}", None, None, ex.followups, ex.audience)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {cap(i)}" for i in items)


def _explain_request(rng: random.Random, d: Drug, use: str, s: dict[str, str]) -> tuple[str, str, str]:
    """(request, an answer sentence suited to the asker, audience) for a patient or a student asking."""
    age = rint(rng, 19, 88)
    persona = rng.randrange(3)
    if persona == 0:
        user = pick(
            rng,
            (
                f"I'm {age} and I've just been prescribed {d.name} for {use}. Can you explain what it is "
                "and how it "
                f"works?",
                f"My doctor started me on {d.name} for {use} last week (I'm {age}). What does this medicine "
                "actually "
                f"do?",
                f"I'm {age}, newly on {d.name} for {use}. How does it work and what should I know about it?",
            ),
        )
        return (
            user,
            f"Since you are taking it for {use}, your prescriber will check how well it is working at "
            "follow-up.",
            "patient",
        )
    if persona == 1:
        user = (
            f"{student(rng)} with an exam in {rint(rng, 2, 30)} days. Explain the pharmacology of {d.name}: "
            f"class, mechanism, uses and main adverse effects."
        )
        return user, pick(rng, (s.get("signature", ""), s["note"])), "student"
    user = pick(
        rng,
        (
            f"Explain how {d.name} works.",
            f"What is {d.name} used for, and how does it work?",
            f"Give me an overview of {d.name}.",
        ),
    )
    return user, "", "student"


def _drug_followups(d: Drug, use: str, s: dict[str, str]) -> list[tuple[str, str]]:
    follow = [
        (
            "What side effects should I watch for?",
            fit(
                [s["adverse"], s.get("signature", ""), "Report anything severe or unexpected to your doctor."]
            ),
        ),
        (
            "Can you summarise that in one sentence?",
            f"{cap(d.name)} is {article(d.cls)} {d.cls} that {d.mechanism}, used mainly for {use}.",
        ),
    ]
    if "contra" in s:
        follow.append(
            (
                "Who should not take it?",
                fit([s["contra"], "Your prescriber checks for these before starting it."]),
            )
        )
    return follow


def drug_explain(rng: random.Random) -> Exchange:
    d = pick(rng, DRUGS)
    use = pick(rng, d.uses)
    s = drug_sentences(rng, d)
    user, extra, audience = _explain_request(rng, d, use, s)
    middle = [s["uses"], s["adverse"], s.get("contra", ""), s["note"]]
    rng.shuffle(middle)
    parts = [s["class"], s["mechanism"], *middle[: rint(rng, 1, 4)], extra, pick(rng, CLOSINGS)]
    instruction = f"Explain the pharmacology of this drug for {pick(rng, ('a patient', 'a student'))}."
    return Exchange(
        user,
        fit(parts),
        instruction,
        f"Drug: {d.name}\nIndication: {use}",
        _drug_followups(d, use, s),
        audience,
    )


def drug_side_effects(rng: random.Random) -> Exchange:
    d = pick(rng, DRUGS)
    use = pick(rng, d.uses)
    who, pronoun = relation(rng)
    weeks = rint(rng, 1, 12)
    user = pick(
        rng,
        (
            f"{cap(who)} started {d.name} {weeks} weeks ago for {use}. What side effects should we look out "
            "for?",
            f"What are the main side effects of {d.name}? I've been on it for {weeks} weeks.",
            f"List the adverse effects of {d.name} that a patient treated for {use} should know about.",
        ),
    )
    effects = list(d.adverse)
    rng.shuffle(effects)
    intro = pick(
        rng,
        (
            f"Here are the main adverse effects of {d.name}:",
            f"With {d.name}, the effects to know are:",
            f"Key side effects of {d.name} ({d.cls}):",
        ),
    )
    parts = []
    if d.signature:
        parts.append(f"The most characteristic one is {d.signature}.")
    parts.append(pick(rng, (f"Also, {d.note}.", f"Good to know: {d.note}.")))
    parts.append(
        pick(
            rng,
            (
                "Get urgent help for swelling of the face or lips, trouble breathing or fainting.",
                "Contact the prescriber promptly if a side effect is severe or does not settle.",
                f"If {pronoun} feels unwell in a new way, it is worth calling the doctor.",
            ),
        )
    )
    answer = f"{intro}\n{_bullets(effects)}\n\n{fit(parts, MAX_ANSWER - 400)}"
    return Exchange(
        user,
        answer,
        "List the main adverse effects of this medication and when to seek help.",
        f"Medication: {d.name}, started {weeks} weeks ago for {use}",
        audience="patient",
    )


_COMPARABLE = tuple(a for a in DRUGS if any(d.group == a.group and d.cls != a.cls for d in DRUGS))


def drug_compare(rng: random.Random) -> Exchange:
    a = pick(rng, _COMPARABLE)
    b = pick(rng, [d for d in DRUGS if d.group == a.group and d.cls != a.cls])
    user = pick(
        rng,
        (
            f"What is the difference between {a.name} and {b.name}?",
            f"Compare {a.name} and {b.name} in terms of mechanism, uses and side effects.",
            f"I'm revising for an exam in {rint(rng, 2, 40)} days. How do {a.name} and {b.name} differ?",
            f"{cap(a.name)} vs {b.name}: which is which?",
        ),
    )
    first, second = (a, b) if rng.random() < 0.5 else (b, a)
    bullets = [
        f"- {pick(rng, ('Class', 'Drug class', 'Group'))}: {first.name} is {article(first.cls)} {first.cls}; "
        f"{second.name} is {article(second.cls)} {second.cls}.",
        f"- {pick(rng, ('Mechanism', 'How they work', 'Mode of action'))}: {first.name} {first.mechanism}, "
        f"whereas {second.name} {second.mechanism}.",
        f"- {pick(rng, ('Typical uses', 'Main indications', 'Used for'))}: {first.name} for "
        f"{join_list(some(rng, first.uses, 1, 2))}; {second.name} for "
        f"{join_list(some(rng, second.uses, 1, 2))}.",
        f"- {pick(rng, ('Side effects', 'Adverse effects', 'What to watch for'))}: {first.name} can cause "
        f"{join_list(some(rng, first.adverse, 2, 3))}; {second.name} can cause "
        f"{join_list(some(rng, second.adverse, 2, 3))}.",
    ]
    rng.shuffle(bullets)
    lead = pick(
        rng,
        (
            f"{cap(a.name)} and {b.name} are both used in {a.group} practice but work differently.",
            f"Both are {a.group} drugs, but {a.name} and {b.name} differ in several ways.",
            f"Here is how {a.name} and {b.name} compare.",
        ),
    )
    body = "\n".join([lead, *bullets])
    if not similar(a.name, b.name) and rng.random() < 0.6:
        body += (
            f"\n\nIn short, think of {a.name} for {a.signature or a.adverse[0]} and {b.name} for "
            f"{b.signature or b.adverse[0]} when recalling their hallmark adverse effects."
        )
    elif rng.random() < 0.5:
        body += f"\n\n{pick(rng, (f'For {a.name}, ', f'About {a.name}: '))}{a.note}."
    return Exchange(user, body, "Compare the two drugs below.", f"{a.name}\n{b.name}", audience="student")


def disease_patient(rng: random.Random) -> Exchange:
    d = pick(rng, DISEASES)
    s = disease_sentences(rng, d)
    age = rint(rng, *d.age)
    if age >= 18 and rng.random() < 0.5:
        user = pick(
            rng,
            (
                f"I'm {age} and I've just been told I have {d.name}. What does that mean and how is it "
                f"treated?",
                f"I was diagnosed with {d.name} today ({age} years old). Can you explain it simply?",
            ),
        )
        you, audience = "you", "patient"
    else:
        who, _ = relation(rng, d.sex, age)
        user = (
            f"{cap(who)}, who is {age}, was just diagnosed with {d.name}. Can you explain it in simple terms?"
        )
        you, audience = "they", None
    parts = [
        pick(rng, (f"Of course. {s['presentation']}", f"Here is a simple explanation. {s['presentation']}")),
        s["finding"],
        s["treatment"],
        s["detail"],
        pick(
            rng,
            (
                f"The care team will explain what the plan means for {'you' if you == 'you' else 'them'}.",
                "Many people do well once treatment starts.",
                "Ask the team what symptoms should prompt a call.",
            ),
        ),
        pick(rng, CLOSINGS),
    ]
    follow = [
        (
            "How is it diagnosed?",
            fit([s["finding"], "Your doctor will combine this with the history and examination."]),
        ),
        ("What is the usual treatment?", fit([s["treatment"], s["detail"]])),
    ]
    return Exchange(user, fit(parts), followups=follow, audience=audience)


_SUMMARY_HEADS = (
    ("Presentation", "Clinical picture", "Typical features", "How it presents"),
    ("Diagnosis", "Key test", "How it is confirmed", "Key finding"),
    ("First-line management", "Initial treatment", "Treatment", "What to start"),
)


def _ages(d: Disease) -> str:
    """Plain-language age group of a disease's vignette age range."""
    low, high = d.age
    if high <= 12:
        return f"young children, roughly {low} to {high} years old"
    who = {"female": "women", "male": "men"}.get(d.sex, "people")
    return f"{who} aged about {low} to {high}"


def disease_summary(rng: random.Random) -> Exchange:
    d = pick(rng, DISEASES)
    s = disease_sentences(rng, d)
    user = pick(
        rng,
        (
            f"Summarise {d.name}: presentation, diagnosis and first-line management.",
            f"Give me a quick overview of {d.name} for a ward round tomorrow.",
            f"Key points on {d.name} for my exam in {rint(rng, 2, 9)} weeks?",
            f"Bullet-point summary of {d.name}, please.",
        ),
    )
    if rng.random() < 0.5:
        heads = [pick(rng, options) for options in _SUMMARY_HEADS]
        lines = [
            f"**{heads[0]}:** {d.presentation}.",
            f"**{heads[1]}:** {d.finding}.",
            f"**{heads[2]}:** {d.treatment}; {d.treatment_detail}.",
        ]
        if rng.random() < 0.5:
            lines.insert(1, f"**{pick(rng, ('Typical age', 'Who gets it', 'Usual patients'))}:** {_ages(d)}.")
        text = "\n".join(lines)
    else:
        text = fit([s["presentation"], s["finding"], s["treatment"], s["detail"]])
    if d.related:
        text += f"\n\nDo not confuse it with {pick(rng, d.related)}, which has a different key finding."
    return Exchange(
        user,
        text,
        "Summarise the condition below for a clinician.",
        d.name,
        [("What is the first-line treatment again?", fit([s["treatment"], s["detail"]]))],
        "student",
    )


def case_reasoning(rng: random.Random) -> Exchange:
    d = pick(rng, DISEASES)
    p = patient(rng, d.age, d.sex)
    case = " ".join([disease_opening(rng, p, d), *background(rng, p), f"Workup shows {d.finding}."])
    ask = pick(
        rng,
        (
            "What is the most likely diagnosis, and what would you start?",
            "Diagnosis and first-line treatment?",
            "What's going on here and how should it be treated?",
        ),
    )
    answer = fit(
        [
            pick(
                rng,
                (
                    f"The most likely diagnosis is {d.name}.",
                    f"This is most likely {d.name}.",
                    f"The picture fits {d.name}.",
                    f"My working diagnosis is {d.name}.",
                ),
            ),
            pick(
                rng,
                (
                    f"The history of {d.presentation} fits, and {d.finding} supports it.",
                    f"Key clues are {d.presentation}, and {d.finding} confirms the picture.",
                    f"{cap(d.finding)} in a patient aged {p.age} with {d.presentation} points there.",
                ),
            ),
            pick(
                rng,
                (
                    f"First-line treatment is {d.treatment}.",
                    f"I would start {d.treatment}.",
                    f"Management begins with {d.treatment}.",
                ),
            ),
            f"{cap(d.treatment_detail)}.",
            pick(
                rng,
                (
                    "Reassess the response within the expected time frame.",
                    "Check for red flags that change the plan.",
                    "Document the working diagnosis and the plan clearly.",
                ),
            ),
        ]
    )
    return Exchange(
        f"{case}\n\n{ask}",
        answer,
        "Read the case and give the most likely diagnosis and first-line treatment.",
        case,
    )


def lab_interpretation(rng: random.Random) -> Exchange:
    lab = pick(rng, LABS)
    status, value = lab_value(rng, lab)
    shown = with_unit(f"{value:.{lab.decimals}f}", lab)
    rtext = with_unit(f"{lab.low:.{lab.decimals}f}-{lab.high:.{lab.decimals}f}", lab)
    s = lab_sentences(rng, lab, rtext, adult(lab))
    user = pick(
        rng,
        (
            f"My {lab.short} came back at {shown}. Is that normal?",
            f"Blood test result: {lab.name} {shown}. What does this mean and what could cause it?",
            f"Can you interpret a {lab.name} of {shown} in {adult(lab)}?",
        ),
    )
    verdict = {
        "low": f"{shown} is below that range, which is called {lab.low_term}.",
        "high": f"{shown} is above that range, which is called {lab.high_term}.",
        "normal": f"{shown} is within that range.",
    }[status]
    cause = {"low": s["low"], "high": s["high"], "normal": ""}[status]
    parts = [
        s["range"],
        verdict,
        cause,
        s["variation"],
        pick(
            rng,
            (
                "A single result is interpreted together with symptoms and other tests, and is often "
                "repeated.",
                "Your doctor will put this in context with your other results.",
            ),
        ),
    ]
    return Exchange(
        user,
        fit(parts),
        "Interpret the following laboratory result.",
        f"{lab.name}: {shown}",
        audience="patient",
    )


def list_treatments(rng: random.Random) -> Exchange:
    chosen = rng.sample(DISEASES, rint(rng, 3, 5))
    names = [d.name for d in chosen]
    user = pick(
        rng,
        (
            f"List the first-line treatment for each of these: {'; '.join(names)}.",
            f"Quick revision list please: first-line management of {join_list(names)}.",
            f"What is first-line for {join_list(names)}? Keep it brief.",
        ),
    )
    lines = [
        f"- {cap(d.name)}: {d.treatment}" + (f" ({d.treatment_detail})" if rng.random() < 0.5 else "")
        for d in chosen
    ]
    answer = fit([pick(rng, ("Here you go:", "First-line options:", "In brief:")) + "\n" + "\n".join(lines)])
    return Exchange(
        user,
        answer,
        "Give the first-line treatment for each condition.",
        "\n".join(names),
        audience="student",
    )


def mcq_explain(rng: random.Random) -> Exchange:
    item = mcqa.generate(rng, pick(rng, (4, 5)), pick(rng, ("short", "vignette")))
    options = "\n".join(f"{letter}. {text}" for letter, text in item.option_map().items())
    ask = pick(rng, ("Which is correct and why?", "Answer with an explanation.", "What's the answer?"))
    wrong = pick(rng, [t for i, t in enumerate(item.options) if i != item.answer])
    answer = fit(
        [
            f"The correct answer is {item.answer_letter}: {item.answer_text}.",
            item.explanation,
            pick(
                rng, (f'Option "{wrong}" does not fit the question.', f'"{wrong}" is a distractor here.', "")
            ),
        ]
    )
    return Exchange(
        f"{item.question}\n\n{options}\n\n{ask}",
        answer,
        "Answer the multiple-choice question and explain the reasoning.",
        f"{item.question}\n{options}",
    )


def abstract_summary(rng: random.Random) -> Exchange:
    item = yesno.generate(rng)
    abstract = "\n".join(f"{label}: {text}" for label, text in zip(item.labels, item.contexts, strict=True))
    ask = pick(
        rng,
        (
            "Summarise this abstract in plain language:",
            "What is the bottom line of this study?",
            "Explain this abstract to a patient in two or three sentences:",
        ),
    )
    verdict = {
        "yes": "So the answer to the study question is yes.",
        "no": "So the study did not find the effect it looked for.",
        "maybe": "So the answer is not settled yet.",
    }[item.decision]
    answer = fit(
        [
            pick(rng, ("In plain terms:", "Bottom line:", "Short version:")),
            item.long_answer,
            verdict,
            "One study rarely settles a question on its own.",
        ]
    )
    return Exchange(f"{ask}\n\n{abstract}", answer, "Summarise the abstract in plain language.", abstract)


def anatomy_explain(rng: random.Random) -> Exchange:
    kind = pick(rng, ("nerve", "artery", "cranial"))
    prefix = pick(rng, ("", f"{student(rng)}. ", f"Anatomy viva in {rint(rng, 2, 20)} days. "))
    if kind == "nerve":
        n = pick(rng, NERVES)
        s = nerve_sentences(rng, n)
        user = prefix + pick(
            rng,
            (
                f"Explain the {n.name}: roots, supply and what happens when it is injured.",
                f"What does the {n.name} supply?",
            ),
        )
        parts = [s["roots"], s["supply"], s["lesion"], s["cause"]]
    elif kind == "artery":
        a = pick(rng, ARTERIES)
        s = artery_sentences(rng, a)
        user = prefix + pick(
            rng, (f"What does the {a.name} supply?", f"Tell me about the {a.name} territory.")
        )
        parts = [s["territory"], s["occlusion"]]
    else:
        c = pick(rng, CRANIAL_NERVES)
        s = cranial_sentences(rng, c)
        user = prefix + pick(
            rng, (f"What does cranial nerve {c.number} do?", f"Explain the {c.name} and its lesion.")
        )
        parts = [s["function"], s["lesion"]]
    return Exchange(user, fit(parts), audience="student")


def micro_explain(rng: random.Random) -> Exchange:
    o = pick(rng, ORGANISMS)
    s = organism_sentences(rng, o)
    user = pick(
        rng,
        (
            f"Key facts about {o.name} for my microbiology exam?",
            f"Tell me about {o.name}.",
            f"{student(rng)}. What should I remember about {o.name}?",
        ),
    )
    parts = [s["morphology"], s["disease"], s["feature"], s["treatment"]]
    rng.shuffle(parts)
    return Exchange(
        user, fit(parts), "Summarise the key facts about this organism.", o.name, audience="student"
    )


def physiology_explain(rng: random.Random) -> Exchange:
    h = pick(rng, HORMONES)
    s = hormone_sentences(rng, h)
    user = pick(
        rng,
        (
            f"Where is {h.name} made, what does it do and what controls its release?",
            f"Explain the physiology of {h.name}.",
            f"{student(rng)}. Can you explain {h.name} briefly?",
        ),
    )
    return Exchange(user, fit([s["source"], s["action"], s["regulation"]]), audience="student")


def quick_fact(rng: random.Random) -> Exchange:
    lead = pick(
        rng,
        ("Quick one: ", "Quick question before my shift: ", "For my notes: ", "", "Sorry, basic question: "),
    )
    kind = rng.randrange(3)
    if kind == 0:
        d = pick(rng, DRUGS)
        return Exchange(
            cap(f"{lead}what class of drug is {d.name}?"),
            f"{cap(d.name)} is {article(d.cls)} {d.cls}; it {d.mechanism}.",
            audience="student",
        )
    if kind == 1:
        n = pick(rng, NERVES)
        return Exchange(
            cap(f"{lead}which nerve is injured when a patient has {n.lesion}?"),
            f"The {n.name}. It supplies {n.supplies}.",
            audience="student",
        )
    lab = pick(rng, LABS)
    low, high = (f"{x:.{lab.decimals}f}" for x in (lab.low, lab.high))
    return Exchange(
        cap(f"{lead}what is the normal range for {lab.name}?"),
        f"About {with_unit(f'{low}-{high}', lab)} in {adult(lab)}; exact limits vary slightly by laboratory.",
        audience="student",
    )
