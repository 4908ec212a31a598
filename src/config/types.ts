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

export interface ConfigKeyDiff {
  key: string;
  status: 'only_in_source' | 'only_in_target' | 'differs';
  secret: boolean;
  source?: ConfigSide;
  target?: ConfigSide;
  /**
   * Set when the difference is expected and a migration leaves it alone (environment-specific key, secret,
   * key only in the target): the reason. Expected differences are shown but not counted.
   */
  expected?: string;
}

export interface ServerFieldDiff {
  field: string;
  /** Identity fields (host, port, user, key, …) are expected to differ and are never copied. */
  identity: boolean;
  status: 'only_in_source' | 'only_in_target' | 'differs';
  /** Masked values (secret-named fields '****', credential URLs without password). */
  source?: unknown;
  target?: unknown;
  /** As for keys: identity fields and target-only fields are expected differences. */
  expected?: string;
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
  kind: 'environment_specific' | 'secret' | 'same_definition' | 'server' | 'unwritable';
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
  field: string;
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
  /** Secrets added as empty placeholders: someone must set them. */
  needsValue: string[];
  skipped: ConfigSkip[];
  conflicts: ConfigConflict[];
  /** server.json service settings copied into the target's existing server.json. */
  server?: { file: string; sha256: string; edits: ServerEdit[] };
}
