// The cascade's stages as prompts to the frozen model (the judge service, `rl/judge.ts`), after
// the validators self-verified distillation adapts (UQ's `uq_validator/strategies.py`): each
// verdict is written as `Relevant: [[Y]]`, `No Factual Errors: [[Y]]`, `Final Answer Correct: [[Y]]`.
//
//   cycle-consistency: from the candidate alone the model writes the most likely question (ask),
//     then a judge prompt decides whether it is the same question;
//   factuality: a judge prompt asks for factual, calculation or logic errors;
//   correctness: the model solves the question itself (ask), then a judge prompt compares the
//     candidate's final answer with its own.
//
// Every template is a setting; an empty one takes its domain's default (math, science, code), or
// a model folder's own (`svd.json`, e.g. tiny-arith's, built around the prompts it was taught).
// A stage may decide without a judge prompt (`match`): the ask's extracted answer must equal a
// filled template, for models too small to judge in words (tiny-arith writes the first operand of
// "Compute ?+34=46." back, and the cycle holds when it is the question's own).
import type { Judge } from '../rl/judge.ts';
import { type AnswerFormat, extractAnswer } from '../tasks/answers.ts';
import { isCorrect } from '../rl/metrics.ts';
import { type CascadeCandidate, type StageId, type StageJudge, type StageVote, parseVerdict } from './cascade.ts';

export const DOMAINS = ['math', 'science', 'code'] as const;
export type Domain = (typeof DOMAINS)[number];

/** Every template and verdict marker of the cascade. */
export interface StageTemplates {
  /** Cycle: the prompt that asks for the question behind the candidate. */
  cycleAsk: string;
  /** Cycle: the judge prompt comparing the question with the inferred one ({inferred}). */
  cycleJudge: string;
  /** Cycle without a judge: the text the ask's extracted answer must equal ('' = use cycleJudge). */
  cycleMatch: string;
  factualityJudge: string;
  /** Correctness: the prompt that makes the model solve the question itself. */
  correctnessAsk: string;
  /** Correctness: the judge prompt comparing the candidate with the model's own solution ({solution}). */
  correctnessJudge: string;
  /** Correctness without a judge: the text the solution's extracted answer must equal ('' = use correctnessJudge). */
  correctnessMatch: string;
  /** The markers a judge writes for yes and no (the last one written decides). */
  yes: string;
  no: string;
}

const VERDICT_LINE = (name: string) => `End with exactly one line: "${name}: [[Y]]" if so, or "${name}: [[N]]" if not.`;

const CYCLE_ASK = 'Here is an answer to a question:\n\n{response}\n\nWrite the most likely question that would have prompted this answer. Write only the question.';

export const DOMAIN_TEMPLATES: Readonly<Record<Domain, StageTemplates>> = {
  math: {
    cycleAsk: CYCLE_ASK,
    cycleJudge: `Question A:\n{question}\n\nQuestion B:\n{inferred}\n\nDo A and B ask the same mathematical question (the same quantities and the same thing to find)? Think briefly. ${VERDICT_LINE('Relevant')}`,
    cycleMatch: '',
    factualityJudge: `Problem:\n{question}\n\nProposed solution:\n{response}\n\nCheck the solution step by step. Is it free of calculation errors, false statements and logic errors? ${VERDICT_LINE('No Factual Errors')}`,
    correctnessAsk: '{question}',
    correctnessJudge: `Problem:\n{question}\n\nYour own solution:\n{solution}\n\nProposed solution:\n{response}\n\nCompare the proposed final answer ({answer}) with the final answer of your own solution. Is the proposed final answer correct? ${VERDICT_LINE('Final Answer Correct')}`,
    correctnessMatch: '',
    yes: '[[Y]]',
    no: '[[N]]',
  },
  science: {
    cycleAsk: CYCLE_ASK,
    cycleJudge: `Question A:\n{question}\n\nQuestion B:\n{inferred}\n\nDo A and B ask the same scientific question (the same system, conditions and thing asked)? Think briefly. ${VERDICT_LINE('Relevant')}`,
    cycleMatch: '',
    factualityJudge: `Question:\n{question}\n\nProposed answer:\n{response}\n\nCheck each claim. Is the answer free of factual errors (wrong laws, constants or definitions), calculation errors and logic errors? ${VERDICT_LINE('No Factual Errors')}`,
    correctnessAsk: '{question}',
    correctnessJudge: `Question:\n{question}\n\nYour own answer:\n{solution}\n\nProposed answer:\n{response}\n\nCompare the proposed final answer ({answer}) with your own. Is the proposed final answer correct? ${VERDICT_LINE('Final Answer Correct')}`,
    correctnessMatch: '',
    yes: '[[Y]]',
    no: '[[N]]',
  },
  code: {
    cycleAsk: 'Here is a program written for a task:\n\n{response}\n\nWrite the most likely task description that would have prompted this program. Write only the task.',
    cycleJudge: `Task A:\n{question}\n\nTask B:\n{inferred}\n\nDo A and B ask for the same program (the same inputs, outputs and behaviour)? Think briefly. ${VERDICT_LINE('Relevant')}`,
    cycleMatch: '',
    factualityJudge: `Task:\n{question}\n\nProposed program:\n{response}\n\nRead the program carefully. Is it free of bugs, wrong uses of the language or its library, and logic errors? ${VERDICT_LINE('No Factual Errors')}`,
    correctnessAsk: '{question}',
    correctnessJudge: `Task:\n{question}\n\nYour own program:\n{solution}\n\nProposed program:\n{response}\n\nTrace both on the task's examples and edge cases. Does the proposed program give the right output wherever yours does? ${VERDICT_LINE('Final Answer Correct')}`,
    correctnessMatch: '',
    yes: '[[Y]]',
    no: '[[N]]',
  },
};

/** The placeholders every template may use, besides the named groups of the question pattern. */
export const PLACEHOLDERS = ['question', 'response', 'answer', 'inferred', 'solution', 'solution_answer'] as const;

/**
 * A template with its placeholders filled, in one pass: `{name}` for each name given; any other
 * brace (LaTeX's \boxed{}, code) is left as written. A placeholder the template names but the
 * values lack is an error naming the setting, so a stage never asks a half-written prompt.
 */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>, setting: string, known: readonly string[]): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    if (name in values) return values[name];
    if (known.includes(name)) throw new Error(`${setting}: {${name}} has no value here (${name === 'inferred' || name === 'solution' || name === 'solution_answer' ? 'only the judge prompt after its ask has it' : 'the question does not match svdQuestionPattern'})`);
    return whole;
  });
}

/** The templates each stage fills, by the setting that gives each. */
export function stageTemplates(t: StageTemplates, stage: StageId): { setting: string; template: string }[] {
  if (stage === 'cycle') return [{ setting: 'svdCycleAsk', template: t.cycleAsk }, { setting: 'svdCycleJudge', template: t.cycleJudge }, { setting: 'svdCycleMatch', template: t.cycleMatch }];
  if (stage === 'factuality') return [{ setting: 'svdFactualityJudge', template: t.factualityJudge }];
  return [{ setting: 'svdCorrectnessAsk', template: t.correctnessAsk }, { setting: 'svdCorrectnessJudge', template: t.correctnessJudge }, { setting: 'svdCorrectnessMatch', template: t.correctnessMatch }];
}

/**
 * Why the cascade cannot read these questions, or null: a stage's template that names a group of
 * the question pattern ({a}) needs every question to match it. Found before anything is sampled,
 * naming the first question that does not and what to change.
 */
export function patternMismatch(t: StageTemplates, stages: readonly StageId[], pattern: RegExp | null, patternText: string, questions: readonly string[]): string | null {
  const groups = patternGroups(pattern);
  if (!pattern || groups.length === 0) return null;
  const readers = stages.flatMap((stage) => stageTemplates(t, stage)).filter(({ template }) => groups.some((g) => template.includes(`{${g}}`)));
  if (readers.length === 0) return null;
  const at = questions.findIndex((q) => !pattern.test(q));
  if (at < 0) return null;
  const names = [...new Set(groups.filter((g) => readers.some((r) => r.template.includes(`{${g}}`))))].map((g) => `{${g}}`);
  return (
    `question ${at + 1} of the run's ${questions.length} (${JSON.stringify(questions[at].slice(0, 120))}) does not match svdQuestionPattern /${patternText}/, ` +
    `whose ${names.join(', ')} ${readers.map((r) => r.setting).join(', ')} read${readers.length === 1 ? 's' : ''}. ` +
    'Use questions of that form (a dataset of them), drop the stages that read it (svdStages), or set svdQuestionPattern and those templates for these questions.'
  );
}

/** The named groups of a question pattern (the placeholders it adds). */
export function patternGroups(pattern: RegExp | null): string[] {
  if (!pattern) return [];
  // An alternative that matches the empty text lists every group, each undefined.
  return Object.keys(new RegExp(`(?:${pattern.source})|`).exec('')?.groups ?? {});
}

/** The values a question gives its templates: {question} and the named groups of the pattern (when it matches). */
export function questionValues(question: string, pattern: RegExp | null): Record<string, string> {
  const values: Record<string, string> = { question };
  const groups = pattern?.exec(question)?.groups;
  if (groups) for (const [k, v] of Object.entries(groups)) if (v !== undefined) values[k] = v;
  return values;
}

export interface StageJudgeOptions {
  judge: Judge;
  templates: StageTemplates;
  /** The question text of each candidate (by its `question`). */
  questionOf(candidate: CascadeCandidate): string;
  /** Named groups that become placeholders (svdQuestionPattern), or null. */
  questionPattern: RegExp | null;
  answerFormat: AnswerFormat;
  /** Sampling of every judge and ask call. */
  temperature: number;
  topP?: number;
  judgeMaxTokens: number;
  askMaxTokens: number;
  stopStrings?: readonly string[];
}

/**
 * The stage judge over the frozen model: for a batch of candidates, each stage's V votes as one
 * batched generation per prompt kind (asks first, then judgments), every vote its own sample.
 */
export function modelStageJudge(o: StageJudgeOptions): StageJudge {
  const t = o.templates;
  const known = [...PLACEHOLDERS, ...patternGroups(o.questionPattern)];
  const valuesOf = (c: CascadeCandidate) => ({ ...questionValues(o.questionOf(c), o.questionPattern), response: c.text, answer: c.answer ?? c.text });
  // A failure (a prompt too long for the model's context) names the setting whose template made it.
  const generate = async (setting: string, prompts: string[], maxNewTokens: number, tokens: string) => {
    try {
      return await o.judge.generate(prompts, { maxNewTokens, temperature: o.temperature, topP: o.topP, stopStrings: o.stopStrings });
    } catch (e) {
      throw new Error(`${setting} (its prompts, with ${tokens} ${maxNewTokens}): ${(e as Error).message}`, { cause: e });
    }
  };
  const ask = (setting: string, prompts: string[]) => generate(setting, prompts, o.askMaxTokens, 'svdAskMaxTokens');
  const decide = (setting: string, prompts: string[]) => generate(setting, prompts, o.judgeMaxTokens, 'svdJudgeMaxTokens');

  /** Each candidate's votes: an optional ask, then a judge prompt or a match. */
  const twoPart = async (batch: readonly CascadeCandidate[], votes: number, spec: { askTemplate: string; askSetting: string; as: 'inferred' | 'solution'; judgeTemplate: string; judgeSetting: string; match: string; matchSetting: string }): Promise<StageVote[][]> => {
    const rows = batch.flatMap((c) => Array.from({ length: votes }, () => valuesOf(c)));
    const askPrompts = rows.map((v) => fillTemplate(spec.askTemplate, v, spec.askSetting, known));
    const asked = await ask(spec.askSetting, askPrompts);
    // What the ask wrote, and its final answer (the text itself where none can be extracted).
    const askedAnswers = asked.map((text) => extractAnswer(text, o.answerFormat) ?? text.trim());
    const filled = rows.map((v, i) => ({ ...v, [spec.as]: asked[i].trim(), ...(spec.as === 'solution' && { solution_answer: askedAnswers[i] }) }));
    let verdicts: { accept: boolean | null; exchange?: { prompt: string; response: string } }[];
    if (spec.match !== '') {
      verdicts = filled.map((v, i) => ({ accept: isCorrect(askedAnswers[i], fillTemplate(spec.match, v, spec.matchSetting, known), o.answerFormat) }));
    } else {
      const judgePrompts = filled.map((v) => fillTemplate(spec.judgeTemplate, v, spec.judgeSetting, known));
      const judged = await decide(spec.judgeSetting, judgePrompts);
      verdicts = judged.map((text, i) => ({ accept: parseVerdict(text, t.yes, t.no), exchange: { prompt: judgePrompts[i], response: text } }));
    }
    const out: StageVote[] = verdicts.map((v, i) => ({ accept: v.accept, exchanges: [{ prompt: askPrompts[i], response: asked[i] }, ...(v.exchange ? [v.exchange] : [])] }));
    return batch.map((_, b) => out.slice(b * votes, (b + 1) * votes));
  };

  return async (stage: StageId, batch, votes) => {
    if (stage === 'cycle') {
      return twoPart(batch, votes, { askTemplate: t.cycleAsk, askSetting: 'svdCycleAsk', as: 'inferred', judgeTemplate: t.cycleJudge, judgeSetting: 'svdCycleJudge', match: t.cycleMatch, matchSetting: 'svdCycleMatch' });
    }
    if (stage === 'correctness') {
      return twoPart(batch, votes, {
        askTemplate: t.correctnessAsk,
        askSetting: 'svdCorrectnessAsk',
        as: 'solution',
        judgeTemplate: t.correctnessJudge,
        judgeSetting: 'svdCorrectnessJudge',
        match: t.correctnessMatch,
        matchSetting: 'svdCorrectnessMatch',
      });
    }
    const prompts = batch.flatMap((c) => Array.from({ length: votes }, () => fillTemplate(t.factualityJudge, valuesOf(c), 'svdFactualityJudge', known)));
    const judged = await decide('svdFactualityJudge', prompts);
    return batch.map((_, b) =>
      judged.slice(b * votes, (b + 1) * votes).map((text, j) => ({ accept: parseVerdict(text, t.yes, t.no), exchanges: [{ prompt: prompts[b * votes + j], response: text }] })),
    );
  };
}
