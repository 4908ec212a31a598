/** What a config migration never copies: environment-specific keys and server.json identity fields. */

const EXACT_ENV_SPECIFIC = new Set(['ENV', 'NSELF_ENV', 'BASE_DOMAIN', 'PROJECT_NAME', 'POSTGRES_DB', 'POSTGRES_HOST', 'POSTGRES_PORT', 'POSTGRES_USER', 'DATABASE_URL', 'DEBUG', 'LOG_LEVEL']);
const SUFFIX_ENV_SPECIFIC = ['_CORS_DOMAIN', '_DOMAIN', '_URL', '_ROUTE', '_DEV_MODE', '_ENABLE_CONSOLE'];

/** Why a key is environment-specific (never copied), or undefined. */
export function environmentSpecific(key: string): string | undefined {
  const k = key.toUpperCase();
  if (EXACT_ENV_SPECIFIC.has(k)) return `${k} is environment-specific`;
  for (const s of SUFFIX_ENV_SPECIFIC) if (k.endsWith(s)) return `*${s} keys are environment-specific`;
  if (k.startsWith('SSL_')) return 'SSL_* keys are environment-specific';
  return undefined;
}

/** server.json fields that identify a server and are never copied. */
export const IDENTITY_FIELDS: readonly string[] = ['name', 'type', 'host', 'port', 'user', 'key', 'deploy_path', 'project_subdir'];
