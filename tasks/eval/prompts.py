"""Prompt templates of the zero-shot held-out tasks, five per task.

The paper scores each held-out task (XCOPA, XNLI, XStoryCloze, XWinograd)
with several xP3/promptsource prompts and reports the median over them, so
one unlucky wording does not decide a language's score. These are our own
wordings in that style: English instructions around the dataset's text (as
xP3's prompts are), and each option is a short continuation the model
scores. A template is plain `str.format` text over a row's fields, so a
reader sees exactly what the model sees.
"""

import dataclasses
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class RankTemplate:
  """A prompt and the option texts it is scored against."""

  name: str
  inputs: str  # str.format over the row's fields.
  options: tuple[str, ...]  # One str.format per option, in label order.

  def render(self, fields: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    return (self.inputs.format(**fields),
            tuple(o.format(**fields) for o in self.options))


# Fields: premise, choice1, choice2, asked ("the cause" / "the result"),
# connector ("because" / "so"), premise_open (premise without final stop).
XCOPA = (
    RankTemplate("more_likely",
                 "Premise: {premise}\nWhich is more likely to be {asked}?\n"
                 "- {choice1}\n- {choice2}",
                 ("{choice1}", "{choice2}")),
    RankTemplate("connector", "{premise_open} {connector}",
                 ("{choice1}", "{choice2}")),
    RankTemplate("number",
                 "{premise}\nWhat was {asked}? Answer 1 or 2.\n"
                 "1: {choice1}\n2: {choice2}",
                 ("1", "2")),
    RankTemplate("given_that",
                 "Given that \"{premise}\", pick {asked} from these two.\n"
                 "Option A: {choice1}\nOption B: {choice2}",
                 ("{choice1}", "{choice2}")),
    RankTemplate("explain_or_follow",
                 "Which sentence is {asked} of \"{premise}\"?\n{choice1}\n"
                 "{choice2}",
                 ("{choice1}", "{choice2}")),
)

# Fields: premise, hypothesis. Options in XNLI's label order: entailment,
# neutral, contradiction.
XNLI = (
    RankTemplate("does_it_follow",
                 "{premise}\nQuestion: does this mean that \"{hypothesis}\"?"
                 " Yes, maybe, or no?",
                 ("Yes", "Maybe", "No")),
    RankTemplate("true_false_neither",
                 "Suppose \"{premise}\". Is \"{hypothesis}\" then true, "
                 "false, or neither?",
                 ("True", "Neither", "False")),
    RankTemplate("guaranteed",
                 "Given {premise} Is it guaranteed that {hypothesis} Yes, "
                 "possibly, or no?",
                 ("Yes", "Possibly", "No")),
    RankTemplate("always_sometimes_never",
                 "{premise}\nBased on that, is \"{hypothesis}\" right "
                 "always, sometimes, or never?",
                 ("Always", "Sometimes", "Never")),
    RankTemplate("entail_or_contradict",
                 "First statement: {premise}\nSecond statement: "
                 "{hypothesis}\nDoes the first entail the second, contradict "
                 "it, or neither?",
                 ("Entail", "Neither", "Contradict")),
)

# Fields: story (the four sentences), ending1, ending2.
XSTORYCLOZE = (
    RankTemplate("continue", "{story}", ("{ending1}", "{ending2}")),
    RankTemplate("what_next",
                 "{story}\nWhat happens next?\n- {ending1}\n- {ending2}",
                 ("{ending1}", "{ending2}")),
    RankTemplate("best_ending",
                 "Story: {story}\nWhich ending fits the story better: "
                 "\"{ending1}\" or \"{ending2}\"?",
                 ("{ending1}", "{ending2}")),
    RankTemplate("number",
                 "{story}\nEnding 1: {ending1}\nEnding 2: {ending2}\n"
                 "Which ending is right, 1 or 2?",
                 ("1", "2")),
    RankTemplate("write_last_sentence",
                 "Write the last sentence of this story.\n{story}",
                 ("{ending1}", "{ending2}")),
)

# Fields: sentence (with one "_"), option1, option2, filled1, filled2 (the
# sentence with each option in place of "_").
XWINOGRAD = (
    RankTemplate("blank_stands_for",
                 "{sentence}\nIn the sentence above, who or what is _: "
                 "{option1} or {option2}?",
                 ("{option1}", "{option2}")),
    RankTemplate("replace_blank",
                 "Replace the _ in the sentence with the right option.\n"
                 "{sentence}\nOptions: {option1}, {option2}",
                 ("{option1}", "{option2}")),
    RankTemplate("which_sentence", "Which sentence makes more sense?",
                 ("{filled1}", "{filled2}")),
    RankTemplate("number",
                 "{sentence}\nWhat is _ in this sentence? Answer 1 or 2.\n"
                 "1: {option1}\n2: {option2}",
                 ("1", "2")),
    RankTemplate("refers_to", "In \"{sentence}\", the blank refers to",
                 ("{option1}", "{option2}")),
)

# Multilingual MMLU, 5-shot: a header, five solved dev questions, the test
# question; the options are the answer letters.
MMLU_HEADER = ("The following are multiple choice questions (with answers) "
               "about {subject}.\n\n")
MMLU_QUESTION = "{question}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:"
MMLU_LETTERS = ("A", "B", "C", "D")

# Generative tasks: one prompt each.
TRANSLATE = "Translate this sentence into {target_language}:\n{sentence}"
SUMMARIZE = ("Write a one-sentence summary, in {language}, of this "
             "article.\n{text}")
EXTRACTIVE_QA = ("Answer the question with a span copied from the passage.\n"
                 "Question: {question}\nPassage: {context}")
