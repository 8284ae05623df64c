// The experiment database's schema as an ordered list of migrations. Migration i (1-based)
// brings a database from `PRAGMA user_version` i-1 to i. Never edit a migration that has
// shipped: append a new one, so every existing database file upgrades the same way.
import type Database from 'better-sqlite3';

export interface Migration {
  /** A short description, shown in errors and logs. */
  name: string;
  up: string | ((db: Database.Database) => void);
}

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'initial schema',
    up: `
      CREATE TABLE datasets (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        source        TEXT,                -- the imported file, or e.g. 'generator:arithmetic'
        field_mapping TEXT NOT NULL DEFAULT '{}',  -- JSON
        item_count    INTEGER NOT NULL DEFAULT 0,
        created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );

      -- eval_answer is the hidden label: evaluation only. It lives in its own column so that
      -- the queries that feed prompts to a run never select it (see datasets.ts).
      CREATE TABLE dataset_items (
        dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        prompt      TEXT NOT NULL,
        eval_answer TEXT,
        split       TEXT NOT NULL DEFAULT 'train' CHECK (split IN ('train', 'eval')),
        metadata    TEXT,                  -- JSON
        PRIMARY KEY (dataset_id, idx)
      ) WITHOUT ROWID;
      CREATE INDEX dataset_items_split ON dataset_items (dataset_id, split, idx);

      CREATE TABLE models (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        path            TEXT NOT NULL,
        architecture    TEXT,
        parameter_count INTEGER,
        dtype           TEXT,
        created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );

      CREATE TABLE runs (
        id           INTEGER PRIMARY KEY,
        name         TEXT NOT NULL,
        method       TEXT NOT NULL,
        model        TEXT NOT NULL,        -- a model name or folder, as the run was given it
        dataset      TEXT NOT NULL,        -- a dataset name, file or generator
        dataset_id   INTEGER REFERENCES datasets(id) ON DELETE SET NULL,
        config       TEXT NOT NULL,        -- JSON: the full configuration, enough to resume
        status       TEXT NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'paused', 'completed', 'failed', 'stopped')),
        error        TEXT,
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        started_at   TEXT,
        finished_at  TEXT,
        current_step INTEGER,              -- the last step recorded, NULL before the first
        best_metric  REAL,
        best_step    INTEGER
      );
      CREATE INDEX runs_created ON runs (created_at);

      -- One row per recorded step: the marker that the step's transaction committed. Every row
      -- a step writes references it, so no metric, rollout or checkpoint can exist without it
      -- and deleting a step deletes all of it.
      CREATE TABLE steps (
        run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step       INTEGER NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (run_id, step)
      ) WITHOUT ROWID;

      CREATE TABLE metrics (
        run_id INTEGER NOT NULL,
        step   INTEGER NOT NULL,
        key    TEXT NOT NULL,
        value  REAL,                       -- NULL stores NaN (SQLite has no NaN)
        PRIMARY KEY (run_id, step, key),
        FOREIGN KEY (run_id, step) REFERENCES steps(run_id, step) ON DELETE CASCADE
      ) WITHOUT ROWID;
      -- Charts read one key across all steps of a run.
      CREATE INDEX metrics_by_key ON metrics (run_id, key, step);

      CREATE TABLE rollouts (
        id             INTEGER PRIMARY KEY,
        run_id         INTEGER NOT NULL,
        step           INTEGER NOT NULL,
        group_idx      INTEGER NOT NULL,   -- position of the prompt group within the step
        item_idx       INTEGER,            -- dataset_items.idx of the run's dataset, if any
        prompt         TEXT NOT NULL,
        pseudo_label   TEXT,               -- NULL: no label (e.g. below the SRT threshold)
        vote_counts    TEXT NOT NULL DEFAULT '{}',  -- JSON: answer -> count
        majority_ratio REAL,
        label_correct  INTEGER,            -- against the hidden label; NULL where there is none
        labeled        INTEGER NOT NULL DEFAULT 0,
        UNIQUE (run_id, step, group_idx),
        FOREIGN KEY (run_id, step) REFERENCES steps(run_id, step) ON DELETE CASCADE
      );

      CREATE TABLE samples (
        id                INTEGER PRIMARY KEY,
        rollout_id        INTEGER NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
        idx               INTEGER NOT NULL,
        text              TEXT NOT NULL,
        extracted_answer  TEXT,
        reward            REAL,
        advantage         REAL,
        used_for_training INTEGER NOT NULL DEFAULT 0,
        logprobs          BLOB,            -- float32 little-endian, one per generated token
        entropies         BLOB,            -- float32 little-endian, one per generated token
        UNIQUE (rollout_id, idx)
      );

      CREATE TABLE checkpoints (
        id         INTEGER PRIMARY KEY,
        run_id     INTEGER NOT NULL,
        step       INTEGER NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('best', 'last')),
        path       TEXT NOT NULL,
        metric     REAL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        FOREIGN KEY (run_id, step) REFERENCES steps(run_id, step) ON DELETE CASCADE
      );
      CREATE INDEX checkpoints_by_run ON checkpoints (run_id, kind, step);

      -- A human verdict on a pseudo-label: on a rollout of a run, or on a dataset item.
      CREATE TABLE reviews (
        id         INTEGER PRIMARY KEY,
        run_id     INTEGER REFERENCES runs(id) ON DELETE CASCADE,
        rollout_id INTEGER REFERENCES rollouts(id) ON DELETE CASCADE,
        dataset_id INTEGER,
        item_idx   INTEGER,
        verdict    TEXT NOT NULL CHECK (verdict IN ('agree', 'override')),
        label      TEXT,
        note       TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at TEXT,
        FOREIGN KEY (dataset_id, item_idx) REFERENCES dataset_items(dataset_id, idx) ON DELETE CASCADE,
        CHECK (run_id IS NOT NULL OR (dataset_id IS NOT NULL AND item_idx IS NOT NULL)),
        CHECK (verdict = 'agree' OR label IS NOT NULL)
      );
      CREATE INDEX reviews_by_run ON reviews (run_id, rollout_id);
      CREATE INDEX reviews_by_item ON reviews (dataset_id, item_idx);

      CREATE TABLE alerts (
        id         INTEGER PRIMARY KEY,
        run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step       INTEGER,
        kind       TEXT NOT NULL,
        message    TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
      CREATE INDEX alerts_by_run ON alerts (run_id, step);
    `,
  },
  {
    name: 'sample token ids, label source of rollouts',
    up: `
      -- The generated token ids of each sample (int32 little-endian), so a viewer can show each
      -- token beside its log-prob and entropy. NULL for samples recorded before this migration.
      ALTER TABLE samples ADD COLUMN token_ids BLOB;
      -- 'review': the group's pseudo-label is a person's reviewed label, not the model's vote.
      ALTER TABLE rollouts ADD COLUMN label_source TEXT NOT NULL DEFAULT 'vote' CHECK (label_source IN ('vote', 'review'));
    `,
  },
  {
    name: 'archived datasets; a dataset runs or reviews depend on cannot be deleted',
    up: `
      -- Set when a person archives a dataset: hidden from pickers, everything that uses it keeps working.
      ALTER TABLE datasets ADD COLUMN archived_at TEXT;
      CREATE INDEX runs_by_dataset ON runs (dataset_id);
      -- Deleting a dataset cascades to its items and from them to every review naming one, and
      -- clears its runs' dataset_id (their hidden labels, their resume): the database itself
      -- refuses while a run or review depends on it, whatever code asks. The message is a marker
      -- that deleteDataset turns into one naming what depends on it.
      CREATE TRIGGER datasets_keep_dependents BEFORE DELETE ON datasets
      WHEN EXISTS (SELECT 1 FROM runs WHERE dataset_id = OLD.id) OR EXISTS (SELECT 1 FROM reviews WHERE dataset_id = OLD.id)
      BEGIN
        SELECT RAISE(ABORT, 'dataset in use by runs or reviews');
      END;
    `,
  },
  {
    name: 'datasets staged by an import',
    up: `
      -- Set while an import writes the dataset's items in short transactions (so a run in
      -- another process is never locked out for long): JSON {pid, hostname, startedAt} of the
      -- importing process. Such a dataset is invisible until the import publishes it (sets this
      -- NULL) in one short transaction; a failed import deletes it, a dead importer's is swept.
      ALTER TABLE datasets ADD COLUMN import_owner TEXT;
    `,
  },
  {
    name: 'sample self-certainty and reward details',
    up: `
      -- Per generated token, the self-certainty KL(U || p) the generator computes (float32
      -- little-endian), and the method's parts of the sample's reward (JSON: name -> number).
      -- NULL for samples recorded before this migration, or whose method gives no parts.
      ALTER TABLE samples ADD COLUMN self_certainties BLOB;
      ALTER TABLE samples ADD COLUMN details TEXT;
    `,
  },
  {
    name: 'tokens of each step',
    up: `
      -- The tokens a step's rollout processed: every sample's prompt and completion tokens (TRL's
      -- num_tokens counts the same), so charts can put tokens seen on the x-axis. NULL for steps
      -- recorded before this migration and for validation-only steps.
      ALTER TABLE steps ADD COLUMN tokens INTEGER;
    `,
  },
  {
    name: 'what the judge was asked about each sample',
    up: `
      -- JSON {prompt, response}: the prompt a judge method put to the frozen model about this
      -- sample and what it answered, so a person can read why the sample got its reward. NULL
      -- where the method asks no judge, and for samples recorded before this migration.
      ALTER TABLE samples ADD COLUMN judge TEXT;
    `,
  },
  {
    name: 'run tags',
    up: `
      -- A person's labels on runs ("baseline", "lr-sweep"), for finding and grouping them; they go with the run.
      CREATE TABLE run_tags (
        run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        tag        TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (run_id, tag)
      ) WITHOUT ROWID;
      CREATE INDEX run_tags_by_tag ON run_tags (tag, run_id);
    `,
  },
  {
    name: 'external runs',
    up: `
      -- 'external': a run trained elsewhere (verl on a cluster) whose metrics and rollouts were
      -- imported (autodidact cluster import); it is read, inspected and reviewed like any other,
      -- but this app never starts or resumes it.
      ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'local' CHECK (kind IN ('local', 'external'));
    `,
  },
  {
    name: 'indexes for the review queue across the steps of a run',
    up: `
      -- The review queue reads every step of a run at once: the previous draw of each group's
      -- prompt (the latest earlier rollout of the same item) and each group's review, one seek
      -- each. Without these, every group scanned the run's rollouts and the reviews table.
      CREATE INDEX rollouts_by_item ON rollouts (run_id, item_idx, step, group_idx);
      CREATE INDEX reviews_by_rollout ON reviews (rollout_id);
    `,
  },
  {
    name: 'self-verified distillation rounds',
    up: `
      -- A round of a self-verified distillation run (issue 17): K candidates per question, judged
      -- by a cascade of stages, the survivors fine-tuned on. stages is the JSON list of stage ids
      -- in the order the round asked them; status what the round is doing.
      CREATE TABLE svd_rounds (
        run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        round      INTEGER NOT NULL,
        stages     TEXT NOT NULL,
        status     TEXT NOT NULL DEFAULT 'judging' CHECK (status IN ('judging', 'review', 'training', 'trained')),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (run_id, round)
      ) WITHOUT ROWID;

      -- A candidate answer: its question (position in the round, and the dataset item), its text
      -- and tokens, whether it is right against the hidden answer (measurement only; NULL where
      -- there is none), the stage that rejected it (position in the round's stages; NULL while it
      -- survives), and once the cascade is over what became of a survivor: in the SFT set ('sft'),
      -- or dropped as a duplicate answer or over the cap per question.
      CREATE TABLE svd_candidates (
        id             INTEGER PRIMARY KEY,
        run_id         INTEGER NOT NULL,
        round          INTEGER NOT NULL,
        question       INTEGER NOT NULL,
        item_idx       INTEGER,
        prompt         TEXT NOT NULL,
        idx            INTEGER NOT NULL,
        text           TEXT NOT NULL,
        answer         TEXT,
        token_ids      BLOB NOT NULL,
        correct        INTEGER,
        rejected_stage INTEGER,
        selection      TEXT CHECK (selection IN ('sft', 'duplicate', 'cap')),
        UNIQUE (run_id, round, question, idx),
        FOREIGN KEY (run_id, round) REFERENCES svd_rounds(run_id, round) ON DELETE CASCADE
      );

      -- Each judge vote of each stage about a candidate: accept (1), reject (0) or no verdict read
      -- (NULL), and every prompt the vote put to the model with its response (JSON [{prompt, response}]).
      CREATE TABLE svd_verdicts (
        candidate_id INTEGER NOT NULL REFERENCES svd_candidates(id) ON DELETE CASCADE,
        stage        INTEGER NOT NULL,
        vote         INTEGER NOT NULL,
        accept       INTEGER,
        exchanges    TEXT NOT NULL,
        PRIMARY KEY (candidate_id, stage, vote)
      ) WITHOUT ROWID;

      -- A person's review of a survivor before its round's SFT: a rejected one leaves the SFT set.
      CREATE TABLE svd_reviews (
        candidate_id INTEGER PRIMARY KEY REFERENCES svd_candidates(id) ON DELETE CASCADE,
        verdict      TEXT NOT NULL CHECK (verdict IN ('accept', 'reject')),
        note         TEXT,
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at   TEXT
      );
    `,
  },
  {
    name: 'agent episodes turn by turn, and the skill library of each run',
    up: `
      -- OPID's skills (issue 18): an episode skill (a workflow from a success, an avoidance rule
      -- from a failure) or a step skill, from the episode (sample) it was analysed from, with how
      -- many replies it taught. A person may edit one (edited_by_person) or delete it. Deleting
      -- the step (a resume retrains it) deletes its skills.
      CREATE TABLE skills (
        id               INTEGER PRIMARY KEY,
        run_id           INTEGER NOT NULL,
        step             INTEGER NOT NULL,
        kind             TEXT NOT NULL CHECK (kind IN ('workflow', 'avoidance', 'step')),
        text             TEXT NOT NULL,
        source_sample_id INTEGER REFERENCES samples(id) ON DELETE SET NULL,
        source_turn      INTEGER,           -- the turn a step skill is for (1-based)
        task             TEXT NOT NULL,     -- the goal of the episode it came from
        use_count        INTEGER NOT NULL DEFAULT 0,
        edited_by_person INTEGER NOT NULL DEFAULT 0,
        created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at       TEXT,
        FOREIGN KEY (run_id, step) REFERENCES steps(run_id, step) ON DELETE CASCADE
      );
      CREATE INDEX skills_by_run ON skills (run_id, step);

      -- An agent episode (a sample of an agent run) turn by turn: the user message the policy
      -- read, its reply and action, the environment's answer, and where a skill taught the reply,
      -- that skill and the reply's tokens with Δ per token (float32 little-endian).
      CREATE TABLE episode_turns (
        sample_id    INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
        turn         INTEGER NOT NULL,      -- 1-based
        prompt       TEXT NOT NULL,
        reply        TEXT NOT NULL,
        action       TEXT NOT NULL,
        format_valid INTEGER NOT NULL,
        observation  TEXT NOT NULL,
        reward       REAL,
        done         INTEGER NOT NULL,
        skill_id     INTEGER REFERENCES skills(id) ON DELETE SET NULL,
        token_ids    BLOB,
        delta        BLOB,
        PRIMARY KEY (sample_id, turn)
      ) WITHOUT ROWID;

      -- What an agent episode was: its task, outcome, and why its analysis gave no skill (JSON).
      CREATE TABLE episodes (
        sample_id      INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,
        env            TEXT NOT NULL,
        difficulty     TEXT NOT NULL,
        task_seed      INTEGER NOT NULL,
        goal           TEXT NOT NULL,
        success        INTEGER NOT NULL,
        context_full   INTEGER NOT NULL DEFAULT 0,
        analysis_error TEXT
      );
    `,
  },
  {
    name: 'code groups: the execution matrix, and each response against the hidden tests',
    up: `
      -- A code method's group (issue 19): JSON {language, solutions, tests, authors, matrix,
      -- sets, top, testRewards}: every response's function against every test the group wrote
      -- (pass, fail, error, timeout) and the consensus sets the rewards came from. NULL for other
      -- methods and for groups recorded before this migration.
      ALTER TABLE rollouts ADD COLUMN execution TEXT;
      -- The sample's outcome against its item's hidden answer where the method checks one
      -- (code: the hidden tests, pass / fail / error / timeout); evaluation only, never a reward.
      ALTER TABLE samples ADD COLUMN hidden_result TEXT;
    `,
  },
];
