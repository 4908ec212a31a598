/** Shared shapes of the env layer (implemented in env/*.ts). */

/** One effective variable after the cascade: its expanded value and where it was set. */
export interface EnvVar {
  key: string;
  value: string;
  /** Absolute path of the file that set it last (highest precedence). */
  file: string;
  /** 1-based line of the KEY= line in that file. */
  line: number;
  /**
   * A secret: by name and value (secrets.ts isSecretKey), or by taint — its value expands a secret. Set by the
   * cascade reader; a variable made by hand without it is classified by key and value.
   */
  secret?: boolean;
  /** The secret variables whose values this value expands (`JWT_CONF=${HASURA_GRAPHQL_JWT_SECRET}`), if any. */
  taint?: string[];
}

/** `.environments/<env>/server.json`, as read (unknown fields kept). */
export interface ServerConfig {
  host?: string;
  port?: number;
  user?: string;
  key?: string;
  deploy_path?: string;
  [field: string]: unknown;
}

export interface Environment {
  /** Canonical name: 'local' | 'staging' | 'prod' | other folder name. */
  name: string;
  /** Absolute project directory. */
  projectDir: string;
  /** Every file of the cascade, lowest precedence first, as looked for (absolute paths). */
  lookedFor: string[];
  /** The cascade files that exist, lowest precedence first. */
  files: string[];
  /** Effective variables, keyed by name. */
  vars: Map<string, EnvVar>;
  /** server.json if present. */
  server?: ServerConfig;
  /** Absolute path of server.json (whether or not it exists): `.environments/<dir>/server.json`. */
  serverFile: string;
  /** Absolute path of the file a config migration writes (may not exist yet). */
  ownFile: string;
  /** true when this is production (prod / production). */
  production: boolean;
}
