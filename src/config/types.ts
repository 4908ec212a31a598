/**
 * The configuration component's data: a diff and a plan, plain JSON, already masked (no secret value can be
 * in them: secret values are never copied, placeholders are empty, diff values of secrets are omitted).
 */

/** Where a value is set: project-relative file and 1-based line. */
export interface Provenance {
  file: string;
  line: number;
}

export interface ConfigSide extends Provenance {
  /** Shown value: absent for secrets; a credential URL with its password masked. */
  value?: string;
}

/** A rule of the project's nself-migrate.json that decided about a key or server.json field. */
export interface ConfigRuleRef {
  list: 'keep' | 'copy';
  environment: string;
  pattern: string;
}

export interface ConfigKeyDiff {
  key: string;
  /**
   * `needs_value`: a secret the source sets that is empty or a placeholder (`changeme`, …) in the target — the target
   * cannot work until someone fills it in; counted until then (a migration never copies secrets).
   */
  status: 'only_in_source' | 'only_in_target' | 'differs' | 'needs_value';
  secret: boolean;
  source?: ConfigSide;
  target?: ConfigSide;
  /**
   * Set when the difference is expected and a migration leaves it alone (environment-specific key, key kept by the
   * project's rules, secret, key only in the target): the reason. Expected differences are shown but not counted.
   */
  expected?: string;
  /** The project rule (nself-migrate.json) that decided, if one did. */
  rule?: ConfigRuleRef;
}

/** One differing leaf of server.json (objects are compared field by field; arrays and other values whole). */
export interface ServerFieldDiff {
  /** Dotted path of the leaf: `backup.retention_days`. */
  field: string;
  /** The same path as its segments (a segment may itself hold a dot). */
  path: string[];
  /** Identity fields (host, port, user, key, … at the top level) are expected to differ and are never copied. */
  identity: boolean;
  status: 'only_in_source' | 'only_in_target' | 'differs';
  /** Masked values (secret-named fields '****', credential URLs without password). */
  source?: unknown;
  target?: unknown;
  /**
   * As for keys: identity fields, secrets, environment-specific and numeric service settings (unless the project's
   * rules copy them), fields kept by the rules, and target-only fields are expected differences.
   */
  expected?: string;
  rule?: ConfigRuleRef;
}

export interface ConfigDiff {
  source: string;
  target: string;
  /** Project-relative cascade files that exist on each side, lowest precedence first. */
  sourceFiles: string[];
  targetFiles: string[];
  onlyInSource: ConfigKeyDiff[];
  onlyInTarget: ConfigKeyDiff[];
  changed: ConfigKeyDiff[];
  server: {
    sourceFile: string;
    targetFile: string;
    sourceExists: boolean;
    targetExists: boolean;
    fields: ServerFieldDiff[];
  };
  /** Number of differences a migration acts on (keys + server fields), expected ones not counted. */
  count: number;
  /** Number of expected differences (shown, not counted). */
  expected: number;
  /** No difference at all, expected ones included. */
  identical: boolean;
  /** The project's rules file when it exists (project-relative). */
  rulesFile?: string;
}

export interface ConfigEdit {
  /** add: a key the target lacks; update: a value that differs; placeholder: a secret the target lacks (`KEY=`). */
  action: 'add' | 'update' | 'placeholder';
  key: string;
  /** The value written (expanded source value; '' for a placeholder). Never a secret. */
  value: string;
  /** Line of the own file that is rewritten in place; absent when the line is appended. */
  line?: number;
  /** Where the source sets it. */
  from: Provenance;
  /** For updates: where the target's current effective value comes from, and that value. */
  current?: ConfigSide;
}

export interface ConfigSkip {
  key: string;
  /** kept: the project's rules keep it in the source or the target environment.
   *  unwritable: a value no shell and the parser would read alike (set it by hand). */
  kind: 'environment_specific' | 'kept' | 'secret' | 'same_definition' | 'server' | 'unwritable';
  reason: string;
}

export interface ConfigConflict {
  key: string;
  /** The higher-precedence file (and line) whose value would override a write to the own file. */
  file: string;
  line: number;
  reason: string;
}

export interface ServerEdit {
  /** Dotted path of the leaf set (`backup.enabled`); `path` holds its segments. */
  field: string;
  path: string[];
  action: 'add' | 'update';
  value: unknown;
}

export interface ConfigPlan {
  source: string;
  target: string;
  /** The target's own env file, project-relative. */
  file: string;
  /** true when the own file does not exist yet and will be created. */
  created: boolean;
  /** sha256 (hex) of the own file when planned; null when it did not exist. applyConfig refuses if it changed. */
  sha256: string | null;
  /** Permissions of a created file: 0o600 when the target has secrets, else 0o644. */
  mode: number;
  edits: ConfigEdit[];
  /**
   * Secrets the target will lack a value for after the migration: placeholders it adds (`KEY=`), and secrets the
   * source sets that are already empty or a placeholder in the target. Someone must set them.
   */
  needsValue: string[];
  skipped: ConfigSkip[];
  conflicts: ConfigConflict[];
  /** server.json service settings set in the target's existing server.json (its text edited in place). */
  server?: { file: string; sha256: string; edits: ServerEdit[] };
}
