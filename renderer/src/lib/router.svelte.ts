// Hash routes: #/datasets, #/models, #/new[?reviewsOf=ID|cloneOf=ID], #/runs, #/runs/:id, #/runs/:id/inspect?step=N (or ?scope=all), #/runs/:id/funnel?round=N,
// #/runs/:id/episodes?step=N&episode=SAMPLE, #/runs/:id/skills?q=WORDS, #/runs/:id/task?rollout=R (a code group), #/compare?ids=1,2, #/settings.
export type Route =
  | { name: 'datasets' }
  | { name: 'models' }
  | { name: 'new'; reviewsOf: number | null; cloneOf: number | null }
  | { name: 'runs' }
  | { name: 'run'; id: number }
  | { name: 'inspect'; id: number; step: number | null; allSteps: boolean }
  | { name: 'funnel'; id: number; round: number | null }
  | { name: 'episodes'; id: number; step: number | null; episode: number | null }
  | { name: 'skills'; id: number; query: string }
  | { name: 'task'; id: number; rollout: number | null }
  | { name: 'compare'; ids: number[] }
  | { name: 'settings' };

function parse(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?');
  const q = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  const int = (s: string | null | undefined) => (s != null && /^\d+$/.test(s) ? Number(s) : null);
  switch (parts[0]) {
    case 'datasets':
      return { name: 'datasets' };
    case 'models':
      return { name: 'models' };
    case 'settings':
      return { name: 'settings' };
    case 'new':
      return { name: 'new', reviewsOf: int(q.get('reviewsOf')), cloneOf: int(q.get('cloneOf')) };
    case 'compare':
      return { name: 'compare', ids: (q.get('ids') ?? '').split(',').map(int).filter((n): n is number => n !== null) };
    case 'runs': {
      const id = int(parts[1]);
      if (id === null) return { name: 'runs' };
      if (parts[2] === 'inspect') return { name: 'inspect', id, step: int(q.get('step')), allSteps: q.get('scope') === 'all' };
      if (parts[2] === 'funnel') return { name: 'funnel', id, round: int(q.get('round')) };
      if (parts[2] === 'episodes') return { name: 'episodes', id, step: int(q.get('step')), episode: int(q.get('episode')) };
      if (parts[2] === 'skills') return { name: 'skills', id, query: q.get('q') ?? '' };
      if (parts[2] === 'task') return { name: 'task', id, rollout: int(q.get('rollout')) };
      return { name: 'run', id };
    }
    default:
      return { name: 'runs' };
  }
}

export const router = $state({ route: parse(location.hash) });

window.addEventListener('hashchange', () => {
  router.route = parse(location.hash);
});

export function navigate(hash: string, replace = false): void {
  if (replace) {
    history.replaceState(null, '', hash);
    router.route = parse(hash);
  } else {
    location.hash = hash;
  }
}
