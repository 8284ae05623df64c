// Agent runs (issue 18): open an episode turn by turn (each taught reply's tokens with its Δ) and
// keep a run's skill library: list and search it, edit a skill (marked as the person's), delete one.
import { ApiError, type EpisodeView } from '../../../contract/index.ts';
import { deleteSkill, editSkill, getEpisode, getRun, getSkill, listEpisodes, listSkills } from '../../db/index.ts';
import type { TextTokenizer } from '../../engine/nn/tokenizer.ts';
import { resolveModel } from '../../runs/start.ts';
import { runOrThrow } from './runs.ts';
import type { ApiDeps, HandlerTable } from './types.ts';

/** The run's tokenizer, to show each token of a reply as text; null when its model folder is gone. */
async function runTokenizer(deps: ApiDeps, model: string): Promise<TextTokenizer | null> {
  try {
    const { TextTokenizer } = await import('../../engine/nn/tokenizer.ts');
    return await TextTokenizer.fromFolder(resolveModel(model, deps.home));
  } catch {
    return null;
  }
}

function skillOrThrow(deps: ApiDeps, id: number) {
  const skill = getSkill(deps.db, id);
  if (!skill) throw new ApiError('NOT_FOUND', `There is no skill ${id}; it may have been deleted, or its step retrained.`);
  return skill;
}

export const agentHandlers = {
  'episodes.list': (p, deps) => {
    runOrThrow(deps, p.runId);
    return listEpisodes(deps.db, p.runId, p.step);
  },
  'episodes.get': async (p, deps): Promise<EpisodeView> => {
    const e = getEpisode(deps.db, p.sampleId);
    if (!e) throw new ApiError('NOT_FOUND', `Sample ${p.sampleId} is not an episode of an agent run (or it was deleted).`);
    const run = getRun(deps.db, e.runId);
    const tok = run && e.turns.some((t) => t.tokenIds) ? await runTokenizer(deps, run.model) : null;
    return {
      ...e,
      turns: e.turns.map(({ tokenIds, ...t }) => ({
        ...t,
        // Without the tokenizer the ids themselves are shown.
        tokens: tokenIds ? tokenIds.map((id) => (tok ? tok.decode([id], { skipSpecialTokens: false }) : `#${id}`)) : null,
      })),
    };
  },
  'skills.list': (p, deps) => {
    runOrThrow(deps, p.runId);
    return listSkills(deps.db, p.runId, { query: p.query, kind: p.kind, offset: p.offset, limit: p.limit });
  },
  // Each change is announced, so every window showing the run's skills or episodes reloads them.
  'skills.edit': (p, deps) => {
    skillOrThrow(deps, p.id);
    const skill = editSkill(deps.db, p.id, p.text);
    deps.events.emit('skills.changed', { runId: skill.runId, skillId: skill.id, deleted: false });
    return skill;
  },
  'skills.delete': (p, deps) => {
    const { runId } = skillOrThrow(deps, p.id);
    deleteSkill(deps.db, p.id);
    deps.events.emit('skills.changed', { runId, skillId: p.id, deleted: true });
    return { deleted: true };
  },
} satisfies HandlerTable<'episodes.list' | 'episodes.get' | 'skills.list' | 'skills.edit' | 'skills.delete'>;
